"""The gap-fill downloader against a local HTTP server that answers like Binance USDT-M futures."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from engine.data.binance_download import download_funding, download_klines, make_client, missing_ranges
from engine.data.candle_store import CandleBatch, CandleStore
from engine.data.funding_store import FundingBatch, FundingStore
from engine.data.importers import ParsedCandles, ParsedFunding, parse_file

REPO = Path(__file__).resolve().parents[2]
M5 = 300_000
BARS = 6_000


@dataclass
class FakeBinance:
    klines: CandleBatch
    funding: FundingBatch
    requests: list[str] = field(default_factory=list)

    def kline_rows(self, query: dict[str, list[str]]) -> list[list[Any]]:
        assert query["symbol"] == ["BTCUSDT"] and query["interval"] == ["5m"]
        start, end = int(query["startTime"][0]), int(query["endTime"][0])
        limit = min(int(query.get("limit", ["500"])[0]), 1500)
        b = self.klines
        idx = np.flatnonzero((b.t >= start) & (b.t <= end))[:limit]
        return [
            [
                int(b.t[i]),
                repr(float(b.o[i])),
                repr(float(b.h[i])),
                repr(float(b.l[i])),
                repr(float(b.c[i])),
                repr(float(b.v[i])),
                int(b.t[i]) + M5 - 1,
                repr(float(b.v[i] * b.c[i])),
                1000 + int(i),
                "0",
                "0",
                "0",
            ]
            for i in idx
        ]

    def funding_rows(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        start, end = int(query["startTime"][0]), int(query["endTime"][0])
        limit = min(int(query.get("limit", ["100"])[0]), 1000)
        f = self.funding
        jittered = f.time + np.arange(len(f.time)) % 7  # the real API stamps a few ms late
        idx = np.flatnonzero((jittered >= start) & (jittered <= end))[:limit]
        return [
            {
                "symbol": "BTCUSDT",
                "fundingTime": int(jittered[i]),
                "fundingRate": repr(float(f.rate[i])),
                "markPrice": "0",
            }
            for i in idx
        ]


@pytest.fixture(scope="module")
def fake(shared_data: Path) -> Iterator[tuple[FakeBinance, str]]:
    (k,) = parse_file(shared_data / "binance/futures/BTC_USDT_USDT-5m-futures.feather")
    (f,) = parse_file(shared_data / "binance/futures/BTC_USDT_USDT-1h-funding_rate.feather")
    assert isinstance(k, ParsedCandles) and isinstance(f, ParsedFunding)
    state = FakeBinance(k.batch.take(np.arange(BARS)), f.batch)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.requests.append(url.path)
            query = parse_qs(url.query)
            if url.path == "/fapi/v1/klines":
                body: Any = state.kline_rows(query)
            elif url.path == "/fapi/v1/fundingRate":
                body = state.funding_rows(query)
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/fapi"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def seed_db(db: Path, state: FakeBinance) -> None:
    """Store the served bars with a 3,000-bar hole and without the last 500; funding with a hole."""
    keep = np.r_[0:1000, 4000:5500]
    with CandleStore(db) as store:
        store.upsert(state.klines.take(keep), "binance-futures")
    with FundingStore(db) as fstore:
        fstore.upsert(state.funding.take(np.r_[0:20, 50 : len(state.funding)]), "binance-futures", 8)


def test_missing_ranges(tmp_path: Path, fake: tuple[FakeBinance, str]) -> None:
    state, _ = fake
    seed_db(tmp_path, state)
    t = state.klines.t
    with CandleStore(tmp_path) as store:
        assert missing_ranges(store, "BTC", "5m", int(t[0]), int(t[-1])) == [
            (int(t[1000]), int(t[3999])),
            (int(t[5500]), int(t[-1])),
        ]


def test_cli_fills_the_gap(tmp_path: Path, fake: tuple[FakeBinance, str]) -> None:
    state, url = fake
    seed_db(tmp_path, state)
    state.requests.clear()
    end = int(state.klines.t[-1])
    args = ["--db-dir", str(tmp_path), "--symbols", "BTC", "--intervals", "5m", "--end", str(end)]
    proc = subprocess.run(
        [sys.executable, "tools/download_binance.py", *args, "--funding", "--futures-url", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        "klines   BTC 5m: 2 missing range(s) 2025-01-03T11:20:00Z .. 2025-01-13T21:15:00Z, "
        "2025-01-19T02:20:00Z .. 2025-01-20T19:55:00Z; 3 page(s), 3500 bar(s) fetched, 0 still open; "
        "3500 inserted, 0 updated, 0 unchanged"
    )
    assert lines[1] == "funding  BTC: 1 page(s), 63 row(s) fetched; 30 inserted, 0 updated, 33 unchanged"
    assert state.requests.count("/fapi/v1/klines") == 3
    with CandleStore(tmp_path) as store:
        got = store.read("BTC", "5m")
        meta = store.meta("BTC", "5m")
    want = state.klines
    assert (got.t == want.t).all()
    for col in ("o", "h", "l", "c", "v"):
        assert (getattr(got, col) == getattr(want, col)).all(), col
    filled = np.r_[1000:4000, 5500:BARS]
    assert (got.n[filled] == 1000 + filled).all() and np.isnan(got.n[:1000]).all()
    assert meta is not None and (meta.rows, meta.last_t, meta.source) == (BARS, end, "binance-futures")
    with FundingStore(tmp_path) as fstore:
        funding = fstore.read("BTC")
    assert (funding.time == state.funding.time).all() and (funding.rate == state.funding.rate).all()
    # A second run finds nothing to do.
    again = subprocess.run(
        [sys.executable, "tools/download_binance.py", *args, "--futures-url", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0
    assert "0 missing range(s)" in again.stdout and "0 page(s)" in again.stdout


def test_open_bars_are_not_written(tmp_path: Path, fake: tuple[FakeBinance, str]) -> None:
    state, url = fake
    seed_db(tmp_path, state)
    t = state.klines.t
    now = int(t[2000]) + 10_000  # bar 2000 is still open "now"
    with CandleStore(tmp_path) as store:
        res = download_klines(make_client(url), store, "BTC", "5m", None, int(t[-1]), now)
        assert res.ranges == [(int(t[1000]), int(t[2000]))]
        assert (res.fetched, res.skipped_open, res.result.inserted) == (1001, 1, 1000)
        assert store.read("BTC", "5m").t.max() == t[5499]


def test_funding_pages_through_the_whole_history(tmp_path: Path, fake: tuple[FakeBinance, str]) -> None:
    state, url = fake
    seed_db(tmp_path, state)
    f = state.funding
    with FundingStore(tmp_path) as fstore:
        res = download_funding(make_client(url), fstore, "BTC", int(f.time[0]), int(f.time[-1]) + 3_600_000)
        assert (res.pages, res.fetched, str(res.result)) == (
            2,
            1247,
            "30 inserted, 0 updated, 1217 unchanged",
        )
        assert fstore.meta("BTC") is not None
        assert (fstore.read("BTC").rate == f.rate).all()


def test_max_pages_bounds_both_downloads(tmp_path: Path, fake: tuple[FakeBinance, str]) -> None:
    """One pager for klines and funding: ``max_pages`` counts pages across the missing ranges, cuts
    the download short and says so; the rows of the pages fetched are still written."""
    state, url = fake
    seed_db(tmp_path, state)
    t, f = state.klines.t, state.funding
    with CandleStore(tmp_path) as store:
        res = download_klines(
            make_client(url), store, "BTC", "5m", None, int(t[-1]), int(t[-1]) + 300_000, max_pages=2
        )
        assert len(res.ranges) == 2 and (res.pages, res.truncated) == (2, True)
        assert res.fetched == res.result.inserted == 3000
    with FundingStore(tmp_path) as fstore:
        fres = download_funding(make_client(url), fstore, "BTC", int(f.time[0]), int(f.time[-1]), max_pages=1)
        assert (fres.pages, fres.fetched, fres.truncated) == (1, 1000, True)
