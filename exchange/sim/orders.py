"""Order records and their wire shapes (openOrders, frontendOpenOrders, orderUpdates, orderStatus)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .numfmt import fmt


@dataclass
class Order:
    oid: int
    user: str
    coin: str
    asset: int
    is_buy: bool
    limit_px: Decimal
    orig_sz: Decimal
    sz: Decimal  # remaining
    timestamp: int
    tif: str | None  # Gtc | Ioc | Alo; None for a trigger order not yet triggered
    reduce_only: bool = False
    cloid: str | None = None
    trigger_px: Decimal | None = None
    is_market: bool = False
    tpsl: str | None = None
    is_position_tpsl: bool = False
    status: str = "open"
    status_ts: int = 0
    triggered: bool = False
    parent: int | None = None  # normalTpsl children wait for the parent to fill
    children: list[int] = field(default_factory=list)
    waiting_for_parent: bool = False

    @property
    def is_trigger(self) -> bool:
        return self.trigger_px is not None

    @property
    def side(self) -> str:
        return "B" if self.is_buy else "A"

    def order_type(self) -> str:
        if not self.is_trigger:
            return "Limit" if self.tif != "FrontendMarket" else "Market"
        kind = "Take Profit" if self.tpsl == "tp" else "Stop"
        return f"{kind} {'Market' if self.is_market else 'Limit'}"

    def trigger_condition(self) -> str:
        if not self.is_trigger or self.trigger_px is None:
            return "N/A"
        return f"Price {'above' if fires_above(self) else 'below'} {fmt(self.trigger_px)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "user": self.user,
            "coin": self.coin,
            "asset": self.asset,
            "is_buy": self.is_buy,
            "limit_px": str(self.limit_px),
            "orig_sz": str(self.orig_sz),
            "sz": str(self.sz),
            "timestamp": self.timestamp,
            "tif": self.tif,
            "reduce_only": self.reduce_only,
            "cloid": self.cloid,
            "trigger_px": None if self.trigger_px is None else str(self.trigger_px),
            "is_market": self.is_market,
            "tpsl": self.tpsl,
            "is_position_tpsl": self.is_position_tpsl,
            "status": self.status,
            "status_ts": self.status_ts,
            "triggered": self.triggered,
            "parent": self.parent,
            "children": list(self.children),
            "waiting_for_parent": self.waiting_for_parent,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Order:
        return Order(
            oid=int(d["oid"]),
            user=str(d["user"]),
            coin=str(d["coin"]),
            asset=int(d["asset"]),
            is_buy=bool(d["is_buy"]),
            limit_px=Decimal(d["limit_px"]),
            orig_sz=Decimal(d["orig_sz"]),
            sz=Decimal(d["sz"]),
            timestamp=int(d["timestamp"]),
            tif=d["tif"],
            reduce_only=bool(d["reduce_only"]),
            cloid=d["cloid"],
            trigger_px=None if d["trigger_px"] is None else Decimal(d["trigger_px"]),
            is_market=bool(d["is_market"]),
            tpsl=d["tpsl"],
            is_position_tpsl=bool(d["is_position_tpsl"]),
            status=str(d["status"]),
            status_ts=int(d["status_ts"]),
            triggered=bool(d["triggered"]),
            parent=d["parent"],
            children=[int(x) for x in d["children"]],
            waiting_for_parent=bool(d["waiting_for_parent"]),
        )


def fires_above(o: Order) -> bool:
    """A trigger fires when the mark rises to the trigger price (True) or falls to it (False).

    Selling (closing a long): take profit above, stop loss below. Buying: the reverse.
    """
    return (o.tpsl == "tp") != o.is_buy


def _resting_wire(o: Order) -> dict[str, Any]:
    """The fields that open with both wire forms of a resting order, in the venue's key order."""
    return {
        "coin": o.coin,
        "side": o.side,
        "limitPx": fmt(o.limit_px),
        "sz": fmt(o.sz),
        "oid": o.oid,
        "timestamp": o.timestamp,
    }


def basic_wire(o: Order) -> dict[str, Any]:
    """``openOrders`` entry and the ``order`` of an ``orderUpdates`` push."""
    out: dict[str, Any] = {
        **_resting_wire(o),
        "origSz": fmt(o.orig_sz),
    }
    if o.cloid is not None:
        out["cloid"] = o.cloid
    if o.reduce_only:
        out["reduceOnly"] = True
    return out


def frontend_wire(o: Order) -> dict[str, Any]:
    return {
        **_resting_wire(o),
        "triggerCondition": o.trigger_condition(),
        "isTrigger": o.is_trigger and not o.triggered,
        "triggerPx": fmt(o.trigger_px) if o.trigger_px is not None else "0.0",
        "children": [],
        "isPositionTpsl": o.is_position_tpsl,
        "reduceOnly": o.reduce_only,
        "orderType": o.order_type(),
        "origSz": fmt(o.orig_sz),
        "tif": o.tif,
        "cloid": o.cloid,
    }


def update_wire(o: Order) -> dict[str, Any]:
    return {"order": basic_wire(o), "status": o.status, "statusTimestamp": o.status_ts}
