"""Replayed market: real candles, a deterministic price path inside each bar, live candles, funding."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from decimal import Decimal

from .data import HOUR_MS, INTERVAL_MS, Bars, Funding
from .numfmt import fmt, to_decimal
from .rules import round_price

INTEREST_RATE_HOURLY = 0.0000125
CANDLE_CAP = 5000


@dataclass
class Asset:
    name: str
    index: int
    sz_decimals: int
    max_leverage: int
    bars: Bars
    funding: Funding


@dataclass(frozen=True)
class Ohlcv:
    o: float
    h: float
    low: float
    c: float
    v: float
    n: int


def _path_points(bars: Bars, i: int) -> tuple[list[int], list[float]]:
    """Vertices of the price path in bar ``i``: o -> l -> h -> c for an up bar, o -> h -> l -> c otherwise."""
    t0 = bars.t[i]
    iv = bars.interval_ms
    o, h, lo, c = bars.o[i], bars.h[i], bars.low[i], bars.c[i]
    mid1, mid2 = (lo, h) if c >= o else (h, lo)
    return [t0, t0 + iv // 3, t0 + 2 * iv // 3, t0 + iv], [o, mid1, mid2, c]


def _interp(ts: list[int], ps: list[float], t: int) -> float:
    if t <= ts[0]:
        return ps[0]
    for k in range(1, len(ts)):
        if t <= ts[k]:
            span = ts[k] - ts[k - 1]
            if span <= 0:
                return ps[k]
            frac = (t - ts[k - 1]) / span
            return ps[k - 1] + (ps[k] - ps[k - 1]) * frac
    return ps[-1]


class Market:
    """All replayed assets. Times are sim ms (data times already shifted by the loader)."""

    def __init__(self, assets: list[Asset]) -> None:
        self.assets = assets
        self.by_name = {a.name: a for a in assets}

    # ---- price path -------------------------------------------------------------------------
    def raw_price(self, coin: str, t: int) -> float:
        bars = self.by_name[coin].bars
        if not bars.t:
            return 0.0
        i = bisect_right(bars.t, t) - 1
        if i < 0:
            return bars.o[0]
        if t >= bars.t[i] + bars.interval_ms:
            return bars.c[i]
        ts, ps = _path_points(bars, i)
        return _interp(ts, ps, t)

    def price(self, coin: str, t: int) -> Decimal:
        """Replayed (oracle) price at ``t``, rounded to a valid price."""
        a = self.by_name[coin]
        return round_price(to_decimal(self.raw_price(coin, t)), a.sz_decimals)

    def ohlcv(self, coin: str, start: int, end: int) -> Ohlcv | None:
        """OHLCV of the replayed path over ``[start, end)``; ``None`` when no bar overlaps."""
        bars = self.by_name[coin].bars
        iv = bars.interval_ms
        if not bars.t or end <= start:
            return None
        i = max(0, bisect_right(bars.t, start) - 1)
        if bars.t[i] + iv <= start:
            i += 1
        o = h = lo = c = None
        v = 0.0
        n = 0
        while i < len(bars.t) and bars.t[i] < end:
            bt = bars.t[i]
            a, b = max(start, bt), min(end, bt + iv)
            if a >= b:
                i += 1
                continue
            if a == bt and b == bt + iv:
                po, ph, pl, pc = bars.o[i], bars.h[i], bars.low[i], bars.c[i]
                pv, pn = bars.v[i], bars.n[i]
            else:
                ts, ps = _path_points(bars, i)
                pts = [_interp(ts, ps, a), _interp(ts, ps, b - 1)]
                pts += [p for tt, p in zip(ts, ps, strict=True) if a < tt < b - 1]
                po, pc = pts[0], pts[1]
                ph, pl = max(pts), min(pts)
                frac = (b - a) / iv
                pv = bars.v[i] * frac
                pn = round(bars.n[i] * frac)
            if o is None:
                o, h, lo = po, ph, pl
            else:
                assert h is not None and lo is not None
                h, lo = max(h, ph), min(lo, pl)
            c = pc
            v += pv
            n += pn
            i += 1
        if o is None or h is None or lo is None or c is None:
            return None
        return Ohlcv(o, h, lo, c, v, n)

    def data_range(self, coin: str) -> tuple[int, int]:
        bars = self.by_name[coin].bars
        return bars.t[0], bars.t[-1] + bars.interval_ms

    # ---- candles ----------------------------------------------------------------------------
    def candle(self, coin: str, interval: str, t_open: int, now: int) -> dict[str, object] | None:
        iv = INTERVAL_MS[interval]
        end = min(t_open + iv, now + 1)
        bar = self.ohlcv(coin, t_open, end)
        if bar is None:
            return None
        sz_dec = self.by_name[coin].sz_decimals

        def px(x: float) -> str:
            return fmt(round_price(to_decimal(x), sz_dec))

        return {
            "t": t_open,
            "T": t_open + iv - 1,
            "s": coin,
            "i": interval,
            "o": px(bar.o),
            "c": px(bar.c),
            "h": px(bar.h),
            "l": px(bar.low),
            "v": fmt(round(to_decimal(bar.v), sz_dec)),
            "n": bar.n,
        }

    def candle_snapshot(
        self, coin: str, interval: str, start: int, end: int, now: int
    ) -> list[dict[str, object]]:
        iv = INTERVAL_MS[interval]
        last_open = now // iv * iv
        first_allowed = last_open - (CANDLE_CAP - 1) * iv
        lo_t = max(start // iv * iv, first_allowed)
        hi_t = min(end, last_open)
        data_lo, _ = self.data_range(coin)
        lo_t = max(lo_t, data_lo // iv * iv)
        out: list[dict[str, object]] = []
        t = lo_t
        while t <= hi_t and len(out) < CANDLE_CAP:
            cd = self.candle(coin, interval, t, now)
            if cd is not None:
                out.append(cd)
            t += iv
        return out

    # ---- funding ----------------------------------------------------------------------------
    def funding_rate(self, coin: str, t: int) -> float:
        """Hourly funding rate in force for the hour that contains ``t``."""
        f = self.by_name[coin].funding
        if not f.t:
            return INTEREST_RATE_HOURLY
        i = bisect_right(f.t, t // HOUR_MS * HOUR_MS) - 1
        if i < 0:
            return f.rate[0]
        return f.rate[i]

    def funding_history(self, coin: str, start: int, end: int) -> list[tuple[int, float]]:
        f = self.by_name[coin].funding
        i = bisect_left(f.t, start)
        out: list[tuple[int, float]] = []
        while i < len(f.t) and f.t[i] <= end and len(out) < 500:
            out.append((f.t[i], f.rate[i]))
            i += 1
        return out
