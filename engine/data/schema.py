"""SQLite schema of the candle and funding databases, with a versioned migration table.

Files (in one directory, ``candles_dbs/`` by default):

* ``candles_{interval}.db``: ``candles`` (trade OHLCV), ``candle_meta`` (first/last bar, row count and
  source per symbol and interval), ``mark_candles`` and ``mark_candle_meta`` (mark-price OHLC from
  freqtrade ``-mark`` files: same columns, kept apart so that nothing reading ``candles`` ever sees
  a mark price).
* ``funding_rates.db``: ``funding_rates`` and ``funding_meta``. ``funding_rates.time`` is the funding
  instant floored to the hour (sources carry millisecond to minute jitter). The rate is stored as the
  venue publishes it, never converted; ``funding_meta.period_hours`` says what period one rate covers
  (1 for Hyperliquid, 8 for Binance).

The candle tables' SQL and file names live in ``exchange/candle_db.py`` (the one Python copy). The
tables ``candles``, ``candle_meta`` and ``funding_rates`` are shared with the Rust sidecar, the
backtester and the local exchange: their columns are fixed. Every database carries
``schema_migrations(version, applied_at)``; migrations are applied in order, once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from exchange.candle_db import CANDLE_TABLE_SQL, META_TABLE_SQL, candle_db_path

CANDLE_MIGRATIONS: Sequence[tuple[int, Sequence[str]]] = (
    (
        1,
        (
            CANDLE_TABLE_SQL.format(table="candles"),
            META_TABLE_SQL.format(table="candle_meta"),
            CANDLE_TABLE_SQL.format(table="mark_candles"),
            META_TABLE_SQL.format(table="mark_candle_meta"),
        ),
    ),
)

FUNDING_MIGRATIONS: Sequence[tuple[int, Sequence[str]]] = (
    (
        1,
        (
            """
            CREATE TABLE IF NOT EXISTS funding_rates (
                symbol TEXT NOT NULL,
                time INTEGER NOT NULL,
                funding_rate REAL,
                premium REAL,
                PRIMARY KEY (symbol, time)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS funding_meta (
                symbol TEXT NOT NULL PRIMARY KEY,
                source TEXT,
                period_hours INTEGER NOT NULL,
                first_time INTEGER,
                last_time INTEGER,
                rows INTEGER,
                updated_at TEXT
            )
            """,
        ),
    ),
)

FUNDING_DB_NAME = "funding_rates.db"


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def funding_db_path(db_dir: Path) -> Path:
    return Path(db_dir) / FUNDING_DB_NAME


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with autocommit off (explicit ``BEGIN IMMEDIATE`` by callers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (the write lock up front, so a busy writer waits rather than fails later),
    ``COMMIT`` when the block ends, ``ROLLBACK`` on any exception (KeyboardInterrupt too), re-raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[int, Sequence[str]]]) -> int:
    """Apply every migration newer than the database's version; return the resulting version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    with write_transaction(conn):
        current = schema_version(conn)
        for version, statements in migrations:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, utc_now_iso())
            )
            current = version
    return current


def open_candle_db(db_dir: Path, interval: str) -> sqlite3.Connection:
    conn = connect(candle_db_path(db_dir, interval))
    migrate(conn, CANDLE_MIGRATIONS)
    return conn


def open_funding_db(db_dir: Path) -> sqlite3.Connection:
    conn = connect(funding_db_path(db_dir))
    migrate(conn, FUNDING_MIGRATIONS)
    return conn
