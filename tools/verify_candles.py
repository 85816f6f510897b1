#!/usr/bin/env python3
"""Verify candle (and funding) data: in the databases of ``--db-dir``, or in source files (``--file``).

Checks: gaps (missing bar times, listed as ranges), duplicates, OHLC consistency (low <= open, close
<= high; high >= low; prices > 0), NaN/inf, negative volume, zero-volume runs, misaligned times,
close times, metadata, funding gaps, implausible highs/lows (many times the neighbouring closes).
Every corrupt row is reported with its key ``(symbol, interval, t)``; nothing is changed. With
``--file``, a file that cannot be read (``unreadable``) or that no parser takes (``skipped``) fails
the run too: nothing unverified passes as OK.

Exit status: 0 when no check failed, 1 when one did, 2 on usage errors. ``--allow CLASS`` (repeatable
or comma-separated: ``--allow zero_volume,funding_gap``) downgrades a class to a warning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.data.importers import (
    ImportFormatError,
    ParsedCandles,
    ParsedFunding,
    ParseOptions,
    iter_files,
    parse_file,
)
from engine.data.verify import (
    CHECKS,
    Finding,
    Report,
    gap_findings,
    implausible_findings,
    verify_db,
    verify_funding_batch,
    zero_volume_findings,
)


def verify_files(paths: list[Path], options: ParseOptions) -> Report:
    """Run the checks on source files without importing them."""
    report = Report()
    for given in paths:
        if given.is_dir() and not iter_files([given]):
            report.findings.append(Finding.of_file("skipped", given, "directory holds no files"))
    for path in iter_files(paths):
        if not path.is_file():
            report.findings.append(Finding.of_file("unreadable", path, "no such file"))
            continue
        try:
            items = parse_file(path, options)
        except (ImportFormatError, OSError, ValueError) as exc:
            report.findings.append(Finding.of_file("unreadable", path, str(exc) or type(exc).__name__))
            continue
        for item in items:
            if isinstance(item, ParsedCandles):
                report.extend(item.findings)
                report.extend(
                    gap_findings(item.batch.symbol, item.batch.interval, item.batch.t, item.kind.table)
                )
                if item.kind.table == "candles":
                    report.extend(zero_volume_findings(item.batch))
                report.extend(implausible_findings(item.batch, item.kind.table))
                report.checked.append(
                    f"{path}: {item.kind.table} {item.batch.symbol} {item.batch.interval}: {len(item.batch)} bars"
                )
            elif isinstance(item, ParsedFunding):
                report.extend(item.findings)
                report.extend(
                    f for f in verify_funding_batch(item.batch, item.period_hours) if f.check == "funding_gap"
                )
                report.checked.append(f"{path}: funding {item.batch.symbol}: {len(item.batch)} rows")
            else:
                report.findings.append(Finding.of_file("skipped", path, f"not verified: {item.reason}"))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--db-dir", type=Path, default=Path("candles_dbs"), help="database directory (default candles_dbs)"
    )
    p.add_argument(
        "--file", type=Path, action="append", default=[], help="verify a source file or directory instead"
    )
    p.add_argument("--interval", action="append", default=[], help="only these intervals (repeatable)")
    p.add_argument("--symbol", action="append", default=[], help="only these symbols (repeatable)")
    p.add_argument("--no-funding", action="store_true", help="skip funding_rates.db")
    p.add_argument("--allow", action="append", default=[], help=f"downgrade to warning: {', '.join(CHECKS)}")
    p.add_argument("--max-lines", type=int, default=50, help="findings shown per class (0: all)")
    p.add_argument("--source", help="source for --file parsing (as in import_candles.py)")
    args = p.parse_args(argv)
    allow = {a.strip() for item in args.allow for a in item.split(",") if a.strip()}
    unknown = allow - set(CHECKS)
    if unknown:
        print(
            f"error: unknown check class(es) {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}",
            file=sys.stderr,
        )
        return 2
    if args.file:
        report = verify_files(args.file, ParseOptions(source=args.source))
    else:
        if not args.db_dir.is_dir():
            print(f"error: no database directory {args.db_dir}", file=sys.stderr)
            return 2
        report = verify_db(args.db_dir, args.interval or None, args.symbol or None, not args.no_funding)
    print(report.render(allow, args.max_lines or None))
    return 1 if report.failed(allow) else 0


if __name__ == "__main__":
    sys.exit(main())
