"""Typed read/write access to the candle databases (``candles_{interval}.db``).

Writes are idempotent upserts: a bar whose values equal the stored ones is left untouched (its
``updated_at`` does not move), a bar whose values differ is updated, a new bar is inserted. The
counts of each come back in an :class:`UpsertResult`. ``candle_meta`` is refreshed after every write
that changed something.

Floats are stored as SQLite REAL (IEEE double), so they round-trip exactly. ``n`` (trade count) is
NULL when the source has none (freqtrade files); in arrays it is ``NaN``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.data.intervals import interval_ms
from engine.data.schema import open_candle_db, utc_now_iso, write_transaction

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

COLUMNS = ("o", "h", "l", "c", "v", "n")


class CandleKind(Enum):
    """Which table a batch belongs in: trade candles or mark-price candles."""

    TRADE = "candles"
    MARK = "mark_candles"

    @property
    def table(self) -> str:
        return self.value

    @property
    def meta_table(self) -> str:
        return "candle_meta" if self is CandleKind.TRADE else "mark_candle_meta"


@dataclass(frozen=True)
class CandleBatch:
    """Bars of one symbol and interval as parallel arrays (``t`` = open time in ms, UTC)."""

    symbol: str
    interval: str
    t: I64
    o: F64
    h: F64
    l: F64  # noqa: E741 - the column is called l everywhere else
    c: F64
    v: F64
    n: F64

    def __post_init__(self) -> None:
        interval_ms(self.interval)
        size = len(self.t)
        for name in COLUMNS:
            if len(getattr(self, name)) != size:
                raise ValueError(f"column {name} has {len(getattr(self, name))} values, t has {size}")

    def __len__(self) -> int:
        return len(self.t)

    @property
    def t_close(self) -> I64:
        """Last millisecond of each bar (Hyperliquid's ``T``): ``t + interval_ms - 1``."""
        return self.t + np.int64(interval_ms(self.interval) - 1)

    def take(self, index: npt.NDArray[Any]) -> CandleBatch:
        """Rows selected by a boolean mask or an index array."""
        return CandleBatch(
            self.symbol,
            self.interval,
            self.t[index],
            self.o[index],
            self.h[index],
            self.l[index],
            self.c[index],
            self.v[index],
            self.n[index],
        )

    def renamed(self, symbol: str) -> CandleBatch:
        return CandleBatch(symbol, self.interval, self.t, self.o, self.h, self.l, self.c, self.v, self.n)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "t": self.t,
                "t_close": self.t_close,
                "o": self.o,
                "h": self.h,
                "l": self.l,
                "c": self.c,
                "v": self.v,
                "n": self.n,
            }
        )

    @staticmethod
    def empty(symbol: str, interval: str) -> CandleBatch:
        f = np.empty(0, dtype=np.float64)
        return CandleBatch(symbol, interval, np.empty(0, dtype=np.int64), f, f, f, f, f, f)


@dataclass(frozen=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted, self.updated + other.updated, self.unchanged + other.unchanged
        )

    @property
    def changed(self) -> bool:
        return self.inserted + self.updated > 0

    def __str__(self) -> str:
        return f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged"


@dataclass(frozen=True)
class CandleMeta:
    symbol: str
    interval: str
    first_t: int
    last_t: int
    rows: int
    source: str
    updated_at: str


class SourceConflictError(ValueError):
    """A write whose source differs from the source already recorded for that symbol and interval."""


class _Rows(Protocol):
    def take(self, index: npt.NDArray[Any], /) -> Self: ...


Batch = TypeVar("Batch", bound=_Rows)


def in_time_order(batch: Batch, times: npt.NDArray[np.int64], what: str) -> Batch:
    """``batch`` sorted by ``times`` (stable); ValueError ``duplicate <what>`` when two rows share a
    time, since an upsert keys on it."""
    order = np.argsort(times, kind="stable")
    if np.any(np.diff(times[order]) == 0):
        raise ValueError(f"duplicate {what}")
    return batch.take(order)


