"""The systemd unit templates: they render, pass `systemd-analyze verify`, and say what the runbook says."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from engine.env import ENV_VARS
from tests.ops.ops_helpers import (
    REPO,
    fake_install_dir,
    install_args,
    load_installer,
    one,
    parse_unit,
    run_verify,
    systemd_analyze,
    values,
)

SERVICES = (
    "ai-quant-sidecar",
    "ai-quant-paper",
    "ai-quant-live",
    "ai-quant-monitor",
    "ai-quant-factory",
    "ai-quant-prune",
    "ai-quant-ramp",
    "ai-quant-exchange-sim",
)
TIMERS = ("ai-quant-factory", "ai-quant-prune", "ai-quant-ramp")
LONG_RUNNING = (
    "ai-quant-sidecar",
    "ai-quant-paper",
    "ai-quant-live",
    "ai-quant-monitor",
    "ai-quant-exchange-sim",
)
HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "NoNewPrivileges": "true",
    "PrivateTmp": "true",
    "ProtectKernelTunables": "true",
}

needs_analyze = pytest.mark.skipif(
    systemd_analyze() is None,
    reason="systemd-analyze not installed (apt-get install systemd; .ci/run installs it in CI)",
)


def _render(tmp_path: Path, scope: str) -> Path:
    inst = load_installer()
    install = fake_install_dir(tmp_path)
    rc = inst.main(
        install_args(
            tmp_path,
            scope,
            install,
            *(["--run-as", pwd.getpwuid(os.getuid()).pw_name] if scope == "system" else []),
        )
    )
    assert rc == 0
    return tmp_path / "units"


def _units(tmp_path: Path, scope: str = "system") -> dict[str, dict[str, list[tuple[str, str]]]]:
    unit_dir = _render(tmp_path, scope)
    return {p.name: parse_unit(p.read_text()) for p in sorted(unit_dir.iterdir())}


def test_every_template_is_rendered() -> None:
    names = {p.name for p in load_installer().unit_templates()}
    expected = {f"{s}.service" for s in SERVICES} | {f"{t}.timer" for t in TIMERS}
    assert names == expected


@needs_analyze
@pytest.mark.parametrize("scope", ["system", "user"])
def test_units_pass_systemd_analyze_verify(tmp_path: Path, scope: str) -> None:
    unit_dir = _render(tmp_path, scope)
    units = sorted(unit_dir.iterdir())
    assert len(units) == len(SERVICES) + len(TIMERS)
    proc = run_verify(units, user=scope == "user", runtime_dir=tmp_path / "runtime")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # verify reports ignored or unknown settings as warnings with exit status 0: allow none that
    # mention our units.
    ours = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ai-quant" in ln]
    assert ours == [], "\n".join(ours)


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The verify test can fail: a unit whose ExecStart is missing is reported."""
    unit = tmp_path / "ai-quant-broken.service"
    unit.write_text("[Service]\nType=notify\nExecStart=/nonexistent/ai-quant-daemon\n")
    proc = run_verify([unit], user=False, runtime_dir=tmp_path / "runtime")
    assert proc.returncode != 0
    assert "/nonexistent/ai-quant-daemon" in proc.stdout + proc.stderr


