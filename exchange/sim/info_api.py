"""``POST /info`` request types. Pure functions of the venue state; shapes per protocol section 2."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeGuard

from exchange.intervals import VENUE_INTERVALS

from .book import Level
from .clock import wall_ms
from .data import DAY_MS, INTERVAL_MS
from .market import INTEREST_RATE_HOURLY
from .numfmt import ZERO, fmt, fmt_rate, fmt_usd, to_decimal
from .orders import frontend_wire
from .rules import round_price
from .state import Venue
from .validation import ADDRESS_RE, DESERIALIZE_ERROR, InfoError, book_params_ok


def _user(body: dict[str, Any]) -> str:
    user = body.get("user")
    if not isinstance(user, str) or not ADDRESS_RE.match(user):
        raise InfoError(f"{DESERIALIZE_ERROR}: invalid user")
    return user.lower()


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    v = body.get(key, default)
    if v is None and default is not None:
        return default
    if not isinstance(v, int) or isinstance(v, bool):
        raise InfoError(f"{DESERIALIZE_ERROR}: {key}")
    return v


def _known_coin(coin: Any, v: Venue) -> TypeGuard[str]:
    return isinstance(coin, str) and coin in v.market.by_name


def meta(v: Venue) -> dict[str, Any]:
    universe = [
        {
            "szDecimals": a.sz_decimals,
            "name": a.name,
            "maxLeverage": a.max_leverage,
            "marginTableId": a.max_leverage,
        }
        for a in v.market.assets
    ]
    tables = sorted({a.max_leverage for a in v.market.assets})
    return {
        "universe": universe,
        "marginTables": [
            [lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
            for lev in tables
        ],
        "collateralToken": 0,
    }


def _levels_wire(levels: list[Level]) -> list[dict[str, Any]]:
    return [{"px": fmt(lv.px), "sz": fmt(lv.sz), "n": lv.n} for lv in levels]


def _aggregate(levels: list[Level], sig: int, is_bid: bool, mantissa: int = 1) -> list[Level]:
    out: dict[Decimal, list[Decimal]] = {}
    for lv in levels:
        exp = lv.px.adjusted() - sig + 1
        q = mantissa * Decimal(1).scaleb(exp)
        px = (lv.px / q).to_integral_value(ROUND_FLOOR if is_bid else ROUND_CEILING) * q
        cur = out.setdefault(px.normalize(), [ZERO, ZERO])
        cur[0] += lv.sz
        cur[1] += lv.n
    items = sorted(out.items(), reverse=is_bid)
    return [Level(px, v[0], int(v[1])) for px, v in items]


def l2_book(
    v: Venue, coin: str, n_sig_figs: int | None = None, mantissa: int | None = None
) -> dict[str, Any]:
    """The book, aggregated to ``n_sig_figs`` (and ``mantissa``) when given; callers check them first."""
    bids, asks = v.engine.l2(coin, 200 if n_sig_figs else 20)
    if n_sig_figs is not None:
        bids = _aggregate(bids, n_sig_figs, True, mantissa or 1)
        asks = _aggregate(asks, n_sig_figs, False, mantissa or 1)
    return {"coin": coin, "time": v.engine.t, "levels": [_levels_wire(bids[:20]), _levels_wire(asks[:20])]}


def all_mids(v: Venue) -> dict[str, str]:
    return {a.name: fmt(v.engine.mid(a.name)) for a in v.market.assets}


def asset_ctx(v: Venue, coin: str) -> dict[str, Any]:
    e = v.engine
    a = v.market.by_name[coin]
    now = e.t
    oracle = e.oracle(coin)
    mark = e.mark(coin)
    bids, asks = e.l2(coin, 1)
    day = v.market.ohlcv(coin, now - DAY_MS, now + 1)
    prev = v.market.price(coin, now - DAY_MS)
    base_vlm = to_decimal(day.v) if day else ZERO
    ntl_vlm = base_vlm * oracle
    oi = sum((abs(acct.positions[coin].szi) for acct in e.accounts.values() if coin in acct.positions), ZERO)
    rate = to_decimal(v.market.funding_rate(coin, now))
    premium = rate - to_decimal(INTEREST_RATE_HOURLY)
    return {
        "funding": fmt_rate(rate),
        "openInterest": fmt(oi),
        "prevDayPx": fmt(prev),
        "dayNtlVlm": fmt_usd(ntl_vlm),
        "premium": fmt_rate(premium),
        "oraclePx": fmt(oracle),
        "markPx": fmt(round_price(mark, a.sz_decimals)),
        "midPx": fmt(e.mid(coin)) if bids and asks else None,
        "impactPxs": [fmt(bids[0].px), fmt(asks[0].px)] if bids and asks else None,
        "dayBaseVlm": fmt(base_vlm.quantize(Decimal(1).scaleb(-a.sz_decimals))),
    }


def candle_snapshot(v: Venue, req: Any) -> list[dict[str, object]]:
    if not isinstance(req, dict):
        raise InfoError(f"{DESERIALIZE_ERROR}: req")
    coin = req.get("coin")
    interval = req.get("interval")
    start = _int(req, "startTime")
    end = req.get("endTime")
    if end is None:
        end = v.engine.t
    if not isinstance(end, int):
        raise InfoError(f"{DESERIALIZE_ERROR}: endTime")
    if not isinstance(interval, str) or interval not in INTERVAL_MS:
        if interval in VENUE_INTERVALS:  # served by the venue, not replayed here (1M, 3d, 1w)
            return []
        raise InfoError(f"{DESERIALIZE_ERROR}: interval")
    if not _known_coin(coin, v):
        return []
    return v.market.candle_snapshot(coin, interval, start, end, v.engine.t)


def funding_history(v: Venue, body: dict[str, Any]) -> list[dict[str, Any]]:
    coin = body.get("coin")
    start = _int(body, "startTime")
    end = body.get("endTime")
    now = v.engine.t
    end_t = now if not isinstance(end, int) else min(end, now)
    if not _known_coin(coin, v):
        return []
    out = []
    for t, r in v.market.funding_history(coin, start, end_t):
        rate = to_decimal(r)
        out.append(
            {
                "coin": coin,
                "fundingRate": fmt_rate(rate),
                "premium": fmt_rate(rate - to_decimal(INTEREST_RATE_HOURLY)),
                "time": t,
            }
        )
    return out


def order_status(v: Venue, body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    ref = body.get("oid")
    o = v.engine.lookup(user, ref)
    if o is None:
        return {"status": "unknownOid"}
    return {
        "status": "order",
        "order": {"order": frontend_wire(o), "status": o.status, "statusTimestamp": o.status_ts},
    }


def user_fills_by_time(v: Venue, body: dict[str, Any]) -> list[dict[str, Any]]:
    user = _user(body)
    start = _int(body, "startTime")
    end = body.get("endTime")
    end_t = end if isinstance(end, int) else 2**62
    fills = v.engine.fills.get(user, [])[-10000:]
    sel = [f for f in fills if start <= f["time"] <= end_t]
    if body.get("aggregateByTime"):
        sel = _aggregate_fills(sel)
    return sel[:2000]


def _aggregate_fills(fills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the partial fills of one crossing order at one time."""
    out: list[dict[str, Any]] = []
    for f in fills:
        last = out[-1] if out else None
        if last is not None and last["oid"] == f["oid"] and last["time"] == f["time"] and f["crossed"]:
            sz = Decimal(last["sz"]) + Decimal(f["sz"])
            px = (Decimal(last["px"]) * Decimal(last["sz"]) + Decimal(f["px"]) * Decimal(f["sz"])) / sz
            last["px"] = fmt(px.quantize(Decimal("0.00000001")))
            last["sz"] = fmt(sz)
            last["fee"] = fmt_usd(Decimal(last["fee"]) + Decimal(f["fee"]))
            last["closedPnl"] = fmt_usd(Decimal(last["closedPnl"]) + Decimal(f["closedPnl"]))
        else:
            out.append(dict(f))
    return out


