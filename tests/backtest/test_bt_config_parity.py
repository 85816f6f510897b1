"""The backtester's `config` command and engine.config give the same config and config_id: both
call the one loader in aiq-config (tests/config/test_config_one_schema.py fails if a second merge
comes back); this checks the CLI wiring end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bt_helpers import BIN, ROOT, run_bt

import engine.config as engine_config

EXAMPLE = ROOT / "config" / "strategy_overrides.example.yaml"

pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing")


def _rust(path: Path, symbol: str | None, live: bool, mode: str | None) -> dict:
    args: list[str | Path] = ["config", "--config", path]
    if symbol:
        args += ["--symbol", symbol]
    if live:
        args.append("--live")
    if mode:
        args += ["--strategy-mode", mode]
    return json.loads(run_bt(*args).stdout)


def test_example_yaml_config_ids_match_engine_config() -> None:
    doc = engine_config.read_config(EXAMPLE, "paper")
    symbols: list[str | None] = [None, *doc.symbols(), "ETH"]
    modes: list[str | None] = [None, *engine_config.STRATEGY_MODES, "m1", "safe"]
    checked = 0
    for live in (False, True):
        for mode in modes:
            for sym in symbols:
                py = engine_config.load_config(
                    EXAMPLE, sym, mode="live" if live else "paper", strategy_mode=mode
                )
                rs = _rust(EXAMPLE, sym, live, mode)
                assert rs["config"] == py.merged, (sym, mode, live)
                assert rs["config_id"] == py.config_id, (sym, mode, live)
                checked += 1
    assert checked >= 2 * 7 * 3


def test_missing_config_is_an_error(tmp_path: Path) -> None:
    res = run_bt("config", "--config", tmp_path / "nope.yaml", check=False)
    assert res.returncode != 0 and "does not exist" in res.stderr


def test_unknown_key_and_mode_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("global:\n  trade:\n    sl_atr_mul: 1.0\n")
    res = run_bt("config", "--config", bad, check=False)
    assert res.returncode != 0 and "sl_atr_mul" in res.stderr
    ok = tmp_path / "ok.yaml"
    ok.write_text("global: {trade: {sl_atr_mult: 1.0}}\n")
    res = run_bt("config", "--config", ok, "--strategy-mode", "turbo", check=False)
    assert res.returncode != 0 and "turbo" in res.stderr
