"""Cross-margin accounts: positions, average entry, PnL, margin, liquidation price. Decimal money math."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .numfmt import ZERO, fmt, fmt_usd

TAKER_FEE = Decimal("0.00045")
MAKER_FEE = Decimal("0.00015")


@dataclass
class Position:
    coin: str
    szi: Decimal = ZERO
    entry_px: Decimal = ZERO
    funding_all: Decimal = ZERO  # cumulative funding paid (positive = paid), like the venue's cumFunding
    funding_open: Decimal = ZERO
    funding_change: Decimal = ZERO


@dataclass
class Agent:
    """An API wallet approved by a master account: signs L1 actions for it, nothing else."""

    address: str
    name: str  # "" for the unnamed agent
    valid_until: int  # wall ms


@dataclass
class Account:
    address: str
    balance: Decimal = ZERO  # USDC cash: deposits + realised PnL - fees + funding
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, tuple[int, bool]] = field(default_factory=dict)  # coin -> (value, is_cross)
    cum_volume: Decimal = ZERO
    n_requests: int = 0
    schedule_cancel_at: int | None = None
    schedule_cancel_day: int = 0
    schedule_cancel_count: int = 0
    agents: dict[str, Agent] = field(default_factory=dict)  # by name; "" is the unnamed one

    def lev(self, coin: str, max_leverage: int) -> tuple[int, bool]:
        return self.leverage.get(coin, (min(20, max_leverage), True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "balance": str(self.balance),
            "positions": {
                c: [
                    str(p.szi),
                    str(p.entry_px),
                    str(p.funding_all),
                    str(p.funding_open),
                    str(p.funding_change),
                ]
                for c, p in self.positions.items()
            },
            "leverage": {c: [v, x] for c, (v, x) in self.leverage.items()},
            "cum_volume": str(self.cum_volume),
            "n_requests": self.n_requests,
            "schedule_cancel_at": self.schedule_cancel_at,
            "schedule_cancel_day": self.schedule_cancel_day,
            "schedule_cancel_count": self.schedule_cancel_count,
            "agents": {n: [a.address, a.valid_until] for n, a in self.agents.items()},
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Account:
        acct = Account(address=str(d["address"]), balance=Decimal(d["balance"]))
        for c, vals in d["positions"].items():
            szi, entry, fa, fo, fc = (Decimal(x) for x in vals)
            acct.positions[c] = Position(c, szi, entry, fa, fo, fc)
        acct.leverage = {c: (int(v), bool(x)) for c, (v, x) in d["leverage"].items()}
        acct.cum_volume = Decimal(d["cum_volume"])
        acct.n_requests = int(d["n_requests"])
        acct.schedule_cancel_at = d["schedule_cancel_at"]
        acct.schedule_cancel_day = int(d["schedule_cancel_day"])
        acct.schedule_cancel_count = int(d["schedule_cancel_count"])
        # state files written before agents existed have none
        acct.agents = {n: Agent(str(a), n, int(u)) for n, (a, u) in d.get("agents", {}).items()}
        return acct


@dataclass(frozen=True)
class MarginSummary:
    account_value: Decimal
    total_ntl_pos: Decimal
    total_raw_usd: Decimal
    total_margin_used: Decimal
    maintenance: Decimal

    def wire(self) -> dict[str, str]:
        return {
            "accountValue": fmt_usd(self.account_value),
            "totalNtlPos": fmt_usd(self.total_ntl_pos),
            "totalRawUsd": fmt_usd(self.total_raw_usd),
            "totalMarginUsed": fmt_usd(self.total_margin_used),
        }


def unrealized(p: Position, mark: Decimal) -> Decimal:
    return p.szi * (mark - p.entry_px)


def summary(acct: Account, marks: dict[str, Decimal], max_lev: dict[str, int]) -> MarginSummary:
    av = acct.balance
    ntl = ZERO
    raw = acct.balance
    used = ZERO
    maint = ZERO
    for coin, p in acct.positions.items():
        if p.szi == 0:
            continue
        mark = marks[coin]
        value = abs(p.szi) * mark
        av += unrealized(p, mark)
        ntl += value
        raw -= p.szi * mark
        lev, _ = acct.lev(coin, max_lev[coin])
        used += value / lev
        maint += value / (2 * max_lev[coin])
    return MarginSummary(av, ntl, raw, used, maint)


def liquidation_px(
    p: Position, mark: Decimal, account_value: Decimal, other_maint: Decimal, max_leverage: int
) -> Decimal | None:
    """Mark at which account value meets maintenance margin, other positions held at their marks."""
    mm_rate = Decimal(1) / (2 * max_leverage)
    denom = p.szi - abs(p.szi) * mm_rate
    if denom == 0:
        return None
    px = (p.szi * mark - account_value + other_maint) / denom
    if px <= 0:
        return None
    return px


def position_wire(
    acct: Account,
    p: Position,
    mark: Decimal,
    max_leverage: int,
    account_value: Decimal,
    total_maint: Decimal,
) -> dict[str, Any]:
    lev, is_cross = acct.lev(p.coin, max_leverage)
    value = abs(p.szi) * mark
    upnl = unrealized(p, mark)
    margin = value / lev
    roe = upnl / (abs(p.szi) * p.entry_px / lev) if p.entry_px > 0 else ZERO
    own_maint = value / (2 * max_leverage)
    liq = liquidation_px(p, mark, account_value, total_maint - own_maint, max_leverage)
    leverage: dict[str, Any] = {"type": "cross", "value": lev}
    if not is_cross:
        leverage = {"type": "isolated", "value": lev, "rawUsd": fmt_usd(-p.szi * p.entry_px + margin)}
    return {
        "type": "oneWay",
        "position": {
            "coin": p.coin,
            "szi": fmt(p.szi),
            "leverage": leverage,
            "entryPx": fmt(p.entry_px.quantize(Decimal("0.000001")) if p.entry_px else p.entry_px),
            "positionValue": fmt_usd(value),
            "unrealizedPnl": fmt_usd(upnl),
            "returnOnEquity": fmt(roe.quantize(Decimal("0.000000001"))),
            "liquidationPx": None if liq is None else fmt(liq.quantize(Decimal("0.00000001"))),
            "marginUsed": fmt_usd(margin),
            "maxLeverage": max_leverage,
            "cumFunding": {
                "allTime": fmt_usd(p.funding_all),
                "sinceOpen": fmt_usd(p.funding_open),
                "sinceChange": fmt_usd(p.funding_change),
            },
        },
    }


def fill_direction(szi_before: Decimal, is_buy: bool, sz: Decimal) -> str:
    if szi_before == 0:
        return "Open Long" if is_buy else "Open Short"
    if szi_before > 0:
        if is_buy:
            return "Open Long"
        return "Close Long" if sz <= szi_before else "Long > Short"
    if not is_buy:
        return "Open Short"
    return "Close Short" if sz <= -szi_before else "Short > Long"


def apply_fill(acct: Account, coin: str, is_buy: bool, px: Decimal, sz: Decimal, fee: Decimal) -> Decimal:
    """Update position and cash for one fill; returns the closed PnL."""
    p = acct.positions.get(coin)
    if p is None:
        p = acct.positions[coin] = Position(coin)
    delta = sz if is_buy else -sz
    before = p.szi
    closed = ZERO
    if before == 0 or (before > 0) == is_buy:
        total = abs(before) + sz
        p.entry_px = (abs(before) * p.entry_px + sz * px) / total
        if before == 0:
            p.funding_open = ZERO
    else:
        close_sz = min(sz, abs(before))
        closed = close_sz * (px - p.entry_px) * (1 if before > 0 else -1)
        if sz > abs(before):
            p.entry_px = px
            p.funding_open = ZERO
    p.szi = before + delta
    p.funding_change = ZERO
    if p.szi == 0:
        p.entry_px = ZERO
    acct.balance += closed - fee
    acct.cum_volume += px * sz
    return closed
