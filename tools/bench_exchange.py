"""Load test of the local exchange over loopback; prints numbers.

Starts ``python -m exchange.sim`` in a subprocess (stepped clock, admin on, rate limit off), then:

1. orders/s through signed ``/exchange`` calls (orders are signed before the timed window, so the
   figure is the venue's throughput: signature recovery, nonce check, matching, answer), with p50/p99
   ack latency;
2. WebSocket fan-out: 50 clients subscribed to allMids, l2Book and bbo while the clock is stepped as
   fast as the venue answers; total data messages per second received by all clients.

Every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, address: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "exchange.sim", "--port", str(port), "--stepped", "--enable-admin",
        "--rate-limit", "0", "--deposit", f"{address}=10000000", "--log-level", "WARNING",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


async def wait_up(session: aiohttp.ClientSession, base: str, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            async with session.post(base + "/info", json={"type": "meta"}) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("exchange did not start")


def presign(n: int, mid: float, key: str) -> list[dict[str, Any]]:
    wallet = Account.from_key(key)
    base = int(time.time() * 1000)
    bodies = []
    for i in range(n):
        is_buy = i % 2 == 0
        px = round(mid * (1.01 if is_buy else 0.99))
        action = {
            "type": "order",
            "orders": [
                {"a": 0, "b": is_buy, "p": str(px), "s": "0.001", "r": False, "t": {"limit": {"tif": "Ioc"}}}
            ],
            "grouping": "na",
        }
        nonce = base + i
        sig = sign_l1_action(wallet, action, None, nonce, None, False)
        bodies.append(
            {"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None, "expiresAfter": None}
        )
    return bodies


async def bench_orders(
    session: aiohttp.ClientSession,
    base: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    deadline_s: float,
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    end = time.monotonic() + deadline_s

    async def worker() -> None:
        nonlocal errors
        while not queue.empty() and time.monotonic() < end:
            body = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(base + "/exchange", json=body) as r:
                out = await r.json()
            latencies.append(time.perf_counter() - t0)
            st = (
                out.get("response", {}).get("data", {}).get("statuses", [{}])[0]
                if out.get("status") == "ok"
                else {}
            )
            if "filled" not in st:
                errors += 1

    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t_start
    latencies.sort()
    return {
        "orders": len(latencies),
        "orders_per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "not_filled": errors,
    }


async def bench_ws(
    session: aiohttp.ClientSession, base: str, clients: int, seconds: float
) -> dict[str, float]:
    ws_url = base.replace("http", "ws") + "/ws"
    subs = [{"type": "allMids"}, {"type": "l2Book", "coin": "BTC"}, {"type": "bbo", "coin": "ETH"}]
    conns = []
    for _ in range(clients):
        ws = await session.ws_connect(ws_url)
        for s in subs:
            await ws.send_str(json.dumps({"method": "subscribe", "subscription": s}))
        conns.append(ws)
    counts = [0] * clients
    stop = asyncio.Event()

    async def reader(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            if '"channel":"subscriptionResponse"' not in msg.data:
                counts[i] += 1

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(conns)]
    await asyncio.sleep(1.0)  # acks and snapshots
    base_count = sum(counts)
    steps = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds and steps < 1_000_000:
        async with session.post(base + "/admin/advance", json={"ms": 1000}) as r:
            await r.read()
        steps += 1
    await asyncio.sleep(0.5)  # drain
    elapsed = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in conns:
        await ws.close()
    received = sum(counts) - base_count
    return {"clients": clients, "steps": steps, "msgs": received, "msgs_per_s": received / elapsed}


async def main_async(args: argparse.Namespace) -> None:
    key = "0x" + "5e" * 32
    address = Account.from_key(key).address
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(port, address)
    try:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await wait_up(session, base)
            async with session.post(base + "/info", json={"type": "allMids"}) as r:
                mid = float((await r.json())["BTC"])
            print(f"signing {args.orders} orders (client side, not timed)...", flush=True)
            bodies = presign(args.orders, mid, key)
            res = await bench_orders(session, base, bodies, args.concurrency, args.deadline)
            print(
                f"orders: {res['orders']:.0f} signed IOC orders, concurrency {args.concurrency}: "
                f"{res['orders_per_s']:.1f} orders/s, ack latency p50 {res['p50_ms']:.2f} ms, "
                f"p99 {res['p99_ms']:.2f} ms, not filled {res['not_filled']:.0f}"
            )
            ws = await bench_ws(session, base, args.clients, args.ws_seconds)
            print(
                f"ws fan-out: {ws['clients']:.0f} clients x (allMids, l2Book, bbo), {ws['steps']:.0f} clock steps: "
                f"{ws['msgs']:.0f} msgs, {ws['msgs_per_s']:.0f} msgs/s"
            )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--deadline", type=float, default=60.0, help="seconds; the order phase stops here")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--ws-seconds", type=float, default=5.0)
    args = p.parse_args()
    asyncio.run(asyncio.wait_for(main_async(args), timeout=args.deadline + args.ws_seconds + 180))


if __name__ == "__main__":
    main()
