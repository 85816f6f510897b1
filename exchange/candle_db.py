"""The candle database, once for Python: the table schema, the file name and the read-only readers.

One file per interval, ``candles_{interval}.db``, written by the Rust sidecar (``ws_sidecar``) and
the data tools (``engine/data``), read by the daemon, the monitor, the local exchange, the factory
and the tools. The columns are fixed: the Rust crates read and write the same table.

It sits in the ``exchange`` layer (the lowest) so that the sidecar client and the local exchange can
use it; ``engine/data/schema.py`` builds its migrations from the SQL here. The candle table's SQL is
``kernel/aiq-candles/candles.sql``, read at import: the Rust crates compile in the same file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exchange.intervals import interval_ms

#: The one copy of the candle table, which the Rust crates compile in (``aiq_candles::CANDLES_SQL``).
CANDLES_SQL_FILE = Path(__file__).resolve().parent.parent / "kernel" / "aiq-candles" / "candles.sql"
_CREATE_CANDLES = "CREATE TABLE IF NOT EXISTS candles ("


def _candle_table_sql() -> str:
    sql = CANDLES_SQL_FILE.read_text()
    if _CREATE_CANDLES not in sql or "{" in sql:
        raise RuntimeError(f"{CANDLES_SQL_FILE}: expected one {_CREATE_CANDLES!r} and no braces")
    return sql.replace(_CREATE_CANDLES, "CREATE TABLE IF NOT EXISTS {table} (", 1)


#: A candle table (``candles``, or ``mark_candles`` for mark prices), as ``.format(table=...)``.
CANDLE_TABLE_SQL = _candle_table_sql()

#: Per symbol and interval: first/last bar, row count and source (``candle_meta``).
META_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS {table} (
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    first_t INTEGER,
    last_t INTEGER,
    rows INTEGER,
    source TEXT,
    updated_at TEXT,
    PRIMARY KEY (symbol, interval)
)
"""


def candle_db_name(interval: str) -> str:
    """``candles_{interval}.db`` for a known interval (raises ``UnknownIntervalError`` otherwise)."""
    interval_ms(interval)
    return f"candles_{interval}.db"


def candle_db_path(db_dir: str | os.PathLike[str], interval: str) -> Path:
    return Path(db_dir) / candle_db_name(interval)


class CandleReader:
    """Read-only queries on one candle DB file (``mode=ro``: never creates it, never writes); use
    as a context manager, which closes the connection."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> CandleReader:
        self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _q(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        assert self.conn is not None, "use CandleReader as a context manager"
        return self.conn.execute(sql, tuple(args)).fetchall()

    def newest(self, symbol: str, interval: str, limit: int) -> list[Any]:
        """``(t, t_close, o, h, l, c, v, n or 0)`` of the newest ``limit`` bars, oldest first."""
        rows = self._q(
            "SELECT t, t_close, o, h, l, c, v, COALESCE(n, 0) FROM candles"
            " WHERE symbol = ? AND interval = ? ORDER BY t DESC LIMIT ?",
            (symbol, interval, int(limit)),
        )
        return rows[::-1]

    def bars(self, symbol: str, interval: str) -> list[Any]:
        """``(t, o, h, l, c, v, n)`` of every bar, oldest first (NULLs as stored)."""
        return self._q(
            "SELECT t, o, h, l, c, v, n FROM candles WHERE symbol = ? AND interval = ? ORDER BY t",
            (symbol, interval),
        )

    def window(self, interval: str, symbols: Sequence[str], t_from: int, t_to: int) -> list[Any]:
        """``(symbol, t, o, h, l, c, v)`` of ``symbols``' bars with ``t_from <= t <= t_to``, unordered."""
        marks = ",".join("?" * len(symbols))
        return self._q(
            f"SELECT symbol, t, o, h, l, c, v FROM candles WHERE interval = ? AND symbol IN ({marks})"
            " AND t >= ? AND t <= ?",
            (interval, *symbols, t_from, t_to),
        )

    def symbols(self) -> list[str]:
        return [str(r[0]) for r in self._q("SELECT DISTINCT symbol FROM candles ORDER BY symbol")]

    def last_t(self, interval: str | None = None, symbols: Sequence[str] = ()) -> int | None:
        """Open time of the newest bar (of ``interval``, among ``symbols``; all when not given)."""
        where, args = [], []
        if interval is not None:
            where.append("interval = ?")
            args.append(interval)
        if symbols:
            where.append(f"symbol IN ({','.join('?' * len(symbols))})")
            args += list(symbols)
        sql = "SELECT MAX(t) FROM candles" + (" WHERE " + " AND ".join(where) if where else "")
        (last,) = self._q(sql, args)[0]
        return None if last is None else int(last)

    def count(self, symbol: str, interval: str, t_from: int, t_to: int) -> int:
        """Bars of ``symbol`` with ``t_from <= t <= t_to``."""
        (n,) = self._q(
            "SELECT COUNT(*) FROM candles WHERE symbol = ? AND interval = ? AND t >= ? AND t <= ?",
            (symbol, interval, t_from, t_to),
        )[0]
        return int(n)
