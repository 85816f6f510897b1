#!/usr/bin/env python3
"""Fill gaps in the Binance USDT-M futures candle and funding databases (python-binance REST client).

For each symbol (base asset, ``BTC`` -> ``BTCUSDT``) and interval, the bar times missing between
``--start`` (default: the first stored bar) and ``--end`` (default: now) are fetched page by page
with ``futures_klines`` and written through the candle store; bars still open are left out. With
``--funding`` the funding history of the same window is fetched with ``futures_funding_rate``.
Only public endpoints are used; no API key is needed. ``--futures-url`` points the client elsewhere
(a proxy, or the local test server).

Exit status: 0 on success, 1 when a response held corrupt rows (reported with their key, not written)
or a page limit cut a download short.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.data.binance_download import download_funding, download_klines, make_client
from engine.data.candle_store import CandleStore
from engine.data.funding_store import FundingStore
from engine.data.verify import iso
from exchange.timestamps import parse_time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--db-dir", type=Path, default=Path("candles_dbs"), help="database directory (default candles_dbs)"
    )
    p.add_argument("--symbols", required=True, help="base assets, comma-separated: BTC,ETH")
    p.add_argument("--intervals", default="5m", help="comma-separated intervals (default 5m)")
    p.add_argument("--quote", default="USDT")
    p.add_argument("--start", type=parse_time, help="ms or ISO time (default: first stored bar)")
    p.add_argument("--end", type=parse_time, help="ms or ISO time (default: now)")
    p.add_argument("--funding", action="store_true", help="also fetch funding rates")
    p.add_argument("--futures-url", help="override Client.FUTURES_URL, e.g. http://127.0.0.1:8080/fapi")
    p.add_argument("--max-pages", type=int, default=1000, help="page limit per symbol and interval")
    args = p.parse_args(argv)
    now_ms = int(time.time() * 1000)
    end = args.end if args.end is not None else now_ms
    client = make_client(args.futures_url)
    failed = False
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    with CandleStore(args.db_dir) as store:
        for symbol in symbols:
            for interval in [i.strip() for i in args.intervals.split(",") if i.strip()]:
                try:
                    res = download_klines(
                        client, store, symbol, interval, args.start, end, now_ms, args.quote, args.max_pages
                    )
                except ValueError as exc:
                    print(f"ERROR    {symbol} {interval}: {exc}")
                    failed = True
                    continue
                ranges = ", ".join(f"{iso(a)} .. {iso(b)}" for a, b in res.ranges[:5])
                more = f" (+{len(res.ranges) - 5} more)" if len(res.ranges) > 5 else ""
                print(
                    f"klines   {symbol} {interval}: {len(res.ranges)} missing range(s) {ranges}{more}; "
                    f"{res.pages} page(s), {res.fetched} bar(s) fetched, {res.skipped_open} still open; {res.result}"
                )
                for f in res.findings:
                    print(f"    {f.line()}")
                if res.findings or res.truncated:
                    failed = True
                    if res.truncated:
                        print(f"    page limit {args.max_pages} reached; run again to continue")
    if args.funding:
        with FundingStore(args.db_dir) as fstore:
            for symbol in symbols:
                meta = fstore.meta(symbol)
                start = args.start if args.start is not None else (meta.first_time if meta else None)
                if start is None:
                    print(f"ERROR    funding {symbol}: nothing stored yet; give --start")
                    failed = True
                    continue
                fres = download_funding(
                    client, fstore, symbol, start, end, args.quote, max_pages=args.max_pages
                )
                print(
                    f"funding  {symbol}: {fres.pages} page(s), {fres.fetched} row(s) fetched; {fres.result}"
                )
                for f in fres.findings:
                    print(f"    {f.line()}")
                failed |= bool(fres.findings) or fres.truncated
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
