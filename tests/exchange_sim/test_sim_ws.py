"""WebSocket: the SDK's own subscription client and raw ``websockets`` clients against /ws."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from sim_helpers import make_config

from exchange.sim.harness import SimServer


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Collector:
    def __init__(self) -> None:
        self.msgs: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, msg: dict[str, Any]) -> None:
        with self.lock:
            self.msgs.append(msg)

    def channel(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.msgs if m["channel"] == name]


def test_sdk_subscriptions(sim: SimServer, wallet: LocalAccount) -> None:
    info = Info(sim.base_url, skip_ws=False)
    try:
        got = Collector()
        info.subscribe({"type": "allMids"}, got)
        info.subscribe({"type": "l2Book", "coin": "ETH"}, got)
        info.subscribe({"type": "bbo", "coin": "ETH"}, got)
        info.subscribe({"type": "candle", "coin": "BTC", "interval": "1m"}, got)
        info.subscribe({"type": "trades", "coin": "SOL"}, got)
        info.subscribe({"type": "userFills", "user": wallet.address}, got)
        info.subscribe({"type": "orderUpdates", "user": wallet.address}, got)
        info.subscribe({"type": "userEvents", "user": wallet.address}, got)
        assert wait_for(lambda: bool(got.channel("allMids")) and bool(got.channel("userFills")))
        snap = got.channel("userFills")[0]["data"]
        assert snap["isSnapshot"] is True and snap["user"] == wallet.address.lower() and snap["fills"] == []
        assert set(got.channel("allMids")[0]["data"]["mids"]) == {"BTC", "ETH", "SOL"}
        book = got.channel("l2Book")[0]["data"]
        assert book["coin"] == "ETH" and len(book["levels"]) == 2
        bbo = got.channel("bbo")[0]["data"]["bbo"]
        assert bbo[0]["px"] == book["levels"][0][0]["px"] and bbo[1]["px"] == book["levels"][1][0]["px"]

        ex = Exchange(wallet, sim.base_url)
        resp = ex.market_open("SOL", True, 1)
        oid = resp["response"]["data"]["statuses"][0]["filled"]["oid"]
        assert wait_for(
            lambda: (
                len(got.channel("userFills")) >= 2
                and bool(got.channel("user"))
                and bool(got.channel("trades"))
            )
        )
        push = got.channel("userFills")[1]["data"]
        assert push.get("isSnapshot") is None and push["fills"][0]["oid"] == oid
        assert got.channel("user")[0]["data"]["fills"][0]["tid"] == push["fills"][0]["tid"]
        trade = got.channel("trades")[0]["data"][0]
        assert trade["coin"] == "SOL" and trade["side"] == "B" and trade["users"][0] == wallet.address.lower()
        assert wait_for(
            lambda: any(u["status"] == "filled" for m in got.channel("orderUpdates") for u in m["data"])
        )

        n_candles = len(got.channel("candle"))
        sim.advance(120_000)  # two 1m candles close
        assert wait_for(lambda: len(got.channel("candle")) >= n_candles + 2)
        c = got.channel("candle")[-1]["data"]
        assert c["s"] == "BTC" and c["i"] == "1m" and c["T"] == c["t"] + 59_999
    finally:
        info.disconnect_websocket()


async def _recv_until(
    ws: Any, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no matching frame")
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
        if pred(msg):
            return dict(msg)


def test_raw_acks_errors_ping(sim: SimServer, wallet: LocalAccount) -> None:
    async def go() -> None:
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            sub = {"type": "trades", "coin": "SOL"}
            await ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
            ack = await _recv_until(ws, lambda m: m["channel"] == "subscriptionResponse")
            assert ack == {
                "channel": "subscriptionResponse",
                "data": {"method": "subscribe", "subscription": sub},
            }
            await ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
            assert await _recv_until(ws, lambda m: m["channel"] == "error") == {
                "channel": "error",
                "data": "Already subscribed",
            }
            await ws.send(
                json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": "NOPE"}})
            )
            err = await _recv_until(ws, lambda m: m["channel"] == "error")
            assert err["data"].startswith("Invalid subscription")
            await ws.send(json.dumps({"method": "ping"}))
            assert await _recv_until(ws, lambda m: m["channel"] == "pong") == {"channel": "pong"}
            await ws.send(json.dumps({"method": "unsubscribe", "subscription": sub}))
            ack = await _recv_until(ws, lambda m: m["channel"] == "subscriptionResponse")
            assert ack["data"]["method"] == "unsubscribe"
            await ws.send(json.dumps({"method": "unsubscribe", "subscription": sub}))
            err = await _recv_until(ws, lambda m: m["channel"] == "error")
            assert err["data"] == 'Already unsubscribed: {"type":"trades","coin":"SOL"}'
            user_sub = {"type": "userFills", "user": wallet.address}
            await ws.send(json.dumps({"method": "subscribe", "subscription": user_sub}))
            ack = await _recv_until(ws, lambda m: m["channel"] == "subscriptionResponse")
            assert ack["data"]["subscription"] == {
                "type": "userFills",
                "user": wallet.address.lower(),
                "aggregateByTime": False,
            }

    asyncio.run(asyncio.wait_for(go(), 20))


@pytest.fixture
def short_idle() -> Iterator[SimServer]:
    with SimServer(make_config(ws_idle_timeout_s=1.0)) as server:
        yield server


def test_idle_connection_closed(short_idle: SimServer) -> None:
    async def go() -> None:
        async with websockets.connect(short_idle.ws_url, open_timeout=5) as ws:
            start = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=30)
            # never before the idle timeout; the upper bound only catches "never closed"
            assert 0.95 < time.monotonic() - start < 25
        # A client that pings stays connected.
        async with websockets.connect(short_idle.ws_url, open_timeout=5) as ws:
            for _ in range(4):
                await asyncio.sleep(0.25)
                await ws.send(json.dumps({"method": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5)) == {"channel": "pong"}

    asyncio.run(asyncio.wait_for(go(), 60))


def test_reconnect_after_server_disconnect(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    ex.market_open("ETH", True, 0.05)
    sub = {"method": "subscribe", "subscription": {"type": "userFills", "user": wallet.address}}

    async def go() -> None:
        seen: dict[int, dict[str, Any]] = {}
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            await ws.send(json.dumps(sub))
            snap = await _recv_until(ws, lambda m: m["channel"] == "userFills")
            assert snap["data"]["isSnapshot"] is True and len(snap["data"]["fills"]) >= 1
            seen.update({f["tid"]: f for f in snap["data"]["fills"]})
            assert await asyncio.to_thread(sim.disconnect_all) >= 1
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=5)
        await asyncio.to_thread(ex.market_open, "ETH", True, 0.05)  # happens while disconnected
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            await ws.send(json.dumps(sub))
            snap = await _recv_until(ws, lambda m: m["channel"] == "userFills")
            assert snap["data"]["isSnapshot"] is True
            new = [f for f in snap["data"]["fills"] if f["tid"] not in seen]
            assert len(new) >= 1  # the missed fill is in the snapshot; old ones dedupe by tid

    asyncio.run(asyncio.wait_for(go(), 30))
    # The SDK client has no reconnect of its own; a fresh Info subscribes again.
    info = Info(sim.base_url, skip_ws=False)
    try:
        got: list[Any] = []
        info.subscribe({"type": "allMids"}, got.append)
        assert wait_for(lambda: bool(got))
    finally:
        info.disconnect_websocket()


def test_user_fundings_and_order_updates_push(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    ex.market_open("BTC", False, 0.01)

    async def go() -> None:
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            for sub in (
                {"type": "userFundings", "user": wallet.address},
                {"type": "userEvents", "user": wallet.address},
                {"type": "orderUpdates", "user": wallet.address},
            ):
                await ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
            snap = await _recv_until(ws, lambda m: m["channel"] == "userFundings")
            assert snap["data"]["isSnapshot"] is True
            now = await asyncio.to_thread(sim.now)
            await asyncio.to_thread(sim.advance, 3_600_000 - now % 3_600_000)
            push = await _recv_until(ws, lambda m: m["channel"] == "userFundings")
            f = push["data"]["fundings"][0]
            assert (
                set(f) == {"time", "coin", "usdc", "szi", "fundingRate", "nSamples"} and f["szi"] == "-0.01"
            )
            ev = await _recv_until(ws, lambda m: m["channel"] == "user")
            assert ev["data"]["funding"]["coin"] == "BTC"
            await asyncio.to_thread(ex.order, "BTC", True, 0.01, 10_000, {"limit": {"tif": "Gtc"}})
            upd = await _recv_until(ws, lambda m: m["channel"] == "orderUpdates")
            assert upd["data"][0]["status"] == "open" and upd["data"][0]["order"]["limitPx"] == "10000.0"

    asyncio.run(asyncio.wait_for(go(), 30))


def test_realtime_accelerated_clock_pushes() -> None:
    with SimServer(make_config(clock_mode="realtime", speed=600.0, tick_ms=20)) as sim:
        t0 = sim.now()

        async def go() -> list[dict[str, Any]]:
            frames: list[dict[str, Any]] = []
            async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
                await ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "allMids"}}))
                deadline = time.monotonic() + 1.5
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=left)))
                    except TimeoutError:
                        break
            return frames

        frames = asyncio.run(asyncio.wait_for(go(), 20))
        elapsed = sim.now() - t0
        assert elapsed >= 600 * 1000  # at least 600x over >= 1 s of wall time
        mids = [f["data"]["mids"]["BTC"] for f in frames if f["channel"] == "allMids"]
        assert len(mids) >= 5 and len(set(mids)) >= 2  # a moving market, pushed as it moves


def test_replay_trades_stream(sim: SimServer) -> None:
    async def go() -> list[dict[str, Any]]:
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            await ws.send(
                json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}})
            )
            await _recv_until(ws, lambda m: m["channel"] == "subscriptionResponse")
            for _ in range(3):
                await asyncio.to_thread(sim.advance, 20_000)
            out = []
            while len(out) < 2:
                out.append(await _recv_until(ws, lambda m: m["channel"] == "trades"))
            return out

    frames = asyncio.run(asyncio.wait_for(go(), 20))
    t = frames[0]["data"][0]
    assert set(t) == {"coin", "side", "px", "sz", "hash", "time", "tid", "users"} and t["coin"] == "BTC"
    assert frames[0]["data"][0]["tid"] != frames[1]["data"][0]["tid"]


def test_new_candle_subscription_gets_its_candle_closed(sim: SimServer) -> None:
    """A candle subscribed to mid-minute is pushed closed at the first tick past the minute."""

    async def go() -> None:
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            sub = {"type": "candle", "coin": "ETH", "interval": "1m"}
            await ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
            snap = (await _recv_until(ws, lambda m: m["channel"] == "candle"))["data"]
            now = await asyncio.to_thread(sim.now)
            await asyncio.to_thread(sim.advance, 60_000 - now % 60_000 + 1_000)  # one tick, next minute
            closed = (await _recv_until(ws, lambda m: m["channel"] == "candle"))["data"]
            assert closed["t"] == snap["t"] and closed["T"] == snap["t"] + 59_999
            final = await asyncio.to_thread(
                Info(sim.base_url, skip_ws=True).candles_snapshot, "ETH", "1m", snap["t"], snap["t"]
            )
            assert final[0] == closed

    asyncio.run(asyncio.wait_for(go(), 20))