def equal_or_both_nan(a: F64, b: F64) -> npt.NDArray[np.bool_]:
    """Element-wise "unchanged" for an upsert: a stored NaN rewritten as NaN is no change."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


class CandleStore:
    """Candle databases in one directory; one SQLite connection per interval, opened lazily."""

    def __init__(self, db_dir: Path | str) -> None:
        self.db_dir = Path(db_dir)
        self._conns: dict[str, sqlite3.Connection] = {}

    def __enter__(self) -> CandleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def conn(self, interval: str) -> sqlite3.Connection:
        if interval not in self._conns:
            self._conns[interval] = open_candle_db(self.db_dir, interval)
        return self._conns[interval]

    def intervals_on_disk(self) -> list[str]:
        """Intervals that have a ``candles_{interval}.db`` file in the directory, shortest first."""
        from engine.data.intervals import INTERVALS

        return [name for name in INTERVALS if (self.db_dir / f"candles_{name}.db").exists()]

    # ---- reading -------------------------------------------------------------------------------

    def read(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        kind: CandleKind = CandleKind.TRADE,
    ) -> CandleBatch:
        """Bars with ``start <= t <= end`` (either bound optional), ordered by ``t``."""
        return self._read(self.conn(interval), symbol, interval, start, end, kind)

    @staticmethod
    def _read(
        conn: sqlite3.Connection,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        kind: CandleKind,
    ) -> CandleBatch:
        rows = conn.execute(
            f"SELECT t, o, h, l, c, v, n FROM {kind.table} "
            "WHERE symbol = ? AND interval = ? AND t >= ? AND t <= ? ORDER BY t",
            (symbol, interval, -(2**62) if start is None else start, 2**62 if end is None else end),
        ).fetchall()
        if not rows:
            return CandleBatch.empty(symbol, interval)
        t = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        cols = [
            np.fromiter((np.nan if r[i] is None else r[i] for r in rows), dtype=np.float64, count=len(rows))
            for i in range(1, 7)
        ]
        return CandleBatch(symbol, interval, t, *cols)

    def symbols(self, interval: str, kind: CandleKind = CandleKind.TRADE) -> list[str]:
        rows = self.conn(interval).execute(
            f"SELECT DISTINCT symbol FROM {kind.table} WHERE interval = ? ORDER BY symbol", (interval,)
        )
        return [r[0] for r in rows]

    def meta(self, symbol: str, interval: str, kind: CandleKind = CandleKind.TRADE) -> CandleMeta | None:
        row = (
            self.conn(interval)
            .execute(
                f"SELECT symbol, interval, first_t, last_t, rows, source, updated_at FROM {kind.meta_table} "
                "WHERE symbol = ? AND interval = ?",
                (symbol, interval),
            )
            .fetchone()
        )
        return None if row is None else CandleMeta(*row)

    def all_meta(self, interval: str, kind: CandleKind = CandleKind.TRADE) -> list[CandleMeta]:
        rows = self.conn(interval).execute(
            f"SELECT symbol, interval, first_t, last_t, rows, source, updated_at FROM {kind.meta_table} "
            "ORDER BY symbol"
        )
        return [CandleMeta(*r) for r in rows]

    def count(self, interval: str, symbol: str | None = None, kind: CandleKind = CandleKind.TRADE) -> int:
        if symbol is None:
            row = self.conn(interval).execute(f"SELECT COUNT(*) FROM {kind.table}").fetchone()
        else:
            row = (
                self.conn(interval)
                .execute(f"SELECT COUNT(*) FROM {kind.table} WHERE symbol = ?", (symbol,))
                .fetchone()
            )
        return int(row[0])

    # ---- writing -------------------------------------------------------------------------------

    def upsert(self, batch: CandleBatch, source: str, kind: CandleKind = CandleKind.TRADE) -> UpsertResult:
        """Write ``batch`` (unique, sorted or not); see the module docstring for the semantics.

        Raises :class:`SourceConflictError` when ``candle_meta`` names another source for the symbol and
        interval, and ``ValueError`` for duplicate ``t`` within the batch. Row validity is the caller's
        business (importers validate with :mod:`engine.data.verify` first).
        """
        if len(batch) == 0:
            return UpsertResult()
        batch = in_time_order(batch, batch.t, f"bar times in batch for {batch.symbol} {batch.interval}")
        with write_transaction(self.conn(batch.interval)) as conn:
            return self._upsert_locked(conn, batch, source, kind)

    def _upsert_locked(
        self, conn: sqlite3.Connection, batch: CandleBatch, source: str, kind: CandleKind
    ) -> UpsertResult:
        symbol, interval = batch.symbol, batch.interval
        row = conn.execute(
            f"SELECT source FROM {kind.meta_table} WHERE symbol = ? AND interval = ?", (symbol, interval)
        ).fetchone()
        if row is not None and row[0] != source:
            raise SourceConflictError(
                f"{kind.table} {symbol} {interval} already holds source {row[0]!r}, refusing {source!r} "
                "(use another --db-dir, --source-prefix or --symbol-map)"
            )
        existing = self._read(conn, symbol, interval, int(batch.t[0]), int(batch.t[-1]), kind)
        pos = np.searchsorted(existing.t, batch.t)
        pos_clipped = np.minimum(pos, max(len(existing) - 1, 0))
        found = (
            (existing.t[pos_clipped] == batch.t) if len(existing) else np.zeros(len(batch), dtype=np.bool_)
        )
        same = found.copy()
        if len(existing):
            for name in COLUMNS:
                same &= equal_or_both_nan(getattr(batch, name), getattr(existing, name)[pos_clipped])
        new_rows = ~found
        changed_rows = found & ~same
        now = utc_now_iso()
        t_close = batch.t_close

        def values(index: npt.NDArray[np.intp]) -> list[tuple[Any, ...]]:
            cols: list[list[Any]] = []
            for name in ("o", "h", "l", "c", "v"):
                arr = getattr(batch, name)[index]
                cols.append(
                    [None if x != x else x for x in arr.tolist()] if np.isnan(arr).any() else arr.tolist()
                )
            n = batch.n[index]
            cols.append([None if x != x else int(x) for x in n.tolist()])
            size = len(index)
            return list(
                zip(
                    *cols,
                    [now] * size,
                    t_close[index].tolist(),
                    [symbol] * size,
                    [interval] * size,
                    batch.t[index].tolist(),
                    strict=True,
                )
            )

        if new_rows.any():
            conn.executemany(
                f"INSERT INTO {kind.table} (o, h, l, c, v, n, updated_at, t_close, symbol, interval, t) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values(np.flatnonzero(new_rows)),
            )
        if changed_rows.any():
            conn.executemany(
                f"UPDATE {kind.table} SET o = ?, h = ?, l = ?, c = ?, v = ?, n = ?, updated_at = ?, t_close = ? "
                "WHERE symbol = ? AND interval = ? AND t = ?",
                values(np.flatnonzero(changed_rows)),
            )
        result = UpsertResult(int(new_rows.sum()), int(changed_rows.sum()), int(same.sum()))
        if result.changed or row is None:
            self._refresh_meta(conn, symbol, interval, source, kind, now)
        return result

    @staticmethod
    def _refresh_meta(
        conn: sqlite3.Connection, symbol: str, interval: str, source: str, kind: CandleKind, now: str
    ) -> None:
        first_t, last_t, rows = conn.execute(
            f"SELECT MIN(t), MAX(t), COUNT(*) FROM {kind.table} WHERE symbol = ? AND interval = ?",
            (symbol, interval),
        ).fetchone()
        conn.execute(
            f"INSERT INTO {kind.meta_table} (symbol, interval, first_t, last_t, rows, source, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(symbol, interval) DO UPDATE SET "
            "first_t = excluded.first_t, last_t = excluded.last_t, rows = excluded.rows, "
            "source = excluded.source, updated_at = excluded.updated_at",
            (symbol, interval, first_t, last_t, rows, source, now),
        )

    def delete_range(self, symbol: str, interval: str, start: int, end: int) -> int:
        """Delete bars with ``start <= t <= end`` and refresh the metadata; returns the count deleted."""
        with write_transaction(self.conn(interval)) as conn:
            cur = conn.execute(
                "DELETE FROM candles WHERE symbol = ? AND interval = ? AND t >= ? AND t <= ?",
                (symbol, interval, start, end),
            )
            meta = self.meta(symbol, interval)
            if meta is not None:
                self._refresh_meta(conn, symbol, interval, meta.source, CandleKind.TRADE, utc_now_iso())
        return int(cur.rowcount)
