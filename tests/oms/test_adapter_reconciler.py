"""Broker adapter and reconciler against the local exchange, with injected faults."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount

from engine.oms import IntentStatus, LiveOms
from engine.oms_reconciler import OmsReconciler
from exchange.executor import HyperliquidExecutor, MonotonicNonce, NotSentError
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.hl_fills import parse_fill
from exchange.model import Fill, Order
from exchange.sim.harness import SimServer
from exchange.ws import UserFillStream
from strategy.broker_adapter import BrokerAdapter

D = Decimal


def oi(kind: str = "open", side: str = "long", qty: str = "0.1", ts: int = 1, sym: str = "ETH") -> Order:
    return Order(symbol=sym, kind=kind, side=side, quantity=D(qty), decision_ts_ms=ts)  # type: ignore[arg-type]


def make(oms: LiveOms, ex: HyperliquidExecutor, **kw: Any) -> tuple[BrokerAdapter, OmsReconciler]:
    ad = BrokerAdapter(oms, ex, live=True, min_gap_s=0, retry_delay_s=0.01, **kw)
    return ad, OmsReconciler(oms, ex, ad, dry_run=False)


def venue_orders(sim: SimServer, addr: str) -> list[Any]:
    return sim.call(lambda v: [o for o in v.engine.orders.values() if o.user == addr.lower()])


def test_submit_fill_dedupe_and_positions(
    sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms
) -> None:
    ad, rec = make(oms, executor)
    out = ad.submit(oi())
    assert out.status is IntentStatus.SENT and out.venue is not None and out.venue.status == "filled"
    again = ad.submit(oi())  # the same decision again (e.g. re-emitted after a restart)
    assert again.deduped and again.intent_id == out.intent_id
    assert len(venue_orders(sim, executor.address)) == 1
    rep = rec.reconcile()
    assert rep.fills_new >= 1 and not rep.entries_blocked
    intent = oms.intent(out.intent_id or "")
    assert intent is not None and intent.status is IntentStatus.FILLED and intent.filled_size == D("0.1")
    assert rec.reconcile().fills_new == 0  # a second pass adopts nothing twice
    assert oms.positions() == {"ETH": D("0.1")}
    close = ad.submit(oi("close", "short", "0.1", ts=2))
    assert close.status is IntentStatus.SENT
    rec.reconcile()
    assert oms.positions() == {} and executor.positions() == {}


class LostResponse(HyperliquidExecutor):
    """The order reaches the venue, then the answer is lost (a read timeout after send)."""

    def _post(self, action: dict[str, Any]) -> Any:
        resp = super()._post(action)
        if action.get("type") == "order":
            from exchange.executor import SendUnknownError

            raise SendUnknownError("read timeout")
        return resp


def test_timeout_after_send_resolves_by_cloid_without_resend(
    sim: SimServer, wallet: LocalAccount, oms: LiveOms
) -> None:
    ex = LostResponse(wallet, sim.base_url, MonotonicNonce(oms))
    ad, rec = make(oms, ex)
    out = ad.submit(oi(ts=10))
    assert out.status is IntentStatus.SENT  # adopted from orderStatus by cloid
    assert len(venue_orders(sim, ex.address)) == 1
    rec.reconcile()
    assert oms.intent(out.intent_id or "").status is IntentStatus.FILLED  # type: ignore[union-attr]
    assert [e["result"] for e in oms.events("RESOLVE")] == ["filled"]


def test_5xx_everywhere_means_not_sent(sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms) -> None:
    ad, _ = make(oms, executor)
    try:
        sim.set_faults(seed=1, http_5xx_rate=1.0)
        out = ad.submit(oi(ts=19))  # the price query already fails: nothing is sent
    finally:
        sim.set_faults(http_5xx_rate=0.0)
    assert out.status is IntentStatus.REJECTED
    assert venue_orders(sim, executor.address) == []


class Lost5xx(HyperliquidExecutor):
    """The order post answers 500 and the venue never processed it."""

    def _post(self, action: dict[str, Any]) -> Any:
        if action.get("type") == "order":
            from exchange.executor import SendUnknownError

            raise SendUnknownError("HTTP 500")
        return super()._post(action)


def test_5xx_on_send_is_unknown_then_expired_never_resent(
    sim: SimServer, wallet: LocalAccount, oms: LiveOms
) -> None:
    ex = Lost5xx(wallet, sim.base_url, MonotonicNonce(oms))
    ad, rec = make(oms, ex)
    out = ad.submit(oi(ts=20))
    assert out.status is IntentStatus.EXPIRED  # orderStatus: unknownOid; we do not resend
    assert venue_orders(sim, ex.address) == []
    assert ad.submit(oi(ts=20)).deduped
    rec.reconcile()
    assert venue_orders(sim, ex.address) == []


def test_429_is_retried_and_sent_once(sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms) -> None:
    calls = {"n": 0}
    real = executor._post

    def flaky(action: dict[str, Any]) -> Any:
        if action.get("type") == "order" and calls["n"] < 2:
            calls["n"] += 1
            raise NotSentError("HTTP 429 rate limited")
        return real(action)

    executor._post = flaky  # type: ignore[method-assign]
    ad, _ = make(oms, executor)
    out = ad.submit(oi(ts=30))
    assert out.status is IntentStatus.SENT and calls["n"] == 2
    assert len(venue_orders(sim, executor.address)) == 1
    assert oms.intent(out.intent_id or "").send_attempts == 3  # type: ignore[union-attr]


def test_reject_fault_marks_rejected_and_alerts(
    sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms
) -> None:
    alerts: list[str] = []
    ad, _ = make(oms, executor, alert=lambda k, m: alerts.append(k))
    try:
        sim.set_faults(reject_orders="Insufficient margin to place order.")
        out = ad.submit(oi(ts=40))
    finally:
        sim.set_faults(reject_orders=None)
    assert out.status is IntentStatus.REJECTED and alerts == ["reject"]


def test_duplicate_and_delayed_ws_fills_counted_once(
    sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms
) -> None:
    stream = UserFillStream(sim.base_url, executor.address)
    stream.start()
    try:
        time.sleep(0.3)
        sim.set_faults(duplicate_fill_rate=1.0, fill_delay_ms=200)
        ad, rec = make(oms, executor)
        out = ad.submit(oi(ts=50))
        pushed: list[Fill] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(pushed) < 2:
            pushed += stream.drain()
            time.sleep(0.05)
    finally:
        sim.set_faults(duplicate_fill_rate=0.0, fill_delay_ms=0)
        stream.stop()
    assert len(pushed) >= 2 and pushed[0] == pushed[1]  # the venue sent the same fill twice
    results = [oms.ingest_fill(f, source="ws") for f in pushed]
    assert sum(r.new for r in results) == 1
    assert rec.reconcile().fills_new == 0  # the poll finds nothing new either
    assert oms.intent(out.intent_id or "").filled_size == D("0.1")  # type: ignore[union-attr]


def test_restart_adopts_missed_fills_and_measures_time(
    sim: SimServer, wallet: LocalAccount, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    oms = LiveOms(db, client_ids=HYPERLIQUID_CLIENT_IDS)
    ex = HyperliquidExecutor(wallet, sim.base_url, MonotonicNonce(oms))
    ad, _ = make(oms, ex)
    ids = [ad.submit(oi(ts=60 + i, qty="0.05")).intent_id for i in range(3)]
    oms.close()  # "crash": fills were never polled
    t0 = time.perf_counter()
    oms2 = LiveOms(db, client_ids=HYPERLIQUID_CLIENT_IDS)
    ex2 = HyperliquidExecutor(wallet, sim.base_url, MonotonicNonce(oms2))
    _ad2, rec2 = make(oms2, ex2)
    rep = rec2.reconcile()
    took = time.perf_counter() - t0
    assert rep.fills_new == 3 and not rep.entries_blocked
    assert all(oms2.intent(i or "").status is IntentStatus.FILLED for i in ids)  # type: ignore[union-attr]
    assert oms2.positions() == {"ETH": D("0.15")}
    assert took < 10.0
    oms2.close()


def test_stale_bot_order_cancelled_foreign_flagged_mismatch_blocks(
    sim: SimServer, wallet: LocalAccount, tmp_path: Path
) -> None:
    oms = LiveOms(tmp_path / "s.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    ex = HyperliquidExecutor(wallet, sim.base_url, MonotonicNonce(oms))
    ad = BrokerAdapter(oms, ex, live=True, min_gap_s=0)
    rec = OmsReconciler(oms, ex, ad, dry_run=False, stale_order_ms=0)
    intent, _ = oms.create_intent(Order("BTC", "open", "long", D("0.001"), 70))
    mid = ex.mid("BTC")
    ack = ex.limit("BTC", True, D("0.001"), mid * D("0.8"), cloid=intent.cloid)
    oms.record_ack(
        intent.intent_id, oid=ack.oid, order_type="GTC", venue_status="open", total_sz=None, done=False
    )
    foreign = ex.limit("BTC", True, D("0.001"), mid * D("0.7"))  # no cloid: not ours
    # A position the OMS did not make: someone traded this account by hand (no OMS record).
    requests.post(sim.base_url + "/info", json={"type": "allMids"}, timeout=5)
    ex.market_open("SOL", True, D("1"), slippage=D("0.01"))
    rep = rec.reconcile()
    assert rep.stale_cancelled == 1 and rep.foreign_orders == 1
    assert [o["oid"] for o in ex.open_orders()] == [foreign.oid]
    assert oms.intent(intent.intent_id).status is IntentStatus.CANCELLED  # type: ignore[union-attr]
    # The SOL fill was adopted (unmatched, kept) so the OMS sees the position: no mismatch.
    assert "SOL" not in rep.mismatches
    # Now a position change the OMS cannot see (fills beyond its cursor window are ignored here).
    oms.db.execute("DELETE FROM oms_fills WHERE symbol='SOL'")
    oms.set_kv("fill_cursor_ms", str(10**15))
    fake = {"coin": "SOL", "px": "1", "sz": "0.5", "side": "B", "time": 0, "hash": "0xfake", "tid": 1}
    oms.ingest_fill(parse_fill(fake))
    rep2 = rec.reconcile()
    assert rep2.mismatches == {"SOL": ("0.5", "1.0")} and rec.entries_blocked
    assert oms.events("MISMATCH")


def test_a_close_of_a_float_sum_leaves_no_dust_at_the_venue(
    sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms
) -> None:
    """Found by the daemon crash soak: a position opened as 0.04466 + 0.05327 BTC is 0.09793 at the
    venue but 0.09792999999999999 in the kernel (a float sum). Its close went out as 0.09792 (rounded
    down like an entry): 0.00001 BTC stayed open, every later close of it rounded to 0 and was
    refused, and the next entry flipped through it, so the kernel and the venue disagreed."""
    ad, rec = make(oms, executor)
    for ts, qty in ((1, "0.04466"), (2, "0.05327")):
        assert ad.submit(oi("open", "long", qty, ts=ts, sym="BTC")).status is IntentStatus.SENT
    rec.reconcile()
    assert {s: p.size for s, p in executor.positions().items()} == {"BTC": D("0.09793")}
    kernel_qty = repr(0.04466 + 0.05327)
    assert kernel_qty == "0.09792999999999999"
    close = ad.submit(oi("close", "short", kernel_qty, ts=3, sym="BTC"))
    assert close.status is IntentStatus.SENT
    rec.reconcile()
    assert executor.positions() == {} and oms.positions() == {}
