"""tools/validate_config.py run as operators run it: a subprocess from the repository root."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import bt_runtime
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "validate_config.py"
EXAMPLE = ROOT / "config" / "strategy_overrides.example.yaml"


def _run(
    *args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_file_prints_yaml_with_config_id(tmp_path: Path) -> None:
    # Live mode refuses a group-writable file, and a checkout's permissions follow the umask: copy.
    path = tmp_path / "cfg.yaml"
    path.write_text(EXAMPLE.read_text())
    path.chmod(0o600)
    res = _run(path, "--symbol", "BTC", "--mode", "live", "--strategy-mode", "m1")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    header = [line for line in res.stdout.splitlines() if line.startswith("# ")]
    assert header[:4] == [f"# source: {path}", "# symbol: BTC", "# mode: live", "# strategy_mode: primary"]
    assert header[4] == (
        "# layers: defaults <- live safety limit <- global <- symbols.BTC <- live.global <- live.symbols.BTC "
        "<- modes.primary.global"
    )
    config = yaml.safe_load(res.stdout)
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    assert header[5] == f"# config_id: {hashlib.sha256(canonical.encode()).hexdigest()}"
    assert config["engine"]["interval"] == "30m"
    assert config["trade"]["leverage_high"] == 2.0


def test_relative_path_from_repo_root() -> None:
    res = _run("config/strategy_overrides.example.yaml", "--symbol", "BTC")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        "# source: config/strategy_overrides.example.yaml\n# symbol: BTC\n# mode: paper\n"
    )


def test_json_output(tmp_path: Path) -> None:
    res = _run(EXAMPLE, "--json", "--strategy-mode", "fallback")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == {"config", "config_id", "layers", "mode", "source", "strategy_mode", "symbol"}
    assert (out["mode"], out["strategy_mode"], out["symbol"]) == ("paper", "fallback", None)
    assert out["layers"] == ["defaults", "global", "modes.fallback"]
    canonical = json.dumps(out["config"], sort_keys=True, separators=(",", ":"))
    assert out["config_id"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_invalid_file_exits_2_with_errors_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("global:\n  trade:\n    alocation_pct: 0.1\n")
    res = _run(bad)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr == (
        f"invalid config:\n{bad}: global.trade.alocation_pct: unknown key 'alocation_pct' "
        "(did you mean 'allocation_pct'?)\n"
    )


def test_problem_in_another_symbol_or_mode_fails_the_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "symbols:\n  ETH:\n    trade: {leverage: 0}\nmodes:\n  flat:\n    trade: {tp_partial_pct: 3}\n"
    )
    res = _run(bad, "--symbol", "BTC")
    assert res.returncode == 2
    assert res.stderr.splitlines()[1:] == [
        f"{bad}: symbols.ETH.trade.leverage: must be between 1 and 50, got 0",
        f"{bad}: modes.flat.trade.tp_partial_pct: must be between 0 and 1, got 3",
    ]


def test_missing_file_exits_2(tmp_path: Path) -> None:
    res = _run(tmp_path / "missing.yaml")
    assert res.returncode == 2
    assert "config file not found (defaults are never used in place of a missing file)" in res.stderr


def test_live_mode_refuses_world_writable_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("global: {}\n")
    path.chmod(0o666)
    assert _run(path).returncode == 0
    res = _run(path, "--mode", "live")
    assert res.returncode == 2
    assert "refusing a group- or world-writable config file in live/dry_live mode (mode 0666)" in res.stderr


def test_live_max_open_positions_from_env_and_flag(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("global: {}\n")
    path.chmod(0o600)

    def max_open(*extra: str, env: dict[str, str] | None = None) -> int:
        res = _run(path, "--mode", "dry_live", "--json", *extra, env=env)
        assert res.returncode == 0, res.stderr
        return int(json.loads(res.stdout)["config"]["trade"]["max_open_positions"])

    assert max_open() == 1
    assert max_open(env={"AI_QUANT_LIVE_MAX_OPEN_POSITIONS": "4"}) == 4
    assert max_open("--live-max-open-positions", "2", env={"AI_QUANT_LIVE_MAX_OPEN_POSITIONS": "4"}) == 2


def test_defaults_flag_prints_kernel_defaults_from_any_directory(tmp_path: Path) -> None:
    res = _run("--defaults", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["config"] == bt_runtime.defaults()


def test_usage_errors_exit_2() -> None:
    res = _run()
    assert res.returncode == 2
    assert "PATH is required (or use --defaults)" in res.stderr
    res = _run(EXAMPLE, "--mode", "prod")
    assert res.returncode == 2
    assert "invalid choice: 'prod'" in res.stderr
