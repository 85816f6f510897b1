"""tools/install_systemd.py: dry run, file modes, never overwriting env or secrets, refusals."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.ops_helpers import REPO, fake_install_dir, install_args, load_installer


@pytest.fixture
def install(tmp_path: Path) -> Path:
    return fake_install_dir(tmp_path)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask must not leak into the secrets file's mode."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_help_exits_zero() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "install_systemd.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert "--dry-run" in proc.stdout and "--user" in proc.stdout and "--system" in proc.stdout


def test_scope_is_required(tmp_path: Path, install: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        load_installer().main(install_args(tmp_path, "user", install)[1:])
    assert exc.value.code == 2


def test_dry_run_writes_nothing(tmp_path: Path, install: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = load_installer().main(install_args(tmp_path, "user", install, "--dry-run", "--show"))
    assert rc == 0
    out = capsys.readouterr().out
    for d in ("units", "env", "data"):
        assert not (tmp_path / d).exists()
    assert f"would write {tmp_path}/units/ai-quant-paper.service (mode 0644)" in out
    assert f"would write {tmp_path}/env/secrets.env (mode 0600)" in out
    assert f"{install}/.venv/bin/python -m daemon" in out  # --show prints the rendered text


def test_install_writes_units_env_and_private_secrets(
    tmp_path: Path, install: Path, open_umask: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = load_installer().main(install_args(tmp_path, "user", install))
    assert rc == 0
    templates = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in (".service", ".timer"))
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == templates
    assert "ai-quant-ramp.timer" in templates and len(templates) == 11
    env = tmp_path / "env"
    assert sorted(p.name for p in env.iterdir()) == [
        "live.env",
        "monitor.env",
        "paper.env",
        "secrets.env",
        "sidecar.env",
    ]
    assert _mode(env / "secrets.env") == 0o600
    assert _mode(env / "paper.env") == 0o640
    assert _mode(env) == 0o700
    assert (tmp_path / "data").is_dir()
    kill = f"AI_QUANT_KILL_SWITCH_FILE={tmp_path}/data/kill_switch_paper"
    assert kill in (env / "paper.env").read_text()
    assert "systemctl --user daemon-reload" in capsys.readouterr().out


def test_reinstall_keeps_env_and_secrets_and_rewrites_units(tmp_path: Path, install: Path) -> None:
    inst = load_installer()
    args = install_args(tmp_path, "user", install)
    assert inst.main(args) == 0
    paper_env = tmp_path / "env" / "paper.env"
    secrets = tmp_path / "env" / "secrets.env"
    unit = tmp_path / "units" / "ai-quant-paper.service"
    paper_env.write_text("AI_QUANT_TOP_N=7\n")
    secrets.write_text("AI_QUANT_MONITOR_TOKEN=keep-me\n")
    unit.write_text("stale\n")
    assert inst.main(args) == 0
    assert paper_env.read_text() == "AI_QUANT_TOP_N=7\n"
    assert secrets.read_text() == "AI_QUANT_MONITOR_TOKEN=keep-me\n"
    assert _mode(secrets) == 0o600
    assert "-m daemon" in unit.read_text()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_loose_secrets_file_is_refused(
    tmp_path: Path, install: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    env.mkdir()
    secrets = env / "secrets.env"
    secrets.write_text("AI_QUANT_MONITOR_TOKEN=x\n")
    secrets.chmod(mode)
    rc = load_installer().main(install_args(tmp_path, "user", install))
    assert rc == 2
    err = capsys.readouterr().err
    assert f"chmod 600 {secrets}" in err
    assert "AI_QUANT_MONITOR_TOKEN=x" not in err
    assert not (tmp_path / "units").exists()  # refused before writing anything
    assert secrets.read_text() == "AI_QUANT_MONITOR_TOKEN=x\n"
    assert _mode(secrets) == mode


def test_symlinked_secrets_file_is_refused(tmp_path: Path, install: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    real = tmp_path / "elsewhere.env"
    real.write_text("")
    real.chmod(0o600)
    (env / "secrets.env").symlink_to(real)
    assert load_installer().main(install_args(tmp_path, "user", install)) == 2
    assert not (tmp_path / "units").exists()


def test_path_systemd_would_misread_is_refused(
    tmp_path: Path, install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = install_args(tmp_path, "user", install, "--data-dir", str(tmp_path / "my data"))
    assert load_installer().main(args) == 2
    assert "no spaces" in capsys.readouterr().err


def test_socket_path_too_long_is_refused(
    tmp_path: Path, install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / ("d" * 110)
    assert load_installer().main(install_args(tmp_path, "user", install, "--data-dir", str(deep))) == 2
    assert "longer than 107 bytes" in capsys.readouterr().err


def test_missing_executables_are_warned_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = load_installer().main(
        install_args(tmp_path, "system", empty, "--dry-run", "--run-as", pwd.getpwuid(os.getuid()).pw_name)
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "ai-quant-sidecar is not an executable file yet" in err


def test_system_scope_sets_user_and_multi_user_target(tmp_path: Path, install: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    args = install_args(tmp_path, "system", install, "--run-as", me)
    assert load_installer().main(args) == 0
    text = (tmp_path / "units" / "ai-quant-paper.service").read_text()
    assert f"\nUser={me}\n" in text
    assert "WantedBy=multi-user.target" in text


@pytest.mark.parametrize("name", ["bad user", "no-such-user-aiq-test"])
def test_bad_or_missing_user_is_refused(
    tmp_path: Path, install: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = install_args(tmp_path, "system", install, "--run-as", name)
    assert load_installer().main(args) == 2
    assert name in capsys.readouterr().err
    assert not (tmp_path / "units").exists()


def test_install_starts_the_paper_strategy_yaml_from_the_example(
    tmp_path: Path, install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """paper.env names config/strategy_overrides.yaml (relative to the units' working directory):
    the install must leave that file in place, or the paper daemon and the runbook's
    validate_config.py / cp commands fail on a missing file."""
    inst = load_installer()
    args = install_args(tmp_path, "user", install)
    assert inst.main(["--dry-run", *args]) == 0
    yaml = install / "config" / "strategy_overrides.yaml"
    assert f"would write {yaml}" in capsys.readouterr().out and not yaml.exists()
    assert inst.main(args) == 0
    named = [
        line.split("=", 1)[1]
        for line in (tmp_path / "env" / "paper.env").read_text().splitlines()
        if line.startswith("AI_QUANT_STRATEGY_YAML=")
    ]
    assert named == ["config/strategy_overrides.yaml"] and (install / named[0]) == yaml
    assert yaml.read_text() == (REPO / "config" / "strategy_overrides.example.yaml").read_text()
    assert _mode(yaml) == 0o644  # live mode refuses a group/other-writable config
    r = subprocess.run(
        [sys.executable, str(REPO / "tools" / "validate_config.py"), str(yaml), "--mode", "paper"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    yaml.write_text("global: {}\n")  # the operator's edit survives a reinstall
    assert inst.main(args) == 0
    assert yaml.read_text() == "global: {}\n"
    assert f"kept {yaml}" in capsys.readouterr().out
