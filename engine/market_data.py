"""MarketDataHub: closed candles, mids and books for the daemon, from the best source available.

Candles: the WS sidecar first (it confirms the newest closed bar; its candle DB is read
read-only), then the candle SQLite DB (``candles_{interval}.db``, read-only), then the venue's
REST ``candleSnapshot``. A source that does not hold the newest closed bar is skipped for that
symbol. Mids and BBO: the sidecar, else REST ``allMids`` / ``l2Book``; sidecar mids older than
``mids_max_age_s`` (``AI_QUANT_MIDS_STALE_S``) are stale and not used.

Every venue call records its outcome in ``venue`` (:class:`engine.venue.VenueStatus`): the daemon's
heartbeat and alerts say "venue unreachable since T" from it.

The hub never fetches when nothing can have changed: :meth:`due` says whether a symbol's next bar
has closed by the venue clock, from the last bar time alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data.intervals import interval_ms
from engine.venue import VenueStatus, unreachable_reason
from exchange.model import Bar
from exchange.venue import MarketData
from exchange.venue_errors import Failure, VenueProblem, diagnose
from exchange.venue_limits import backoff_s, info_weight
from exchange.venue_url import same_venue

log = logging.getLogger("engine.market_data")

SNAPSHOT_CAP = 5000  # bars per candleSnapshot answer


@dataclass
class SourceStats:
    sidecar: int = 0
    sqlite: int = 0
    rest: int = 0
    errors: int = 0
    deferred: int = 0  # REST candle fetches put off to a later loop after an HTTP 429
    last: str = ""
    mids: str = ""  # where the last mids came from: sidecar | rest


@dataclass
class MarketDataHub:
    info: MarketData | None  # the venue (exchange/venue.py): Hyperliquid's is exchange/hl_market_data.py
    interval: str
    interval_ms: int
    candles_dir: Path | None = None
    sidecar: Any = None  # exchange.sidecar.SidecarClient or None
    use_venue_clock: bool = True
    mids_max_age_s: float | None = None  # sidecar mids older than this are stale (None: any age)
    meter: Any = None  # exchange.venue_limits.WeightMeter on ``info``: the weight each loop spends
    stats: SourceStats = field(default_factory=SourceStats)
    venue: VenueStatus = field(default_factory=VenueStatus)
    _subscribed_at: float = -1e9
    _rest_paused_until: float = 0.0  # monotonic: REST candles after an HTTP 429
    _rest_429s: int = 0  # in a row

    def _call(self, fn: Any, *args: Any) -> Any:
        """One venue REST call; its outcome updates :attr:`venue`."""
        try:
            out = fn(*args)
        except Exception as exc:
            reason = unreachable_reason(exc)
            if reason is not None:
                self.venue.failed(reason)
            raise
        self.venue.ok()
        return out

    # ---- clock -------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """The venue's clock (the local exchange may run faster than real time), else ours."""
        if self.use_venue_clock:
            try:
                t = self._call(self.rest.time_ms)
                if t is not None:
                    return t
            except Exception as exc:
                log.debug("exchangeStatus failed: %s", type(exc).__name__)
        return int(time.time() * 1000)

    def last_closed_open_time(self, now_ms: int, interval_ms: int | None = None) -> int:
        """Open time of the newest bar (of ``interval_ms``, default the main interval) closed at ``now_ms``."""
        iv = interval_ms or self.interval_ms
        return (now_ms // iv) * iv - iv

    def due(self, last_t: int | None, now_ms: int) -> bool:
        return last_t is None or last_t < self.last_closed_open_time(now_ms)

    # ---- candles -----------------------------------------------------------------------------
    def closed_bars(
        self, symbol: str, last_t: int | None, now_ms: int, warmup_bars: int, interval: str | None = None
    ) -> list[Bar]:
        """Closed bars newer than ``last_t`` (or the last ``warmup_bars`` when None), oldest first;
        of ``interval`` (a sub-bar interval, ``engine.entry_interval``/``exit_interval``) when given,
        else of the main interval."""
        iv = interval or self.interval
        iv_ms = interval_ms(iv) if interval else self.interval_ms
        newest = self.last_closed_open_time(now_ms, iv_ms)
        if last_t is not None and last_t >= newest:
            return []
        want = warmup_bars if last_t is None else min(SNAPSHOT_CAP, (newest - last_t) // iv_ms + 1)
        for name, fetch in (
            ("sidecar", self._from_sidecar),
            ("sqlite", self._from_sqlite),
            ("rest", self._from_rest),
        ):
            if name == "rest" and time.monotonic() < self._rest_paused_until:
                self.stats.deferred += 1  # a 429 asked us to wait: the next loops fetch it
                return []
            try:
                bars = fetch(symbol, last_t, newest, want, iv)
            except Exception as exc:
                self.stats.errors += 1
                if name == "rest" and self._rate_limited(exc):
                    self._pause_rest(want)
                log.debug("%s candles for %s failed: %s", name, symbol, type(exc).__name__)
                continue
            if name == "rest":
                self._rest_429s = 0
            if bars is not None and bars and bars[-1].t >= newest:
                setattr(self.stats, name, getattr(self.stats, name) + 1)
                self.stats.last = name
                return bars
        return []

    def _rate_limited(self, exc: BaseException) -> bool:
        found = diagnose(exc, self.url or "?")
        return found is not None and found.failure is Failure.RATE_LIMITED

    @property
    def url(self) -> str:
        """The venue's URL ("" without a venue)."""
        return self.info.base_url if self.info is not None else ""

    @property
    def rest(self) -> MarketData:
        if self.info is None:
            raise RuntimeError("no venue REST API configured")
        return self.info

    def _pause_rest(self, want: int) -> None:
        """An HTTP 429 on candles: no REST candles for as long as the venue's minute window needs
        to free one such request (exchange/venue_limits.py), doubled per 429 in a row; the other
        symbols wait for a later loop instead of meeting 429s of their own."""
        wait = backoff_s(info_weight("candleSnapshot") + want // 60, self._rest_429s)
        self._rest_429s += 1
        self._rest_paused_until = time.monotonic() + wait
        log.warning("%s", VenueProblem("rate_limited", self.url or "?", 429).line("candles", retry_s=wait))

    @staticmethod
    def _keep(rows: Iterable[Bar], last_t: int | None, newest: int, want: int) -> list[Bar]:
        out = [b for b in rows if (last_t is None or b.t > last_t) and b.t <= newest]
        return out[-want:] if want > 0 else out

    def _from_sidecar(
        self, symbol: str, last_t: int | None, newest: int, want: int, iv: str
    ) -> list[Bar] | None:
        if self.sidecar is None or self.candles_dir is None:
            return None
        times = self.sidecar.get_last_closed_candle_times(symbol, iv)
        if times.t is None or times.t < newest:
            return None
        return self._read_db(symbol, last_t, newest, want, iv)

    def _from_sqlite(
        self, symbol: str, last_t: int | None, newest: int, want: int, iv: str
    ) -> list[Bar] | None:
        if self.candles_dir is None:
            return None
        return self._read_db(symbol, last_t, newest, want, iv)

    def _read_db(self, symbol: str, last_t: int | None, newest: int, want: int, iv: str) -> list[Bar]:
        from exchange.sidecar import read_candles

        rows = read_candles(self.candles_dir or Path("."), symbol, iv, limit=want + 2)
        bars = (Bar(symbol, c.t, c.o, c.h, c.low, c.c, c.v) for c in rows)
        return self._keep(bars, last_t, newest, want)

    def _from_rest(self, symbol: str, last_t: int | None, newest: int, want: int, iv: str) -> list[Bar]:
        iv_ms = interval_ms(iv)
        start = (last_t + 1) if last_t is not None else newest - (want - 1) * iv_ms
        bars = self._call(self.rest.candles, symbol, iv, start, newest + iv_ms)
        return self._keep(bars, last_t, newest, want)

    # ---- sidecar subscription ---------------------------------------------------------------
    def keep_subscribed(
        self, symbols: list[str], candle_limit: int, every_s: float = 30.0, sub_intervals: Iterable[str] = ()
    ) -> bool:
        """Tell the sidecar which symbols and intervals (the main one, then any sub-bar interval)
        this daemon needs (``ensure_started``), renewed every ``every_s`` so the sidecar's client
        TTL never drops us. True when sent."""
        if self.sidecar is None:
            return False
        now = time.monotonic()
        if now - self._subscribed_at < every_s:
            return False
        self._subscribed_at = now
        try:
            self.sidecar.ensure_started(symbols, self.interval, candle_limit=candle_limit)
            for iv in sub_intervals:  # one registration per interval (the sidecar keeps one per client)
                if iv != self.interval:
                    cid = f"{self.sidecar.client_id}-{iv}"
                    self.sidecar.ensure_started(symbols, iv, candle_limit=candle_limit, client_id=cid)
            return True
        except Exception as exc:
            log.warning(
                "sidecar ensure_started failed (%s); candles come from the DB or REST", type(exc).__name__
            )
            return False

    # ---- prices ------------------------------------------------------------------------------
    def mids(self, symbols: Iterable[str]) -> dict[str, float]:
        wanted = set(symbols)
        if self.sidecar is not None:
            try:
                m = self.sidecar.get_mids(sorted(wanted), max_age_s=self.mids_max_age_s)
                got = {s: float(p) for s, p in m.mids.items() if s in wanted}
                if got.keys() >= wanted:
                    self.stats.mids = "sidecar"
                    return got
            except Exception as exc:
                log.debug("sidecar mids failed: %s", type(exc).__name__)
        raw = self._call(self.rest.mids)
        self.stats.mids = "rest"
        return {s: p for s, p in raw.items() if s in wanted}

    def bbo(self, symbol: str) -> tuple[float | None, float | None]:
        """(bid, ask) or (None, None)."""
        if self.sidecar is not None:
            try:
                b = self.sidecar.get_bbo(symbol, max_age_s=30.0)
                if b is not None and b.bid and b.ask:
                    return float(b.bid), float(b.ask)
            except Exception as exc:
                log.debug("sidecar bbo failed: %s", type(exc).__name__)
        try:
            return self._call(self.rest.top_of_book, symbol)
        except Exception as exc:
            log.debug("l2Book for %s failed: %s", symbol, type(exc).__name__)
        return None, None

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        return self._call(self.rest.funding_history, symbol, start_ms, end_ms)

    def top_by_volume(self, n: int, exclude: Iterable[str] = ()) -> list[str]:
        skip = set(exclude)
        vols = [(vol, name) for name, vol in self._call(self.rest.day_volumes) if name not in skip]
        vols.sort(key=lambda x: (-x[0], x[1]))
        return [name for _, name in vols[:n]]


@dataclass(frozen=True)
class SidecarLink:
    """The outcome of :func:`connect_sidecar`: the client (None: not used), a short summary for
    the daemon's start line, and at most one warning line each about the venue and the candles."""

    client: Any
    summary: str
    warning: str = ""
    candles_warning: str = ""


def connect_sidecar(
    sock: Path | None, venue_url: str, candles_dir: Path | None = None, timeout_s: float = 2.0
) -> SidecarLink:
    """A client of the sidecar on ``sock`` when one answers there and streams ``venue_url``.

    A sidecar that serves another venue (or does not say which) is refused: its mids would price
    orders from the wrong market; the daemon then reads the venue's REST API itself."""
    if sock is None:
        return SidecarLink(None, "no (no socket configured)")
    if not sock.exists():
        return SidecarLink(None, f"no (no socket at {sock})")
    try:
        from exchange.sidecar import SidecarClient

        client = SidecarClient(sock, timeout=timeout_s)
        h = client.health()
    except Exception as exc:
        log.info("WS sidecar not available at %s (%s); using the candle DB / REST", sock, type(exc).__name__)
        return SidecarLink(None, f"no (nothing answers at {sock}: {type(exc).__name__})")
    if h.venue is None or not same_venue(h.venue, venue_url):
        client.close()
        served = (
            f"venue {h.venue}" if h.venue else "an unnamed venue (a sidecar binary older than this daemon)"
        )
        return SidecarLink(
            None,
            f"no (refused: {sock} serves another venue)",
            f"WS sidecar at {sock} serves {served}, not this daemon's {venue_url}: refused;"
            " mids, books and candles come from the venue's REST API",
        )
    candles_warning = ""
    if candles_dir is not None and h.candles_dir and Path(h.candles_dir).resolve() != candles_dir.resolve():
        candles_warning = (
            f"the sidecar writes candles to {h.candles_dir} but this daemon reads {candles_dir.resolve()}"
            " (AI_QUANT_CANDLES_DIR): the sidecar's candles are not read; candles come from that"
            " directory if it holds them, else from REST polling (data=rest); mids still come from the"
            " sidecar. Give both the same directory to read the sidecar's candles"
        )
    return SidecarLink(client, f"yes ({sock}, venue {h.venue})", candles_warning=candles_warning)


__all__ = ["MarketDataHub", "SidecarLink", "SourceStats", "connect_sidecar"]
