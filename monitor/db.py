"""Read-only SQLite access for the monitor.

Every connection is opened with a ``file:...?mode=ro`` URI, so the monitor cannot write to a trading
or candle DB even by mistake. A missing or locked DB is not an error for the caller: queries come
back as a :class:`DbStatus` with a warning text the page shows.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How long a read waits for a writer's lock before the monitor reports the DB as locked.
BUSY_TIMEOUT_S = 0.5


class DbUnavailable(Exception):
    """The DB is missing, locked or unreadable; the message says which (shown as a warning)."""


@dataclass(frozen=True)
class DbStatus:
    path: str
    ok: bool
    error: str = ""


def ro_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"


class ReadOnlyDB:
    """One SQLite file, opened read-only per call (cheap, and picks up a file that appears later)."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self._local = threading.local()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Share one connection (and one read snapshot per statement) among the queries inside."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        try:
            self._local.conn = self._connect()
        except DbUnavailable:
            self._local.conn = None  # each query raises the same error again
            yield
            return
        try:
            yield
        finally:
            self._local.conn.close()
            self._local.conn = None

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise DbUnavailable(f"{self.label} DB {self.path} does not exist")
        try:
            conn = sqlite3.connect(ro_uri(self.path), uri=True, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise DbUnavailable(f"{self.label} DB {self.path} cannot be opened: {exc}") from None
        return conn

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts. A missing table reads as no rows (a DB the daemon has not migrated yet)."""
        shared = getattr(self._local, "conn", None)
        conn = shared or self._connect()
        try:
            cur = conn.execute(sql, tuple(args))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "no such table" in text:
                return []
            if "locked" in text or "busy" in text:
                raise DbUnavailable(f"{self.label} DB {self.path} is locked by a writer") from None
            raise DbUnavailable(f"{self.label} DB {self.path}: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise DbUnavailable(f"{self.label} DB {self.path} is unreadable: {exc}") from None
        finally:
            if shared is None:
                conn.close()

    def status(self) -> DbStatus:
        try:
            self.query("SELECT 1 FROM sqlite_master LIMIT 1")
        except DbUnavailable as exc:
            return DbStatus(str(self.path), False, str(exc))
        return DbStatus(str(self.path), True)


__all__ = ["BUSY_TIMEOUT_S", "DbStatus", "DbUnavailable", "ReadOnlyDB", "ro_uri"]
