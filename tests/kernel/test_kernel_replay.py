"""The decision kernel driven through bt_runtime on real Hyperliquid candles."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import bt_runtime
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HL = DATA / "hyperliquid" / "futures"

# A sweep-tuned config (faster EMAs, lower ADX bar) so real data produces trades in both directions.
ACTIVE = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "filters": {"enable_ranging_filter": False, "enable_anomaly_filter": False},
    "trade": {"entry_min_confidence": "low", "tp_partial_pct": 0.7, "tp_partial_atr_mult": 1.0},
}


def _load(coin: str, interval: str = "5m", n: int | None = None) -> pd.DataFrame:
    path = HL / f"{coin}_USDC_USDC-{interval}-futures.feather"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set AI_QUANT_SHARED_DATA)")
    df = pd.read_feather(path)
    df["t"] = df["date"].astype("int64") // 1_000_000
    return df.iloc[:n] if n else df


def _bars(coins: list[str], n: int) -> list[tuple[str, int, float, float, float, float, float]]:
    """Bars of several coins interleaved by time (the order a daemon or replay sees them)."""
    rows = []
    for coin in coins:
        df = _load(coin, n=n)
        for t, o, h, lo, c, v in zip(
            df["t"], df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True
        ):
            rows.append((coin, int(t), float(o), float(h), float(lo), float(c), float(v)))
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


def _run(
    kernel: bt_runtime.Kernel, rows: list[tuple[str, int, float, float, float, float, float]]
) -> list[tuple]:
    """Step every bar; evaluate once per timestamp; return every fill as a tuple."""
    fills: list[tuple] = []
    i = 0
    while i < len(rows):
        t = rows[i][1]
        while i < len(rows) and rows[i][1] == t:
            sym, _, o, h, lo, c, v = rows[i]
            res = kernel.step_candle(sym, t, o, h, lo, c, v)
            fills.extend((f.symbol, f.kind, f.side, f.quantity, f.price, f.reason_code) for f in res.fills)
            i += 1
        res = kernel.evaluate(t + 300_000)
        fills.extend((f.symbol, f.kind, f.side, f.quantity, f.price, f.reason_code) for f in res.fills)
    return fills


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, int, float, float, float, float, float]]:
    return _bars(["BTC", "ETH", "SOL"], n=8000)


def test_kernel_trades_on_real_data_and_books_consistently(rows: list) -> None:
    kernel = bt_runtime.Kernel(json.dumps(ACTIVE), initial_cash=10_000.0)
    fills = _run(kernel, rows)
    opens = [f for f in fills if f[1] == "open"]
    closes = [f for f in fills if f[1] in ("close", "reverse", "reduce")]
    assert len(opens) >= 10, f"too few trades to test anything: {len(opens)}"
    assert {f[2] for f in opens} == {"long", "short"}
    assert closes, "positions never closed"
    positions = json.loads(kernel.positions_json())
    # Cash only moves by realised PnL, fees and funding; equity adds unrealised PnL.
    assert math.isfinite(kernel.cash) and kernel.cash > 0
    if not positions:
        assert kernel.equity() == pytest.approx(kernel.cash, rel=0, abs=1e-9)


def test_same_inputs_same_fills(rows: list) -> None:
    a = _run(bt_runtime.Kernel(json.dumps(ACTIVE)), rows[:6000])
    b = _run(bt_runtime.Kernel(json.dumps(ACTIVE)), rows[:6000])
    assert a == b and a


def test_save_restore_mid_stream_is_bit_identical(rows: list) -> None:
    cut = len(rows) // 2
    # Align the cut to a timestamp boundary so evaluate() sees the same batches.
    while rows[cut][1] == rows[cut - 1][1]:
        cut += 1
    straight = bt_runtime.Kernel(json.dumps(ACTIVE))
    fills_straight = _run(straight, rows)

    first = bt_runtime.Kernel(json.dumps(ACTIVE))
    fills_a = _run(first, rows[:cut])
    saved = first.save_state()
    resumed = bt_runtime.Kernel(json.dumps(ACTIVE))
    resumed.load_state(saved)
    fills_b = _run(resumed, rows[cut:])
    assert fills_a + fills_b == fills_straight
    assert resumed.save_state() == straight.save_state()


def test_bad_candles_are_rejected_with_a_clear_error() -> None:
    k = bt_runtime.Kernel()
    k.step_candle("BTC", 1_000, 10.0, 11.0, 9.0, 10.5, 1.0)
    with pytest.raises(ValueError, match="out-of-order"):
        k.step_candle("BTC", 1_000, 10.0, 11.0, 9.0, 10.5, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        k.step_candle("BTC", 2_000, float("nan"), 11.0, 9.0, 10.5, 1.0)
    with pytest.raises(ValueError, match="OHLC inconsistent"):
        k.step_candle("BTC", 3_000, 10.0, 9.5, 9.0, 10.5, 1.0)
    with pytest.raises(ValueError, match="negative volume"):
        k.step_candle("BTC", 4_000, 10.0, 11.0, 9.0, 10.5, -1.0)


def test_invalid_config_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"indicators\.ema_fast_window"):
        bt_runtime.Kernel(json.dumps({"indicators": {"ema_fast_window": 60, "ema_slow_window": 50}}))
    with pytest.raises(ValueError, match="no_such_key"):
        bt_runtime.Kernel(json.dumps({"trade": {"no_such_key": 1}}))


def test_external_fill_mode_waits_for_real_fills(rows: list) -> None:
    k = bt_runtime.Kernel(json.dumps(ACTIVE), fill_mode="external")
    sym, t = None, 0
    for sym, t, o, h, lo, c, v in rows:
        k.step_candle(sym, t, o, h, lo, c, v)
        res = k.evaluate(t + 300_000, equity=10_000.0)
        opens = [i for i in res.intents if i.kind == "open"]
        if opens:
            intent = opens[0]
            assert res.fills == [], "external mode must not simulate fills"
            assert json.loads(k.positions_json()) == {}
            pnl = k.apply_fill(
                intent.symbol,
                intent.side,
                intent.quantity,
                intent.price,
                0.1,
                t,
                intent.confidence,
                intent.leverage,
            )
            assert pnl == 0.0
            pos = json.loads(k.positions_json())[intent.symbol]
            assert pos["quantity"] == pytest.approx(intent.quantity)
            close_side = "short" if intent.side == "long" else "long"
            pnl = k.apply_fill(intent.symbol, close_side, intent.quantity, intent.price * 1.01, 0.1, t + 1)
            sign = 1 if intent.side == "long" else -1
            assert pnl == pytest.approx(sign * intent.price * 0.01 * intent.quantity)
            assert json.loads(k.positions_json()) == {}
            return
    pytest.fail("no entry intent on real data")


def test_funding_moves_cash_by_side() -> None:
    k = bt_runtime.Kernel(fill_mode="external")
    k.step_candle("BTC", 0, 100.0, 100.0, 100.0, 100.0, 1.0)
    k.apply_fill("BTC", "long", 2.0, 100.0, 0.0, 0)
    paid = k.on_funding("BTC", 0.0001, 100.0, 3_600_000)
    assert paid == pytest.approx(-0.02)
    assert k.cash == pytest.approx(10_000.0 - 0.02)


def test_analyze_series_matches_kernel_decisions() -> None:
    df = _load("ETH", n=4000)
    cols = [df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
    out = bt_runtime.analyze_series(
        df["t"].tolist(), *[c.tolist() for c in cols], json.dumps(ACTIVE), "ETH", None
    )
    k = bt_runtime.Kernel(json.dumps(ACTIVE))
    seen = []
    for i in range(len(df)):
        k.step_candle("ETH", int(df["t"].iat[i]), *(float(c[i]) for c in cols))
        k.evaluate(int(df["t"].iat[i]) + 300_000)
        d = k.last_decision("ETH")
        seen.append(d[0] if d else 0)
    assert np.count_nonzero(out["signal"]) > 20
    assert seen == out["signal"]


def test_json_envelope_api() -> None:
    params = json.dumps({"schema_version": 1, "config": ACTIVE, "initial_cash": 5000.0})
    init = json.loads(bt_runtime.initial_state_json(params))
    assert init["ok"] is True
    state = json.dumps(init["result"]["state"])
    event = json.dumps(
        {
            "schema_version": 1,
            "type": "candle",
            "symbol": "BTC",
            "t": 0,
            "o": 1.0,
            "h": 2.0,
            "l": 0.5,
            "c": 1.5,
            "v": 3.0,
        }
    )
    res = json.loads(bt_runtime.step_json(state, event, params))
    assert res["ok"] is True and res["result"]["state"]["cash_usd"] == 5000.0

    bad = json.loads(bt_runtime.step_json("{not json", event, params))
    assert bad["ok"] is False and bad["error"]["code"] == "INVALID_JSON"
    wrong = json.loads(
        bt_runtime.step_json(state, event.replace('"schema_version": 1', '"schema_version": 2'), params)
    )
    assert wrong["error"]["code"] == "SCHEMA_VERSION_MISMATCH"
    badp = json.loads(
        bt_runtime.step_json(
            state, event, json.dumps({"schema_version": 1, "config": {"trade": {"leverage": 0}}})
        )
    )
    assert badp["error"]["code"] == "INVALID_PARAMS" and "trade.leverage" in badp["error"]["message"]
    badev = json.loads(bt_runtime.step_json(state, json.dumps({"schema_version": 1, "type": "warp"}), params))
    assert badev["error"]["code"] == "INVALID_EVENT"


def test_evaluate_sub_bar_enters_at_the_sub_bar_close_and_keeps_the_main_bar(rows: list) -> None:
    """``evaluate_sub_bar`` (the replay's ``--entry-interval``): entries fill at the given close,
    the main bar's snapshot is restored afterwards, and bad input is one clear ValueError."""
    cfg = json.dumps({**ACTIVE, "trade": {**ACTIVE["trade"], "slippage_bps": 0.0}})
    kernel = bt_runtime.Kernel(cfg, initial_cash=10_000.0)
    entered = []
    for k in range(len(rows)):
        sym, t, o, h, lo, c, v = rows[k]
        kernel.step_candle(sym, t, o, h, lo, c, v)
        if k + 1 < len(rows) and rows[k + 1][1] == t:
            continue
        kernel.evaluate(t + 300_000)
        close_before = json.loads(kernel.snapshot_json("BTC") or "{}").get("close")
        # A sub-bar close 0.1% above the main close, between this bar's close and the next.
        prices = [
            (s, json.loads(kernel.snapshot_json(s) or "{}").get("close", 1.0) * 1.001) for s in ("BTC", "ETH")
        ]
        res = kernel.evaluate_sub_bar(prices, t + 300_000 + 60_000)
        assert json.loads(kernel.snapshot_json("BTC") or "{}").get("close") == close_before
        px = dict(prices)
        for f in res.fills:
            assert f.price == px[f.symbol] and f.timestamp_ms == t + 360_000
            if f.kind == "open":
                entered.append(f.symbol)
        assert not [f for f in res.fills if f.kind in ("close", "reduce")]  # no exits on entry ticks
        if len(entered) >= 2:
            break
    assert entered, "no sub-bar entry on 8000 real bars"
    with pytest.raises(ValueError, match="sub-bar price for BTC"):
        kernel.evaluate_sub_bar([("BTC", float("nan"))], 0)
    with pytest.raises(ValueError, match="equity must be finite"):
        kernel.evaluate_sub_bar([("BTC", 1.0)], 0, float("inf"))
