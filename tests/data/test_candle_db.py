"""exchange/candle_db.py: the one Python candle schema and reader, on a real SQLite file written
through the data layer's migrations (which take their SQL from it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.data.schema import open_candle_db, write_transaction
from exchange.candle_db import CandleReader, candle_db_path
from exchange.intervals import UnknownIntervalError


def _db(tmp_path: Path) -> Path:
    conn = open_candle_db(tmp_path, "5m")
    rows = [
        (s, "5m", t, t + 299_999, 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, 10.0 * i, None if i == 0 else i, "")
        for i, (s, t) in enumerate([("BTC", 0), ("BTC", 300_000), ("BTC", 600_000), ("ETH", 300_000)])
    ]
    conn.executemany("INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.close()
    return candle_db_path(tmp_path, "5m")


def test_readers(tmp_path: Path) -> None:
    path = _db(tmp_path)
    with CandleReader(path) as db:
        assert db.symbols() == ["BTC", "ETH"]
        # newest: oldest first, n NULL read as 0
        assert [r[0] for r in db.newest("BTC", "5m", 2)] == [300_000, 600_000]
        assert db.newest("BTC", "5m", 5)[0][-1] == 0
        # bars: everything, NULLs as stored
        assert [r[0] for r in db.bars("BTC", "5m")] == [0, 300_000, 600_000]
        assert db.bars("BTC", "5m")[0][-1] is None
        assert db.last_t("5m") == 600_000 and db.last_t("5m", ("ETH",)) == 300_000
        assert db.last_t(symbols=("XRP",)) is None
        assert db.count("BTC", "5m", 0, 300_000) == 2
        assert sorted(r[:2] for r in db.window("5m", ("BTC", "ETH"), 300_000, 600_000)) == [
            ("BTC", 300_000),
            ("BTC", 600_000),
            ("ETH", 300_000),
        ]


def test_read_only_and_never_creates(tmp_path: Path) -> None:
    path = _db(tmp_path)
    with CandleReader(path) as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        assert db.conn is not None
        db.conn.execute("DELETE FROM candles")
    missing = tmp_path / "candles_1h.db"
    with pytest.raises(sqlite3.OperationalError), CandleReader(missing):
        pass
    assert not missing.exists()


def test_file_name_checks_the_interval(tmp_path: Path) -> None:
    assert candle_db_path(tmp_path, "1h").name == "candles_1h.db"
    with pytest.raises(UnknownIntervalError):
        candle_db_path(tmp_path, "1w")


def test_write_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    """The one BEGIN IMMEDIATE / COMMIT / ROLLBACK of the candle and funding stores and migrations."""
    _db(tmp_path)
    conn = open_candle_db(tmp_path, "5m")
    with pytest.raises(RuntimeError), write_transaction(conn):
        conn.execute("DELETE FROM candles")
        raise RuntimeError("mid-write")
    assert not conn.in_transaction
    assert conn.execute("SELECT COUNT(*) FROM candles").fetchone()[0] == 4
    with write_transaction(conn):
        conn.execute("DELETE FROM candles WHERE symbol = 'ETH'")
    assert not conn.in_transaction
    conn.close()
    with CandleReader(candle_db_path(tmp_path, "5m")) as db:
        assert db.symbols() == ["BTC"]
