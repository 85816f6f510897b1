"""The venue's state machine: order placement and matching, resting fills, triggers, funding, liquidation.

Everything here runs on one thread (the server's event loop); callers bring the engine up to the
clock with :meth:`Engine.advance_to` before acting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from . import rules
from .accounts import (
    MAKER_FEE,
    TAKER_FEE,
    Account,
    apply_fill,
    fill_direction,
    position_wire,
    summary,
)
from .book import BookParams, Level, synthetic_levels
from .data import DAY_MS, HOUR_MS
from .market import Market
from .numfmt import ZERO, fmt, fmt_rate, fmt_usd, parse_decimal, to_decimal
from .orders import Order, basic_wire, fires_above, update_wire

STEP_MS = 60_000
ZERO_HASH = "0x" + "00" * 32
NULL_ADDRESS = "0x0000000000000000000000000000000000000000"
TRIGGER_SLIPPAGE = Decimal("0.10")

ERR_MARGIN = "Insufficient margin to place order."
ERR_REDUCE_ONLY = "Reduce only order would increase position."
ERR_IOC = "Order could not immediately match against any resting orders."
ERR_NO_LIQUIDITY = "No liquidity available for market order."
ERR_CANCEL = "Order was never placed, already canceled, or filled."
ERR_MODIFY = "Cannot modify canceled or filled order"
ERR_TPSL = "Invalid TP/SL price."
ERR_TRIGGER_COUNT = "Unexpected number of trigger orders"
ERR_DESERIALIZE = "Failed to deserialize the JSON body into the target type"
# Limits the protocol reference does not state; the venue is assumed to refuse past them
# (docs/local-exchange.md lists them).
MAX_BATCH = 1000  # orders, cancels or modifies in one action (the open-order cap)
MAX_SCHEDULE_AHEAD_MS = DAY_MS
ERR_SCHEDULE_TOO_LATE = "Scheduled cancel time too far in the future, must be at most 24 hours from now."


def _batch(items: Any, what: str) -> list[Any]:
    """The action's list, or the top-level error for a non-list or one past :data:`MAX_BATCH`."""
    if not isinstance(items, list):
        raise ActionError(ERR_DESERIALIZE)
    if len(items) > MAX_BATCH:
        raise ActionError(f"Too many {what} in one action: {len(items)} > {MAX_BATCH}.")
    return items


def _statuses(items: Any, what: str, not_an_object: str, each: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """The per-item statuses of a batch action (``cancel``, ``modify``), in order: ``each(item)``, or
    ``{"error": not_an_object}`` for an item that is not a JSON object."""
    return [each(x) if isinstance(x, dict) else {"error": not_an_object} for x in _batch(items, what)]


class ActionError(Exception):
    """A top-level ``{"status":"err","response": msg}`` answer."""


@dataclass
class Event:
    kind: str  # fills | orderUpdates | funding | liquidation | nonUserCancel | trades
    key: str  # user address, or coin for trades
    data: Any


@dataclass
class Depletion:
    bb: Decimal = ZERO
    ba: Decimal = ZERO
    taken: dict[Decimal, Decimal] = field(default_factory=dict)


@dataclass
class Candidate:
    px: Decimal
    avail: Decimal
    maker: Order | None  # None = synthetic liquidity


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=32).digest()


