"""The OMS vocabulary: the intent statuses and the transitions allowed between them, the recorded
:class:`Intent` (an :class:`exchange.model.Order` with its status, cloid and fills), and the
deterministic ids (dedupe key, intent id; the cloid is the venue's, through the seam's
:class:`exchange.venue.ClientOrderIds`). Fills are the model's :class:`exchange.model.Fill` (its
venue facts, read from the venue's wire format under exchange/). Pure: no SQL, no I/O.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class IntentStatus(StrEnum):
    NEW = "NEW"
    SENT = "SENT"
    WOULD = "WOULD"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


S = IntentStatus
TRANSITIONS: Mapping[IntentStatus, frozenset[IntentStatus]] = {
    S.NEW: frozenset({S.SENT, S.WOULD, S.REJECTED, S.UNKNOWN, S.EXPIRED, S.PARTIAL, S.FILLED, S.CANCELLED}),
    S.UNKNOWN: frozenset({S.SENT, S.PARTIAL, S.FILLED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.SENT: frozenset({S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.PARTIAL: frozenset({S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.EXPIRED: frozenset({S.PARTIAL, S.FILLED}),
    S.WOULD: frozenset(),
    S.REJECTED: frozenset(),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset({S.FILLED}),  # a fill that raced the cancel
}
OPEN_STATUSES = (S.NEW, S.SENT, S.UNKNOWN, S.PARTIAL)


class IllegalTransition(RuntimeError):
    pass


def now_ms() -> int:
    return int(time.time() * 1000)


def dedupe_key(kind: str, symbol: str, side: str, decision_ts_ms: int) -> str:
    """One key per kernel decision: ``OPEN:ETH:BUY:1700000000000``."""
    return f"{kind.upper()}:{symbol.upper()}:{side.upper()}:{int(decision_ts_ms)}"


def intent_id_for(key: str) -> str:
    """Deterministic from the decision, so a re-emitted decision maps to the same intent."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Intent:
    intent_id: str
    symbol: str
    action: str
    side: str
    size: Decimal
    reduce_only: bool
    limit_px: Decimal | None
    status: IntentStatus
    cloid: str
    exchange_order_id: int | None
    filled_size: Decimal
    venue_total: Decimal | None
    send_attempts: int
    created_ts_ms: int
    sent_ts_ms: int | None
    decision_ts_ms: int
    kernel_intent_id: int | None
    confidence: str
    leverage: Decimal | None
    last_error: str | None

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"


@dataclass(frozen=True, slots=True)
class KnownOrders:
    """The ids of every order the OMS made: its intents' cloids (lower-case) and the venue's order
    ids it was answered with. An order at the venue with neither is not the OMS's."""

    cloids: frozenset[str]
    oids: frozenset[int]


@dataclass(frozen=True, slots=True)
class IngestResult:
    new: bool
    fill_id: int | None
    intent_id: str | None
    matched_via: str | None