@needs_analyze
def test_timer_calendars_are_valid(tmp_path: Path) -> None:
    units = _units(tmp_path)
    for t in TIMERS:
        spec = one(units[f"{t}.timer"], "Timer", "OnCalendar")
        exe = systemd_analyze()
        assert exe is not None
        proc = subprocess.run(
            [exe, "calendar", spec], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "Next elapse" in proc.stdout


def test_no_placeholder_left_and_paths_filled(tmp_path: Path) -> None:
    unit_dir = _render(tmp_path, "system")
    for p in unit_dir.iterdir():
        text = p.read_text()
        assert not re.search(r"@[A-Z_]+@", text), p.name
    paper = (unit_dir / "ai-quant-paper.service").read_text()
    assert f"{tmp_path}/install/.venv/bin/python -m daemon" in paper
    assert f"ReadWritePaths={tmp_path}/data" in paper
    assert f"EnvironmentFile={tmp_path}/env/paper.env" in paper


def test_daemon_and_sidecar_are_notify_with_watchdog(tmp_path: Path) -> None:
    units = _units(tmp_path)
    for name in ("ai-quant-sidecar", "ai-quant-paper", "ai-quant-live"):
        u = units[f"{name}.service"]
        assert one(u, "Service", "Type") == "notify", name
        assert one(u, "Service", "NotifyAccess") == "main", name
        assert int(one(u, "Service", "WatchdogSec")) > 0, name


def test_restart_policy_is_rate_limited(tmp_path: Path) -> None:
    units = _units(tmp_path)
    for name in LONG_RUNNING:
        u = units[f"{name}.service"]
        assert one(u, "Service", "Restart") == "on-failure", name
        assert int(one(u, "Unit", "StartLimitIntervalSec")) >= 60, name
        assert int(one(u, "Unit", "StartLimitBurst")) >= 1, name


def test_every_service_is_hardened(tmp_path: Path) -> None:
    units = _units(tmp_path)
    for name in SERVICES:
        u = units[f"{name}.service"]
        for key, want in HARDENING.items():
            assert one(u, "Service", key) == want, (name, key)
        assert one(u, "Service", "MemoryMax").endswith(("M", "G")), name
        assert one(u, "Service", "RestrictAddressFamilies").startswith("AF_UNIX"), name
        rw = one(u, "Service", "ReadWritePaths").split()
        assert rw[0] == f"{tmp_path}/data", name  # only the data dir (plus optional artifacts/)
        assert all(p.startswith("-") for p in rw[1:]), name


def test_start_order_sidecar_daemon_monitor(tmp_path: Path) -> None:
    units = _units(tmp_path)
    for daemon in ("ai-quant-paper", "ai-quant-live"):
        u = units[f"{daemon}.service"]
        after = " ".join(values(u, "Unit", "After")).split()
        wants = " ".join(values(u, "Unit", "Wants")).split()
        assert "ai-quant-sidecar.service" in after and "ai-quant-sidecar.service" in wants
    monitor_after = " ".join(values(units["ai-quant-monitor.service"], "Unit", "After")).split()
    for dep in ("ai-quant-sidecar.service", "ai-quant-paper.service", "ai-quant-live.service"):
        assert dep in monitor_after


def test_socket_and_data_dir_agree_across_units(tmp_path: Path) -> None:
    units = _units(tmp_path)
    sock = f"AI_QUANT_WS_SIDECAR_SOCK={tmp_path}/data/ws_sidecar.sock"
    for name in ("ai-quant-sidecar", "ai-quant-paper", "ai-quant-live", "ai-quant-monitor"):
        env = values(units[f"{name}.service"], "Service", "Environment")
        assert sock in env, name
        assert f"AI_QUANT_DATA_DIR={tmp_path}/data" in env, name


def test_env_files_and_secrets(tmp_path: Path) -> None:
    units = _units(tmp_path)
    env = f"{tmp_path}/env"
    assert values(units["ai-quant-paper.service"], "Service", "EnvironmentFile") == [
        f"{env}/paper.env",
        f"-{env}/secrets.env",
    ]
    # live cannot start without its secrets file (it holds AI_QUANT_LIVE_CONFIRM)
    assert values(units["ai-quant-live.service"], "Service", "EnvironmentFile") == [
        f"{env}/live.env",
        f"{env}/secrets.env",
    ]
    assert f"{env}/sidecar.env" in values(units["ai-quant-sidecar.service"], "Service", "EnvironmentFile")
    assert f"{env}/monitor.env" in values(units["ai-quant-monitor.service"], "Service", "EnvironmentFile")


def test_paper_unit_pins_paper_mode(tmp_path: Path) -> None:
    units = _units(tmp_path)
    start = one(units["ai-quant-paper.service"], "Service", "ExecStart")
    assert start.startswith("/usr/bin/env AI_QUANT_MODE=paper ")


@pytest.mark.parametrize(("mode", "rc"), [("live", 0), ("dry_live", 0), ("paper", 1), ("", 1)])
def test_live_unit_refuses_paper_mode(tmp_path: Path, mode: str, rc: int) -> None:
    units = _units(tmp_path)
    pre = one(units["ai-quant-live.service"], "Service", "ExecStartPre")
    prefix = "/bin/sh -c '"
    assert pre.startswith(prefix) and pre.endswith("'")
    script = pre[len(prefix) : -1].replace("$$", "$")  # systemd turns $$ into $
    env = {"PATH": "/usr/bin:/bin", "AI_QUANT_MODE": mode}
    proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == rc, proc.stderr


def test_timers_are_persistent(tmp_path: Path) -> None:
    units = _units(tmp_path)
    for t in TIMERS:
        u = units[f"{t}.timer"]
        assert one(u, "Timer", "Persistent") == "true"
        assert one(u, "Timer", "Unit") == f"{t}.service"
        assert one(u, "Install", "WantedBy") == "timers.target"
    start = one(units["ai-quant-factory.service"], "Service", "ExecStart")
    assert f"tools/factory_run.py --profile daily --artifacts-root {tmp_path}/data/artifacts" in start
    ramp = one(units["ai-quant-ramp.service"], "Service", "ExecStart")
    assert "tools/promote_to_live.py --ramp-all --live-config ${AI_QUANT_STRATEGY_YAML}" in ramp
    assert f"--registry {tmp_path}/data/artifacts/registry/registry.sqlite" in ramp


def test_user_instance_has_no_user_line(tmp_path: Path) -> None:
    units = _units(tmp_path, "user")
    for name in SERVICES:
        u = units[f"{name}.service"]
        assert values(u, "Service", "User") == [], name
    assert one(units["ai-quant-paper.service"], "Install", "WantedBy") == "default.target"


def _env_names(path: Path) -> set[str]:
    return set(re.findall(r"^#?\s*(AI_QUANT_[A-Z0-9_]+)=", path.read_text(), flags=re.M))


def test_env_examples_name_only_known_variables() -> None:
    env_dir = REPO / "systemd" / "env"
    for name in ("paper", "live", "monitor", "secrets"):
        unknown = _env_names(env_dir / f"{name}.env.example") - set(ENV_VARS)
        assert unknown == set(), f"{name}.env.example: not read by engine/env.py: {sorted(unknown)}"
    sidecar_usage = (REPO / "ws_sidecar" / "src" / "config.rs").read_text()
    for var in _env_names(env_dir / "sidecar.env.example"):
        assert var in sidecar_usage or var in ENV_VARS, f"sidecar.env.example: {var} is read by nobody"


def test_secrets_live_only_in_the_secrets_example() -> None:
    env_dir = REPO / "systemd" / "env"
    secret = {"AI_QUANT_MONITOR_TOKEN", "AI_QUANT_ALERT_TARGETS", "AI_QUANT_LIVE_CONFIRM"}
    for p in env_dir.glob("*.env.example"):
        found = _env_names(p) & secret
        if p.name == "secrets.env.example":
            assert found == secret
        else:
            assert found == set(), p.name


@needs_analyze
def test_units_rendered_for_this_checkout_verify(tmp_path: Path) -> None:
    """Against the real checkout: the venv's python and the built sidecar are what ExecStart runs."""
    sidecar = REPO / "target" / "release" / "ai-quant-sidecar"
    python = REPO / ".venv" / "bin" / "python"
    if not (os.access(sidecar, os.X_OK) and os.access(python, os.X_OK)):
        pytest.skip("needs `make build` (the venv and target/release/ai-quant-sidecar)")
    inst = load_installer()
    args = install_args(tmp_path, "system", REPO, "--run-as", pwd.getpwuid(os.getuid()).pw_name)
    assert inst.main(args) == 0
    units = sorted((tmp_path / "units").iterdir())
    proc = run_verify(units, user=False, runtime_dir=tmp_path / "runtime")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ai-quant" in ln] == []
