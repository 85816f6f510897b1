"""A position the operator opens with manual_trade.py is the operator's: the live daemon (a real
process against the local exchange) sends nothing for that coin, across a restart, books it and
counts it, and the monitor shows it as ``operator``; ``manual_trade.py close`` hands it back.

The position is opened against the trend of the bars the kernel has seen (fast EMA below the slow
one: long), so a kernel that managed it would exit at the next bar (``trend_breakdown``): that is
what the daemon did before operator-owned positions existed.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.info import Info

from tests.ops.conftest import LIVE_GATES, WALLET_KEYS, Daemon, Venue, base_env, run_tool, tool_json, wait_for

pytestmark = pytest.mark.slow

BAR_MS = 300_000
SIZES = {"BTC": "0.002", "ETH": "0.05", "SOL": "1"}


def _ema(xs: list[float], n: int) -> float:
    a, e = 2.0 / (n + 1), xs[0]
    for x in xs[1:]:
        e = a * x + (1 - a) * e
    return e


def _against_trend(url: str, sym: str) -> str:
    """The side a trend-following exit would close at once (EMA 8/15 of the venue's closed 5m bars)."""
    info = Info(url, skip_ws=True, timeout=10)
    now = int(info.post("/info", {"type": "exchangeStatus"})["time"])
    bars = info.candles_snapshot(sym, "5m", now - 200 * BAR_MS, now)
    closes = [float(b["c"]) for b in bars if int(b["T"]) < now]
    return "long" if _ema(closes, 8) < _ema(closes, 15) else "short"


def _venue_positions(url: str, wallet: int) -> dict[str, Decimal]:
    st = Info(url, skip_ws=True, timeout=10).user_state(Account.from_key(WALLET_KEYS[wallet]).address)
    return {
        p["position"]["coin"]: Decimal(p["position"]["szi"])
        for p in st["assetPositions"]
        if Decimal(p["position"]["szi"]) != 0
    }


def _oms(d: Daemon, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{d.db_path.parent / 'oms_live.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _kv(d: Daemon, key: str) -> Any:
    rows = d.q("SELECT value FROM kv WHERE key=?", (key,))
    return json.loads(rows[0][0]) if rows else None


def _bar_t(d: Daemon, sym: str) -> int:
    return int((_kv(d, "last_bar_t") or {}).get(sym, 0))


def test_the_daemon_leaves_the_operators_position_alone_until_it_is_handed_back(
    venue: Venue, tmp_path: Path
) -> None:
    url, w = venue.url, 5
    env = base_env(tmp_path, url, wallet=w, AI_QUANT_MODE="live", **LIVE_GATES)
    d = Daemon(env)
    d.db_path = tmp_path / "data" / "trading_engine_live.db"
    args = ("--reconcile-s", "1")
    with d.start(*args):
        wait_for(lambda: d.alive() and d.loops() >= 3, 120, "the live daemon's first loops")
        held = _venue_positions(url, w)
        sym = next(s for s in ("ETH", "SOL", "BTC") if s not in held)
        side = _against_trend(url, sym)
        out = run_tool("manual_trade.py", "open", "--id", "op-1", "--symbol", sym, "--side", side,
                       "--size", SIZES[sym], env=env)  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        # Said before the order went out (the warning is logged before the send).
        assert f"{sym} is now the operator's: the daemon sends nothing for {sym}" in out.stderr
        r = json.loads(out.stdout)
        assert r["status"] == "FILLED", r
        want = Decimal(SIZES[sym]) * (1 if side == "long" else -1) + held.get(sym, Decimal(0))
        (opened_ms,) = _oms(d, "SELECT created_ts_ms FROM oms_intents WHERE reason_code='manual:op-1'")[0]
        start_t = _bar_t(d, sym)
        wait_for(lambda: _bar_t(d, sym) >= start_t + 20 * BAR_MS, 120, "20 more bars")

        def kernel_orders() -> list[tuple[Any, ...]]:
            return _oms(d, "SELECT action, reason_code, status FROM oms_intents WHERE symbol=? AND "
                           "kernel_intent_id > 0 AND created_ts_ms >= ?", (sym, opened_ms))  # fmt: skip

        # The daemon sent nothing for the operator's coin and the position is as the operator left it.
        assert kernel_orders() == [] and _venue_positions(url, w).get(sym) == want
        # The kernel wanted to act on it (blocked, recorded), and its books hold the position.
        blocked = d.q("SELECT COUNT(*), MIN(status) FROM decision_events WHERE symbol=? AND "
                      "rejection_reason='operator_position'", (sym,))[0]  # fmt: skip
        assert blocked[0] >= 1 and blocked[1] == "blocked"
        assert sym in _kv(d, "kernel_state")["positions"]  # booked: counted by the kernel and risk limits
        assert r["owner"] == "operator" and "sends nothing" in r["owner_note"]
        wait_for(lambda: _kv(d, "live_account").get("operator") == [sym], 30, "the mark in the live account")

        # The monitor shows whose it is.
        from engine.env import read_env
        from monitor.app import build_snapshot
        from monitor.settings import from_env
        from monitor.state import MonitorState

        snap = build_snapshot(MonitorState(from_env(read_env(env))), "live")
        owners = {p["symbol"]: p["owner"] for p in snap["open_positions"]}
        assert owners[sym] == "operator" and all(o == "strategy" for s, o in owners.items() if s != sym)

        # Durable: a restarted daemon still leaves it alone.
        assert d.stop() == 0
        d.start(*args)
        at = _bar_t(d, sym)
        wait_for(lambda: d.alive() and _bar_t(d, sym) >= at + 10 * BAR_MS, 120, "10 bars after the restart")
        assert kernel_orders() == [] and _venue_positions(url, w).get(sym) == want

        # The operator closes it: flat, and the coin is the strategy's again.
        c = tool_json("manual_trade.py", "close", "--id", "op-2", "--symbol", sym, env=env)
        assert c["status"] == "FILLED" and c["position_after"] == "0" and c["owner"] == "strategy"
        assert tool_json("manual_trade.py", "list", env=env)["operator_positions"] == {}
        wait_for(lambda: _kv(d, "live_account").get("operator") == [], 30, "the mark gone from the account")
        wait_for(lambda: sym not in _kv(d, "kernel_state")["positions"] or _venue_positions(url, w).get(sym),
                 30, "the close booked by the kernel")  # fmt: skip
        assert d.stop() == 0
    out = run_tool("manual_trade.py", "release", "--symbol", sym, env=env)
    assert out.returncode == 2 and f"{sym} is not marked as the operator's" in out.stderr
