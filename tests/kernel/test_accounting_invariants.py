"""Accounting invariants of the kernel over real replays with many trades and every fill kind.

The kernel reports every fill (fee, realised PnL) and every funding payment. Replaying that ledger
from the initial cash must give the kernel's cash bit for bit at every step: cash moves only by what
is reported. Realised PnL is recomputed independently from the fills (average entry price), and
equity is cash plus the unrealised PnL of the open positions at the last closes, at every bar.
"""

from __future__ import annotations

import json
from collections import defaultdict

import bt_runtime
import pandas as pd
import pytest

from tests.shared_data import HL_FUTURES

COINS = ["BTC", "ETH", "SOL"]
N_BARS = 9000
INITIAL = 10_000.0
BUSY = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "filters": {"enable_ranging_filter": False, "enable_anomaly_filter": False},
    "trade": {
        "entry_min_confidence": "low",
        "tp_partial_pct": 0.5,
        "tp_partial_atr_mult": 1.0,
        "enable_pyramiding": True,
        "enable_funding": True,
    },
}


def _events() -> list[tuple[int, int, str, tuple[float, ...]]]:
    """(t, order, symbol, payload): funding (order 0) before the bar (order 1) of the same time."""
    out: list[tuple[int, int, str, tuple[float, ...]]] = []
    for coin in COINS:
        bars = pd.read_feather(HL_FUTURES / f"{coin}_USDC_USDC-5m-futures.feather").iloc[:N_BARS]
        t = (bars["date"].astype("int64") // 1_000_000).to_numpy()
        for i, row in enumerate(bars[["open", "high", "low", "close", "volume"]].itertuples(index=False)):
            out.append((int(t[i]), 1, coin, tuple(float(x) for x in row)))
        funding = pd.read_feather(HL_FUTURES / f"{coin}_USDC_USDC-1h-funding_rate.feather")
        ft = funding["date"].astype("int64") // 1_000_000 // 3_600_000 * 3_600_000
        for tf, rate in zip(ft, funding["open"], strict=True):
            if t[0] <= tf <= t[-1]:
                out.append((int(tf), 0, coin, (float(rate),)))
    out.sort(key=lambda e: (e[0], e[1], e[2]))
    return out


@pytest.fixture(scope="module")
def ledger() -> dict:
    k = bt_runtime.Kernel(json.dumps(BUSY), initial_cash=INITIAL)
    cash = INITIAL  # the ledger replayed in the kernel's order of operations
    last_close: dict[str, float] = {}
    kinds: dict[str, int] = defaultdict(int)
    per_symbol = defaultdict(lambda: {"pnl": 0.0, "fees": 0.0, "funding": 0.0})
    # Independent position book: (signed qty, average entry) per symbol.
    book: dict[str, tuple[float, float]] = {}
    pnl_errors: list[float] = []
    equity_checks = 0
    n_funding = 0

    def book_fill(f: bt_runtime.Fill) -> None:
        nonlocal cash
        kinds[f.kind] += 1
        cash -= f.fee_usd
        cash += f.pnl_usd
        s = per_symbol[f.symbol]
        s["pnl"] += f.pnl_usd
        s["fees"] += f.fee_usd
        sign = 1.0 if f.side == "long" else -1.0
        qty, avg = book.get(f.symbol, (0.0, 0.0))
        if qty == 0.0 or (qty > 0) == (sign > 0):
            total = abs(qty) + f.quantity
            avg = (avg * abs(qty) + f.price * f.quantity) / total
            book[f.symbol] = (sign * total, avg)
            assert f.pnl_usd == 0.0
        else:
            closed = min(abs(qty), f.quantity)
            expected = (1.0 if qty > 0 else -1.0) * (f.price - avg) * closed
            pnl_errors.append(abs(f.pnl_usd - expected) / max(abs(expected), 1e-9))
            rest = abs(qty) - closed
            book[f.symbol] = (
                ((1.0 if qty > 0 else -1.0) * rest, avg) if rest > 1e-12 * abs(qty) else (0.0, 0.0)
            )

    events = _events()
    i = 0
    while i < len(events):
        t = events[i][0]
        while i < len(events) and events[i][0] == t:
            _, order, sym, p = events[i]
            if order == 0:
                if sym in last_close:
                    pay = k.on_funding(sym, p[0], last_close[sym], t)
                    cash += pay
                    per_symbol[sym]["funding"] += pay
                    n_funding += int(pay != 0.0)
            else:
                res = k.step_candle(sym, t, *p)
                last_close[sym] = p[3]
                for f in res.fills:
                    book_fill(f)
            assert k.cash == cash, (t, sym, k.cash, cash)
            i += 1
        for f in k.evaluate(t + 300_000).fills:
            book_fill(f)
        assert k.cash == cash, (t, k.cash, cash)
        if (t // 300_000) % 25 == 0:
            positions = json.loads(k.positions_json())
            upnl = 0.0
            for sym, pos in positions.items():
                sgn = 1.0 if str(pos["side"]).lower() == "long" else -1.0
                upnl += sgn * (last_close[sym] - float(pos["avg_entry_price"])) * float(pos["quantity"])
            assert k.equity() == pytest.approx(cash + upnl, rel=1e-12, abs=1e-9)
            equity_checks += 1
    return {
        "kernel": k,
        "cash": cash,
        "kinds": dict(kinds),
        "per_symbol": dict(per_symbol),
        "pnl_errors": pnl_errors,
        "equity_checks": equity_checks,
        "n_funding": n_funding,
    }


def test_the_replay_is_busy_enough_to_mean_something(ledger: dict) -> None:
    kinds = ledger["kinds"]
    assert kinds.get("open", 0) >= 20 and kinds.get("close", 0) >= 10, kinds
    assert kinds.get("add", 0) >= 3 and kinds.get("reduce", 0) >= 3, kinds
    assert ledger["n_funding"] >= 50
    assert ledger["equity_checks"] >= 300


def test_cash_is_initial_plus_realised_minus_fees_plus_funding(ledger: dict) -> None:
    k = ledger["kernel"]
    sums = ledger["per_symbol"]
    assert set(sums) == set(COINS)
    total = INITIAL + sum(s["pnl"] - s["fees"] + s["funding"] for s in sums.values())
    # Summing per symbol reorders the additions: equal to a few ulps of the flows' size.
    flows = sum(abs(s["pnl"]) + s["fees"] + abs(s["funding"]) for s in sums.values())
    assert k.cash == ledger["cash"]
    assert abs(k.cash - total) <= 1e-12 * (INITIAL + flows)


def test_realised_pnl_matches_an_independent_position_book(ledger: dict) -> None:
    errors = ledger["pnl_errors"]
    assert len(errors) >= 10
    assert max(errors) <= 1e-9, max(errors)
