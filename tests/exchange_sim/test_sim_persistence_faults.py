"""SQLite persistence across restarts, fault injection (reproducible from the seed), rate limits, admin API."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action
from sim_helpers import make_config, new_wallet

from exchange.sim.harness import SimServer


def test_state_survives_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    w = new_wallet()
    cfg = make_config(state_db=db)
    with SimServer(cfg) as sim:
        sim.deposit(w.address, 50_000)
        ex = Exchange(w, sim.base_url)
        info = Info(sim.base_url, skip_ws=True)
        ex.market_open("ETH", True, 0.5)
        ex.update_leverage(7, "BTC")
        m = float(info.all_mids()["BTC"])
        oid = ex.order("BTC", True, 0.01, round(m * 0.9), {"limit": {"tif": "Gtc"}})["response"]["data"][
            "statuses"
        ][0]["resting"]["oid"]
        nonce = get_timestamp_ms() + 5
        action = {"type": "noop"}
        sig = sign_l1_action(w, action, None, nonce, None, False)
        body = {
            "action": action,
            "nonce": nonce,
            "signature": sig,
            "vaultAddress": None,
            "expiresAfter": None,
        }
        assert requests.post(sim.base_url + "/exchange", json=body, timeout=10).json()["status"] == "ok"
        sim.advance(3_600_000)
        state_before = info.user_state(w.address)
        fills_before = info.user_fills(w.address)
        funding_before = info.user_funding_history(w.address, 0)
        t_before = sim.now()
    with SimServer(make_config(state_db=db)) as sim:
        info = Info(sim.base_url, skip_ws=True)
        assert sim.now() >= t_before
        assert [o["oid"] for o in info.open_orders(w.address)] == [oid]
        assert info.user_fills(w.address) == fills_before
        assert info.user_funding_history(w.address, 0) == funding_before
        state = info.user_state(w.address)
        assert (
            state["assetPositions"][0]["position"]["szi"]
            == state_before["assetPositions"][0]["position"]["szi"]
        )
        assert (
            state["assetPositions"][0]["position"]["entryPx"]
            == state_before["assetPositions"][0]["position"]["entryPx"]
        )
        # The used nonce is still used; the leverage setting is kept; new oids keep growing.
        assert requests.post(sim.base_url + "/exchange", json=body, timeout=10).json() == {
            "status": "err",
            "response": f"Invalid nonce: duplicate nonce {nonce}",
        }
        ex = Exchange(w, sim.base_url)
        new_oid = ex.market_open("BTC", True, 0.001)["response"]["data"]["statuses"][0]["filled"]["oid"]
        assert new_oid > oid
        btc = next(p for p in info.user_state(w.address)["assetPositions"] if p["position"]["coin"] == "BTC")
        assert btc["position"]["leverage"]["value"] == 7


def _codes(seed: int, n: int = 40) -> list[int]:
    cfg = make_config(seed=seed)
    cfg.faults.http_5xx_rate = 0.3
    cfg.faults.http_429_rate = 0.2
    with SimServer(cfg) as sim:
        return [
            requests.post(sim.base_url + "/info", json={"type": "allMids"}, timeout=10).status_code
            for _ in range(n)
        ]


def test_http_faults_reproducible_from_seed() -> None:
    a, b, c = _codes(11), _codes(11), _codes(12)
    assert a == b and a != c
    assert set(a) == {200, 429, 500}


def test_rate_limit_429_null_body() -> None:
    with SimServer(make_config(rate_limit=100)) as sim:
        info = Info(sim.base_url, skip_ws=True)  # meta + spotMeta = 40
        with pytest.raises(ClientError) as exc:
            for _ in range(100):
                info.all_mids()
        assert exc.value.status_code == 429 and exc.value.error_message == "null"
        r = requests.post(sim.base_url + "/info", json={"type": "allMids"}, timeout=10)
        assert r.status_code == 429 and r.json() is None


def test_order_reject_and_5xx_faults(sim: SimServer) -> None:
    w = new_wallet()
    sim.deposit(w.address, 10_000)
    ex = Exchange(w, sim.base_url)
    try:
        sim.set_faults(reject_orders="Insufficient margin to place order.")
        resp = ex.market_open("ETH", True, 0.05)
        assert resp["response"]["data"]["statuses"] == [{"error": "Insufficient margin to place order."}]
        sim.set_faults(reject_orders=None, http_5xx_rate=1.0)
        with pytest.raises(ServerError):
            ex.market_open("ETH", True, 0.05)
    finally:
        sim.set_faults(reject_orders=None, http_5xx_rate=0.0)
    assert "filled" in ex.market_open("ETH", True, 0.05)["response"]["data"]["statuses"][0]


def test_freeze_mids(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    try:
        sim.set_faults(freeze_mids=True)
        frozen = info.all_mids()
        sim.advance(1_800_000)
        assert info.all_mids() == frozen
    finally:
        sim.set_faults(freeze_mids=False)
    sim.advance(60_000)
    assert info.all_mids() != frozen


async def _frames(
    url: str, subs: list[dict[str, Any]], seconds: float, action: Any = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with websockets.connect(url, open_timeout=5) as ws:
        for s in subs:
            await ws.send(json.dumps({"method": "subscribe", "subscription": s}))
        if action is not None:
            await asyncio.sleep(0.2)
            await asyncio.to_thread(action)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=left)))
            except TimeoutError:
                break
    return out


def test_ws_drop_duplicate_and_delay_faults(sim: SimServer) -> None:
    w = new_wallet()
    sim.deposit(w.address, 10_000)
    ex = Exchange(w, sim.base_url)
    subs = [{"type": "userFills", "user": w.address}, {"type": "allMids"}]
    try:
        sim.set_faults(seed=3, ws_drop_rate=1.0)
        frames = asyncio.run(_frames(sim.ws_url, subs, 1.0, lambda: ex.market_open("SOL", True, 0.2)))
        chans = [f["channel"] for f in frames]
        assert (
            chans.count("subscriptionResponse") == 2 and "userFills" not in chans and "allMids" not in chans
        )
        sim.set_faults(ws_drop_rate=0.0, duplicate_fill_rate=1.0)
        frames = asyncio.run(_frames(sim.ws_url, subs[:1], 1.0, lambda: ex.market_open("SOL", True, 0.2)))
        pushes = [f for f in frames if f["channel"] == "userFills" and not f["data"].get("isSnapshot")]
        assert len(pushes) == 2 and pushes[0] == pushes[1]  # same tid twice: clients must dedupe
        sim.set_faults(duplicate_fill_rate=0.0, fill_delay_ms=600)
        t0 = time.monotonic()
        stamps: list[float] = []

        def place() -> None:
            ex.market_open("SOL", True, 0.2)
            stamps.append(time.monotonic())

        frames = asyncio.run(_frames(sim.ws_url, subs[:1], 2.0, place))
        pushes = [f for f in frames if f["channel"] == "userFills" and not f["data"].get("isSnapshot")]
        assert len(pushes) == 1 and stamps and stamps[0] - t0 < 5
    finally:
        sim.set_faults(ws_drop_rate=0.0, duplicate_fill_rate=0.0, fill_delay_ms=0)


def test_fill_delay_holds_push_after_ack(sim: SimServer) -> None:
    w = new_wallet()
    sim.deposit(w.address, 10_000)
    ex = Exchange(w, sim.base_url)

    async def go() -> float:
        async with websockets.connect(sim.ws_url, open_timeout=5) as ws:
            await ws.send(
                json.dumps({"method": "subscribe", "subscription": {"type": "userFills", "user": w.address}})
            )
            while not json.loads(await asyncio.wait_for(ws.recv(), 5))["data"].get("isSnapshot"):
                pass
            await asyncio.to_thread(ex.market_open, "SOL", True, 0.2)
            acked = time.monotonic()
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg["channel"] == "userFills":
                    return time.monotonic() - acked

    try:
        sim.set_faults(fill_delay_ms=500)
        assert asyncio.run(asyncio.wait_for(go(), 20)) >= 0.35
    finally:
        sim.set_faults(fill_delay_ms=0)


def test_admin_endpoint_only_when_enabled(sim: SimServer) -> None:
    r = requests.post(sim.base_url + "/admin/deposit", json={"user": "0x" + "12" * 20, "usd": 5}, timeout=10)
    assert r.status_code == 404
    with SimServer(make_config(enable_admin=True)) as admin:
        user = "0x" + "12" * 20
        r = requests.post(admin.base_url + "/admin/deposit", json={"user": user, "usd": "123.5"}, timeout=10)
        assert r.json() == {"user": user, "balance": "123.5"}
        t0 = requests.post(admin.base_url + "/admin/time", json={}, timeout=10).json()["time"]
        t1 = requests.post(admin.base_url + "/admin/advance", json={"ms": 60_000}, timeout=10).json()["time"]
        assert t1 == t0 + 60_000
        r = requests.post(
            admin.base_url + "/admin/faults", json={"seed": 5, "http_429_rate": 0.5}, timeout=10
        )
        assert r.json()["faults"]["http_429_rate"] == 0.5
        assert (
            requests.post(admin.base_url + "/admin/faults", json={"nope": 1}, timeout=10).status_code == 400
        )
        state = Info(
            admin.base_url, skip_ws=True, meta={"universe": []}, spot_meta={"universe": [], "tokens": []}
        )
        requests.post(admin.base_url + "/admin/faults", json={"http_429_rate": 0.0}, timeout=10)
        assert state.user_state(user)["marginSummary"]["accountValue"] == "123.5"
