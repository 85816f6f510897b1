#!/usr/bin/env python3
"""Prune old runtime data: heartbeat/log rows and audit rows in the trading DBs, and old log files.

    python tools/prune_runtime.py --dry-run
    python tools/prune_runtime.py --days 30 --audit-days 180 --vacuum

What it touches (nothing else):

* ``runtime_logs`` rows older than ``--days`` and ``audit_events`` rows older than
  ``--audit-days`` in every trading DB: ``AI_QUANT_DB_PATH`` plus every ``trading_engine*.db`` in
  ``AI_QUANT_DATA_DIR`` (or the ``--db`` files given). Trades, positions, decisions and state
  are never pruned: they are the record of what the daemon did.
* files under ``--log-dir`` (default ``$AI_QUANT_DATA_DIR/logs``) whose name contains ``.log`` and
  whose modification time is older than ``--days``.
* then ``PRAGMA wal_checkpoint(TRUNCATE)`` on each DB, and ``VACUUM`` with ``--vacuum``.

Deletes run in one short transaction per table with a busy timeout, so a running daemon only
waits; ``VACUUM`` needs the DB to itself for a moment and is therefore opt-in. ``--dry-run``
counts what would go and changes nothing. ai-quant-prune.timer runs it daily.

Exit status: 0 done, 2 bad input (a named DB does not exist or is not a trading DB).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import EXIT_OK, OpsError, doc_parser, fail

PROG = "prune_runtime.py"
DAY_MS = 86_400_000
TABLES = ("runtime_logs", "audit_events")  # both have ts_ms (epoch ms)


@dataclass
class DbReport:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    wal_before: int = 0
    vacuumed: bool = False


def trading_dbs(explicit: list[Path], env_db: Path | None, data_dir: Path | None) -> list[Path]:
    if explicit:
        for p in explicit:
            if not p.is_file():
                raise OpsError(f"--db {p} does not exist")
        return explicit
    found = {p.resolve(): p for p in sorted(data_dir.glob("trading_engine*.db"))} if data_dir else {}
    if env_db is not None and env_db.is_file():
        found.setdefault(env_db.resolve(), env_db)
    return list(found.values())


def prune_db(path: Path, cutoff: dict[str, int], *, dry_run: bool, vacuum: bool) -> DbReport:
    rep = DbReport(path)
    wal = path.with_name(path.name + "-wal")
    rep.wal_before = wal.stat().st_size if wal.exists() else 0
    uri = f"file:{path}?mode={'ro' if dry_run else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    try:
        names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not names & set(TABLES):
            raise OpsError(f"{path}: no runtime_logs or audit_events table (not a trading DB)")
        for table in TABLES:
            if table not in names:
                continue
            if dry_run:
                (n,) = conn.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE ts_ms < ?", (cutoff[table],)
                ).fetchone()
            else:
                conn.execute("BEGIN IMMEDIATE")
                n = conn.execute(f"DELETE FROM {table} WHERE ts_ms < ?", (cutoff[table],)).rowcount
                conn.execute("COMMIT")
            rep.rows[table] = int(n)
        if not dry_run:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if vacuum:
                conn.execute("VACUUM")
                rep.vacuumed = True
    except sqlite3.DatabaseError as exc:
        raise OpsError(f"{path}: {exc}") from None
    finally:
        conn.close()
    return rep


def old_log_files(log_dir: Path, cutoff_s: float) -> list[Path]:
    if not log_dir.is_dir():
        return []
    return sorted(
        p for p in log_dir.rglob("*") if p.is_file() and ".log" in p.name and p.stat().st_mtime < cutoff_s
    )


def main(argv: list[str] | None = None) -> int:
    from engine.env import EnvError, read_env

    p = doc_parser(PROG, __doc__, usage_paragraph=2)
    p.add_argument("--days", type=float, default=30.0, help="keep runtime_logs rows and log files this long")
    p.add_argument("--audit-days", type=float, default=180.0, help="keep audit_events rows this long")
    p.add_argument("--db", type=Path, action="append", default=[], help="trading DB (repeatable)")
    p.add_argument("--log-dir", type=Path, help="log directory (default $AI_QUANT_DATA_DIR/logs)")
    p.add_argument("--vacuum", action="store_true", help="VACUUM each DB afterwards (brief exclusive lock)")
    p.add_argument("--dry-run", action="store_true", help="count what would be removed, change nothing")
    a = p.parse_args(argv)
    try:
        if a.days <= 0 or a.audit_days <= 0:
            raise OpsError("--days and --audit-days must be positive")
        try:
            env = read_env()
        except EnvError as exc:
            raise OpsError(str(exc)) from None
        now_ms = int(time.time() * 1000)
        cutoff = {
            "runtime_logs": now_ms - int(a.days * DAY_MS),
            "audit_events": now_ms - int(a.audit_days * DAY_MS),
        }
        verb = "would delete" if a.dry_run else "deleted"
        for db in trading_dbs(a.db, env.db_path, env.data_dir):
            rep = prune_db(db, cutoff, dry_run=a.dry_run, vacuum=a.vacuum)
            rows = ", ".join(f"{n} {t}" for t, n in rep.rows.items())
            extra = "" if a.dry_run else f"; WAL checkpointed ({rep.wal_before} bytes before)"
            print(f"{db}: {verb} {rows}{extra}{'; vacuumed' if rep.vacuumed else ''}")
        log_dir = a.log_dir or env.data_dir / "logs"
        files = old_log_files(log_dir, now_ms / 1000 - a.days * 86_400)
        for f in files:
            if not a.dry_run:
                os.unlink(f)
        print(f"{log_dir}: {verb} {len(files)} log files older than {a.days:g} days")
    except OpsError as exc:
        return fail(PROG, exc)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
