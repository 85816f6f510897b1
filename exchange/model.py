"""The trading vocabulary every layer shares (the bottom of the package graph, docs/architecture.md).

Types here import nothing of ours, so the venue adapters, the engine, the strategy code, the tools
and the tests can all use them without an import cycle: the closed bar, the quote, the order (one
kernel decision, as paper and live fill it), the fill (the venue's or the paper trader's, as the
engine books it) and the position it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Side = Literal["long", "short"]
Kind = Literal["open", "add", "reduce", "close", "reverse"]
CLOSING_KINDS = frozenset({"reduce", "close"})


@dataclass(frozen=True)
class Quote:
    """The price an order is filled or measured against: the mid, and the touch when known."""

    symbol: str
    mid: float
    bid: float | None = None
    ask: float | None = None


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed candle; ``t`` is the open time in milliseconds."""

    symbol: str
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - OHLC naming
    c: float
    v: float


def _exact(x: Any) -> Decimal:
    return Decimal(repr(float(x)))


@dataclass(frozen=True, slots=True)
class Order:
    """One kernel decision as an order, the same in paper and live: what the risk manager passed,
    the paper trader fills, and the OMS records (with ``quantity`` rounded to the venue's lot) and
    sends. ``side`` is the order side: long = buy, short = sell. ``price`` is the decision's
    reference price, not a limit."""

    symbol: str
    kind: Kind
    side: Side
    quantity: Decimal
    decision_ts_ms: int
    price: Decimal | None = None
    notional_usd: Decimal | None = None
    leverage: Decimal | None = None
    reduce_only: bool = False
    confidence: str = "medium"
    reason_code: str = ""
    kernel_intent_id: int | None = None

    @property
    def is_buy(self) -> bool:
        return self.side == "long"

    @property
    def closing(self) -> bool:
        return self.reduce_only or self.kind in CLOSING_KINDS

    @staticmethod
    def from_kernel(intent: Any) -> Order:
        """From a ``bt_runtime.Intent`` (its floats become exact decimals of their shortest repr)."""
        return Order(
            symbol=str(intent.symbol),
            kind=intent.kind,
            side="long" if intent.side == "long" else "short",
            quantity=_exact(intent.quantity),
            decision_ts_ms=int(intent.timestamp_ms),
            price=_exact(intent.price),
            notional_usd=_exact(intent.notional_usd),
            leverage=_exact(intent.leverage),
            reduce_only=bool(intent.reduce_only),
            confidence=str(intent.confidence),
            reason_code=str(intent.reason_code),
            kernel_intent_id=int(intent.intent_id),
        )


@dataclass
class Position:
    """One open position as the engine and its risk checks see it, in paper and live alike: the
    paper account's own (the paper trader updates it) or the venue's, read each loop."""

    symbol: str
    side: Side
    size: float
    entry_price: float
    leverage: float
    opened_ms: int
    confidence: str = "medium"
    adds: int = 0
    last_add_ms: int = 0
    last_funding_ms: int = 0

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1

    @property
    def margin_used(self) -> float:
        return self.size * self.entry_price / self.leverage

    def unrealized(self, mark: float) -> float:
        return self.sign * (mark - self.entry_price) * self.size


@dataclass(frozen=True)
class Fill:
    """One fill of one order, in paper and live alike: the same value from the venue (or the paper
    trader) through the OMS to the booking (the kernel's ``apply_fill`` and a trades row).

    First the venue's facts: what it filled, as exact decimals as it wrote them (``pnl`` is its
    realised PnL), its ids of the fill (``fill_hash``, ``fill_tid``, unique together) and of the
    order (``oid``, ``cloid`` lower-case), its words for it (``direction``, e.g. ``Close Long``) and
    its own record (``raw``, kept for the audit trail). A paper fill has no oid, cloid, direction or
    record. Then the booking facts, what the fill did to the account and the decision behind it
    (``action`` on): the paper trader sets them as it fills; a venue adapter leaves them at their
    defaults and the live backend sets them from the OMS intent before booking (live/execution.py).
    """

    symbol: str
    is_buy: bool
    size: Decimal
    price: Decimal
    ts_ms: int
    fee: Decimal
    pnl: Decimal
    fill_hash: str
    fill_tid: int
    oid: int | None = None
    cloid: str | None = None
    fee_token: str = "USDC"
    direction: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # booking
    action: str = ""  # OPEN | ADD | REDUCE | CLOSE (ADOPT: a live fill with no intent)
    position_side: Side = "long"
    ref_price: float = 0.0
    slippage_bps: float = 0.0
    leverage: float = 1.0
    margin_used: float = 0.0
    intent_id: int = 0  # the kernel's intent id
    reason_code: str = ""
    confidence: str = "medium"
    balance_after: float = 0.0

    @property
    def side(self) -> Literal["BUY", "SELL"]:
        """The order side in the venue's words."""
        return "BUY" if self.is_buy else "SELL"

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.is_buy else -self.size

    @property
    def notional(self) -> Decimal:
        return self.price * self.size
