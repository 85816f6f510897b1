"""Finer -> coarser candle aggregation with exact OHLCV semantics.

A bucket is ``[b, b + coarse_ms)`` with ``b`` a multiple of ``coarse_ms`` since the epoch (UTC).
Only **complete** buckets (every finer bar present) become bars: open of the first bar, max high,
min low, close of the last bar, sum of volume, sum of trade counts (NULL if any is NULL). Nothing is
recomputed beyond max/min/sum. Incomplete buckets are reported, never emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.data.candle_store import CandleBatch, CandleStore, UpsertResult
from engine.data.intervals import interval_ms


@dataclass(frozen=True)
class IncompleteBucket:
    t: int
    have: int
    need: int


@dataclass(frozen=True)
class AggregateResult:
    batch: CandleBatch
    incomplete: list[IncompleteBucket] = field(default_factory=list)


class AggregationError(ValueError):
    pass


def check_intervals(fine: str, coarse: str) -> int:
    """Bars of ``fine`` per ``coarse`` bar; raises unless ``coarse`` is a larger multiple of ``fine``."""
    f_ms, c_ms = interval_ms(fine), interval_ms(coarse)
    if c_ms <= f_ms or c_ms % f_ms:
        raise AggregationError(
            f"cannot aggregate {fine} into {coarse}: {coarse} is not a larger multiple of {fine}"
        )
    return c_ms // f_ms


def aggregate(batch: CandleBatch, coarse: str) -> AggregateResult:
    """Aggregate ``batch`` (sorted or not, unique aligned times) into ``coarse`` bars."""
    per_bucket = check_intervals(batch.interval, coarse)
    if len(batch) == 0:
        return AggregateResult(CandleBatch.empty(batch.symbol, coarse))
    f_ms, c_ms = interval_ms(batch.interval), interval_ms(coarse)
    order = np.argsort(batch.t, kind="stable")
    b = batch.take(order)
    if np.any(np.diff(b.t) == 0) or np.any(b.t % f_ms):
        raise AggregationError(f"{b.symbol} {b.interval}: duplicate or misaligned bars; verify first")
    bucket = (b.t // c_ms) * c_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(b)])
    ends = starts + counts - 1
    complete = counts == per_bucket
    incomplete = [
        IncompleteBucket(int(bucket[s]), int(k), per_bucket)
        for s, k in zip(starts[~complete], counts[~complete], strict=True)
    ]
    s, e = starts[complete], ends[complete]
    n_sum = np.add.reduceat(b.n, starts)[complete]  # NaN if any count is NULL
    out = CandleBatch(
        b.symbol,
        coarse,
        bucket[s],
        b.o[s],
        np.maximum.reduceat(b.h, starts)[complete],
        np.minimum.reduceat(b.l, starts)[complete],
        b.c[e],
        np.add.reduceat(b.v, starts)[complete],
        n_sum,
    )
    return AggregateResult(out, incomplete)


@dataclass(frozen=True)
class StoreAggregation:
    symbol: str
    fine: str
    coarse: str
    result: UpsertResult
    bars: int
    incomplete: list[IncompleteBucket]


def aggregate_in_store(
    store: CandleStore,
    symbol: str,
    fine: str,
    coarse: str,
    source: str,
    start: int | None = None,
    end: int | None = None,
) -> StoreAggregation:
    """Aggregate stored ``fine`` bars (optionally only buckets touching ``[start, end]``) into ``coarse``.

    Writes through :meth:`CandleStore.upsert`, so it is idempotent and incremental.
    """
    c_ms = interval_ms(coarse)
    lo = None if start is None else (start // c_ms) * c_ms
    hi = None if end is None else (end // c_ms) * c_ms + c_ms - 1
    fine_batch = store.read(symbol, fine, lo, hi)
    agg = aggregate(fine_batch, coarse)
    result = store.upsert(agg.batch, source)
    return StoreAggregation(symbol, fine, coarse, result, len(agg.batch), agg.incomplete)
