"""Gap-fill downloader for Binance USDT-M futures klines and funding (python-binance REST client).

It finds the bar times missing from the candle database between a start and an end (by default the
first stored bar and now), fetches exactly those ranges with ``Client.futures_klines`` (1,500 bars a
page) and writes them through :class:`CandleStore`, so it is idempotent. Bars that have not closed
yet (``close_time >= now``) are never written. Funding comes from ``Client.futures_funding_rate``
(1,000 rows a page), floored to the hour, period 8h. Every loop is bounded by ``max_pages``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from engine.data.candle_store import CandleKind, CandleStore, UpsertResult
from engine.data.funding_store import FundingStore
from engine.data.importers import ParsedCandles, candle_batch, validate_candles, validate_funding
from engine.data.intervals import interval_ms
from engine.data.verify import Finding

SOURCE = "binance-futures"
KLINE_LIMIT = 1500
FUNDING_LIMIT = 1000

Row = TypeVar("Row")


class FuturesClient(Protocol):
    """The two python-binance ``Client`` methods the downloader uses."""

    def futures_klines(self, **params: Any) -> Any: ...

    def futures_funding_rate(self, **params: Any) -> Any: ...


def make_client(futures_url: str | None = None, timeout_s: float = 10.0) -> Any:
    """A python-binance ``Client`` without API keys and without the start-up ping.

    ``futures_url`` replaces ``Client.FUTURES_URL`` (e.g. ``http://127.0.0.1:8080/fapi``) for tests
    and proxies.
    """
    from binance.client import Client

    client = Client(None, None, requests_params={"timeout": timeout_s}, ping=False)
    if futures_url:
        client.FUTURES_URL = futures_url.rstrip("/")
    return client


@dataclass
class FetchResult:
    """What one download fetched (pages, rows) and wrote; ``truncated`` when ``max_pages`` cut it."""

    symbol: str
    pages: int = 0
    fetched: int = 0
    result: UpsertResult = field(default_factory=UpsertResult)
    findings: list[Finding] = field(default_factory=list)
    truncated: bool = False


@dataclass
class FundingDownloadResult(FetchResult):
    """A funding download."""


@dataclass
class DownloadResult(FetchResult):
    """A candle download: also the missing ranges it asked for and the bars left out as still open."""

    interval: str = ""
    ranges: list[tuple[int, int]] = field(default_factory=list)
    skipped_open: int = 0


def _fetch_pages(
    out: FetchResult,
    cursor: int,
    last: int,
    max_pages: int,
    fetch: Callable[[int], list[Row]],
    page_limit: int,
    row_time: Callable[[Row], int],
    step: int,
) -> list[Row]:
    """Page ``fetch(cursor)`` forward from ``cursor`` to ``last``: a short or empty page, or one that
    does not move forward, ends it; ``out.pages`` counts across calls and ``max_pages`` bounds them."""
    rows: list[Row] = []
    while cursor <= last:
        if out.pages >= max_pages:
            out.truncated = True
            break
        page = fetch(cursor)
        out.pages += 1
        if not page:
            break
        rows.extend(page)
        newest = row_time(page[-1])
        if newest < cursor or len(page) < page_limit:
            break
        cursor = newest + step
    return rows


def missing_ranges(
    store: CandleStore, symbol: str, interval: str, start: int, end: int
) -> list[tuple[int, int]]:
    """Open times in ``[start, end]`` (aligned to the interval) with no stored bar, as inclusive ranges."""
    ms = interval_ms(interval)
    first = -(-start // ms) * ms
    last = (end // ms) * ms
    if last < first:
        return []
    have = store.read(symbol, interval, first, last).t
    # Sentinels around the window turn "missing before the first / after the last bar" into gaps.
    edges = np.concatenate(([first - ms], have[have % ms == 0], [last + ms]))
    out = []
    for i in np.flatnonzero(np.diff(edges) > ms):
        out.append((int(edges[i]) + ms, int(edges[i + 1]) - ms))
    return out


def download_klines(
    client: FuturesClient,
    store: CandleStore,
    symbol: str,
    interval: str,
    start: int | None,
    end: int,
    now_ms: int,
    quote: str = "USDT",
    max_pages: int = 1000,
) -> DownloadResult:
    """Fill every missing bar of ``symbol`` (base asset) between ``start`` and ``end``."""
    ms = interval_ms(interval)
    meta = store.meta(symbol, interval)
    if start is None:
        if meta is None:
            raise ValueError(f"no {symbol} {interval} bars stored yet; give a start time")
        start = meta.first_t
    end = min(end, now_ms)
    out = DownloadResult(
        symbol, interval=interval, ranges=missing_ranges(store, symbol, interval, start, end)
    )
    rows: list[list[Any]] = []
    for lo, hi in out.ranges:

        def klines(cursor: int, hi: int = hi) -> list[list[Any]]:
            return client.futures_klines(
                symbol=f"{symbol}{quote}", interval=interval, startTime=cursor, endTime=hi, limit=KLINE_LIMIT
            )

        rows += _fetch_pages(out, lo, hi, max_pages, klines, KLINE_LIMIT, lambda r: int(r[0]), ms)
    out.fetched = len(rows)
    if not rows:
        return out
    closed = [r for r in rows if int(r[6]) < now_ms]
    out.skipped_open = len(rows) - len(closed)
    if not closed:
        return out
    t = np.array([int(r[0]) for r in closed], dtype=np.int64)
    t_close = np.array([int(r[6]) for r in closed], dtype=np.int64)
    cols = [np.array([float(r[i]) for r in closed]) for i in (1, 2, 3, 4, 5, 8)]
    parsed = validate_candles_from_api(symbol, interval, t, t_close, cols)
    out.findings = parsed.findings
    if not parsed.findings:
        out.result = store.upsert(parsed.batch, SOURCE, CandleKind.TRADE)
    return out


def validate_candles_from_api(
    symbol: str, interval: str, t: Any, t_close: Any, cols: list[Any]
) -> ParsedCandles:
    batch = candle_batch(symbol, interval, t, cols)
    return validate_candles(
        Path("<binance futures_klines>"), batch, CandleKind.TRADE, SOURCE, t_close, "binance api"
    )


def download_funding(
    client: FuturesClient,
    store: FundingStore,
    symbol: str,
    start: int,
    end: int,
    quote: str = "USDT",
    period_hours: int = 8,
    max_pages: int = 1000,
) -> FundingDownloadResult:
    """Fetch funding rows in ``[start, end]`` and upsert them (existing identical rows stay untouched)."""
    out = FundingDownloadResult(symbol)

    def funding(cursor: int) -> list[dict[str, Any]]:
        return client.futures_funding_rate(
            symbol=f"{symbol}{quote}", startTime=cursor, endTime=end, limit=FUNDING_LIMIT
        )

    rows = _fetch_pages(
        out, start, end, max_pages, funding, FUNDING_LIMIT, lambda r: int(r["fundingTime"]), 1
    )
    out.fetched = len(rows)
    if not rows:
        return out
    raw = np.array([int(r["fundingTime"]) for r in rows], dtype=np.int64)
    rate = np.array([float(r["fundingRate"]) for r in rows])
    parsed = validate_funding(
        Path("<binance futures_funding_rate>"),
        symbol,
        raw,
        rate,
        np.full(len(raw), np.nan),
        SOURCE,
        period_hours,
    )
    out.findings = parsed.findings
    if not parsed.findings:
        out.result = store.upsert(parsed.batch, SOURCE, period_hours)
    return out
