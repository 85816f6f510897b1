"""Live operator actions through the OMS: flatten (reduce-only IOC with retries) and manual orders.

Every order goes through ``BrokerAdapter.submit`` and therefore through ``LiveOms``: the intent row
with its deterministic cloid is committed before the order is sent, and the same decision key is
never sent twice. Manual orders use ``decision_ts_ms`` derived from the operator's ``--id``
(``manual_ts``), so running the same command twice finds the recorded intent and sends nothing.
Manual intents are marked with ``kernel_intent_id = 0`` and reason ``manual:<id>`` /
``manual_flatten`` (kernel ids start at 1), so reports can tell them from the kernel's.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from ops.common import EXIT_FAILED, EXIT_USAGE, OpsError

log = logging.getLogger("ops.live")


@dataclass
class LiveSession:
    oms: Any  # engine.oms.LiveOms
    ex: Any  # exchange.executor.HyperliquidExecutor
    adapter: Any  # strategy.broker_adapter.BrokerAdapter

    def close(self) -> None:
        self.oms.close()


def default_oms_db(env: Any) -> Path:
    """The live daemon's OMS file: ``oms_live.db`` next to the trading DB (python -m daemon --oms-db default)."""
    return Path(env.db_path).parent / "oms_live.db"


def gate_problems(environ: Mapping[str, str]) -> tuple[str, ...]:
    from engine.live_gates import evaluate_gates

    return evaluate_gates(environ, want_live=True).problems


def open_session(url: str, oms_db: Path, *, slippage: Decimal, retries: int, send: bool) -> LiveSession:
    """Wallet from the secrets file (engine.secrets), OMS at ``oms_db``, executor on ``url``."""
    from engine.oms import LiveOms
    from engine.secrets import SecretError, load_wallet_secrets, wallet_from
    from exchange.executor import ExecutorError, HyperliquidExecutor, MonotonicNonce
    from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
    from strategy.broker_adapter import BrokerAdapter

    try:
        sec = load_wallet_secrets()
        wallet = wallet_from(sec.key)
    except SecretError as exc:
        raise OpsError(str(exc)) from None
    oms = LiveOms(oms_db, client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        ex = HyperliquidExecutor(wallet, url, MonotonicNonce(oms), account_address=sec.account_address)
    except (ExecutorError, OSError, ValueError) as exc:
        oms.close()
        raise OpsError(f"venue {url}: {type(exc).__name__}: {exc}", EXIT_FAILED) from None
    except Exception as exc:  # the SDK raises requests errors on a dead venue
        oms.close()
        raise OpsError(f"venue {url} unreachable: {type(exc).__name__}", EXIT_FAILED) from None
    adapter = BrokerAdapter(oms, ex, live=send, slippage=slippage, retries=retries, min_gap_s=0.05)
    return LiveSession(oms, ex, adapter)


def sync_fills(s: LiveSession) -> int:
    """Adopt the venue's fills into the OMS now (the daemon's reconciler would do it later)."""
    from engine.oms_reconciler import OmsReconciler
    from exchange.executor import ExecutorError

    try:
        return OmsReconciler(s.oms, s.ex, s.adapter, dry_run=False).sync_fills()[0]
    except ExecutorError as exc:
        log.warning("fill sync failed (the daemon's reconciler adopts them later): %s", exc)
        return 0


# ---- flatten ---------------------------------------------------------------------------------


@dataclass
class FlatResult:
    symbol: str
    side: str  # the position's side: long | short
    size_before: Decimal
    closed: Decimal = Decimal(0)
    remaining: Decimal = Decimal(0)
    attempts: int = 0
    intents: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "closed" if self.remaining == 0 else "still open"


def venue_positions(s: LiveSession) -> dict[str, Decimal]:
    return {sym: p.size for sym, p in s.ex.positions().items() if p.size != 0}


def flatten_live(
    s: LiveSession, *, attempts: int, symbols: set[str] | None, wait_s: float = 0.3
) -> list[FlatResult]:
    """Reduce-only IOC closes until every (selected) position is flat or ``attempts`` rounds ran.

    An IOC that fills part (thin book) leaves the rest: the next round sends a new intent for the
    remainder (a new decision key per round, so each round is recorded and sent once)."""
    from exchange.model import Order

    start = venue_positions(s)
    if symbols:
        unknown = symbols - set(start)
        if unknown:
            log.info("no open position for %s", ",".join(sorted(unknown)))
        start = {k: v for k, v in start.items() if k in symbols}
    results = {sym: FlatResult(sym, "long" if sz > 0 else "short", abs(sz)) for sym, sz in start.items()}
    base_ts = int(time.time() * 1000)
    for round_no in range(attempts):
        now = venue_positions(s)
        todo = {sym: sz for sym, sz in now.items() if sym in results}
        for sym, r in results.items():
            r.remaining = abs(todo.get(sym, Decimal(0)))
        if not todo:
            break
        for sym, sz in sorted(todo.items()):
            r = results[sym]
            r.attempts += 1
            oi = Order(
                symbol=sym, kind="close", side="short" if sz > 0 else "long", quantity=abs(sz),
                decision_ts_ms=base_ts + round_no, reduce_only=True, reason_code="manual_flatten",
                kernel_intent_id=0,
            )  # fmt: skip
            out = s.adapter.submit(oi)
            r.intents.append(str(out.intent_id))
            r.statuses.append(f"{out.status}{(': ' + out.detail) if out.detail else ''}")
        time.sleep(wait_s)
    sync_fills(s)
    final = venue_positions(s)
    for sym, r in results.items():
        r.remaining = abs(final.get(sym, Decimal(0)))
        r.closed = r.size_before - r.remaining
    try:
        s.adapter.oms.event("MANUAL_FLATTEN", detail={
            "tool": "flat_now", "results": {k: [str(v.closed), str(v.remaining)] for k, v in results.items()}})  # fmt: skip
    except Exception as exc:  # the report still stands; the OMS event is a convenience
        log.warning("flatten event not recorded: %s", exc)
    return list(results.values())


# ---- manual orders ---------------------------------------------------------------------------

ManualAction = Literal["open", "close"]
MANUAL_TS_BASE = 1_000_000_000_000_000  # far from any real ms timestamp: keys never collide with the kernel's


def manual_ts(order_id: str) -> int:
    """A stable ``decision_ts_ms`` for an operator ``--id`` (the OMS dedupe key uses it)."""
    if not order_id or len(order_id) > 64 or not all(c.isalnum() or c in "-_.:" for c in order_id):
        raise OpsError(f"--id {order_id!r}: use 1-64 letters, digits or -_.:", EXIT_USAGE)
    return MANUAL_TS_BASE + int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:6], "big")


