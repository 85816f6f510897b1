"""The venue seam: what the daemon, the OMS and its reconciler need of a venue, typed.

* :class:`MarketData`: the venue's clock, closed candles, mids, the top of the book, funding, daily
  volumes and the rounding meta. The market-data hub (engine/market_data.py) reads through it.
* :class:`Execution`: orders and cancels (by cloid), leverage, the dead man's switch, account and
  order queries, fills by time and the user fill stream. The broker adapter, the reconciler, the
  live trader and the pre-flight check call it.
* :class:`ClientOrderIds`: the venue's client order id (cloid) of an OMS intent, in its own format.
* The typed values and errors both sides speak: an order goes out as the model's
  :class:`~exchange.model.Order` (what the OMS committed) and its answer is the venue's
  :class:`VenueOrderStatus`, the same value ``orderStatus`` gives; fills come back as the model's
  :class:`~exchange.model.Fill`; the account is :class:`AccountState`; failures are
  :class:`ExecutorError` and its kinds.

Hyperliquid implements them in exchange/hl_market_data.py and exchange/executor.py (its fills are
parsed in exchange/hl_fills.py, its cloids made in exchange/hl_cloid.py); only the daemon's wiring (daemon/main.py) and tools construct
those. A second venue is a new module behind these Protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from exchange.meta import AssetMeta, Meta
from exchange.model import Bar, Fill, Order
from exchange.venue_errors import VenueProblem

DEFAULT_SLIPPAGE = Decimal("0.001")  # 0.1 %, upstream broker default

Tif = Literal["Gtc", "Ioc", "Alo"]


class ExecutorError(Exception):
    """Base class; messages never contain key material."""


class NotSentError(ExecutorError):
    """The venue did not process the action: safe to retry."""


class SendUnknownError(ExecutorError):
    """The action may or may not have been processed: resolve, never resend blindly."""


class VenueRejectedError(ExecutorError):
    """The venue answered ``status: err``."""


class QueryError(ExecutorError):
    """A read-only query failed (after its retries); ``problem`` classifies it
    (exchange/venue_errors.py) and ``status_code`` is the HTTP status, if any (429: rate limited)."""

    def __init__(self, problem: VenueProblem) -> None:
        self.problem = problem
        self.status_code = problem.status
        super().__init__(problem.line())


@dataclass(frozen=True, slots=True)
class VenuePosition:
    symbol: str
    size: Decimal  # signed: > 0 long, < 0 short
    entry_px: Decimal
    unrealized_pnl: Decimal
    leverage: int


@dataclass(frozen=True, slots=True)
class AccountState:
    account_value: Decimal
    withdrawable: Decimal
    total_margin_used: Decimal
    positions: Mapping[str, VenuePosition]


@dataclass(frozen=True, slots=True)
class VenueOrderStatus:
    """One order's status at the venue: the answer to placing it (:meth:`Execution.place`) and to
    asking for it later (``orderStatus`` by cloid or oid), so both end in the same OMS record.

    ``status`` is the venue's word: ``open`` (resting), ``filled``, ``canceled``, ``rejected`` (or a
    venue-specific ``...Rejected``) and so on; None when the venue does not know the order
    (``unknownOid``). The venue's filled size is ``orig_sz - remaining_sz``; ``avg_px`` is given
    only by a fill's immediate answer, ``error`` only by a rejection's."""

    status: str | None
    oid: int | None = None
    cloid: str | None = None
    symbol: str | None = None
    orig_sz: Decimal | None = None
    remaining_sz: Decimal | None = None
    avg_px: Decimal | None = None
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.status is not None

    @property
    def rejected(self) -> bool:
        return self.status is not None and (self.status == "rejected" or self.status.endswith("Rejected"))

    @property
    def filled_sz(self) -> Decimal | None:
        """What the venue filled of it, when it says (orig - remaining)."""
        if self.orig_sz is None or self.remaining_sz is None:
            return None
        return self.orig_sz - self.remaining_sz


class FillStream(Protocol):
    """What the live trader needs from a user fill source."""

    connects: int

    def start(self) -> None: ...
    def ensure(self) -> bool: ...
    def drain(self, limit: int = 10_000) -> list[Fill]: ...
    def stop(self) -> None: ...


class ClientOrderIds(Protocol):
    """The venue's client order id (cloid) for an OMS intent. Deterministic: the same intent id
    always gives the same cloid, so a restart recognises an order sent before a crash and the cloids
    stored in an OMS file keep matching. ``is_ours`` tells this system's orders from others'."""

    def for_intent(self, intent_id: str) -> str: ...
    def is_ours(self, cloid: str | None) -> bool: ...


class MarketData(Protocol):
    """A venue's public market data. Every call may raise the venue's request errors
    (classify them with exchange.venue_errors.diagnose)."""

    @property
    def base_url(self) -> str: ...
    def time_ms(self) -> int | None:
        """The venue's clock, or None when it does not say."""
        ...

    def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Bar]: ...
    def mids(self) -> dict[str, float]: ...
    def top_of_book(self, symbol: str) -> tuple[float | None, float | None]:
        """(best bid, best ask); (None, None) when a side is empty."""
        ...

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        """(time ms, rate) oldest first."""
        ...

    def day_volumes(self) -> list[tuple[str, float]]:
        """(symbol, day notional volume) of every listed perp, in the venue's order."""
        ...

    def meta(self) -> Meta: ...


