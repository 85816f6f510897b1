"""Every kind of bad config input gets an exact, file-and-key-naming error."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.config import ConfigError, load_config, read_config, resolve_all


def _write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o644)
    return path


def _error(
    path: Path, symbol: str | None = None, mode: str = "paper", strategy_mode: str | None = None
) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, symbol, mode, strategy_mode)
    return str(info.value)


# (the file's text, the lines of the error after "<file>: "): the operator-facing wording, literally.
MESSAGES = [
    pytest.param(
        "global:\n  trade:\n    alocation_pct: 0.1\n",
        ["global.trade.alocation_pct: unknown key 'alocation_pct' (did you mean 'allocation_pct'?)"],
        id="unknown_key_suggests_closest",
    ),
    pytest.param(
        "global:\n  filters:\n    zzz: 1\n",
        ["global.filters.zzz: unknown key 'zzz'"],
        id="unknown_key_without_close_match",
    ),
    pytest.param(
        "symbols:\n  BTC:\n    trade:\n      min_adx: 20\n",
        ["symbols.BTC.trade.min_adx: unknown key 'min_adx' here (it belongs at thresholds.entry.min_adx)"],
        id="key_in_wrong_section_names_its_home",
    ),
    pytest.param(
        "global:\n  indicator:\n    adx_window: 10\n",
        ["global.indicator: unknown key 'indicator' (did you mean 'indicators'?)"],
        id="unknown_section_key_suggests",
    ),
    pytest.param(
        "global:\n  trade:\n    leverage: high\n",
        ["global.trade.leverage: expected a number, got string 'high'"],
        id="wrong_type_number",
    ),
    pytest.param(
        "global:\n  trade:\n    min_atr_pct: 1e-3\n",
        [
            "global.trade.min_atr_pct: expected a number, got string '1e-3' "
            "(YAML 1.1 reads 1e-3 as text; write 0.001 or 1.0e-3)"
        ],
        id="wrong_type_yaml11_exponent_hint",
    ),
    pytest.param(
        "global:\n  trade:\n    enable_pyramiding: 1\n    max_adds_per_symbol: 2.5\n",
        [
            "global.trade.enable_pyramiding: expected true or false, got integer 1",
            "global.trade.max_adds_per_symbol: expected a whole number, got number 2.5",
        ],
        id="wrong_type_bool_and_integer",
    ),
    pytest.param(
        "global:\n  trade: 5\n",
        ["global.trade: expected a mapping of trade settings, got integer 5"],
        id="wrong_type_section_not_mapping",
    ),
    pytest.param(
        "global:\n  strategy: mei\n  trade:\n    entry_min_confidence: hgh\n"
        "  thresholds:\n    entry:\n      macd_hist_entry_mode: fast\n",
        [
            "global.strategy: expected 'mei_alpha_v1' or 'ema_cross', got string 'mei'",
            "global.trade.entry_min_confidence: expected 'low', 'medium' or 'high', got string 'hgh'",
            "global.thresholds.entry.macd_hist_entry_mode: expected 'accel', 'sign' or 'none', got string 'fast'",
        ],
        id="enum_values",
    ),
    pytest.param(
        "global:\n  trade:\n    leverage: 60\n    allocation_pct: 0\n    sl_atr_mult: -1\n"
        "  indicators:\n    adx_window: 0\n  engine:\n    lookback_bars: 20\n",
        [
            "global.trade.allocation_pct: must be > 0 and <= 1, got 0",
            "global.trade.leverage: must be between 1 and 50, got 60",
            "global.trade.sl_atr_mult: must be > 0, got -1",
            "global.indicators.adx_window: must be between 1 and 5000, got 0",
            "global.engine.lookback_bars: must be between 50 and 10000, got 20",
        ],
        id="out_of_range_values",
    ),
    pytest.param(
        "global:\n  trade:\n    slippage_bps: .inf\n",
        ["global.trade.slippage_bps: must be a finite number, got number inf"],
        id="not_finite",
    ),
    pytest.param(
        "global:\n  indicators:\n    ema_fast_window: 50\n    ema_slow_window: 50\n",
        [
            "global.indicators.ema_fast_window: ema_fast_window (50) >= ema_slow_window (50); "
            "ema_fast_window must be < ema_slow_window (ema_slow_window comes from global.indicators.ema_slow_window)"
        ],
        id="ema_fast_not_below_slow_in_one_block",
    ),
    pytest.param(
        "global:\n  indicators:\n    ema_fast_window: 60\n",
        [
            "global.indicators.ema_fast_window: ema_fast_window (60) >= ema_slow_window (50); "
            "ema_fast_window must be < ema_slow_window (ema_slow_window comes from the kernel default)"
        ],
        id="ema_fast_against_default_slow",
    ),
    pytest.param(
        "global:\n  trade:\n    vol_scalar_min: 0.9\n    vol_scalar_max: 0.8\n",
        [
            "global.trade.vol_scalar_min: vol_scalar_min (0.9) > vol_scalar_max (0.8); "
            "vol_scalar_min must be <= vol_scalar_max (vol_scalar_max comes from global.trade.vol_scalar_max)"
        ],
        id="other_order_rules",
    ),
    pytest.param(
        "global:\n  trade:\n    leverage: 3\n   bad: 1\n",
        [
            "YAML syntax error at line 4, column 4: while parsing a block mapping; "
            "expected <block end>, but found '<block mapping start>'"
        ],
        id="yaml_syntax_error_has_line_number",
    ),
    pytest.param(
        "global:\n  trade:\n    leverage: 3\n    leverage: 4\n",
        ["YAML error at line 4, column 5: duplicate key 'leverage' (first defined at line 3)"],
        id="duplicate_yaml_key",
    ),
    pytest.param(
        "- global\n- symbols\n",
        ["the top level must be a mapping with sections global, symbols, live, modes; got a list"],
        id="top_level_not_a_mapping",
    ),
    pytest.param(
        "# nothing here\n",
        [
            "the file is empty; expected a mapping with sections global, symbols, live, modes (write {} for defaults)"
        ],
        id="empty_file_is_an_error",
    ),
    pytest.param(
        "globals:\n  trade: {}\ntrade:\n  leverage: 3\n",
        [
            "globals: unknown top-level section 'globals' (did you mean 'global'?) "
            "(expected global, symbols, live, modes)",
            "trade: unknown top-level section 'trade'; strategy keys go under global: or symbols.<SYM>: "
            "(expected global, symbols, live, modes)",
        ],
        id="unknown_top_level_section",
    ),
    pytest.param(
        "symbols:\n  BTC:\n    engine: {interval: 1h}\n    watchlist_exclude: []\n",
        [
            "symbols.BTC.engine: 'engine' applies to the whole daemon; set it under global, not per symbol",
            "symbols.BTC.watchlist_exclude: 'watchlist_exclude' applies to the whole daemon; "
            "set it under global, not per symbol",
        ],
        id="global_only_keys_refused_per_symbol",
    ),
    pytest.param(
        "symbols:\n  ON:\n    trade: {}\n",
        ["symbols: symbol True is not a string (YAML reads yes/no/on/off/true/false as booleans; quote it)"],
        id="non_string_symbol_key",
    ),
    pytest.param(
        "modes:\n  m1: {}\n  primery: {}\n",
        [
            "modes.m1: 'm1' is an alias of 'primary'; name the section 'primary' "
            "(aliases are for AI_QUANT_STRATEGY_MODE)",
            "modes.primery: unknown strategy mode 'primery' (did you mean 'primary'?); "
            "expected one of primary, fallback, conservative, flat",
        ],
        id="mode_section_alias_name_and_unknown_mode",
    ),
    pytest.param(
        "live:\n  global: {trade: {leverage: 2}}\n  trade: {leverage: 3}\n",
        ["live.trade: mixes the {global, symbols} form with shorthand keys; move this under live.global"],
        id="mixed_layer_forms_refused",
    ),
]


@pytest.mark.parametrize(("text", "lines"), MESSAGES)
def test_bad_input_gets_one_line_per_problem_naming_file_and_key(
    tmp_path: Path, text: str, lines: list[str]
) -> None:
    p = _write(tmp_path, text)
    assert _error(p) == "\n".join(f"{p}: {line}" for line in lines)


# (the file's text, AI_QUANT_STRATEGY_MODE, the error after "<file>: ").
STRATEGY_MODE_MESSAGES = [
    pytest.param(
        "modes:\n  primary:\n    engine: {interval: 7m}\n",
        "primary",
        "modes.primary.engine.interval: expected '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', "
        "'8h', '12h' or '1d', got string '7m'",
        id="unknown_interval",
    ),
    pytest.param(
        "global: {}\n",
        "turbo",
        "unknown strategy mode 'turbo' (expected one of primary, fallback, conservative, flat; "
        "aliases m1->primary, m2->fallback, m3->conservative, safe->conservative, halt->flat, pause->flat)",
        id="unknown_strategy_mode_argument",
    ),
]


@pytest.mark.parametrize(("text", "strategy_mode", "line"), STRATEGY_MODE_MESSAGES)
def test_bad_strategy_mode_input_is_named(tmp_path: Path, text: str, strategy_mode: str, line: str) -> None:
    p = _write(tmp_path, text)
    assert _error(p, strategy_mode=strategy_mode) == f"{p}: {line}"


def test_ema_conflict_across_layers_is_reported_at_the_later_override(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "global:\n  indicators:\n    ema_fast_window: 30\nsymbols:\n  ETH:\n    indicators:\n      ema_slow_window: 25\n",
    )
    load_config(p, None)  # fine without the symbol layer
    load_config(p, "BTC")
    assert _error(p, "ETH") == (
        f"{p}: symbols.ETH.indicators.ema_slow_window: ema_fast_window (30) >= ema_slow_window (25); "
        "ema_fast_window must be < ema_slow_window (ema_fast_window comes from global.indicators.ema_fast_window)"
    )


def test_yaml_unclosed_flow_sequence(tmp_path: Path) -> None:
    p = _write(tmp_path, "global:\n  watchlist_exclude: [BTC, ETH\n")
    assert _error(p).startswith(f"{p}: YAML syntax error at line 3, column 1: ")


def test_missing_file_is_an_error_not_defaults(tmp_path: Path) -> None:
    p = tmp_path / "nope.yaml"
    assert _error(p) == f"{p}: config file not found (defaults are never used in place of a missing file)"


def test_directory_is_an_error(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path}: is a directory, not a YAML file"


def test_invalid_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"global:\n  strategy: \xff\n")
    assert _error(p) == f"{p}: not valid UTF-8 (byte offset 20)"


@pytest.mark.parametrize("mode", ["live", "dry_live"])
def test_symlink_refused_in_live_modes(tmp_path: Path, mode: str) -> None:
    real = _write(tmp_path, "global: {}\n", "real.yaml")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    assert load_config(link, None, "paper").config_id == load_config(real, None, "paper").config_id
    assert _error(link, mode=mode) == (
        f"{link}: refusing a symlinked config file in live/dry_live mode; point AI_QUANT_STRATEGY_YAML at the real file"
    )


@pytest.mark.parametrize(("perm", "mode"), [(0o664, "live"), (0o646, "dry_live"), (0o666, "live")])
def test_group_or_world_writable_refused_in_live_modes(tmp_path: Path, perm: int, mode: str) -> None:
    p = _write(tmp_path, "global: {}\n")
    p.chmod(perm)
    load_config(p, None, "paper")
    assert _error(p, mode=mode) == (
        f"{p}: refusing a group- or world-writable config file in live/dry_live mode (mode {perm:04o}); "
        f"run: chmod go-w {p}"
    )
    p.chmod(0o644)
    load_config(p, None, mode)


def _error_as_nobody(path: Path) -> str:
    """``_error`` in a forked child that dropped root (root reads any file; CI runs as root)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_config(path, None, "paper")
                msg = "no error"
            except ConfigError as e:
                msg = str(e)
            os.write(write_end, msg.encode())
        except BaseException as e:
            os.write(write_end, f"child failed: {e!r}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        p = _write(tmp_path, "global: {}\n")
        p.chmod(0o000)
        assert _error(p) == f"{p}: cannot read the file: permission denied"
        return
    # As root (CI): a directory the unprivileged child can enter, so the only thing it cannot do is
    # read the file itself.
    d = Path(tempfile.mkdtemp(prefix="aiq-unreadable-", dir="/tmp"))
    try:
        d.chmod(0o755)
        p = _write(d, "global: {}\n")
        p.chmod(0o000)
        assert _error_as_nobody(p) == f"{p}: cannot read the file: permission denied"
    finally:
        shutil.rmtree(d)


def test_list_item_type(tmp_path: Path) -> None:
    p = _write(tmp_path, "live:\n  watchlist_exclude: [DOGE, 3]\n")
    load_config(p, None, "paper")  # live is not applied in paper
    assert _error(p, mode="dry_live") == f"{p}: live.watchlist_exclude[1]: expected a string, got integer 3"


def test_resolve_all_reports_problems_of_every_symbol_and_mode_once(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "symbols:\n  BTC:\n    trade: {leverage: 0}\n  ETH:\n    trade: {leverage: 99}\n"
        "modes:\n  flat:\n    trade: {tp_partial_pct: 2}\n",
    )
    with pytest.raises(ConfigError) as info:
        resolve_all(read_config(p))
    assert str(info.value) == (
        f"{p}: symbols.BTC.trade.leverage: must be between 1 and 50, got 0\n"
        f"{p}: symbols.ETH.trade.leverage: must be between 1 and 50, got 99\n"
        f"{p}: modes.flat.trade.tp_partial_pct: must be between 0 and 1, got 2"
    )
    assert [pr.key_path for pr in info.value.problems] == [
        "symbols.BTC.trade.leverage",
        "symbols.ETH.trade.leverage",
        "modes.flat.trade.tp_partial_pct",
    ]