def manual_order(
    s: LiveSession, action: ManualAction, symbol: str, side: str | None, size: Decimal | None, order_id: str
) -> tuple[Any, bool]:
    """Open (side + size) or close (reduce-only, the whole position or ``size``) one symbol.

    An open first marks the coin as the operator's (engine.operator_positions), durably, before
    the order is sent: the daemon then sends nothing for it. Returns (outcome, newly marked)."""
    from engine.operator_positions import mark
    from exchange.model import Order

    s.ex.asset(symbol)  # unknown symbol -> ExecutorError
    ts = manual_ts(order_id)
    if action == "open":
        if side not in ("long", "short") or size is None or size <= 0:
            raise OpsError("open needs --side long|short and a positive --size", EXIT_USAGE)
        seen = any(i.decision_ts_ms == ts and i.symbol == symbol for i in s.oms.intents())
        # A re-run of a recorded --id sends nothing and changes nothing (not even a released mark).
        marked = False if seen else mark(s.oms, symbol, order_id, int(time.time() * 1000))
        if marked:
            log.warning(
                "%s is now the operator's: the daemon sends nothing for %s (no entries, no exits) until "
                "`manual_trade.py close` flattens it or `manual_trade.py release --symbol %s`",
                symbol, symbol, symbol,
            )  # fmt: skip
        oi = Order(symbol=symbol, kind="open", side=side, quantity=size, decision_ts_ms=ts,  # type: ignore[arg-type]
                         reason_code=f"manual:{order_id}", kernel_intent_id=0)  # fmt: skip
        return s.adapter.submit(oi), marked
    existing = s.adapter.oms.intents()
    key_ts = [i for i in existing if i.decision_ts_ms == ts and i.symbol == symbol]
    pos = venue_positions(s).get(symbol, Decimal(0))
    if not key_ts and pos == 0:
        raise OpsError(f"no open {symbol} position to close", EXIT_FAILED)
    qty = size if size is not None else abs(pos)
    # The side follows the position; when re-running an id after the close already went through
    # (pos is 0), the recorded intent answers and nothing is sent.
    order_side = (
        ("short" if pos > 0 else "long") if pos != 0 else ("long" if key_ts[0].side == "BUY" else "short")
    )
    oi = Order(symbol=symbol, kind="close", side=order_side, quantity=qty or key_ts[0].size, decision_ts_ms=ts,  # type: ignore[arg-type]
                     reduce_only=True, reason_code=f"manual:{order_id}", kernel_intent_id=0)  # fmt: skip
    return s.adapter.submit(oi), False


def release_if_flat(s: LiveSession, symbols: set[str]) -> list[str]:
    """Hand the operator's coins that are now flat back to the strategy; returns those released."""
    from engine.operator_positions import operator_symbols, release

    held = venue_positions(s)
    return [
        sym
        for sym in sorted(symbols & set(operator_symbols(s.oms)))
        if sym not in held and release(s.oms, sym)
    ]


def cancel_orders(
    s: LiveSession, symbol: str | None, oid: int | None, cloid: str | None
) -> list[dict[str, Any]]:
    """Cancel one resting order (``oid``/``cloid``) or every open order (of ``symbol``)."""
    orders = s.ex.open_orders()
    out = []
    for o in orders:
        if symbol and o.get("coin") != symbol:
            continue
        if oid is not None and int(o.get("oid", -1)) != oid:
            continue
        if cloid is not None and str(o.get("cloid") or "").lower() != cloid.lower():
            continue
        ok = s.ex.cancel(str(o["coin"]), int(o["oid"]))
        out.append({"symbol": o["coin"], "oid": int(o["oid"]), "cancelled": bool(ok)})
    s.oms.event("MANUAL_CANCEL", detail={"tool": "manual_trade", "orders": out})
    return out
