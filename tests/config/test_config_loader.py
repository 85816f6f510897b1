"""Merge order, layer forms, modes, live-only sections, config_id and list_symbols."""

import hashlib
import json
from pathlib import Path

import bt_runtime
import pytest

from engine.config import (
    STRATEGY_MODES,
    list_symbols,
    load_config,
    read_config,
    resolve,
    resolve_all,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "strategy_overrides.example.yaml"

LAYERED = """
global:
  trade: {leverage: 2.0, sl_atr_mult: 1.1, tp_atr_mult: 5.0, size_multiplier: 0.9}
  watchlist_exclude: [AAA, BBB]
symbols:
  BTC:
    trade: {sl_atr_mult: 1.2, tp_atr_mult: 6.0}
  kPEPE:
    trade: {sl_atr_mult: 3.3}
live:
  global:
    trade: {sl_atr_mult: 1.3}
    watchlist_exclude: [CCC]
  symbols:
    BTC:
      trade: {tp_atr_mult: 7.0}
modes:
  primary:
    global:
      trade: {size_multiplier: 0.5}
    symbols:
      BTC:
        trade: {sl_atr_mult: 1.4}
  fallback:
    trade: {size_multiplier: 0.25}
    engine: {interval: 4h}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_no_overrides_gives_exactly_the_kernel_defaults(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, "{}\n"))
    assert loaded.merged == bt_runtime.defaults()
    assert loaded.layers == ("defaults",)


def test_merge_order_paper(tmp_path: Path) -> None:
    p = _write(tmp_path, LAYERED)
    base = load_config(p, None, "paper")
    assert (base.model.trade.leverage, base.model.trade.sl_atr_mult, base.model.trade.tp_atr_mult) == (
        2.0,
        1.1,
        5.0,
    )
    btc = load_config(p, "BTC", "paper")
    assert (btc.model.trade.sl_atr_mult, btc.model.trade.tp_atr_mult) == (1.2, 6.0)
    assert btc.model.trade.leverage == 2.0  # from global, untouched by the symbol block
    assert btc.layers == ("defaults", "global", "symbols.BTC")


def test_live_section_applies_only_in_live_and_dry_live(tmp_path: Path) -> None:
    p = _write(tmp_path, LAYERED)
    paper = load_config(p, "BTC", "paper")
    for mode in ("live", "dry_live"):
        live = load_config(p, "BTC", mode)
        assert (live.model.trade.sl_atr_mult, live.model.trade.tp_atr_mult) == (1.3, 7.0)
        assert live.model.watchlist_exclude == ["CCC"]  # lists replace, never concatenate
        assert live.layers == (
            "defaults",
            "live safety limit",
            "global",
            "symbols.BTC",
            "live.global",
            "live.symbols.BTC",
        )
    assert paper.model.watchlist_exclude == ["AAA", "BBB"]


def test_mode_is_applied_last_in_both_forms_and_aliases_resolve(tmp_path: Path) -> None:
    p = _write(tmp_path, LAYERED)
    primary = load_config(p, "BTC", "live", "primary")
    assert primary.model.trade.sl_atr_mult == 1.4  # modes.primary.symbols.BTC beats live.global
    assert primary.model.trade.size_multiplier == 0.5
    assert primary.layers[-2:] == ("modes.primary.global", "modes.primary.symbols.BTC")
    assert load_config(p, "BTC", "live", "m1").config_id == primary.config_id
    fallback = load_config(p, "ETH", "paper", "M2")  # shorthand form; alias in any case
    assert fallback.strategy_mode == "fallback"
    assert (fallback.model.trade.size_multiplier, fallback.model.engine.interval) == (0.25, "4h")
    assert fallback.layers == ("defaults", "global", "modes.fallback")
    for alias in ("m3", "safe"):
        assert load_config(p, None, "paper", alias).strategy_mode == "conservative"
    for alias in ("halt", "pause"):
        assert load_config(p, None, "paper", alias).strategy_mode == "flat"


def test_mode_without_a_section_adds_no_layer(tmp_path: Path) -> None:
    p = _write(tmp_path, LAYERED)
    flat = load_config(p, None, "paper", "flat")
    assert flat.merged == load_config(p, None, "paper").merged
    assert flat.strategy_mode == "flat"


def test_deep_merge_keeps_sibling_keys_at_every_depth(tmp_path: Path) -> None:
    p = _write(tmp_path, "global:\n  thresholds:\n    entry: {min_adx: 30}\n")
    merged = load_config(p).merged
    defaults = bt_runtime.defaults()
    assert merged["thresholds"]["entry"]["min_adx"] == 30.0
    for key, value in defaults["thresholds"]["entry"].items():
        if key != "min_adx":
            assert merged["thresholds"]["entry"][key] == value
    assert merged["thresholds"]["ranging"] == defaults["thresholds"]["ranging"]


def test_null_sections_count_as_empty(tmp_path: Path) -> None:
    p = _write(tmp_path, "global:\n  trade:\nsymbols:\nlive:\nmodes:\n  primary:\n")
    assert load_config(p, "BTC", "live", "primary").merged["trade"] == {
        **bt_runtime.defaults()["trade"],
        "max_open_positions": 1,
    }


def test_live_safety_limit_on_max_open_positions(tmp_path: Path) -> None:
    p = _write(tmp_path, "global: {}\n")
    default_max = bt_runtime.defaults()["trade"]["max_open_positions"]
    assert load_config(p, None, "paper").model.trade.max_open_positions == default_max
    assert load_config(p, None, "live").model.trade.max_open_positions == 1
    assert load_config(p, None, "dry_live", live_max_open_positions=4).model.trade.max_open_positions == 4
    # Any layer of the file that sets the key wins over the safety limit.
    q = _write(tmp_path, "global:\n  trade: {max_open_positions: 7}\n")
    assert load_config(q, None, "live", live_max_open_positions=4).model.trade.max_open_positions == 7


def test_config_id_is_sha256_of_canonical_json(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, LAYERED), "BTC", "live", "primary")
    canonical = json.dumps(loaded.merged, sort_keys=True, separators=(",", ":"))
    assert loaded.to_json() == canonical
    assert loaded.config_id == hashlib.sha256(canonical.encode()).hexdigest()


def test_config_id_ignores_int_versus_float_and_key_order(tmp_path: Path) -> None:
    a = load_config(_write(tmp_path, "global:\n  trade: {leverage: 3, sl_atr_mult: 2}\n"))
    b = load_config(_write(tmp_path, "global:\n  trade: {sl_atr_mult: 2.0, leverage: 3.0}\n"))
    c = load_config(_write(tmp_path, "{}\n"))  # 3.0 and 2.0 are the kernel defaults
    assert a.config_id == b.config_id == c.config_id
    assert isinstance(a.merged["trade"]["leverage"], float)


def test_config_id_changes_with_any_value(tmp_path: Path) -> None:
    a = load_config(_write(tmp_path, "global:\n  trade: {sl_atr_mult: 2.0}\n"))
    b = load_config(_write(tmp_path, "global:\n  trade: {sl_atr_mult: 2.0000001}\n"))
    assert a.config_id != b.config_id


def test_list_symbols_covers_every_section(tmp_path: Path) -> None:
    raw = {
        "symbols": {"BTC": {}, "kPEPE": {}},
        "live": {"symbols": {"ETH": {}}},
        "modes": {"primary": {"symbols": {"SOL": {}}}, "flat": {"trade": {}}},
    }
    assert list_symbols(raw) == ["BTC", "ETH", "SOL", "kPEPE"]
    assert list_symbols({}) == []
    assert read_config(_write(tmp_path, LAYERED)).symbols() == ["BTC", "kPEPE"]


def test_symbol_names_are_case_sensitive(tmp_path: Path) -> None:
    p = _write(tmp_path, LAYERED)
    assert load_config(p, "kPEPE").model.trade.sl_atr_mult == 3.3
    assert load_config(p, "KPEPE").model.trade.sl_atr_mult == 1.1


def test_resolve_all_covers_symbols_and_modes(tmp_path: Path) -> None:
    doc = read_config(_write(tmp_path, LAYERED))
    resolved = resolve_all(doc, "live")
    assert set(resolved) == {(s, m) for s in (None, "BTC", "kPEPE") for m in (None, "primary", "fallback")}
    assert resolved[("BTC", "primary")].config_id == resolve(doc, "BTC", "live", "m1").config_id


def test_bad_run_mode_argument(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unknown run mode 'prod' \(expected one of paper, dry_live, live\)"
    ):
        load_config(_write(tmp_path, "{}\n"), None, "prod")


def test_yaml_anchors_work(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "symbols:\n  BTC: &big\n    trade: {sl_atr_mult: 1.7}\n  ETH: *big\n",
    )
    assert load_config(p, "ETH").model.trade.sl_atr_mult == 1.7


@pytest.mark.parametrize("run_mode", ["paper", "dry_live", "live"])
@pytest.mark.parametrize("strategy_mode", [None, *STRATEGY_MODES])
def test_example_file_loads_for_every_mode(run_mode: str, strategy_mode: str | None, tmp_path: Path) -> None:
    # Copy with owner-only write permission, as live mode requires of the real file.
    p = _write(tmp_path, EXAMPLE.read_text())
    doc = read_config(p, run_mode)
    assert doc.symbols() == ["BTC"]
    assert set(doc.modes) == set(STRATEGY_MODES)
    for symbol in (None, "BTC", "ETH"):
        loaded = resolve(doc, symbol, run_mode, strategy_mode)
        assert len(loaded.config_id) == 64
    resolved = resolve_all(doc, run_mode)
    assert len(resolved) == 2 * (1 + len(STRATEGY_MODES))


def test_example_file_mode_intervals_and_live_settings(tmp_path: Path) -> None:
    doc = read_config(_write(tmp_path, EXAMPLE.read_text()), "live")
    engines = {m: resolve(doc, None, "live", m).model.engine for m in STRATEGY_MODES}
    assert (engines["primary"].interval, engines["primary"].exit_interval) == ("30m", "3m")
    assert (engines["fallback"].interval, engines["fallback"].exit_interval) == ("1h", "3m")
    assert (engines["conservative"].interval, engines["conservative"].exit_interval) == ("1h", "15m")
    assert (engines["flat"].interval, engines["flat"].exit_interval) == ("1h", "15m")
    live_btc = resolve(doc, "BTC", "live").model.trade
    paper_btc = resolve(doc, "BTC", "paper").model.trade
    assert live_btc.size_multiplier < paper_btc.size_multiplier
    assert live_btc.max_open_positions < paper_btc.max_open_positions
    assert live_btc.leverage_high < paper_btc.leverage_high
