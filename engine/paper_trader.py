"""PaperTrader: simulated fills and the paper account (cash, positions, margin, funding).

Pure accounting, no I/O: the daemon passes an order, a quote and the time; the trader returns a
:class:`~exchange.model.Fill` (or a :class:`FillRejected`) and updates its account. Fills are market orders:

* price: the touch (ask for a buy, bid for a sell) when ``use_bbo`` and a book is known, else the
  mid moved against the taker by ``slippage_bps``; then rounded to a valid venue price, against
  the taker (exchange.meta);
* size: rounded down to the asset's ``szDecimals``; an entry under the venue's minimum notional
  (10 USD) or without enough free margin is rejected;
* fee: ``taker_fee_bps`` of the notional; margin = notional / leverage (capped at the asset's max).

Cash accounting matches the kernel's (``bt_runtime.Kernel.apply_fill``): a fill pays its fee from
cash, a reduce adds its realised PnL to cash, funding moves cash; equity = cash + unrealised PnL.
So feeding every paper fill to the kernel keeps the two accounts identical.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from exchange.meta import MIN_ORDER_NOTIONAL_USD, Meta
from exchange.model import Fill, Order, Position, Quote, Side


@dataclass(frozen=True)
class FillRejected:
    symbol: str
    intent_id: int
    reason: str


def fill_key(symbol: str, intent_id: int, ts_ms: int, is_buy: bool) -> tuple[str, int]:
    """Deterministic (fill_hash, fill_tid) of a paper fill: the same intent gives the same key."""
    digest = hashlib.sha256(f"paper|{symbol}|{intent_id}|{ts_ms}|{int(is_buy)}".encode()).hexdigest()
    return "0x" + digest[:64], int(intent_id)


@dataclass
class PaperTrader:
    meta: Meta
    balance: float
    taker_fee_bps: float = 4.5
    slippage_bps: float = 10.0
    use_bbo: bool = True
    positions: dict[str, Position] = field(default_factory=dict)

    # ---- account -----------------------------------------------------------------------------
    def equity(self, marks: dict[str, float]) -> float:
        return self.balance + sum(
            p.unrealized(marks.get(s, p.entry_price)) for s, p in self.positions.items()
        )

    def total_margin(self) -> float:
        return sum(p.margin_used for p in self.positions.values())

    def total_notional(self, marks: dict[str, float]) -> float:
        return sum(p.size * marks.get(s, p.entry_price) for s, p in self.positions.items())

    # ---- fills -------------------------------------------------------------------------------
    def fill_price(self, order: Order, quote: Quote) -> Decimal:
        touch = quote.ask if order.is_buy else quote.bid
        if self.use_bbo and touch is not None and touch > 0:
            raw = touch
        else:
            k = self.slippage_bps / 10_000.0
            raw = quote.mid * (1 + k if order.is_buy else 1 - k)
        return self.meta[order.symbol].round_price(raw, is_buy=order.is_buy)

    def execute(
        self, order: Order, quote: Quote, ts_ms: int, marks: dict[str, float] | None = None
    ) -> Fill | FillRejected:
        """Fill one order against the quote and update the account."""
        sym = order.symbol
        kernel_id = order.kernel_intent_id or 0
        if sym not in self.meta:
            return FillRejected(sym, kernel_id, "unknown_asset")
        if not (quote.mid > 0):
            return FillRejected(sym, kernel_id, "no_price")
        asset = self.meta[sym]
        pos = self.positions.get(sym)
        closing = pos is not None and (pos.side == "long") != order.is_buy
        if order.reduce_only and not closing:
            return FillRejected(sym, kernel_id, "reduce_only_without_position")
        px_d = self.fill_price(order, quote)
        size_d = asset.round_size(order.quantity)
        if closing:
            assert pos is not None
            pos_size = Decimal(repr(pos.size))
            if order.kind in ("close", "reverse") or size_d >= pos_size:
                size_d = pos_size
        if size_d <= 0:
            return FillRejected(sym, kernel_id, "size_below_lot")
        px, size = float(px_d), float(size_d)
        notional = float(px_d * size_d)
        if not closing and px_d * size_d < MIN_ORDER_NOTIONAL_USD:
            return FillRejected(sym, kernel_id, "below_min_notional")
        leverage = max(1.0, min(float(order.leverage or 1.0), float(asset.max_leverage)))
        if not closing:
            equity = self.equity(marks or {})
            if self.total_margin() + notional / leverage > equity:
                return FillRejected(sym, kernel_id, "insufficient_margin")
        fee = notional * self.taker_fee_bps / 10_000.0
        slip = (px - quote.mid) / quote.mid * 10_000.0 * (1 if order.is_buy else -1)
        self.balance -= fee
        pnl = 0.0
        if closing:
            assert pos is not None
            pnl = pos.unrealized(px) * (size / pos.size)
            self.balance += pnl
            remaining = float(Decimal(repr(pos.size)) - size_d)
            side: Side = pos.side
            lev = pos.leverage
            if remaining <= 0:
                del self.positions[sym]
                action, margin = "CLOSE", 0.0
            else:
                pos.size = remaining
                action, margin = "REDUCE", pos.margin_used
        else:
            side = "long" if order.is_buy else "short"
            if pos is None:
                pos = Position(sym, side, size, px, leverage, ts_ms, order.confidence, last_funding_ms=ts_ms)
                self.positions[sym] = pos
                action = "OPEN"
            else:
                total = float(Decimal(repr(pos.size)) + size_d)
                pos.entry_price = (pos.entry_price * pos.size + px * size) / total
                pos.size = total
                pos.adds += 1
                pos.last_add_ms = ts_ms
                action = "ADD"
            lev = pos.leverage
            margin = pos.margin_used
        fhash, tid = fill_key(sym, kernel_id, ts_ms, order.is_buy)
        # A paper fill: no venue order ids or record; its float fee and PnL as exact decimals.
        return Fill(
            symbol=sym, is_buy=order.is_buy, size=size_d, price=px_d, ts_ms=ts_ms, fee=Decimal(repr(fee)),
            pnl=Decimal(repr(pnl)), fill_hash=fhash, fill_tid=tid, action=action, position_side=side,
            ref_price=quote.mid, slippage_bps=slip, leverage=lev, margin_used=margin, intent_id=kernel_id,
            reason_code=order.reason_code, confidence=order.confidence, balance_after=self.balance,
        )  # fmt: skip

    # ---- funding -----------------------------------------------------------------------------
    def apply_funding(self, symbol: str, rate: float, mark: float, ts_ms: int) -> float:
        """Funding at the venue's rate: longs pay a positive rate, shorts receive it. Returns the
        cash change (negative when paid); 0 without a position or for a time already applied."""
        pos = self.positions.get(symbol)
        if pos is None or ts_ms <= pos.last_funding_ms:
            return 0.0
        payment = -pos.sign * pos.size * mark * rate
        self.balance += payment
        pos.last_funding_ms = ts_ms
        return payment

    # ---- persistence ------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {"balance": self.balance, "positions": {s: asdict(p) for s, p in self.positions.items()}},
            sort_keys=True,
        )

    def load_json(self, text: str) -> None:
        d: dict[str, Any] = json.loads(text)
        self.balance = float(d["balance"])
        self.positions = {s: Position(**p) for s, p in d.get("positions", {}).items()}


__all__ = ["FillRejected", "PaperTrader", "fill_key"]
