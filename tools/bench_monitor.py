"""Load check of the monitor (bounded): ``/api/snapshot`` latency and SSE fan-out to many clients.

Starts the local exchange (``python -m exchange.sim``, real candles, 100 ms tick), the release WS
sidecar and ``python -m monitor`` on 127.0.0.1, then:

1. ``--requests`` sequential ``GET /api/snapshot`` calls: latency p50/p99/max;
2. ``--clients`` EventSource-style clients on ``/api/mids/stream`` for ``--seconds``: events/s per
   client and in total, the sidecar's update rate, and the fan-out lag (client receive time minus
   the moment the monitor got the update from the sidecar) p50/p99/max; the snapshot latency is
   measured again while they stream.

The trading DB is ``--db`` (default: the newest ``run/paper*/trading_engine.db``); without one a DB
is written with the daemon's own writer (``engine.trading_db.TradingDB``) at ``--trades`` trades and
``--heartbeats`` heartbeat rows, so the numbers hold for a long-running daemon's DB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

SIDECAR = ROOT / "target" / "release" / "ai-quant-sidecar"
DATA_DIR = (
    Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "hyperliquid" / "futures"
)
SYMBOLS = "BTC,ETH,SOL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"bench_monitor: timed out after {timeout:.0f} s waiting for {what}")


def synth_db(path: Path, trades: int, heartbeats: int) -> None:
    """A DB of the daemon's schema and formats, filled with the daemon's writer."""
    from engine.heartbeat import Heartbeat
    from engine.trading_db import PositionRow, TradeRow, TradingDB

    db = TradingDB(path, mode="paper")
    t0 = int(time.time() * 1000) - heartbeats * 1000
    with db.tx():
        for i in range(trades):
            sym = ("BTC", "ETH", "SOL")[i % 3]
            db.insert_trade(
                TradeRow(t0 + i * 1000, sym, "LONG", "OPEN" if i % 2 == 0 else "CLOSE", 100.0 + i % 7, 1.0, 100.0,
                         f"bench{i}", i, pnl=(i % 5) - 2.0, fee_usd=0.05, balance=10_000.0 + i % 50)
            )  # fmt: skip
        eq = 10_000.0
        for i in range(heartbeats):
            eq += ((i * 7919) % 11 - 5) * 0.5
            hb = Heartbeat("paper", i, 0, 3, 2, 0.01, "off", "", "", "bench", "0", equity=eq)
            db.conn.execute(
                "INSERT INTO runtime_logs (ts_ms, ts, pid, mode, stream, level, message) VALUES (?,?,?,?,?,?,?)",
                (t0 + i * 1000, "-", 1, "paper", "heartbeat", "INFO", hb.line()),
            )
        db.replace_positions(
            [
                PositionRow("BTC", "long", 0.01, 84_000.0, 3.0, 280.0),
                PositionRow("ETH", "short", 0.3, 1_900.0, 3.0, 190.0),
            ],
            t0,
        )
    db.close()


async def snapshot_latency(url: str, n: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            t = time.perf_counter()
            async with http.get(url + "/api/snapshot") as r:
                await r.read()
                assert r.status == 200
            out.append((time.perf_counter() - t) * 1000)
    return out


async def sse_client(
    http: aiohttp.ClientSession, url: str, stop: float, lags: list[float], ids: list[int]
) -> int:
    n = 0
    async with http.get(
        url + "/api/mids/stream", timeout=aiohttp.ClientTimeout(total=None, sock_read=30)
    ) as r:
        async for raw in r.content:
            line = raw.decode()
            if line.startswith("data: "):
                d = json.loads(line[6:])
                if "seq" in d:
                    lags.append(time.time() * 1000 - d["ts_ms"])
                    ids.append(d["seq"])
                    n += 1
            if time.monotonic() >= stop:
                break
    return n


async def fan_out(url: str, clients: int, seconds: float, snap_n: int) -> dict[str, Any]:
    lags: list[float] = []
    ids: list[int] = []
    stop = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=clients + 5)
    async with aiohttp.ClientSession(connector=conn) as http:
        tasks = [asyncio.create_task(sse_client(http, url, stop, lags, ids)) for _ in range(clients)]
        await asyncio.sleep(min(2.0, seconds / 4))
        under_load = await snapshot_latency(url, snap_n)
        counts = await asyncio.wait_for(asyncio.gather(*tasks), seconds + 30)
    distinct = len(set(ids))
    return {"counts": counts, "lags": lags, "distinct": distinct, "under_load": under_load}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--db", type=Path, help="trading DB to serve (default: newest run/paper*/trading_engine.db)"
    )
    p.add_argument("--synthetic", action="store_true", help="always write a DB with the daemon's writer")
    p.add_argument("--trades", type=int, default=5_000)
    p.add_argument("--heartbeats", type=int, default=50_000)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    a = p.parse_args()
    if not SIDECAR.exists():
        raise SystemExit(f"bench_monitor: {SIDECAR} is not built (cargo build --release)")
    if not DATA_DIR.exists():
        raise SystemExit(f"bench_monitor: market data not found under {DATA_DIR}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = a.db
        if db is None and not a.synthetic:
            found = sorted(ROOT.glob("run/paper*/trading_engine.db"), key=lambda x: x.stat().st_mtime)
            db = found[-1] if found else None
        if db is None:
            db = tmp / "data" / "trading_engine.db"
            t = time.perf_counter()
            synth_db(db, a.trades, a.heartbeats)
            print(f"DB: written with TradingDB: {a.trades} trades, {a.heartbeats} heartbeats"
                  f" ({db.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t:.1f} s)")  # fmt: skip
        else:
            print(f"DB: {db} ({db.stat().st_size / 1e6:.2f} MB)")
        vport, mport = free_port(), free_port()
        venue_url, mon_url = f"http://127.0.0.1:{vport}", f"http://127.0.0.1:{mport}"
        log = (tmp / "procs.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(vport), "--symbols", SYMBOLS,
             "--data-dir", str(DATA_DIR), "--speed", "60", "--rate-limit", "0", "--log-level", "WARNING"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        import urllib.request

        def venue_up() -> bool:
            req = urllib.request.Request(venue_url + "/info", data=b'{"type":"allMids"}', method="POST")
            req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status == 200

        wait(venue_up, 90, "the local exchange")
        sock = tmp / "ws.sock"
        procs.append(subprocess.Popen(
            [str(SIDECAR), "--sock", str(sock), "--exchange-url", venue_url, "--candles-dir", str(tmp / "candles"),
             "--symbols", SYMBOLS, "--intervals", "5m"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        wait(sock.exists, 30, "the sidecar socket")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
        env.update(AI_QUANT_WS_SIDECAR_SOCK=str(sock), AI_QUANT_CANDLES_DIR=str(tmp / "candles"),
                   AI_QUANT_MONITOR_BIND=f"127.0.0.1:{mport}", AI_QUANT_LOG_LEVEL="WARNING")  # fmt: skip
        mon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--paper-db", str(db)], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(mon)

        def mids_live() -> bool:
            with urllib.request.urlopen(mon_url + "/api/mids", timeout=2) as r:
                return bool(json.loads(r.read())["mids"])

        wait(mids_live, 60, "mids through the monitor")
        asyncio.run(snapshot_latency(mon_url, 10))  # warm up (first equity read)
        idle = asyncio.run(snapshot_latency(mon_url, a.requests))
        print(f"/api/snapshot, {a.requests} sequential requests: p50 {pct(idle, 50):.2f} ms,"
              f" p99 {pct(idle, 99):.2f} ms, max {max(idle):.2f} ms")  # fmt: skip
        cpu0 = os.times()
        r = asyncio.run(fan_out(mon_url, a.clients, a.seconds, 100))
        counts, lags = r["counts"], r["lags"]
        total = sum(counts)
        print(f"SSE fan-out: {a.clients} clients for {a.seconds:.0f} s: {total} events delivered,"
              f" {total / a.seconds:.0f} events/s in total, {statistics.mean(counts) / a.seconds:.1f}/s per client"
              f" (min {min(counts)}, max {max(counts)} events); {r['distinct']} distinct sidecar updates"
              f" ({r['distinct'] / a.seconds:.1f}/s)")  # fmt: skip
        print(f"SSE fan-out lag (monitor got the update -> client parsed it): p50 {pct(lags, 50):.1f} ms,"
              f" p99 {pct(lags, 99):.1f} ms, max {max(lags):.1f} ms")  # fmt: skip
        ul = r["under_load"]
        print(
            f"/api/snapshot while {a.clients} clients stream: p50 {pct(ul, 50):.2f} ms, p99 {pct(ul, 99):.2f} ms"
        )
        bench_cpu = sum(os.times()[:2]) - sum(cpu0[:2])
        print(
            f"(bench client CPU {bench_cpu:.1f} s over the fan-out phase; all processes share this machine)"
        )
        return 0
    finally:
        for pr in reversed(procs):
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
                try:
                    pr.wait(10)
                except subprocess.TimeoutExpired:
                    pr.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
