"""Typed read/write access to ``funding_rates.db``.

Conventions (documented in ``docs`` of the schema module too):

* ``time`` is the funding instant **floored to the hour** in ms. Sources stamp funding with jitter
  (freqtrade files: ``00:00:00.048``; early Hyperliquid rows: up to ~24 minutes late), and joins with
  candles need the hour. :func:`floor_to_hour` is the one place that does it; two source rows that
  floor to the same hour are a duplicate key and are reported by the importer, never merged.
* ``funding_rate`` is stored exactly as the venue publishes it. The period one rate covers is kept in
  ``funding_meta.period_hours`` (Hyperliquid: 1, Binance: 8); nothing converts between the two. A
  reader wanting an hourly-equivalent rate divides by ``period_hours`` itself.
* ``premium`` is NULL when the source has none (freqtrade files, Binance).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.data.candle_store import UpsertResult, equal_or_both_nan, in_time_order
from engine.data.intervals import HOUR_MS
from engine.data.schema import open_funding_db, utc_now_iso, write_transaction

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Period one published rate covers, by venue.
PERIOD_HOURS_BY_VENUE = {"hyperliquid": 1, "binance": 8}


def floor_to_hour(time_ms: I64) -> I64:
    """Floor millisecond timestamps to the start of their UTC hour."""
    return (time_ms // HOUR_MS) * HOUR_MS


@dataclass(frozen=True)
class FundingBatch:
    """Funding rows of one symbol; ``time`` already floored to the hour."""

    symbol: str
    time: I64
    rate: F64
    premium: F64

    def __post_init__(self) -> None:
        if not len(self.time) == len(self.rate) == len(self.premium):
            raise ValueError("funding columns differ in length")

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: npt.NDArray[Any]) -> FundingBatch:
        return FundingBatch(self.symbol, self.time[index], self.rate[index], self.premium[index])

    def renamed(self, symbol: str) -> FundingBatch:
        return FundingBatch(symbol, self.time, self.rate, self.premium)


@dataclass(frozen=True)
class FundingMeta:
    symbol: str
    source: str
    period_hours: int
    first_time: int
    last_time: int
    rows: int
    updated_at: str


class FundingConflictError(ValueError):
    """A write whose source or period differs from what ``funding_meta`` records for the symbol."""


def _nullable(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


class FundingStore:
    def __init__(self, db_dir: Path | str) -> None:
        self.db_dir = Path(db_dir)
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> FundingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_funding_db(self.db_dir)
        return self._conn

    def read(self, symbol: str, start: int | None = None, end: int | None = None) -> FundingBatch:
        return self._read(self.conn, symbol, start, end)

    @staticmethod
    def _read(conn: sqlite3.Connection, symbol: str, start: int | None, end: int | None) -> FundingBatch:
        rows = conn.execute(
            "SELECT time, funding_rate, premium FROM funding_rates "
            "WHERE symbol = ? AND time >= ? AND time <= ? ORDER BY time",
            (symbol, -(2**62) if start is None else start, 2**62 if end is None else end),
        ).fetchall()
        n = len(rows)
        return FundingBatch(
            symbol,
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            np.fromiter((np.nan if r[1] is None else r[1] for r in rows), dtype=np.float64, count=n),
            np.fromiter((np.nan if r[2] is None else r[2] for r in rows), dtype=np.float64, count=n),
        )

    def symbols(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT symbol FROM funding_rates ORDER BY symbol")]

    def meta(self, symbol: str) -> FundingMeta | None:
        row = self.conn.execute(
            "SELECT symbol, source, period_hours, first_time, last_time, rows, updated_at FROM funding_meta "
            "WHERE symbol = ?",
            (symbol,),
        ).fetchone()
        return None if row is None else FundingMeta(*row)

    def upsert(self, batch: FundingBatch, source: str, period_hours: int) -> UpsertResult:
        """Idempotent write; rows whose rate and premium are unchanged are not touched."""
        if len(batch) == 0:
            return UpsertResult()
        batch = in_time_order(batch, batch.time, f"funding times in batch for {batch.symbol}")
        if np.any(batch.time % HOUR_MS != 0):
            raise ValueError(f"funding times for {batch.symbol} are not floored to the hour")
        with write_transaction(self.conn) as conn:
            return self._upsert_locked(conn, batch, source, period_hours)

    def _upsert_locked(
        self, conn: sqlite3.Connection, batch: FundingBatch, source: str, period_hours: int
    ) -> UpsertResult:
        symbol = batch.symbol
        row = conn.execute(
            "SELECT source, period_hours FROM funding_meta WHERE symbol = ?", (symbol,)
        ).fetchone()
        if row is not None and (row[0], row[1]) != (source, period_hours):
            raise FundingConflictError(
                f"funding {symbol} already holds source {row[0]!r} with period {row[1]}h, refusing "
                f"{source!r} with period {period_hours}h (use another --db-dir or --source-prefix)"
            )
        existing = self._read(conn, symbol, int(batch.time[0]), int(batch.time[-1]))
        if len(existing):
            pos = np.minimum(np.searchsorted(existing.time, batch.time), len(existing) - 1)
            found = existing.time[pos] == batch.time
            same = (
                found
                & equal_or_both_nan(existing.rate[pos], batch.rate)
                & equal_or_both_nan(existing.premium[pos], batch.premium)
            )
        else:
            found = np.zeros(len(batch), dtype=np.bool_)
            same = found.copy()
        new_rows, changed = ~found, found & ~same
        for mask, sql in (
            (new_rows, "INSERT INTO funding_rates (funding_rate, premium, symbol, time) VALUES (?, ?, ?, ?)"),
            (changed, "UPDATE funding_rates SET funding_rate = ?, premium = ? WHERE symbol = ? AND time = ?"),
        ):
            if mask.any():
                conn.executemany(
                    sql,
                    [
                        (_nullable(batch.rate[i]), _nullable(batch.premium[i]), symbol, int(batch.time[i]))
                        for i in np.flatnonzero(mask)
                    ],
                )
        result = UpsertResult(int(new_rows.sum()), int(changed.sum()), int(same.sum()))
        if result.changed or row is None:
            first, last, rows = conn.execute(
                "SELECT MIN(time), MAX(time), COUNT(*) FROM funding_rates WHERE symbol = ?", (symbol,)
            ).fetchone()
            conn.execute(
                "INSERT INTO funding_meta (symbol, source, period_hours, first_time, last_time, rows, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(symbol) DO UPDATE SET source = excluded.source, "
                "period_hours = excluded.period_hours, first_time = excluded.first_time, "
                "last_time = excluded.last_time, rows = excluded.rows, updated_at = excluded.updated_at",
                (symbol, source, period_hours, first, last, rows, utc_now_iso()),
            )
        return result
