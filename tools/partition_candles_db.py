#!/usr/bin/env python3
"""Split a candle DB into monthly partition files the backtester reads as one directory.

    python tools/partition_candles_db.py --db ~/.local/share/ai-quant/candles_dbs/candles_5m.db \
        --out-dir ~/.local/share/ai-quant/candles_parts --dry-run

Each month (UTC, by bar open time) becomes ``candles_<interval>_YYYY-MM.db`` with the source's
schema (candles, mark_candles, their meta tables recomputed for the month, schema_migrations).
``ai-quant-bt replay --candles-db OUT_DIR`` reads every ``candles_<interval>*.db`` in the directory,
sorted by name, so the partitions replay exactly like the source file. The source is only read.
Existing partition files are refused unless ``--force`` (they are then rebuilt, not appended).

Exit status: 0 done (or dry run), 1 a partition's row count did not match the source, 2 bad input.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import EXIT_FAILED, EXIT_OK, OpsError, doc_parser, fail

PROG = "partition_candles_db.py"
DATA_TABLES = ("candles", "mark_candles")  # (symbol, interval, t, ...) rows, split by month
META = {"candles": "candle_meta", "mark_candles": "mark_candle_meta"}
NAME = re.compile(r"^candles_([0-9]+[mhdwM])\.db$")


@dataclass(frozen=True)
class Month:
    key: str  # YYYY-MM
    start_ms: int
    end_ms: int  # exclusive


def month_of(t_ms: int) -> Month:
    d = datetime.fromtimestamp(t_ms / 1000, UTC)
    start = datetime(d.year, d.month, 1, tzinfo=UTC)
    end = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
    return Month(f"{d.year:04d}-{d.month:02d}", int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def months_between(first_ms: int, last_ms: int) -> list[Month]:
    out = [month_of(first_ms)]
    while out[-1].end_ms <= last_ms:
        out.append(month_of(out[-1].end_ms))
    return out


def _tables(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='table' AND sql IS NOT NULL"
    ).fetchall()
    return {str(n): str(s) for n, s in rows}


def plan(src: Path, interval: str | None) -> tuple[str, list[tuple[Month, int]]]:
    """(interval, [(month, candle rows)]) for the source DB; raises OpsError on a bad source."""
    if not src.is_file():
        raise OpsError(f"candle DB {src} does not exist")
    try:
        conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        tables = _tables(conn)
    except sqlite3.DatabaseError as exc:
        raise OpsError(f"{src}: not an SQLite database ({exc})") from None
    try:
        if "candles" not in tables:
            raise OpsError(f"{src}: no candles table (is it a candle DB from tools/import_candles.py?)")
        intervals = [str(r[0]) for r in conn.execute("SELECT DISTINCT interval FROM candles")]
        if interval is None:
            m = NAME.match(src.name)
            if len(intervals) == 1:
                interval = intervals[0]
            elif m:
                interval = m.group(1)
            else:
                raise OpsError(f"{src}: holds intervals {intervals}; pass --interval")
        if interval not in intervals:
            raise OpsError(f"{src}: no {interval} candles (it has {', '.join(intervals) or 'none'})")
        lo, hi = conn.execute("SELECT MIN(t), MAX(t) FROM candles WHERE interval=?", (interval,)).fetchone()
        out = []
        for mo in months_between(int(lo), int(hi)):
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM candles WHERE interval=? AND t>=? AND t<?",
                (interval, mo.start_ms, mo.end_ms),
            ).fetchone()
            if n:
                out.append((mo, int(n)))
        return interval, out
    finally:
        conn.close()


def write_partition(src: Path, dst: Path, interval: str, mo: Month) -> int:
    """Build one month's file (to a temp name, renamed when complete); returns its candle rows."""
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(f"file:{tmp}", uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS src", (f"file:{src}?mode=ro",))
        src_tables = {
            str(n): str(s)
            for n, s in conn.execute(
                "SELECT name, sql FROM src.sqlite_master WHERE type='table' AND sql IS NOT NULL"
            )
        }
        for name, sql in src_tables.items():
            conn.execute(sql)
            if name in DATA_TABLES:
                conn.execute(
                    f"INSERT INTO main.{name} SELECT * FROM src.{name} WHERE interval=? AND t>=? AND t<?",
                    (interval, mo.start_ms, mo.end_ms),
                )
            elif name == "schema_migrations":
                conn.execute("INSERT INTO main.schema_migrations SELECT * FROM src.schema_migrations")
        for data, meta in META.items():
            cols = [str(r[1]) for r in conn.execute(f"PRAGMA main.table_info({meta})")]
            if not cols:
                continue
            # first/last/rows for this month only; the source (import source label) is kept.
            conn.execute(
                f"INSERT INTO main.{meta} (symbol, interval, first_t, last_t, rows, source, updated_at) "
                f"SELECT d.symbol, d.interval, MIN(d.t), MAX(d.t), COUNT(*), m.source, m.updated_at "
                f"FROM main.{data} d LEFT JOIN src.{meta} m ON m.symbol=d.symbol AND m.interval=d.interval "
                f"GROUP BY d.symbol, d.interval"
            )
        conn.commit()
        conn.execute("DETACH DATABASE src")
        (n,) = conn.execute("SELECT COUNT(*) FROM candles").fetchone()
    finally:
        conn.close()
    tmp.replace(dst)
    return int(n)


def main(argv: list[str] | None = None) -> int:
    p = doc_parser(PROG, __doc__, usage_paragraph=2)
    p.add_argument("--db", type=Path, required=True, help="source candle DB (candles_<interval>.db)")
    p.add_argument("--out-dir", type=Path, required=True, help="directory for the monthly files")
    p.add_argument(
        "--interval", help="interval to split (default: the only one in the DB, or the file name's)"
    )
    p.add_argument("--force", action="store_true", help="rebuild partition files that already exist")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    a = p.parse_args(argv)
    try:
        interval, months = plan(a.db, a.interval)
        if a.out_dir.resolve() == a.db.resolve().parent:
            raise OpsError("--out-dir must not be the source DB's directory (the backtester would read both)")
        targets = [(mo, n, a.out_dir / f"candles_{interval}_{mo.key}.db") for mo, n in months]
        exists = [str(t) for _, _, t in targets if t.exists()]
        if exists and not a.force and not a.dry_run:
            raise OpsError(f"partition files exist (pass --force to rebuild): {', '.join(exists[:3])}")
        total = 0
        for mo, n, target in targets:
            if a.dry_run:
                print(f"would write {target}: {n} {interval} candles")
                continue
            a.out_dir.mkdir(parents=True, exist_ok=True)
            got = write_partition(a.db, target, interval, mo)
            total += got
            print(f"wrote {target}: {got} {interval} candles")
            if got != n:
                print(f"{PROG}: {target}: {got} rows, the source has {n} for {mo.key}", file=sys.stderr)
                return EXIT_FAILED
        print(
            f"{len(targets)} partitions, {sum(n for _, n, _ in targets)} candles"
            + (" (dry run)" if a.dry_run else "")
        )
    except OpsError as exc:
        return fail(PROG, exc)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