def user_funding(v: Venue, body: dict[str, Any]) -> list[dict[str, Any]]:
    user = _user(body)
    start = _int(body, "startTime")
    end = body.get("endTime")
    end_t = end if isinstance(end, int) else 2**62
    return [f for f in v.engine.fundings.get(user, []) if start <= f["time"] <= end_t][:500]


def user_rate_limit(v: Venue, body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    acct = v.engine.accounts.get(user)
    vol = acct.cum_volume if acct else ZERO
    used = acct.n_requests if acct else 0
    return {
        "cumVlm": fmt_usd(vol),
        "nRequestsUsed": used,
        "nRequestsCap": 10000 + int(vol),
        "nRequestsSurplus": 0,
    }


def extra_agents(v: Venue, user: str) -> list[dict[str, Any]]:
    """``extraAgents``: every unexpired API wallet of ``user`` (the unnamed one has name "")."""
    acct = v.engine.accounts.get(user)
    if acct is None:
        return []
    now = wall_ms()
    return [
        {"name": a.name, "address": a.address, "validUntil": a.valid_until}
        for a in sorted(acct.agents.values(), key=lambda a: a.name)
        if a.valid_until > now
    ]


def historical_orders(v: Venue, body: dict[str, Any]) -> list[dict[str, Any]]:
    user = _user(body)
    orders = sorted(
        (o for o in v.engine.orders.values() if o.user == user), key=lambda o: o.oid, reverse=True
    )
    return [
        {"order": frontend_wire(o), "status": o.status, "statusTimestamp": o.status_ts} for o in orders[:2000]
    ]


def handle(v: Venue, body: Any) -> Any:
    """Answer one ``/info`` body; raises :class:`InfoError` for a body the venue would not parse."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise InfoError(DESERIALIZE_ERROR)
    t = body["type"]
    e = v.engine
    if t == "meta":
        return meta(v)
    if t == "spotMeta":
        return {"universe": [], "tokens": []}
    if t == "metaAndAssetCtxs":
        return [meta(v), [asset_ctx(v, a.name) for a in v.market.assets]]
    if t == "allMids":
        return all_mids(v)
    if t == "l2Book":
        coin = body.get("coin")
        n_sig_figs, mantissa = body.get("nSigFigs"), body.get("mantissa")
        if not book_params_ok(n_sig_figs, mantissa):
            raise InfoError(f"{DESERIALIZE_ERROR}: nSigFigs/mantissa")
        if not _known_coin(coin, v):
            return None
        return l2_book(v, coin, n_sig_figs, mantissa)
    if t == "candleSnapshot":
        return candle_snapshot(v, body.get("req"))
    if t == "clearinghouseState":
        return e.clearinghouse_state(_user(body))
    if t == "openOrders":
        return e.open_orders_wire(_user(body))
    if t == "frontendOpenOrders":
        return [frontend_wire(o) for o in e.open_orders_of(_user(body)) if not o.waiting_for_parent]
    if t == "orderStatus":
        return order_status(v, body)
    if t == "userFills":
        return e.user_fills(_user(body))
    if t == "userFillsByTime":
        return user_fills_by_time(v, body)
    if t == "userFunding":
        return user_funding(v, body)
    if t == "fundingHistory":
        return funding_history(v, body)
    if t == "userRateLimit":
        return user_rate_limit(v, body)
    if t == "historicalOrders":
        return historical_orders(v, body)
    if t == "extraAgents":
        return extra_agents(v, _user(body))
    if t == "perpDexs":
        return [None]
    if t == "exchangeStatus":
        return {"time": e.t, "specialStatuses": None}
    if t == "spotClearinghouseState":
        _user(body)
        return {"balances": []}
    raise InfoError(f"{DESERIALIZE_ERROR}: unknown variant `{t}`")
