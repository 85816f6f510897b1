"""Hot reload: stat-only polling, last good config kept on errors, restart-only keys flagged."""

import os
from pathlib import Path

import pytest

from engine.config import ConfigError, ConfigWatcher


def _write(path: Path, text: str, bump: int = 0) -> None:
    path.write_text(text)
    path.chmod(0o600)
    st = path.stat()
    # Move the mtime forward explicitly so the test does not depend on timestamp granularity.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    _write(path, "global:\n  trade: {sl_atr_mult: 1.5}\nsymbols:\n  BTC:\n    trade: {tp_atr_mult: 6.0}\n")
    return path


def test_invalid_file_at_start_raises(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    _write(path, "global:\n  trade: {leverage: 0}\n")
    with pytest.raises(ConfigError, match=r"global\.trade\.leverage: must be between 1 and 50, got 0"):
        ConfigWatcher(path)
    with pytest.raises(ConfigError, match="config file not found"):
        ConfigWatcher(tmp_path / "missing.yaml")


def test_unchanged_file_is_not_reread(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg)
    first = watcher.get()
    event = watcher.poll()
    assert event.status == "unchanged"
    assert event.config_id == first.config_id
    assert watcher.get() is first


def test_reload_reports_changed_keys_and_symbols(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg)
    assert watcher.get("BTC").model.trade.tp_atr_mult == 6.0
    assert watcher.get("ETH").model.trade.tp_atr_mult == watcher.get().model.trade.tp_atr_mult
    _write(
        cfg, "global:\n  trade: {sl_atr_mult: 1.5}\nsymbols:\n  BTC:\n    trade: {tp_atr_mult: 7.0}\n", bump=1
    )
    event = watcher.poll()
    assert event.status == "reloaded"
    assert event.changed_keys == ("trade.tp_atr_mult",)
    assert event.changed_symbols == ("BTC",)
    assert event.restart_required == ()
    assert watcher.get("BTC").model.trade.tp_atr_mult == 7.0
    assert watcher.poll().status == "unchanged"


def test_rewrite_with_same_meaning_is_same_content(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg)
    before = watcher.get().config_id
    _write(
        cfg,
        "# reformatted\nglobal:\n  trade:\n    sl_atr_mult: 1.50\nsymbols: {BTC: {trade: {tp_atr_mult: 6}}}\n",
        1,
    )
    event = watcher.poll()
    assert event.status == "same_content"
    assert event.config_id == before


def test_invalid_edit_keeps_last_good_and_reports_once(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg)
    good = watcher.get("BTC")
    _write(
        cfg, "global:\n  trade: {sl_atr_mult: 1.5}\nsymbols:\n  BTC:\n    trade: {tp_atr_mult: -1}\n", bump=1
    )
    event = watcher.poll()
    assert event.status == "invalid"
    assert str(event.error) == f"{cfg}: symbols.BTC.trade.tp_atr_mult: must be > 0, got -1"
    assert watcher.last_error is event.error
    assert watcher.get("BTC") is good
    assert event.config_id == watcher.get().config_id
    assert watcher.poll().status == "unchanged"  # the same bad file is reported once
    _write(
        cfg, "global:\n  trade: {sl_atr_mult: 1.5}\nsymbols:\n  BTC:\n    trade: {tp_atr_mult: 8}\n", bump=2
    )
    fixed = watcher.poll()
    assert fixed.status == "reloaded"
    assert watcher.last_error is None
    assert watcher.get("BTC").model.trade.tp_atr_mult == 8.0


def test_yaml_syntax_error_and_deleted_file_keep_last_good(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg)
    good_id = watcher.get().config_id
    _write(cfg, "global: [\n", bump=1)
    event = watcher.poll()
    assert event.status == "invalid"
    assert str(event.error).startswith(f"{cfg}: YAML syntax error at line 2")
    cfg.unlink()
    event = watcher.poll()
    assert event.status == "invalid"
    assert (
        str(event.error)
        == f"{cfg}: config file not found (defaults are never used in place of a missing file)"
    )
    assert watcher.get().config_id == good_id


def test_engine_interval_change_requires_restart(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg, strategy_mode="primary")
    _write(
        cfg,
        "global:\n  trade: {sl_atr_mult: 1.5}\n  engine: {entry_interval: 5m}\n"
        "modes:\n  primary:\n    engine: {interval: 30m}\n",
        bump=1,
    )
    event = watcher.poll()
    assert event.status == "reloaded"
    assert event.restart_required == ("engine.interval", "engine.entry_interval")
    assert set(event.changed_keys) == {"engine.interval", "engine.entry_interval", "trade.tp_atr_mult"}
    assert event.changed_symbols == ("BTC",)


def test_sub_bar_interval_change_needs_a_restart(cfg: Path) -> None:
    """The daemon's sub-bar schedule (daemon/loop.py) is fixed at start, like engine.interval."""
    watcher = ConfigWatcher(cfg)
    _write(cfg, "global:\n  trade: {sl_atr_mult: 1.5}\n  engine: {exit_interval: 3m}\n", bump=1)
    event = watcher.poll()
    assert event.restart_required == ("engine.exit_interval",)
    assert "engine.exit_interval" in event.changed_keys


def test_live_watcher_refuses_a_file_made_world_writable(cfg: Path) -> None:
    watcher = ConfigWatcher(cfg, mode="live")
    assert watcher.get().model.trade.max_open_positions == 1
    cfg.chmod(0o666)
    os.utime(cfg, ns=(0, cfg.stat().st_mtime_ns + 1_000_000_000))
    event = watcher.poll()
    assert event.status == "invalid"
    assert "refusing a group- or world-writable config file in live/dry_live mode (mode 0666)" in str(
        event.error
    )


def test_live_watcher_refuses_a_file_swapped_for_a_symlink(cfg: Path, tmp_path: Path) -> None:
    watcher = ConfigWatcher(cfg, mode="dry_live", live_max_open_positions=2)
    assert watcher.get().model.trade.max_open_positions == 2
    other = tmp_path / "other.yaml"
    _write(other, "global: {}\n")
    cfg.unlink()
    cfg.symlink_to(other)
    event = watcher.poll()
    assert event.status == "invalid"
    assert "refusing a symlinked config file" in str(event.error)
