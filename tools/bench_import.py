"""Candle and funding import benchmark on the real data set. Prints numbers; asserts nothing.

Imports every Hyperliquid file of ``$AI_QUANT_SHARED_DATA`` (default ``../shared/data``) into a
fresh temporary directory, ``--repeats`` times, and prints the median wall time and rows per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.data.ingest import import_paths  # noqa: E402

DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA") or ROOT.parent / "shared" / "data")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--source", default="hyperliquid", help="folder under the data set (default hyperliquid)")
    args = ap.parse_args(argv)
    src = DATA / args.source
    if not src.is_dir():
        print(f"bench_import: {src} not found (set AI_QUANT_SHARED_DATA)", file=sys.stderr)
        return 2
    times, rows = [], 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="aiq-bench-import-") as tmp:
            t0 = time.perf_counter()
            report = import_paths([src], Path(tmp))
            times.append(time.perf_counter() - t0)
            rows = report.total("candles").inserted + report.total("funding").inserted
    med = statistics.median(times)
    print(
        f"import {src.name}: {rows:,} rows, median {med:.2f} s of {args.repeats} ({rows / med:,.0f} rows/s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