class Execution(Protocol):
    """One account's orders and queries at a venue."""

    base_url: str
    address: str  # the account traded
    signer: str  # the key that signs: the account's or an API wallet's

    @property
    def assets(self) -> Mapping[str, AssetMeta]: ...

    def asset(self, symbol: str) -> AssetMeta: ...
    def slippage_price(
        self, symbol: str, is_buy: bool, slippage: Decimal = ..., ref_px: Decimal | None = None
    ) -> Decimal: ...
    def place(
        self, order: Order, limit_px: Decimal, *, tif: Tif = "Ioc", cloid: str | None = None
    ) -> VenueOrderStatus:
        """Send ``order`` (its ``quantity``, side and ``reduce_only``; the OMS has committed it and
        its ``cloid`` first) as a limit at ``limit_px``: its status at the venue, ``rejected``
        with the venue's reason when refused. Raises :class:`NotSentError`,
        :class:`SendUnknownError`, :class:`VenueRejectedError`."""
        ...

    def cancel(self, symbol: str, oid: int) -> bool: ...
    def cancel_by_cloid(self, symbol: str, cloid: str) -> bool: ...
    def update_leverage(self, symbol: str, leverage: int, *, cross: bool = True) -> None: ...
    def schedule_cancel(self, at_ms: int | None) -> None: ...
    def account(self) -> AccountState: ...
    def api_wallets(self) -> list[str]: ...
    def venue_time_ms(self) -> int: ...
    def venue_span_ms(self, wall_ms: float) -> int: ...
    def positions(self) -> Mapping[str, VenuePosition]: ...
    def open_orders(self) -> list[dict[str, Any]]: ...
    def order_status_by_cloid(self, cloid: str) -> VenueOrderStatus: ...
    def order_status_by_oid(self, oid: int) -> VenueOrderStatus: ...
    def fills_by_time(self, start_ms: int, end_ms: int | None = None, max_pages: int = 20) -> list[Fill]: ...
    def open_fill_stream(self, sidecar_sock: Path | None) -> FillStream | None:
        """The account's live fills: the sidecar's where it serves this account, else the venue's
        own stream; None when neither starts (fills_by_time still adopts every fill)."""
        ...


__all__ = [
    "DEFAULT_SLIPPAGE",
    "AccountState",
    "ClientOrderIds",
    "Execution",
    "ExecutorError",
    "FillStream",
    "MarketData",
    "NotSentError",
    "QueryError",
    "SendUnknownError",
    "Tif",
    "VenueOrderStatus",
    "VenuePosition",
    "VenueRejectedError",
]
