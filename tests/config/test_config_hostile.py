"""Hostile config files: deep nesting, alias bombs and huge files get one line, never a traceback,
and a hot reload of one keeps the last good config and alerts (the daemon keeps running)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import ConfigWatcher
from engine.config.yaml_file import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_VALUES
from engine.strategy_manager import StrategyManager

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "validate_config.py"
GOOD = "global:\n  trade: {sl_atr_mult: 1.5}\nsymbols:\n  BTC:\n    trade: {tp_atr_mult: 6.0}\n"

HOSTILE = {
    # PyYAML composes nodes recursively: 5000 levels raised RecursionError.
    "flow-nesting": ("global: " + "[" * 5000 + "]" * 5000 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
    "block-nesting": (
        "global:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(300)),
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    # Nine levels of ten aliases each stand for 10^9 values.
    "alias-bomb": (
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
        f"more than {MAX_VALUES} values (aliases expanded)",
    ),
    # A value that contains itself would make every later walk over the config endless.
    "recursive-alias": ("global: &a\n  trade: *a\n", "an alias refers to a value that contains it"),
    "20MB": ("global:\n  trade: {sl_atr_mult: 1.5}\n" + "# padding\n" * 2_000_000, "may be at most"),
}


def _write(path: Path, text: str, bump: int = 0) -> None:
    path.write_text(text)
    path.chmod(0o600)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_validate_config_refuses_in_one_line(tmp_path: Path, name: str) -> None:
    text, expected = HOSTILE[name]
    path = tmp_path / "cfg.yaml"
    _write(path, text)
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, str(TOOL), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - t0
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert lines[0] == "invalid config:" and len(lines) == 2, lines[:5]
    assert lines[1].startswith(f"{path}: ") and expected in lines[1]
    # main took 20 s to accept a 20 MB file; the refusal comes before the file is read.
    assert elapsed < 15, elapsed


def test_size_cap_names_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    _write(path, HOSTILE["20MB"][0])
    res = subprocess.run(
        [sys.executable, str(TOOL), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    size = path.stat().st_size
    assert f"file is {size} bytes; a config file may be at most {MAX_CONFIG_BYTES} bytes" in res.stderr


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hot_reload_of_hostile_edit_keeps_last_good_and_alerts(tmp_path: Path, name: str) -> None:
    path = tmp_path / "cfg.yaml"
    _write(path, GOOD)
    alerts: list[tuple[str, str]] = []
    manager = StrategyManager(path, alert=lambda kind, msg: alerts.append((kind, msg)))
    good_id = manager.config_id
    _write(path, HOSTILE[name][0], bump=1)
    outcome = manager.poll(["BTC"])  # must not raise
    assert outcome.event.status == "invalid"
    assert manager.config_id == good_id
    assert manager.get("BTC").model.trade.tp_atr_mult == 6.0
    ((kind, msg),) = alerts
    assert kind == "config_rejected" and HOSTILE[name][1] in msg
    # Fixing the file is picked up on the next poll.
    _write(path, GOOD.replace("6.0", "7.0"), bump=2)
    assert manager.poll(["BTC"]).event.status == "reloaded"
    assert manager.get("BTC").model.trade.tp_atr_mult == 7.0


def test_unforeseen_failure_on_reload_is_an_invalid_event(tmp_path: Path) -> None:
    """Whatever a check raises on a new file, poll reports it and keeps the last good config."""
    path = tmp_path / "cfg.yaml"
    _write(path, GOOD)
    calls = {"n": 0}

    def check(_path: Path, _configs: object) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("boom in a check")

    watcher = ConfigWatcher(path, check=check)
    good = watcher.get("BTC")
    _write(path, GOOD.replace("6.0", "7.0"), bump=1)
    event = watcher.poll()
    assert event.status == "invalid" and event.error is not None
    assert str(event.error) == f"{path}: cannot load the file: RuntimeError: boom in a check"
    assert watcher.get("BTC") is good
    assert watcher.poll().status == "unchanged"  # reported once


def test_daemon_loop_survives_a_hostile_edit(tmp_path: Path) -> None:
    """The engine polls the config outside its loop's error handling: the edit must not escape."""
    from tests.daemon.test_engine_inprocess import CONFIG, STEP, make, run_until_trades

    eng, hub, db, _ = make(tmp_path)
    run_until_trades(eng, hub, db, 1)
    good_id = eng.strategy.config_id
    loops = eng.loops
    (tmp_path / "s.yaml").write_text(CONFIG + "deep: " + "[" * 5000 + "]" * 5000 + "\n")
    for _ in range(3):
        hub.now += STEP
        eng.run_once()  # must not raise
    assert eng.loops == loops + 3 and eng.errors == 0
    assert eng.strategy.config_id == good_id
    rows = db.conn.execute("SELECT data_json FROM audit_events WHERE event='CONFIG_REJECTED'").fetchall()
    assert len(rows) == 1 and "nested deeper than" in rows[0][0]  # reported once