class Engine:
    def __init__(self, market: Market, now_ms: int, book: BookParams | None = None, seed: int = 0) -> None:
        self.market = market
        self.book_params = book or BookParams(seed=seed)
        self.seed = seed
        self.t = now_ms
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        self.resting: dict[str, list[Order]] = {a.name: [] for a in market.assets}
        self.triggers: dict[str, list[Order]] = {a.name: [] for a in market.assets}
        self.cloids: dict[tuple[str, str], int] = {}
        self.fills: dict[str, list[dict[str, Any]]] = {}
        self.fundings: dict[str, list[dict[str, Any]]] = {}
        self.next_oid = 1_000_000_000
        self.next_tid = 100_000_000_000_000
        self.next_lid = 1
        self.events: list[Event] = []
        self.depletion: dict[str, Depletion] = {}
        self.frozen: dict[str, Decimal] | None = None
        self.dirty_accounts: set[str] = set()
        self.dirty_orders: set[int] = set()
        self.new_fills: list[tuple[str, dict[str, Any]]] = []
        self.new_fundings: list[tuple[str, dict[str, Any]]] = []
        self.liquidations_enabled = True
        self._book_cache: dict[str, tuple[tuple[Decimal, int], tuple[list[Level], list[Level]]]] = {}

    # ---- market view ------------------------------------------------------------------------
    def asset(self, index: int) -> Any:
        if not 0 <= index < len(self.market.assets):
            return None
        return self.market.assets[index]

    def oracle(self, coin: str, t: int | None = None) -> Decimal:
        if self.frozen is not None and coin in self.frozen:
            return self.frozen[coin]
        return self.market.price(coin, self.t if t is None else t)

    def freeze(self, on: bool) -> None:
        self.frozen = {a.name: self.oracle(a.name) for a in self.market.assets} if on else None

    def _book_key(self, coin: str, t: int) -> int:
        return t // self.market.by_name[coin].bars.interval_ms

    def synthetic(self, coin: str, t: int | None = None) -> tuple[list[Level], list[Level]]:
        """Synthetic levels net of what takers consumed since the book last moved."""
        t = self.t if t is None else t
        a = self.market.by_name[coin]
        bids, asks = synthetic_levels(
            coin, self.oracle(coin, t), a.sz_decimals, self.book_params, self._book_key(coin, t)
        )
        if not bids or not asks:
            return bids, asks
        dep = self.depletion.get(coin)
        if dep is None or dep.bb != bids[0].px or dep.ba != asks[0].px:
            self.depletion[coin] = Depletion(bids[0].px, asks[0].px)
            return bids, asks

        def net(levels: list[Level]) -> list[Level]:
            out = []
            for lv in levels:
                left = lv.sz - dep.taken.get(lv.px, ZERO)
                if left > 0:
                    out.append(Level(lv.px, left, lv.n))
            return out

        return net(bids), net(asks)

    def l2(self, coin: str, depth: int = 20) -> tuple[list[Level], list[Level]]:
        """Displayed book: synthetic levels merged with resting user orders."""
        bids, asks = self.synthetic(coin)
        agg: list[dict[Decimal, list[Decimal]]] = [{}, {}]
        for lv_side, levels in ((0, bids), (1, asks)):
            for lv in levels:
                agg[lv_side][lv.px] = [lv.sz, Decimal(lv.n)]
        for o in self.resting[coin]:
            side = 0 if o.is_buy else 1
            cur = agg[side].setdefault(o.limit_px, [ZERO, ZERO])
            cur[0] += o.sz
            cur[1] += 1
        out_b = [Level(px, v[0], int(v[1])) for px, v in sorted(agg[0].items(), reverse=True)]
        out_a = [Level(px, v[0], int(v[1])) for px, v in sorted(agg[1].items())]
        return out_b[:depth], out_a[:depth]

    def bbo(self, coin: str) -> tuple[Level | None, Level | None]:
        bids, asks = self.l2(coin, 1)
        return (bids[0] if bids else None), (asks[0] if asks else None)

    def mid(self, coin: str) -> Decimal:
        bid, ask = self.bbo(coin)
        if bid is None or ask is None:
            return self.oracle(coin)
        return (bid.px + ask.px) / 2

    def mark(self, coin: str) -> Decimal:
        bids, asks = self.synthetic(coin)
        if not bids or not asks:
            return self.oracle(coin)
        return (bids[0].px + asks[0].px) / 2

    def marks(self) -> dict[str, Decimal]:
        return {a.name: self.mark(a.name) for a in self.market.assets}

    def max_levs(self) -> dict[str, int]:
        return {a.name: a.max_leverage for a in self.market.assets}

    # ---- accounts ---------------------------------------------------------------------------
    def deposit(self, user: str, usd: Decimal) -> Account:
        user = user.lower()
        acct = self.accounts.get(user)
        if acct is None:
            acct = self.accounts[user] = Account(address=user)
        acct.balance += usd
        self.dirty_accounts.add(user)
        return acct

    def open_orders_of(self, user: str) -> list[Order]:
        out = [o for lst in self.resting.values() for o in lst if o.user == user]
        out += [o for lst in self.triggers.values() for o in lst if o.user == user]
        out.sort(key=lambda o: o.oid, reverse=True)
        return out

    def order_margin(self, acct: Account) -> Decimal:
        total = ZERO
        for lst in self.resting.values():
            for o in lst:
                if o.user == acct.address and not o.reduce_only:
                    lev, _ = acct.lev(o.coin, self.market.by_name[o.coin].max_leverage)
                    total += o.limit_px * o.sz / lev
        return total

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        acct = self.accounts.get(user.lower()) or Account(address=user.lower())
        marks = self.marks()
        levs = self.max_levs()
        s = summary(acct, marks, levs)
        positions = [
            position_wire(acct, p, marks[c], levs[c], s.account_value, s.maintenance)
            for c, p in acct.positions.items()
            if p.szi != 0
        ]
        withdrawable = max(ZERO, s.account_value - s.total_margin_used - self.order_margin(acct))
        return {
            "marginSummary": s.wire(),
            "crossMarginSummary": s.wire(),
            "crossMaintenanceMarginUsed": fmt_usd(s.maintenance),
            "withdrawable": fmt_usd(withdrawable),
            "assetPositions": positions,
            "time": self.t,
        }

    # ---- ids --------------------------------------------------------------------------------
    def _oid(self) -> int:
        self.next_oid += 1
        return self.next_oid

    def _tid(self) -> int:
        self.next_tid += 1
        return self.next_tid

    def new_tid(self) -> int:
        """A fresh trade id (also used for anonymous replay trades)."""
        return self._tid()

    def _set_status(self, o: Order, status: str, push: bool = True) -> None:
        o.status = status
        o.status_ts = self.t
        self.dirty_orders.add(o.oid)
        if push:
            self.events.append(Event("orderUpdates", o.user, [update_wire(o)]))

    # ---- fills ------------------------------------------------------------------------------
    def _record_fill(
        self, user: str, o: Order, px: Decimal, sz: Decimal, crossed: bool, tid: int
    ) -> dict[str, Any]:
        acct = self.accounts[user]
        before = acct.positions[o.coin].szi if o.coin in acct.positions else ZERO
        fee = (px * sz * (TAKER_FEE if crossed else MAKER_FEE)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
        closed = apply_fill(acct, o.coin, o.is_buy, px, sz, fee)
        fill = {
            "coin": o.coin,
            "px": fmt(px),
            "sz": fmt(sz),
            "side": o.side,
            "time": self.t,
            "startPosition": fmt(before),
            "dir": fill_direction(before, o.is_buy, sz),
            "closedPnl": fmt_usd(closed),
            "hash": "0x" + _digest(self.seed, "fill", tid, user).hex(),
            "oid": o.oid,
            "crossed": crossed,
            "fee": fmt_usd(fee),
            "tid": tid,
            "cloid": o.cloid,
            "feeToken": "USDC",
            "twapId": None,
        }
        if o.cloid is None:
            del fill["cloid"]
        self.fills.setdefault(user, []).append(fill)
        self.new_fills.append((user, fill))
        self.dirty_accounts.add(user)
        return fill

    def _emit_fills(self, by_user: dict[str, list[dict[str, Any]]]) -> None:
        for user, fills in by_user.items():
            if fills:
                self.events.append(Event("fills", user, fills))

    def _trade(self, coin: str, taker: Order, px: Decimal, sz: Decimal, maker_user: str, tid: int) -> None:
        buyer, seller = (taker.user, maker_user) if taker.is_buy else (maker_user, taker.user)
        self.events.append(
            Event(
                "trades",
                coin,
                [
                    {
                        "coin": coin,
                        "side": taker.side,
                        "px": fmt(px),
                        "sz": fmt(sz),
                        "hash": "0x" + _digest(self.seed, "fill", tid, taker.user).hex(),
                        "time": self.t,
                        "tid": tid,
                        "users": [buyer, seller],
                    }
                ],
            )
        )

    # ---- matching ---------------------------------------------------------------------------
    def _candidates(self, o: Order, limit: Decimal) -> list[Candidate]:
        bids, asks = self.synthetic(o.coin)
        levels = asks if o.is_buy else bids
        cands = [Candidate(lv.px, lv.sz, None) for lv in levels]
        for m in self.resting[o.coin]:
            if m.is_buy != o.is_buy:
                cands.append(Candidate(m.limit_px, m.sz, m))
        if o.is_buy:
            cands = [c for c in cands if c.px <= limit]
            cands.sort(key=lambda c: (c.px, c.maker is None, c.maker.oid if c.maker else 0))
        else:
            cands = [c for c in cands if c.px >= limit]
            cands.sort(key=lambda c: (-c.px, c.maker is None, c.maker.oid if c.maker else 0))
        return cands

    def _take(
        self, o: Order, limit: Decimal, fills: dict[str, list[dict[str, Any]]]
    ) -> tuple[Decimal, Decimal]:
        """Match ``o`` as taker up to ``limit``; returns (filled size, notional)."""
        filled = ZERO
        notional = ZERO
        for c in self._candidates(o, limit):
            if o.sz <= 0:
                break
            m = c.maker
            if m is not None and m.user == o.user:
                self._remove_resting(m)
                self._set_status(m, "selfTradeCanceled")
                continue
            qty = min(o.sz, c.avail)
            if qty <= 0:
                continue
            tid = self._tid()
            fills.setdefault(o.user, []).append(self._record_fill(o.user, o, c.px, qty, True, tid))
            if m is None:
                dep = self.depletion.setdefault(o.coin, Depletion())
                dep.taken[c.px] = dep.taken.get(c.px, ZERO) + qty
                maker_user = NULL_ADDRESS
            else:
                maker_user = m.user
                fills.setdefault(m.user, []).append(
                    self._record_fill(m.user, m, c.px, qty, False, self._tid())
                )
                m.sz -= qty
                if m.sz <= 0:
                    self._remove_resting(m)
                    self._set_status(m, "filled")
                    self._activate_children(m)
                else:
                    self.dirty_orders.add(m.oid)
            self._trade(o.coin, o, c.px, qty, maker_user, tid)
            o.sz -= qty
            filled += qty
            notional += qty * c.px
        if filled > 0:
            self.dirty_orders.add(o.oid)
        return filled, notional

    def _remove_resting(self, o: Order) -> None:
        lst = self.resting.get(o.coin, [])
        if o in lst:
            lst.remove(o)
        tl = self.triggers.get(o.coin, [])
        if o in tl:
            tl.remove(o)

    def _position(self, user: str, coin: str) -> Decimal:
        acct = self.accounts.get(user)
        if acct is None or coin not in acct.positions:
            return ZERO
        return acct.positions[coin].szi

    def _margin_ok(self, acct: Account, coin: str, is_buy: bool, sz: Decimal, px: Decimal) -> bool:
        szi = acct.positions[coin].szi if coin in acct.positions else ZERO
        after = szi + (sz if is_buy else -sz)
        increase = max(ZERO, abs(after) - abs(szi))
        if increase == 0:
            return True
        a = self.market.by_name[coin]
        lev, _ = acct.lev(coin, a.max_leverage)
        s = summary(acct, self.marks(), self.max_levs())
        available = s.account_value - s.total_margin_used - self.order_margin(acct)
        return increase * px / lev <= available

    # ---- placing ----------------------------------------------------------------------------
    def place_orders(self, user: str, orders: Any, grouping: Any) -> list[Any]:
        """The ``order`` action. Returns the per-order statuses."""
        orders = _batch(orders, "orders")
        if grouping not in ("na", "normalTpsl", "positionTpsl") and not (
            isinstance(grouping, dict) and isinstance(grouping.get("p"), int)
        ):
            raise ActionError("Failed to deserialize the JSON body into the target type")
        parsed: list[Order | str] = [self._parse_order(user, w) for w in orders]
        if grouping in ("normalTpsl", "positionTpsl"):
            trig = [p for p in parsed if isinstance(p, Order) and p.is_trigger]
            if grouping == "normalTpsl" and (len(parsed) < 2 or len(trig) != len(parsed) - 1):
                return [{"error": ERR_TRIGGER_COUNT}]
            if grouping == "positionTpsl" and len(trig) != len(parsed):
                return [{"error": ERR_TRIGGER_COUNT}]
            for tp in trig:
                if not tp.reduce_only:
                    return [{"error": ERR_TPSL}]
        statuses: list[Any] = []
        parent: Order | None = None
        for i, p in enumerate(parsed):
            if isinstance(p, str):
                statuses.append({"error": p})
                continue
            if grouping == "normalTpsl" and i > 0 and parent is not None:
                statuses.append(self._attach_child(parent, p))
                continue
            if grouping == "positionTpsl":
                p.is_position_tpsl = True
            st = self._submit(p)
            statuses.append(st)
            if i == 0:
                parent = p if "error" not in st else None
        return statuses

    def _parse_order(self, user: str, w: Any) -> Order | str:
        if not isinstance(w, dict):
            return "Failed to deserialize order"
        raw_asset = w.get("a")
        a = self.asset(raw_asset) if isinstance(raw_asset, int) else None
        if a is None:
            return "Order has invalid asset."
        px = parse_decimal(w.get("p"))
        sz = parse_decimal(w.get("s"))
        if px is None:
            return rules.ERR_INVALID_PRICE
        if sz is None:
            return rules.ERR_INVALID_SIZE
        err = rules.price_error(px, a.sz_decimals) or rules.size_error(sz, a.sz_decimals)
        if err:
            return err
        t = w.get("t")
        cloid = w.get("c")
        if cloid is not None and (
            not isinstance(cloid, str)
            or len(cloid) != 34
            or not cloid.startswith("0x")
            or not _is_hex(cloid[2:])
        ):
            return "Invalid cloid."
        o = Order(
            oid=0,
            user=user,
            coin=a.name,
            asset=a.index,
            is_buy=bool(w.get("b")),
            limit_px=px,
            orig_sz=sz,
            sz=sz,
            timestamp=self.t,
            tif=None,
            reduce_only=bool(w.get("r")),
            cloid=cloid.lower() if isinstance(cloid, str) else None,
        )
        if isinstance(t, dict) and isinstance(t.get("limit"), dict):
            tif = t["limit"].get("tif")
            if tif not in ("Gtc", "Ioc", "Alo", "FrontendMarket"):
                return "Invalid TIF."
            o.tif = tif
        elif isinstance(t, dict) and isinstance(t.get("trigger"), dict):
            tr = t["trigger"]
            tpx = parse_decimal(tr.get("triggerPx"))
            if tpx is None or tr.get("tpsl") not in ("tp", "sl"):
                return ERR_TPSL
            terr = rules.price_error(tpx, a.sz_decimals)
            if terr:
                return terr
            o.trigger_px = tpx
            o.tpsl = tr["tpsl"]
            o.is_market = bool(tr.get("isMarket"))
        else:
            return "Failed to deserialize order type"
        if px * sz < rules.MIN_NOTIONAL and not o.reduce_only:
            return rules.ERR_MIN_NOTIONAL
        return o

    def _register(self, o: Order) -> None:
        o.oid = self._oid()
        o.timestamp = self.t
        o.status_ts = self.t
        self.orders[o.oid] = o
        if o.cloid is not None:
            self.cloids[(o.user, o.cloid)] = o.oid
        self.dirty_orders.add(o.oid)

    def _with_cloid(self, o: Order, body: dict[str, Any]) -> dict[str, Any]:
        if o.cloid is not None:
            body["cloid"] = o.cloid
        return body

    def _reject(self, o: Order, status: str, msg: str) -> dict[str, Any]:
        self._set_status(o, status, push=True)
        return {"error": msg}

    def _submit(self, o: Order) -> dict[str, Any]:
        acct = self.accounts[o.user]
        if o.reduce_only:
            pos = self._position(o.user, o.coin)
            if pos == 0 or (pos > 0) == o.is_buy:
                return {"error": ERR_REDUCE_ONLY}
            if not o.is_trigger and o.sz > abs(pos):
                o.sz = o.orig_sz = abs(pos)
        if o.is_trigger:
            if not o.reduce_only and not self._margin_ok(acct, o.coin, o.is_buy, o.sz, o.limit_px):
                return {"error": ERR_MARGIN}
            self._register(o)
            self.triggers[o.coin].append(o)
            self._set_status(o, "open")
            return {"resting": self._with_cloid(o, {"oid": o.oid})}
        if not o.reduce_only and not self._margin_ok(acct, o.coin, o.is_buy, o.sz, o.limit_px):
            return {"error": ERR_MARGIN}
        if o.tif == "Alo":
            bid, ask = self.bbo(o.coin)
            crosses = (
                (ask is not None and o.limit_px >= ask.px)
                if o.is_buy
                else (bid is not None and o.limit_px <= bid.px)
            )
            if crosses:
                bb = fmt(bid.px) if bid else "None"
                ba = fmt(ask.px) if ask else "None"
                return {"error": f"Post only order would have immediately matched, bbo was {bb}@{ba}."}
            self._register(o)
            self.resting[o.coin].append(o)
            self._set_status(o, "open")
            return {"resting": self._with_cloid(o, {"oid": o.oid})}
        self._register(o)
        return self._execute(o)

    def _execute(self, o: Order, limit: Decimal | None = None) -> dict[str, Any]:
        """Take liquidity, then rest (Gtc) or cancel (Ioc) the remainder."""
        fills: dict[str, list[dict[str, Any]]] = {}
        filled, notional = self._take(o, o.limit_px if limit is None else limit, fills)
        self._emit_fills(fills)
        ioc = o.tif in ("Ioc", "FrontendMarket") or limit is not None
        if o.sz <= 0:
            self._set_status(o, "filled")
            self._activate_children(o)
        elif ioc:
            if filled == 0:
                if limit is not None:
                    return self._reject(o, "marketOrderNoLiquidityRejected", ERR_NO_LIQUIDITY)
                return self._reject(o, "iocCancelRejected", ERR_IOC)
            self._set_status(o, "canceled")
            self._activate_children(o)
        else:
            self.resting[o.coin].append(o)
            self._set_status(o, "open")
            return {"resting": self._with_cloid(o, {"oid": o.oid})}
        avg = (notional / filled).quantize(Decimal("0.00000001")) if filled else ZERO
        return {"filled": self._with_cloid(o, {"totalSz": fmt(filled), "avgPx": fmt(avg), "oid": o.oid})}

    def _attach_child(self, parent: Order, child: Order) -> Any:
        child.parent = parent.oid
        self._register(child)
        parent.children.append(child.oid)
        if parent.status == "filled" or (parent.status == "canceled" and parent.sz < parent.orig_sz):
            self.triggers[child.coin].append(child)
            self._set_status(child, "open")
            return "waitingForTrigger"
        if parent.status != "open":
            self._set_status(child, "siblingFilledCanceled")
            return {"error": ERR_CANCEL}
        child.waiting_for_parent = True
        self._set_status(child, "open", push=False)
        return "waitingForFill"

    def _activate_children(self, parent: Order) -> None:
        for oid in parent.children:
            c = self.orders.get(oid)
            if c is not None and c.waiting_for_parent and c.status == "open":
                c.waiting_for_parent = False
                self.triggers[c.coin].append(c)
                self._set_status(c, "open")

    # ---- cancel / modify --------------------------------------------------------------------
    def _is_live(self, o: Order) -> bool:
        return o.status == "open"

    def _cancel(self, o: Order, status: str = "canceled") -> None:
        self._remove_resting(o)
        self._set_status(o, status)
        for oid in o.children:
            c = self.orders.get(oid)
            if c is not None and c.waiting_for_parent and c.status == "open":
                c.waiting_for_parent = False
                self._set_status(c, status)

    def cancel(self, user: str, cancels: Any, by_cloid: bool) -> list[Any]:
        def one(c: dict[str, Any]) -> Any:
            asset = c.get("asset") if by_cloid else c.get("a")
            o = self.lookup(user, c.get("cloid") if by_cloid else c.get("o"))
            if o is None or o.asset != asset or not self._is_live(o):
                return {"error": ERR_CANCEL}
            self._cancel(o)
            return "success"

        return _statuses(cancels, "cancels", ERR_CANCEL, one)

    def lookup(self, user: str, ref: Any) -> Order | None:
        if isinstance(ref, bool):
            return None
        if isinstance(ref, int):
            o = self.orders.get(ref)
        elif isinstance(ref, str):
            oid = self.cloids.get((user, ref.lower()))
            o = self.orders.get(oid) if oid is not None else None
        else:
            return None
        if o is None or o.user != user:
            return None
        return o

    def modify(self, user: str, modifies: Any) -> list[Any]:
        def one(m: dict[str, Any]) -> Any:
            o = self.lookup(user, m.get("oid"))
            if o is None or not self._is_live(o):
                return {"error": ERR_MODIFY}
            new = self._parse_order(user, m.get("order"))
            if isinstance(new, str):
                return {"error": new}
            if new.asset != o.asset:
                return {"error": ERR_MODIFY}
            self._cancel(o)
            if new.cloid is None and o.cloid is not None:
                new.cloid = o.cloid
            return self._submit(new)

        return _statuses(modifies, "modifies", ERR_MODIFY, one)

    def update_leverage(self, user: str, asset: Any, is_cross: Any, leverage: Any) -> None:
        a = self.asset(asset) if isinstance(asset, int) else None
        if a is None:
            raise ActionError("Invalid asset")
        if not isinstance(leverage, int) or isinstance(leverage, bool) or not 1 <= leverage <= a.max_leverage:
            raise ActionError("Invalid leverage value")
        acct = self.accounts[user]
        acct.leverage[a.name] = (leverage, bool(is_cross))
        s = summary(acct, self.marks(), self.max_levs())
        if s.total_margin_used > s.account_value:
            raise ActionError("Insufficient margin for leverage update")
        self.dirty_accounts.add(user)

    def schedule_cancel(self, user: str, when: Any, wall_now: int) -> None:
        acct = self.accounts[user]
        if when is None:
            acct.schedule_cancel_at = None
            self.dirty_accounts.add(user)
            return
        if not isinstance(when, int) or isinstance(when, bool):
            raise ActionError("Failed to deserialize the JSON body into the target type")
        if when < self.t + 5_000:
            raise ActionError("Scheduled cancel time too early, must be at least 5 seconds from now.")
        if when > self.t + MAX_SCHEDULE_AHEAD_MS:
            raise ActionError(ERR_SCHEDULE_TOO_LATE)
        day = self.t // DAY_MS
        if acct.schedule_cancel_day != day:
            acct.schedule_cancel_day = day
            acct.schedule_cancel_count = 0
        if acct.schedule_cancel_count >= 10:
            raise ActionError("Too many scheduled cancels today.")
        acct.schedule_cancel_at = when
        self.dirty_accounts.add(user)

    # ---- time -------------------------------------------------------------------------------
    def advance_to(self, t: int) -> None:
        while self.t < t:
            nxt = min(t, self.t + STEP_MS, (self.t // HOUR_MS + 1) * HOUR_MS)
            pending = [
                a.schedule_cancel_at for a in self.accounts.values() if a.schedule_cancel_at is not None
            ]
            if pending:
                nxt = max(self.t + 1, min(nxt, min(pending)))
            self._step(self.t, nxt)

    def _step(self, a: int, b: int) -> None:
        self.t = b
        for coin in self.resting:
            if self.resting[coin] or self.triggers[coin]:
                self._cross_resting(coin, a, b)
                self._fire_triggers(coin, a, b)
        if b % HOUR_MS == 0:
            self._funding(b)
        self._scheduled_cancels()
        if self.liquidations_enabled:
            self._liquidations()

    def _range(self, coin: str, a: int, b: int) -> tuple[Decimal, Decimal]:
        if self.frozen is not None and coin in self.frozen:
            p = self.frozen[coin]
            return p, p
        bar = self.market.ohlcv(coin, a + 1, b + 1)
        if bar is None:
            p = self.oracle(coin, b)
            return p, p
        return to_decimal(bar.low), to_decimal(bar.h)

    def _cross_resting(self, coin: str, a: int, b: int) -> None:
        if not self.resting[coin]:
            return
        low, high = self._range(coin, a, b)
        half = self.book_params.spread_bps / Decimal(20000)
        sz_dec = self.market.by_name[coin].sz_decimals
        min_ask = rules.round_price_up(low * (1 + half), sz_dec)
        max_bid = rules.round_price_down(high * (1 - half), sz_dec)
        fills: dict[str, list[dict[str, Any]]] = {}
        for o in sorted(self.resting[coin], key=lambda x: x.oid):
            hit = min_ask <= o.limit_px if o.is_buy else max_bid >= o.limit_px
            if not hit:
                continue
            qty = o.sz
            if o.reduce_only:
                pos = self._position(o.user, coin)
                if pos == 0 or (pos > 0) == o.is_buy:
                    self._remove_resting(o)
                    self._set_status(o, "reduceOnlyCanceled")
                    continue
                qty = min(qty, abs(pos))
            tid = self._tid()
            fills.setdefault(o.user, []).append(self._record_fill(o.user, o, o.limit_px, qty, False, tid))
            self._trade(coin, o, o.limit_px, qty, NULL_ADDRESS, tid)
            o.sz -= qty
            self._remove_resting(o)
            if o.sz > 0:
                self._set_status(o, "reduceOnlyCanceled")
            else:
                self._set_status(o, "filled")
                self._activate_children(o)
        self._emit_fills(fills)

    def _fire_triggers(self, coin: str, a: int, b: int) -> None:
        if not self.triggers[coin]:
            return
        low, high = self._range(coin, a, b)
        for o in sorted(self.triggers[coin], key=lambda x: x.oid):
            if o not in self.triggers[coin]:
                continue
            assert o.trigger_px is not None
            fire = high >= o.trigger_px if fires_above(o) else low <= o.trigger_px
            if not fire:
                continue
            self.triggers[coin].remove(o)
            o.triggered = True
            o.timestamp = self.t
            self._set_status(o, "triggered")
            sz_dec = self.market.by_name[coin].sz_decimals
            if o.reduce_only:
                pos = self._position(o.user, coin)
                if pos == 0 or (pos > 0) == o.is_buy:
                    self._set_status(o, "reduceOnlyCanceled")
                    continue
                if o.sz > abs(pos):
                    o.sz = abs(pos)
            if o.is_market:
                mark = self.mark(coin)
                slip = mark * (1 + TRIGGER_SLIPPAGE) if o.is_buy else mark * (1 - TRIGGER_SLIPPAGE)
                limit = rules.round_price(slip, sz_dec)
                o.tif = "FrontendMarket"
                self._execute(o, limit)
            else:
                o.tif = "Gtc"
                self._execute(o)

    def _funding(self, hour: int) -> None:
        for user, acct in self.accounts.items():
            for coin, p in acct.positions.items():
                if p.szi == 0:
                    continue
                rate = to_decimal(self.market.funding_rate(coin, hour))
                px = self.oracle(coin, hour)
                usdc = (-p.szi * px * rate).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
                acct.balance += usdc
                p.funding_all -= usdc
                p.funding_open -= usdc
                p.funding_change -= usdc
                rec = {
                    "time": hour,
                    "hash": ZERO_HASH,
                    "delta": {
                        "type": "funding",
                        "coin": coin,
                        "usdc": fmt_usd(usdc),
                        "szi": fmt(p.szi),
                        "fundingRate": fmt_rate(rate),
                        "nSamples": None,
                    },
                }
                self.fundings.setdefault(user, []).append(rec)
                self.new_fundings.append((user, rec))
                self.dirty_accounts.add(user)
                ws = {
                    "time": hour,
                    "coin": coin,
                    "usdc": fmt_usd(usdc),
                    "szi": fmt(p.szi),
                    "fundingRate": fmt_rate(rate),
                    "nSamples": None,
                }
                self.events.append(Event("funding", user, ws))

    def _scheduled_cancels(self) -> None:
        for user, acct in self.accounts.items():
            if acct.schedule_cancel_at is None or acct.schedule_cancel_at > self.t:
                continue
            acct.schedule_cancel_at = None
            acct.schedule_cancel_count += 1
            self.dirty_accounts.add(user)
            canceled = []
            for o in self.open_orders_of(user):
                self._cancel(o, "scheduledCancel")
                canceled.append({"coin": o.coin, "oid": o.oid})
            if canceled:
                self.events.append(Event("nonUserCancel", user, canceled))

    def _liquidations(self) -> None:
        marks: dict[str, Decimal] | None = None
        levs = self.max_levs()
        for acct in self.accounts.values():
            if not any(p.szi != 0 for p in acct.positions.values()):
                continue
            if marks is None:
                marks = self.marks()
            s = summary(acct, marks, levs)
            if s.account_value >= s.maintenance:
                continue
            self._liquidate(acct, marks, s.total_ntl_pos, s.account_value)

    def _liquidate(self, acct: Account, marks: dict[str, Decimal], ntl: Decimal, av: Decimal) -> None:
        user = acct.address
        for o in self.open_orders_of(user):
            self._cancel(o, "liquidatedCanceled")
        fills: dict[str, list[dict[str, Any]]] = {}
        for coin, p in list(acct.positions.items()):
            if p.szi == 0:
                continue
            o = Order(
                oid=0,
                user=user,
                coin=coin,
                asset=self.market.by_name[coin].index,
                is_buy=p.szi < 0,
                limit_px=marks[coin],
                orig_sz=abs(p.szi),
                sz=abs(p.szi),
                timestamp=self.t,
                tif="LiquidationMarket",
                reduce_only=True,
            )
            self._register(o)
            tid = self._tid()
            fills.setdefault(user, []).append(self._record_fill(user, o, marks[coin], o.sz, True, tid))
            self._trade(coin, o, marks[coin], o.sz, NULL_ADDRESS, tid)
            o.sz = ZERO
            self._set_status(o, "filled")
        self._emit_fills(fills)
        lid = self.next_lid
        self.next_lid += 1
        self.events.append(
            Event(
                "liquidation",
                user,
                {
                    "lid": lid,
                    "liquidator": NULL_ADDRESS,
                    "liquidated_user": user,
                    "liquidated_ntl_pos": fmt_usd(ntl),
                    "liquidated_account_value": fmt_usd(av),
                },
            )
        )

    # ---- queries ----------------------------------------------------------------------------
    def user_fills(self, user: str) -> list[dict[str, Any]]:
        return list(reversed(self.fills.get(user.lower(), [])[-2000:]))

    def open_orders_wire(self, user: str) -> list[dict[str, Any]]:
        return [basic_wire(o) for o in self.open_orders_of(user.lower()) if not o.waiting_for_parent]


def _is_hex(s: str) -> bool:
    try:
        int(s, 16)
    except ValueError:
        return False
    return True
