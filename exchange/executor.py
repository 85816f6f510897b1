"""Hyperliquid executor over the official SDK (``hyperliquid-python-sdk``).

Orders are built with the SDK's own wire and signing helpers and posted through its ``Exchange``;
only two things are ours:

* **Exact rounding** in ``Decimal`` (``exchange/meta.py``): prices to 5 significant figures and at
  most ``6 - szDecimals`` decimals (integers always allowed), sizes down to ``szDecimals``. The SDK
  rounds floats and does not round sizes at all (protocol notes §5, §12.2).
* **Nonces** that never repeat, within a process or across a restart: ``max(now_ms, last + 1)``,
  persisted *before* use through a :class:`NonceStore` (the SDK uses the wall-clock millisecond,
  which collides on two actions in one millisecond and can go backwards after a restart).

Send outcomes are classified so callers can decide what is safe to retry:

* :class:`NotSentError`: the venue did not process the action (connect timeout, HTTP 429, an
  ``Invalid nonce`` answer). Retrying is safe.
* :class:`SendUnknownError`: the action may have been processed (read timeout, connection dropped
  after the request went out, HTTP 5xx). Never resend blindly: resolve with
  :meth:`HyperliquidExecutor.order_status_by_cloid`.
* :class:`VenueRejectedError`: the venue answered ``status: err`` for another reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import requests
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.constants import MAINNET_API_URL
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from exchange.hl_fills import parse_fill
from exchange.meta import (
    PERP_MAX_DECIMALS,
    PRICE_SIG_FIGS,
    AssetMeta,
    Meta,
    is_valid_price,
    price_decimals,
    round_price,
    round_size,
    slippage_price,
)
from exchange.model import Fill, Kind, Order
from exchange.retry import Backoff
from exchange.venue import (
    DEFAULT_SLIPPAGE,
    AccountState,
    ExecutorError,
    FillStream,
    NotSentError,
    QueryError,
    SendUnknownError,
    Tif,
    VenueOrderStatus,
    VenuePosition,
    VenueRejectedError,
)
from exchange.venue_clock import VenueClock
from exchange.venue_errors import classify
from exchange.ws import open_user_fills


def wire_float(x: Decimal) -> float:
    """The float the SDK's ``float_to_wire`` turns back into exactly ``x`` (checked)."""
    f = float(x)
    if Decimal(f"{f:.8f}").normalize() != x.normalize():
        raise ValueError(f"{x} does not survive the SDK's 8-decimal wire format")
    return f


# ---- nonces ----------------------------------------------------------------------------------


class NonceStore(Protocol):
    def load_nonce(self) -> int: ...
    def save_nonce(self, nonce: int) -> None: ...


class MemoryNonceStore:
    def __init__(self, start: int = 0) -> None:
        self.value = start

    def load_nonce(self) -> int:
        return self.value

    def save_nonce(self, nonce: int) -> None:
        self.value = nonce


class MonotonicNonce:
    """``max(now_ms, last + 1)``; the new value is persisted before it is handed out."""

    def __init__(self, store: NonceStore, clock_ms: Callable[[], int] | None = None) -> None:
        self._store = store
        self._clock = clock_ms or (lambda: int(time.time() * 1000))
        self._lock = threading.Lock()
        self._last = store.load_nonce()

    @property
    def last(self) -> int:
        return self._last

    def next(self) -> int:
        with self._lock:
            n = max(self._clock(), self._last + 1)
            self._store.save_nonce(n)
            self._last = n
            return n


def _d(x: Any) -> Decimal:
    return Decimal(str(x))


def placed_status(resp: Any, symbol: str, size: Decimal, cloid: str | None = None) -> VenueOrderStatus:
    """The first order status of an ``order`` action answer, as the order's status at the venue
    (``filled`` with the total and average price, ``open`` when it rests, ``rejected`` with the
    venue's reason); ``size`` is the size sent."""
    if not isinstance(resp, dict):
        raise VenueRejectedError(f"unexpected answer: {str(resp)[:200]}")
    if resp.get("status") != "ok":
        msg = str(resp.get("response"))
        if msg.startswith("Invalid nonce"):
            raise NotSentError(msg)
        raise VenueRejectedError(msg[:300])
    statuses = resp["response"]["data"]["statuses"]
    st = statuses[0] if statuses else {"error": "empty statuses"}
    if isinstance(st, dict) and "filled" in st:
        f = st["filled"]
        total = _d(f["totalSz"])
        return VenueOrderStatus(
            "filled", int(f["oid"]), f.get("cloid", cloid), symbol, size, size - total, _d(f["avgPx"])
        )
    if isinstance(st, dict) and "resting" in st:
        r = st["resting"]
        return VenueOrderStatus("open", int(r["oid"]), r.get("cloid", cloid), symbol, size, size)
    error = str(st["error"]) if isinstance(st, dict) and "error" in st else f"unexpected status {st!r}"[:300]
    return VenueOrderStatus("rejected", cloid=cloid, symbol=symbol, orig_sz=size, error=error)


