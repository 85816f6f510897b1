"""The OMS vocabulary: the intent statuses and the transitions allowed between them, what the broker
adapter asks the OMS to record (:class:`IntentRequest`), the recorded :class:`Intent`, a venue
:class:`Fill`, and the deterministic ids (dedupe key, intent id, cloid). Pure: no SQL, no I/O.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

CLOID_PREFIX = b"aiq_"


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


def cloid_for(intent_id: str, prefix: bytes = CLOID_PREFIX) -> str:
    """``0x`` + 16 bytes: the ASCII prefix, then the start of sha256(intent_id)."""
    if len(prefix) >= 16:
        raise ValueError("cloid prefix must be shorter than 16 bytes")
    body = prefix + hashlib.sha256(intent_id.encode()).digest()[: 16 - len(prefix)]
    return "0x" + body.hex()


def is_bot_cloid(cloid: str | None, prefix: bytes = CLOID_PREFIX) -> bool:
    return bool(cloid) and str(cloid).lower().startswith("0x" + prefix.hex())


@dataclass(frozen=True, slots=True)
class IntentRequest:
    """What the broker adapter asks the OMS to record (sizes already rounded)."""

    symbol: str
    action: str  # OPEN | ADD | REDUCE | CLOSE | REVERSE
    side: str  # BUY | SELL (the order side)
    size: Decimal
    decision_ts_ms: int
    reduce_only: bool = False
    limit_px: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    kernel_intent_id: int | None = None
    reason: str = ""
    reason_code: str = ""
    confidence: str = "medium"


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
class Fill:
    """One venue fill in our terms (Decimal money)."""

    symbol: str
    side: str  # BUY | SELL
    price: Decimal
    size: Decimal
    ts_ms: int
    fee: Decimal
    fee_token: str
    closed_pnl: Decimal
    fill_hash: str
    fill_tid: int
    oid: int | None
    cloid: str | None
    direction: str
    raw: Mapping[str, Any]

    @staticmethod
    def from_venue(f: Mapping[str, Any]) -> Fill:
        return Fill(
            symbol=str(f["coin"]),
            side="BUY" if f["side"] == "B" else "SELL",
            price=Decimal(str(f["px"])),
            size=Decimal(str(f["sz"])),
            ts_ms=int(f["time"]),
            fee=Decimal(str(f.get("fee", "0"))),
            fee_token=str(f.get("feeToken", "USDC")),
            closed_pnl=Decimal(str(f.get("closedPnl", "0"))),
            fill_hash=str(f.get("hash", "")),
            fill_tid=int(f.get("tid", 0)),
            oid=int(f["oid"]) if f.get("oid") is not None else None,
            cloid=str(f["cloid"]).lower() if f.get("cloid") else None,
            direction=str(f.get("dir", "")),
            raw=dict(f),
        )

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "BUY" else -self.size


@dataclass(frozen=True, slots=True)
class IngestResult:
    new: bool
    fill_id: int | None
    intent_id: str | None
    matched_via: str | None
