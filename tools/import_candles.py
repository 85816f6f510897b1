#!/usr/bin/env python3
"""Import candle and funding files into the SQLite candle databases.

Formats: freqtrade Feather (``*-futures``, spot, ``*-mark`` -> table ``mark_candles``,
``*-funding_rate`` -> ``funding_rates.db``), Binance public-data kline and funding CSVs (or their
``.zip``), Hyperliquid ``candleSnapshot`` / ``fundingHistory`` JSON and vcrpy cassettes holding them.
Directories are walked recursively; other files are listed as SKIPPED with the reason.

Idempotent and incremental: identical bars are left alone (no ``updated_at`` churn); counts of
inserted / updated / unchanged rows are printed per file. A file with corrupt rows (high < low,
negative volume, duplicate keys, misaligned times, ...) is REFUSED and every corrupt row is listed with
its key; ``--skip-corrupt`` writes the valid rows instead (the corrupt ones are still listed).

One venue per ``--db-dir`` is the documented layout (``candles_dbs/hyperliquid``,
``candles_dbs/binance``); a write whose source differs from the one recorded in ``candle_meta`` is
refused. ``--source-prefix`` (symbols become ``<source>:<BASE>``) or ``--symbol-map`` let two venues
share one directory.

Exit status: 0 when every file imported or was skipped, 1 when a file was refused or failed.

Examples::

    python tools/import_candles.py ../shared/data/hyperliquid --db-dir candles_dbs/hyperliquid
    python tools/import_candles.py ../shared/data/binance/futures-1m --db-dir candles_dbs/binance \\
        --aggregate 5m,15m,1h
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.data.importers import ParseOptions
from engine.data.ingest import ImportOptions, SymbolMapping, import_paths
from engine.data.intervals import parse_interval_list


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", type=Path, help="files or directories (recursive)")
    p.add_argument(
        "--db-dir", type=Path, default=Path("candles_dbs"), help="database directory (default candles_dbs)"
    )
    p.add_argument("--source", help="source recorded in the metadata (default: inferred from the path)")
    p.add_argument("--symbol", help="symbol for files whose name does not tell it")
    p.add_argument("--interval", help="interval for files whose name does not tell it")
    p.add_argument(
        "--funding-period-hours", type=int, help="period one funding rate covers (default by venue)"
    )
    p.add_argument("--symbol-map", help="rename symbols: FROM=TO[,FROM=TO...]")
    p.add_argument("--source-prefix", action="store_true", help="store symbols as <source>:<BASE>")
    p.add_argument(
        "--skip-corrupt", action="store_true", help="write the valid rows of a file with corrupt rows"
    )
    p.add_argument(
        "--aggregate", default="", help="after import, build these coarser intervals, e.g. 5m,15m,1h"
    )
    p.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = ImportOptions(
            parse=ParseOptions(args.source, args.symbol, args.interval, args.funding_period_hours),
            symbols=SymbolMapping.parse(args.symbol_map, args.source_prefix),
            skip_corrupt=args.skip_corrupt,
            aggregate=parse_interval_list(args.aggregate),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = import_paths(args.paths, args.db_dir, options)
    for line in report.render().splitlines():
        if args.quiet and line.startswith(("OK ", "SKIPPED ")):
            continue
        print(line)
    print(f"db dir: {args.db_dir} ({time.monotonic() - started:.1f}s)")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