def _order(symbol: str, is_buy: bool, size: Decimal, reduce_only: bool) -> Order:
    """A hand-made order (the convenience calls below): no kernel decision behind it."""
    kind: Kind = "close" if reduce_only else "open"
    return Order(symbol, kind, "long" if is_buy else "short", size, 0, reduce_only=reduce_only)


def _transient(exc: BaseException) -> bool:
    """Worth another try for a read: no answer, a 5xx, or a 429 (any other 4xx will not change)."""
    if isinstance(exc, ClientError):
        return getattr(exc, "status_code", None) == 429
    return isinstance(exc, (ServerError, requests.RequestException))


# ---- executor --------------------------------------------------------------------------------


class HyperliquidExecutor:
    """Orders, cancels, leverage and account queries for one account."""

    def __init__(
        self,
        wallet: LocalAccount,
        base_url: str,
        nonce: MonotonicNonce,
        *,
        account_address: str | None = None,
        timeout: float = 10.0,
        query_retries: int = 3,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        self._wallet = wallet
        self.base_url = base_url
        self.address = (account_address or wallet.address).lower()  # the account traded
        self.signer = wallet.address.lower()  # the key that signs: the account's or an API wallet's
        self._nonce = nonce
        self._is_mainnet = base_url == MAINNET_API_URL
        self._query_retry = Backoff(retries=query_retries, first_s=0.05, max_s=1.0)
        self._crash = crash_hook or (lambda _name: None)
        self.clock = VenueClock()  # learns the venue's clock rate from venue_time_ms()
        self._ex = self._retry_query(
            lambda: Exchange(wallet, base_url, account_address=account_address, timeout=timeout)
        )
        self.info: Info = self._ex.info
        self.meta = Meta.from_wire(self._retry_query(self.info.meta))
        self.assets: dict[str, AssetMeta] = self.meta.assets

    def __repr__(self) -> str:
        return f"HyperliquidExecutor(address={self.address}, base_url={self.base_url})"

    # ---- helpers ---------------------------------------------------------------------------
    def asset(self, symbol: str) -> AssetMeta:
        try:
            return self.assets[symbol]
        except KeyError:
            raise ExecutorError(f"unknown symbol {symbol}") from None

    def _retry_query(self, fn: Callable[[], Any]) -> Any:
        """Read-only calls are safe to repeat: 429, 5xx and timeouts get the query retry policy's
        tries (exchange/retry.py). The error raised after them says what failed
        (:class:`QueryError`, a 429 keeps its status)."""
        try:
            return self._query_retry.call(fn, retryable=_transient)
        except (ClientError, ServerError, requests.RequestException) as exc:
            raise QueryError(classify(exc, self.base_url)) from None

    def _post(self, action: dict[str, Any]) -> Any:
        nonce = self._nonce.next()
        sig = sign_l1_action(self._wallet, action, None, nonce, None, self._is_mainnet)
        try:
            return self._ex._post_action(action, sig, nonce)
        except requests.ConnectTimeout:
            raise NotSentError("connect timeout") from None
        except requests.ConnectionError as exc:
            if "refused" in str(exc).lower():
                raise NotSentError("connection refused") from None
            raise SendUnknownError("connection dropped") from None
        except requests.Timeout:
            raise SendUnknownError("read timeout") from None
        except ServerError as exc:
            raise SendUnknownError(f"HTTP {exc.status_code}") from None
        except ClientError as exc:
            if exc.status_code == 429:
                raise NotSentError("HTTP 429 rate limited") from None
            raise VenueRejectedError(f"HTTP {exc.status_code}") from None

    # ---- market data -----------------------------------------------------------------------
    def mid(self, symbol: str) -> Decimal:
        mids = self._retry_query(self.info.all_mids)
        if symbol not in mids:
            raise ExecutorError(f"no mid for {symbol}")
        return _d(mids[symbol])

    def slippage_price(
        self, symbol: str, is_buy: bool, slippage: Decimal = DEFAULT_SLIPPAGE, ref_px: Decimal | None = None
    ) -> Decimal:
        ref = ref_px if ref_px is not None else self.mid(symbol)
        return slippage_price(ref, is_buy, slippage, self.asset(symbol).sz_decimals)

    # ---- orders ----------------------------------------------------------------------------
    def place(
        self, order: Order, limit_px: Decimal, *, tif: Tif = "Ioc", cloid: str | None = None
    ) -> VenueOrderStatus:
        """Round, sign and send one order. Raises NotSent/SendUnknown/VenueRejected errors."""
        meta = self.asset(order.symbol)
        sz = round_size(order.quantity, meta.sz_decimals)
        px = round_price(limit_px, meta.sz_decimals)
        if sz <= 0:
            error = f"size rounds to zero at {meta.sz_decimals} decimals"
            return VenueOrderStatus("rejected", cloid=cloid, symbol=order.symbol, error=error)
        req: dict[str, Any] = {
            "coin": order.symbol,
            "is_buy": order.is_buy,
            "sz": wire_float(sz),
            "limit_px": wire_float(px),
            "order_type": {"limit": {"tif": tif}},
            "reduce_only": order.reduce_only,
        }
        if cloid is not None:
            req["cloid"] = Cloid.from_str(cloid)
        action = order_wires_to_order_action([order_request_to_order_wire(req, meta.asset)])
        resp = self._post(action)
        self._crash("after_send")
        return placed_status(resp, order.symbol, sz, cloid)

    def market_open(
        self,
        symbol: str,
        is_buy: bool,
        size: Decimal,
        *,
        slippage: Decimal = DEFAULT_SLIPPAGE,
        ref_px: Decimal | None = None,
        cloid: str | None = None,
    ) -> VenueOrderStatus:
        px = self.slippage_price(symbol, is_buy, slippage, ref_px)
        return self.place(_order(symbol, is_buy, size, False), px, cloid=cloid)

    def market_close(
        self,
        symbol: str,
        size: Decimal | None = None,
        *,
        slippage: Decimal = DEFAULT_SLIPPAGE,
        ref_px: Decimal | None = None,
        cloid: str | None = None,
    ) -> VenueOrderStatus | None:
        """Reduce-only IOC against the current position; None when there is none."""
        pos = self.positions().get(symbol)
        if pos is None or pos.size == 0:
            return None
        is_buy = pos.size < 0
        sz = abs(pos.size) if size is None else min(size, abs(pos.size))
        px = self.slippage_price(symbol, is_buy, slippage, ref_px)
        return self.place(_order(symbol, is_buy, sz, True), px, cloid=cloid)

    def limit(
        self,
        symbol: str,
        is_buy: bool,
        size: Decimal,
        px: Decimal,
        *,
        tif: Tif = "Gtc",
        reduce_only: bool = False,
        cloid: str | None = None,
    ) -> VenueOrderStatus:
        return self.place(_order(symbol, is_buy, size, reduce_only), px, tif=tif, cloid=cloid)

    def cancel(self, symbol: str, oid: int) -> bool:
        action = {"type": "cancel", "cancels": [{"a": self.asset(symbol).asset, "o": int(oid)}]}
        return self._cancel_result(self._post(action))

    def cancel_by_cloid(self, symbol: str, cloid: str) -> bool:
        action = {"type": "cancelByCloid", "cancels": [{"asset": self.asset(symbol).asset, "cloid": cloid}]}
        return self._cancel_result(self._post(action))

    @staticmethod
    def _cancel_result(resp: Any) -> bool:
        if not isinstance(resp, dict) or resp.get("status") != "ok":
            msg = str(resp.get("response") if isinstance(resp, dict) else resp)
            if msg.startswith("Invalid nonce"):
                raise NotSentError(msg)
            raise VenueRejectedError(msg[:300])
        statuses = resp["response"]["data"]["statuses"]
        return bool(statuses) and statuses[0] == "success"

    def update_leverage(self, symbol: str, leverage: int, *, cross: bool = True) -> None:
        action = {
            "type": "updateLeverage",
            "asset": self.asset(symbol).asset,
            "isCross": cross,
            "leverage": int(leverage),
        }
        self._expect_ok(self._post(action))

    def schedule_cancel(self, at_ms: int | None) -> None:
        """Dead man's switch: cancel every open order at ``at_ms`` (>= 5 s ahead); None unsets."""
        action: dict[str, Any] = {"type": "scheduleCancel"}
        if at_ms is not None:
            action["time"] = int(at_ms)
        self._expect_ok(self._post(action))

    @staticmethod
    def _expect_ok(resp: Any) -> None:
        if not isinstance(resp, dict) or resp.get("status") != "ok":
            msg = str(resp.get("response") if isinstance(resp, dict) else resp)
            if msg.startswith("Invalid nonce"):
                raise NotSentError(msg)
            raise VenueRejectedError(msg[:300])

    def open_fill_stream(self, sidecar_sock: Path | None) -> FillStream | None:
        return open_user_fills(sidecar_sock, self.address, self.base_url)

    # ---- account queries -------------------------------------------------------------------
    def account(self) -> AccountState:
        st = self._retry_query(lambda: self.info.user_state(self.address))
        positions: dict[str, VenuePosition] = {}
        for ap in st.get("assetPositions", []):
            p = ap["position"]
            size = _d(p["szi"])
            if size == 0:
                continue
            lev = p.get("leverage") or {}
            positions[p["coin"]] = VenuePosition(
                p["coin"],
                size,
                _d(p.get("entryPx") or 0),
                _d(p.get("unrealizedPnl") or 0),
                int(lev.get("value", 1)),
            )
        ms = st.get("marginSummary", {})
        return AccountState(
            _d(ms.get("accountValue", 0)),
            _d(st.get("withdrawable", 0)),
            _d(ms.get("totalMarginUsed", 0)),
            positions,
        )

    def api_wallets(self) -> list[str]:
        """Addresses of the account's approved API wallets (``extraAgents``), lower-case."""
        rows = self._retry_query(lambda: self.info.extra_agents(self.address))
        return [str(r["address"]).lower() for r in rows or [] if isinstance(r, dict) and r.get("address")]

    def venue_time_ms(self) -> int:
        """The venue's clock (``exchangeStatus``), or ours when it does not say."""
        st = self._retry_query(lambda: self.info.post("/info", {"type": "exchangeStatus"}))
        if isinstance(st, dict) and isinstance(st.get("time"), int):
            self.clock.observe(int(st["time"]))
            return int(st["time"])
        return int(time.time() * 1000)

    def venue_span_ms(self, wall_ms: float) -> int:
        """A span of our clock in the venue's ms: ``wall_ms`` x the venue's clock rate (a local
        exchange with ``--speed N`` runs N times faster; 1 on the real venue)."""
        return self.clock.venue_span_ms(wall_ms)

    def positions(self) -> Mapping[str, VenuePosition]:
        return self.account().positions

    def open_orders(self) -> list[dict[str, Any]]:
        return list(self._retry_query(lambda: self.info.frontend_open_orders(self.address)))

    def order_status_by_cloid(self, cloid: str) -> VenueOrderStatus:
        raw = self._retry_query(lambda: self.info.query_order_by_cloid(self.address, Cloid.from_str(cloid)))
        return self._order_status(raw)

    def order_status_by_oid(self, oid: int) -> VenueOrderStatus:
        return self._order_status(self._retry_query(lambda: self.info.query_order_by_oid(self.address, oid)))

    @staticmethod
    def _order_status(raw: Any) -> VenueOrderStatus:
        if not isinstance(raw, dict) or raw.get("status") != "order":
            return VenueOrderStatus(None)
        o = raw["order"]["order"]
        return VenueOrderStatus(
            status=str(raw["order"]["status"]),
            oid=int(o["oid"]),
            cloid=o.get("cloid"),
            symbol=o.get("coin"),
            orig_sz=_d(o["origSz"]) if "origSz" in o else None,
            remaining_sz=_d(o["sz"]) if "sz" in o else None,
        )

    def _fills_page(self, start: int, end_ms: int | None) -> list[dict[str, Any]]:
        return list(self._retry_query(lambda: self.info.user_fills_by_time(self.address, start, end_ms)))

    def fills_by_time(self, start_ms: int, end_ms: int | None = None, max_pages: int = 20) -> list[Fill]:
        """Every fill from ``start_ms`` on, paginated by the last timestamp (bounded pages)."""
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        start = start_ms
        for _ in range(max_pages):
            page = self._fills_page(start, end_ms)
            fresh = [f for f in page if (str(f.get("hash")), int(f.get("tid", 0))) not in seen]
            for f in fresh:
                seen.add((str(f.get("hash")), int(f.get("tid", 0))))
            out.extend(fresh)
            if len(page) < 2000 or not fresh:
                break
            start = int(page[-1]["time"])
        return [parse_fill(f) for f in out]


__all__ = [  # the rounding helpers live in exchange/meta.py; re-exported for the executor's callers
    "DEFAULT_SLIPPAGE",
    "PERP_MAX_DECIMALS",
    "PRICE_SIG_FIGS",
    "AccountState",
    "AssetMeta",
    "ExecutorError",
    "FillStream",
    "HyperliquidExecutor",
    "MemoryNonceStore",
    "MonotonicNonce",
    "NonceStore",
    "NotSentError",
    "QueryError",
    "SendUnknownError",
    "Tif",
    "VenueOrderStatus",
    "VenuePosition",
    "VenueRejectedError",
    "is_valid_price",
    "placed_status",
    "price_decimals",
    "round_price",
    "round_size",
    "slippage_price",
    "wire_float",
]
