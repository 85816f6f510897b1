"""LiveExecution (the daemon's dry_live/live backend) against the local exchange: kernel-intent
submit -> fills, pending fills booked once, the dead man's switch, the daily PnL alert."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from engine.live_gates import LIVE_CONFIRM_PHRASE
from engine.oms import LiveOms, dedupe_key, intent_id_for
from exchange.executor import HyperliquidExecutor, MonotonicNonce
from exchange.model import Order, Quote
from exchange.sim.harness import SimServer
from live.execution import DAY_MS, LiveExecution
from live.trader import LiveTrader, TraderConfig

from .conftest import new_wallet

LIVE_ENV = {"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": LIVE_CONFIRM_PHRASE}


def kernel_intent(kind: str, side: str, qty: float, ts: int, iid: int, reduce_only: bool = False) -> Order:
    """A ``bt_runtime.Intent`` (the fields the daemon reads) as the order the loop hands on."""
    return Order.from_kernel(SimpleNamespace(
        symbol="ETH", kind=kind, side=side, quantity=qty, timestamp_ms=ts, price=1900.0, notional_usd=qty * 1900,
        leverage=3.0, reduce_only=reduce_only, confidence="high", reason_code=f"{kind}_signal", intent_id=iid,
    ))  # fmt: skip


def build(
    sim: SimServer, oms: LiveOms, env: dict[str, str], want_live: bool
) -> tuple[LiveExecution, list[str]]:
    w = new_wallet()
    sim.deposit(w.address, 50_000)
    ex = HyperliquidExecutor(w, sim.base_url, MonotonicNonce(oms))
    cfg = TraderConfig(
        base_url=sim.base_url, db_path=oms.path, want_live=want_live, use_ws=False, min_gap_s=0,
        reconcile_every_s=3600,
    )  # fmt: skip
    alerts: list[str] = []
    trader = LiveTrader(cfg, ex, oms, environ=env, alert=lambda k, m: alerts.append(f"{k}: {m}"))
    trader.startup()
    booked: set[tuple[str, int]] = set()
    le = LiveExecution(
        trader, mode="live" if want_live else "dry_live", recorded=lambda h, t: (h, t) in booked,
        alert=lambda k, m: alerts.append(f"{k}: {m}"),
    )  # fmt: skip
    le.booked = booked  # type: ignore[attr-defined]
    return le, alerts


def test_submit_fills_then_pending_after_a_lost_loop_and_daily_pnl(sim: SimServer, oms: LiveOms) -> None:
    le, alerts = build(sim, oms, dict(LIVE_ENV), want_live=True)
    now = sim.now()
    le.begin_loop(now)
    assert le.equity({}) == 50_000 and le.positions == {}
    assert sim.call(lambda v: v.engine.accounts[le.trader.ex.address].schedule_cancel_at) is not None
    q = Quote("ETH", 1900.0)
    out = le.submit(kernel_intent("open", "long", 0.2, now, 7), q, now, {})
    assert out.status == "filled" and out.fills and len(out.fills) == len(out.fill_ids)
    f = out.fills[0]
    assert (f.action, f.position_side, f.intent_id, f.confidence) == ("OPEN", "long", 7, "high")
    assert sum(x.size for x in out.fills) == Decimal("0.2") and f.fee > 0
    # the venue's fill itself, completed with the intent's booking facts: its ids and words kept
    intent = oms.intent(out.oms_intent_id or "")
    assert intent is not None and f.cloid == intent.cloid and f.oid == intent.exchange_order_id
    assert f.direction == "Open Long" and f.raw["tid"] == f.fill_tid
    # The loop that booked these fills is lost (crash before its commit): nothing was marked, so the
    # next loop books them as pending, once.
    le.begin_loop(now)
    assert le.positions["ETH"].size == 0.2 and le.positions["ETH"].side == "long"
    pend = le.pending_fills()
    assert [p.fill_ids for p in pend] == [tuple(out.fill_ids)]
    for x in pend[0].fills:
        le.booked.add((x.fill_hash, x.fill_tid))  # type: ignore[attr-defined]
    assert le.pending_fills() == []  # booked (its trades row exists) -> not offered again
    le.committed(lambda: "{}", [])
    assert oms.db.execute("SELECT COUNT(*) FROM oms_fills WHERE kernel_applied=0").fetchone()[0] == 0
    # Closing: the same decision seen again is not sent twice.
    close = kernel_intent("close", "short", 0.2, now + 1, 8, reduce_only=True)
    out2 = le.submit(close, q, now, {})
    assert out2.status == "filled" and out2.fills[0].action == "CLOSE"
    for x in out2.fills:
        le.booked.add((x.fill_hash, x.fill_tid))  # type: ignore[attr-defined]
    again = le.submit(close, q, now, {})
    assert again.status == "duplicate" and again.fills == []
    assert (
        len(sim.call(lambda v: [o for o in v.engine.orders.values() if o.user == le.trader.ex.address])) == 2
    )
    # Daily PnL summary: once per UTC day, after the day is over, not again after a restart.
    rows = oms.db.execute("SELECT ts_ms, pnl_usd, fee_usd FROM oms_fills").fetchall()
    day = rows[0][0] // DAY_MS
    assert all(r[0] // DAY_MS == day for r in rows)
    pnl = sum(Decimal(r[1]) for r in rows)
    fees = sum(Decimal(r[2]) for r in rows)
    le.begin_loop((day + 1) * DAY_MS + 1)
    summary = [a for a in alerts if a.startswith("daily_pnl")]
    assert len(summary) == 1, alerts
    assert (
        f"realised {pnl:+.2f} USD, fees {fees:.2f} USD" in summary[0] and f"{len(rows)} fills" in summary[0]
    )
    restarted = LiveExecution(
        le.trader, mode="live", recorded=le.recorded, alert=lambda k, m: alerts.append(k)
    )
    restarted.begin_loop((day + 1) * DAY_MS + 5)
    assert len([a for a in alerts if a.startswith("daily_pnl")]) == 1


def test_dry_live_submit_is_would_and_sends_nothing(sim: SimServer, oms: LiveOms) -> None:
    le, _ = build(sim, oms, dict(LIVE_ENV), want_live=False)
    now = sim.now()
    le.begin_loop(now)
    out = le.submit(kernel_intent("open", "long", 0.2, now, 1), Quote("ETH", 1900.0), now, {})
    assert out.status == "would" and out.fills == [] and out.oms_intent_id
    assert sim.call(lambda v: [o for o in v.engine.orders.values() if o.user == le.trader.ex.address]) == []
    assert sim.call(lambda v: v.engine.accounts[le.trader.ex.address].schedule_cancel_at) is None


def test_pending_fills_of_two_intents_come_in_the_venue_order(sim: SimServer, oms: LiveOms) -> None:
    """Found by the daemon crash soak (life 910 of seed 2026): a SIGKILL before the loop commit left
    a close and the next entry both unbooked; the restart offered them by intent id, the entry
    first, and the kernel booked the entry against the open position and the close as a new one
    (kernel short 21.44 SOL, venue short 21.71). The timestamps are picked so that the close's
    intent id sorts before the entry's: the order the old query returned them in."""
    le, _ = build(sim, oms, dict(LIVE_ENV), want_live=True)
    now = sim.now()
    le.begin_loop(now)
    opened = intent_id_for(dedupe_key("OPEN", "ETH", "BUY", now))
    close_ts = next(
        now + k for k in range(1, 200) if intent_id_for(dedupe_key("CLOSE", "ETH", "SELL", now + k)) < opened
    )
    q = Quote("ETH", 1900.0)
    out = le.submit(kernel_intent("open", "long", 0.2, now, 7), q, now, {})
    assert out.status == "filled" and out.oms_intent_id == opened
    sim.advance(1000)
    close = kernel_intent("close", "short", 0.2, close_ts, 8, reduce_only=True)
    out2 = le.submit(close, q, now + 1000, {})
    assert out2.status == "filled" and out2.oms_intent_id is not None and out2.oms_intent_id < opened
    # Neither was booked (the loop that booked them never committed): both are pending, in order.
    pend = le.pending_fills()
    assert [p.oms_intent_id for p in pend] == [opened, out2.oms_intent_id]
    assert [p.fills[0].action for p in pend] == ["OPEN", "CLOSE"]
