"""One live order, from the kernel's intent to the booked trades row, passes at most four types
(issue #24 item 2; docs/architecture.md "Order path"): the model's ``Order``, the OMS ``Intent``,
the venue's ``VenueOrderStatus`` (the answer to placing it, as to ``orderStatus``) and the model's
``Fill`` (the venue's, completed with the intent's booking facts), the same ``Fill`` paper books.

The order goes through the daemon's live backend (LiveExecution -> LiveTrader -> BrokerAdapter ->
LiveOms -> HyperliquidExecutor) against the local exchange, then through the loop's booking into the
trades table; every value that crosses a boundary on the way is recorded by its type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_type_hints

import exchange.venue as venue
from daemon.booking import Booking
from engine.config.view import StrategyConfig
from engine.live_gates import LIVE_CONFIRM_PHRASE
from engine.oms import Intent, LiveOms
from engine.risk import RiskManager
from engine.trading_db import TradingDB
from exchange.executor import HyperliquidExecutor, MonotonicNonce
from exchange.model import Fill, Order, Quote
from exchange.sim.harness import SimServer
from exchange.venue import VenueOrderStatus
from live.execution import LiveExecution
from live.trader import LiveTrader, TraderConfig
from strategy.kernel_orchestrator import KernelOrchestrator

from .conftest import new_wallet

LIVE_ENV = {"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": LIVE_CONFIRM_PHRASE}


def test_the_venue_seam_speaks_the_model_and_the_venue_status() -> None:
    for gone in ("OrderSpec", "OrderAck", "VenueFill"):  # folded into Order, VenueOrderStatus, Fill
        assert not hasattr(venue, gone), gone
    place = get_type_hints(venue.Execution.place)
    assert (place["order"], place["return"]) == (Order, VenueOrderStatus)
    assert get_type_hints(venue.Execution.fills_by_time)["return"] == list[Fill]
    assert get_type_hints(venue.FillStream.drain)["return"] == list[Fill]


def test_the_architecture_doc_names_these_types() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    section = doc.split("\n## Order path\n", 1)[1].split("\n## ", 1)[0]
    paper = re.search(r"a\s+paper\s+order\s+is\s(.*?);", section, re.S)
    live = re.search(r"a\s+live\s+one\s+is\s(.*?):\s+four\s+types", section, re.S)
    assert paper and re.findall(r"`(\w+)`", paper.group(1)) == ["Order", "Fill"]
    assert live and re.findall(r"`(\w+)`", live.group(1)) == ["Order", "Intent", "VenueOrderStatus", "Fill"]
    assert not re.search(r"\b(OrderSpec|OrderAck|VenueFill)\b", doc)


def _spy(obj: Any, name: str, seen: set[type], *, args: bool = True, result: bool = True) -> None:
    """Record the types of what goes into (positional) and comes out of ``obj.name`` (list items,
    tuple members: the OMS returns (fill, created) pairs and rows)."""
    real: Callable[..., Any] = getattr(obj, name)

    def note(v: Any) -> None:
        if isinstance(v, list | tuple):
            for x in v:
                note(x)
        elif isinstance(v, Order | Intent | Fill) or type(v).__module__.startswith("exchange.venue"):
            seen.add(type(v))

    def wrapped(*a: Any, **kw: Any) -> Any:
        if args:
            for v in a:
                note(v)
        out = real(*a, **kw)
        if result:
            note(out)
        return out

    setattr(obj, name, wrapped)


def _no_config(symbol: str) -> StrategyConfig:
    raise AssertionError(f"booking a fill reads no config ({symbol})")


def test_a_live_order_passes_four_types_from_the_kernel_intent_to_the_trades_row(
    sim: SimServer, oms: LiveOms, tmp_path: Path
) -> None:
    w = new_wallet()
    sim.deposit(w.address, 50_000)
    ex = HyperliquidExecutor(w, sim.base_url, MonotonicNonce(oms))
    cfg = TraderConfig(
        base_url=sim.base_url, db_path=oms.path, want_live=True, use_ws=False, min_gap_s=0,
        reconcile_every_s=3600,
    )  # fmt: skip
    alerts: list[str] = []
    trader = LiveTrader(cfg, ex, oms, environ=dict(LIVE_ENV), alert=lambda k, m: alerts.append(k))
    trader.startup()
    db = TradingDB(tmp_path / "trading.db", run_fingerprint="types")
    le = LiveExecution(trader, mode="live", recorded=lambda h, t: False, alert=lambda k, m: alerts.append(k))
    seen: set[type] = set()
    for name in ("create_intent", "intent", "record_ack", "ingest_fill", "fills_of_intent"):
        _spy(oms, name, seen)
    for name in ("place", "order_status_by_cloid", "fills_by_time"):
        _spy(ex, name, seen)
    risk = RiskManager(alert=lambda k, m: None)
    book = Booking(db, risk, le, None, _no_config, lambda *a: [], lambda k, m: alerts.append(k))
    _spy(book, "book_fills", seen, result=False)

    now = sim.now()
    le.begin_loop(now)
    order = Order.from_kernel(  # the fields of a bt_runtime.Intent the loop reads
        SimpleNamespace(
            symbol="ETH", kind="open", side="long", quantity=0.2, timestamp_ms=now, price=1900.0,
            notional_usd=380.0, leverage=3.0, reduce_only=False, confidence="high", reason_code="entry",
            intent_id=41,
        )
    )  # fmt: skip
    out = le.submit(order, Quote("ETH", 1900.0), now, {})
    assert out.status == "filled" and out.fills, (out, alerts)
    orch = KernelOrchestrator({}, initial_cash=50_000.0, fill_mode="external")
    book.book_fills(orch, out.fills, reason="entry", kind="open", score=1.0)

    assert seen == {Order, Intent, VenueOrderStatus, Fill}, sorted(t.__name__ for t in seen)
    rows = db.conn.execute(
        "SELECT fill_hash, fill_tid, action, size, price, meta_json FROM trades"
    ).fetchall()
    venue_fills = {(f.fill_hash, f.fill_tid): f for _id, f, _ in oms.fills_of_intent(out.oms_intent_id or "")}
    assert len(rows) == len(out.fills) == len(venue_fills)
    for fill_hash, fill_tid, action, size, price, meta in rows:
        f = venue_fills[(fill_hash, fill_tid)]  # the trades row is the venue's fill, booked once
        assert (action, size, price) == ("OPEN", float(f.size), float(f.price))
        assert json.loads(meta)["intent_id"] == 41
    assert orch.positions()["ETH"].quantity == float(sum(f.size for f in out.fills))
