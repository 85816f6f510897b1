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
from exchange.retry import Backoff
from exchange.venue import (
    DEFAULT_SLIPPAGE,
    Execution,
    ExecutorError,
    NotSentError,
    SendUnknownError,
    VenueOrderStatus,
    VenueRejectedError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """What became of one order: its OMS intent and status, and the venue's answer when it was sent."""

    intent_id: str | None
    status: IntentStatus | None
    deduped: bool = False
    venue: VenueOrderStatus | None = None
    detail: str = ""


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
        self.retry = Backoff(retries=retries, first_s=retry_delay_s)  # for orders the venue did not take
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
        order = replace(oi, quantity=size, reduce_only=oi.closing)  # as committed, and as sent
        intent, created = self.oms.create_intent(order)
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
        return self._send(intent, order)

    def _send(self, intent: Intent, order: Order) -> SubmitOutcome:
        last_err = ""
        for attempt in range(self.retry.retries + 1):
            gap = self.min_gap_s - (time.monotonic() - self._last_send)
            if gap > 0:
                self.sleep(gap)
            try:
                px = self.ex.slippage_price(order.symbol, order.is_buy, self.slippage)
            except ExecutorError as exc:
                last_err = str(exc)
                if attempt < self.retry.retries:  # no wait before giving up
                    self.sleep(self.retry.wait_s(attempt))
                continue
            self.oms.note_send_attempt(intent.intent_id)
            self.crash("before_send")
            self._last_send = time.monotonic()
            try:
                st = self.ex.place(order, px, tif="Ioc", cloid=intent.cloid)
            except NotSentError as exc:
                last_err = str(exc)
                log.info("order for %s not processed (%s); retrying", intent.intent_id, exc)
                if attempt < self.retry.retries:  # no wait before giving up
                    self.sleep(self.retry.wait_s(attempt))
                continue
            except SendUnknownError as exc:
                self.oms.set_status(intent.intent_id, IntentStatus.UNKNOWN, str(exc))
                resolved = self.resolve(self._fresh(intent))
                return SubmitOutcome(resolved.intent_id, resolved.status, detail=f"outcome unknown: {exc}")
            except VenueRejectedError as exc:
                self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, str(exc))
                self.alert("reject", f"{order.symbol} {order.kind} rejected: {exc}")
                return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, detail=str(exc))
            updated = self._record(intent, st)
            if updated.status is IntentStatus.REJECTED:
                why = st.error or str(st.status)
                self.alert("reject", f"{intent.symbol} {intent.action} rejected: {why}")
                return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, venue=st, detail=why)
            return SubmitOutcome(intent.intent_id, updated.status, venue=st)
        self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, f"not sent: {last_err}")
        self.alert(
            "reject", f"{order.symbol} {order.kind} not sent after {self.retry.retries + 1} tries: {last_err}"
        )
        return SubmitOutcome(intent.intent_id, IntentStatus.REJECTED, detail=last_err)

    def _fresh(self, intent: Intent) -> Intent:
        out = self.oms.intent(intent.intent_id)
        assert out is not None
        return out

    def _record(self, intent: Intent, st: VenueOrderStatus) -> Intent:
        """The venue's status of the order (its answer to ``place`` or to ``orderStatus``) into the
        OMS: a rejection of an order not yet acknowledged is REJECTED; anything else is recorded
        with its oid, SENT, then settled (done unless it still rests)."""
        status = st.status or ""
        if st.rejected and intent.status in (IntentStatus.NEW, IntentStatus.UNKNOWN):
            self.oms.set_status(intent.intent_id, IntentStatus.REJECTED, st.error or status)
            return self._fresh(intent)
        done = status != "open"
        raw = {"status": status, "oid": st.oid}
        if st.avg_px is not None:
            raw |= {"totalSz": str(st.filled_sz), "avgPx": str(st.avg_px)}
        return self.oms.record_ack(
            intent.intent_id,
            oid=st.oid,
            order_type="IOC",
            venue_status=status,
            total_sz=st.filled_sz if done else None,
            done=done,
            raw=raw,
        )

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
        return self._record(intent, st)
