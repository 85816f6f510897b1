"""Kernel intents -> OMS -> executor, retrying only where it is safe.

The rule: an order is sent at most once per intent.

* The intent row (with its deterministic cloid) is committed before anything is sent.
* ``NotSentError`` (the venue did not process it: 429, connect timeout, ``Invalid nonce``) is the
  only failure that is retried, with a fresh nonce, up to ``retries`` times.
* ``SendUnknownError`` (timeout after send, connection dropped, 5xx) marks the intent UNKNOWN and
  resolves it through ``orderStatus`` by cloid. If the venue knows the cloid the intent is adopted;
  if not, it is EXPIRED and **not** resent (the next decision decides again).
* A decision seen again (same dedupe key, e.g. after a restart) is never sent again: an open intent
  is resolved against the venue instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

from engine.oms import Intent, IntentStatus, LiveOms, log_alert
from exchange.meta import round_size
from exchange.model import Order
from exchange.venue import (
    DEFAULT_SLIPPAGE,
    Execution,
    ExecutorError,
    NotSentError,
    OrderAck,
    OrderSpec,
    SendUnknownError,
    VenueOrderStatus,
    VenueRejectedError,
)

log = logging.getLogger(__name__)

DONE_VENUE_STATUSES = frozenset({"filled", "canceled", "triggered", "scheduledCancel"})


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    intent_id: str | None
    status: IntentStatus | None
    deduped: bool = False
    ack: OrderAck | None = None
    detail: str = ""


def venue_total(st: VenueOrderStatus) -> Decimal | None:
    if st.orig_sz is None or st.remaining_sz is None:
        return None
    return st.orig_sz - st.remaining_sz


def close_size(quantity: Decimal, sz_decimals: int) -> Decimal:
    """The size of a closing order: ``quantity`` rounded to the NEAREST size unit.

    A close's quantity is the kernel's float sum of the position's fills (0.04466 + 0.05327 =
    0.09792999999999999); rounded down like an entry it would leave one unit at the venue, a dust
    position that no later close can reach (it rounds to 0) and that a later entry flips through.
    """
    return quantity.quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_HALF_EVEN)


class BrokerAdapter:
    def __init__(
        self,
        oms: LiveOms,
        executor: Execution,
        *,
        live: bool,
        slippage: Decimal = DEFAULT_SLIPPAGE,
        retries: int = 2,
        retry_delay_s: float = 0.25,
        min_gap_s: float = 0.25,
        alert: Callable[[str, str], None] = log_alert,
        crash: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.oms = oms
        self.ex = executor
        self.live = live
        self.slippage = slippage
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.min_gap_s = min_gap_s
        self.alert = alert
        self.crash = crash if crash is not None else oms.crash  # the OMS holds the process's hook
        self.sleep = sleep
        self._last_send = 0.0

    # ---- submit ----------------------------------------------------------------------------
    def submit(self, oi: Order) -> SubmitOutcome:
        meta = self.ex.asset(oi.symbol)
        size = (
            close_size(oi.quantity, meta.sz_decimals)
            if oi.closing
            else round_size(oi.quantity, meta.sz_decimals)
        )
        intent, created = self.oms.create_intent(replace(oi, quantity=size, reduce_only=oi.closing))
        if not created:
            if intent.status in (IntentStatus.NEW, IntentStatus.UNKNOWN):
                intent = self.resolve(intent)
            return SubmitOutcome(
                intent.intent_id, intent.status, deduped=True, detail="decision already recorded"
            )
        if not self.live:
            self.oms.set_status(intent.intent_id, IntentStatus.WOULD)
            return SubmitOutcome(intent.intent_id, IntentStatus.WOULD, detail="dry_live: not sent")
        if size <= 0:
            self.oms.set_status(
                intent.intent_id, IntentStatus.REJECTED, f"size rounds to 0 at {meta.sz_decimals} dp"
            )
            return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, detail="size rounds to zero")
        return self._send(intent, oi)

    def _send(self, intent: Intent, oi: Order) -> SubmitOutcome:
        last_err = ""
        for attempt in range(self.retries + 1):
            gap = self.min_gap_s - (time.monotonic() - self._last_send)
            if gap > 0:
                self.sleep(gap)
            try:
                px = self.ex.slippage_price(oi.symbol, oi.is_buy, self.slippage)
            except ExecutorError as exc:
                last_err = str(exc)
                self.sleep(self.retry_delay_s * (2**attempt))
                continue
            spec = OrderSpec(oi.symbol, oi.is_buy, intent.size, px, "Ioc", intent.reduce_only, intent.cloid)
            self.oms.note_send_attempt(intent.intent_id)
            self.crash("before_send")
            self._last_send = time.monotonic()
            try:
                ack = self.ex.place(spec)
            except NotSentError as exc:
                last_err = str(exc)
                log.info("order for %s not processed (%s); retrying", intent.intent_id, exc)
                self.sleep(self.retry_delay_s * (2**attempt))
                continue
            except SendUnknownError as exc:
                self.oms.set_status(intent.intent_id, IntentStatus.UNKNOWN, str(exc))
                resolved = self.resolve(self._fresh(intent))
                return SubmitOutcome(resolved.intent_id, resolved.status, detail=f"outcome unknown: {exc}")
            except VenueRejectedError as exc:
                self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, str(exc))
                self.alert("reject", f"{oi.symbol} {oi.kind} rejected: {exc}")
                return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, detail=str(exc))
            return self._apply_ack(intent, ack)
        self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, f"not sent: {last_err}")
        self.alert("reject", f"{oi.symbol} {oi.kind} not sent after {self.retries + 1} tries: {last_err}")
        return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, detail=last_err)

    def _fresh(self, intent: Intent) -> Intent:
        out = self.oms.intent(intent.intent_id)
        assert out is not None
        return out

    def _apply_ack(self, intent: Intent, ack: OrderAck) -> SubmitOutcome:
        if ack.kind == "error":
            self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, ack.error)
            self.alert("reject", f"{intent.symbol} {intent.action} rejected: {ack.error}")
            return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, ack=ack, detail=str(ack.error))
        done = ack.kind == "filled"
        updated = self.oms.record_ack(
            intent.intent_id,
            oid=ack.oid,
            order_type="IOC",
            venue_status="filled" if done else "open",
            total_sz=ack.total_sz if done else None,
            done=done,
            raw={"kind": ack.kind, "oid": ack.oid, "totalSz": str(ack.total_sz), "avgPx": str(ack.avg_px)},
        )
        return SubmitOutcome(intent.intent_id, updated.status, ack=ack)

    # ---- resolution ------------------------------------------------------------------------
    def resolve(self, intent: Intent) -> Intent:
        """Settle a NEW/UNKNOWN (or still-open SENT) intent from the venue's orderStatus by cloid.

        Never sends an order."""
        try:
            st = self.ex.order_status_by_cloid(intent.cloid)
        except ExecutorError as exc:
            log.warning("cannot resolve %s yet: %s", intent.intent_id, exc)
            return intent
        self.oms.event(
            "RESOLVE",
            symbol=intent.symbol,
            intent_id=intent.intent_id,
            cloid=intent.cloid,
            oid=st.oid,
            result=st.status or "unknownOid",
        )
        if not st.known:
            if intent.status in (IntentStatus.NEW, IntentStatus.UNKNOWN):
                self.oms.expire(intent.intent_id, "venue does not know the cloid; not resent")
            return self._fresh(intent)
        status = st.status or ""
        rejected = status.endswith("Rejected") or status == "rejected"
        if rejected and intent.status in (IntentStatus.NEW, IntentStatus.UNKNOWN):
            self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, status)
            return self._fresh(intent)
        done = status != "open"
        return self.oms.record_ack(
            intent.intent_id,
            oid=st.oid,
            order_type="IOC",
            venue_status=status,
            total_sz=venue_total(st) if done else None,
            done=done,
            raw={"status": status, "oid": st.oid},
        )
