"""``/api/mids/stream``: Server-Sent Events from the real sidecar, through ``python -m monitor``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.monitor.conftest import Monitor, PaperRun

pytestmark = pytest.mark.slow


async def read_events(resp: aiohttp.ClientResponse, n: int, timeout: float) -> list[dict[str, Any]]:
    """The next ``n`` events (or comments) of an SSE response, each as its fields."""
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}

    async def run() -> None:
        nonlocal cur
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line == "":
                if cur:
                    out.append(cur)
                    cur = {}
                if len(out) >= n:
                    return
                continue
            if line.startswith(":"):
                cur["comment"] = line[1:].strip()
                continue
            key, _, value = line.partition(": ")
            cur[key] = value

    await asyncio.wait_for(run(), timeout)
    return out


async def test_mids_stream_from_the_sidecar_with_ids_and_reconnect(
    paper_run: PaperRun, monitor_factory: Any
) -> None:
    if paper_run.sock is None:
        pytest.skip("target/release/ai-quant-sidecar is not built: no live mids to stream")
    mon: Monitor = monitor_factory(paper_run)
    async with aiohttp.ClientSession() as http:
        async with http.get(mon.url + "/api/mids/stream", params={"symbols": "BTC,ETH"}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            events = await read_events(r, 4, 60)
        assert events[0] == {"retry": "3000"}
        mids = [e for e in events if e.get("event") == "mids"]
        assert len(mids) >= 2
        ids = [int(e["id"]) for e in mids]
        assert ids == sorted(ids) and ids[-1] > ids[0]  # live updates, in order
        for e in mids:
            data = json.loads(e["data"])
            assert set(data["mids"]) == {"BTC", "ETH"} and all(p > 0 for p in data["mids"].values())
            assert data["connected"] and data["seq"] == int(e["id"])
        # A reconnect with Last-Event-ID gets only newer mids.
        last = ids[-1]
        async with http.get(mon.url + "/api/mids/stream", headers={"Last-Event-ID": str(last)}) as r:
            again = [e for e in await read_events(r, 2, 60) if e.get("event") == "mids"]
        assert again and int(again[0]["id"]) > last
        # /api/mids agrees and keeps a sparkline history
        async with http.get(mon.url + "/api/mids", params={"history": "1", "symbols": "BTC"}) as r:
            m = await r.json()
        assert m["connected"] and m["seq"] >= last and len(m["history"]["BTC"]) >= 1


async def test_stream_without_a_sidecar_says_so_and_keeps_alive(
    paper_run: PaperRun, monitor_factory: Any, tmp_path: Any
) -> None:
    mon: Monitor = monitor_factory(
        paper_run, "--keepalive-s", "0.3", AI_QUANT_WS_SIDECAR_SOCK=str(tmp_path / "gone.sock")
    )
    async with aiohttp.ClientSession() as http, http.get(mon.url + "/api/mids/stream") as r:
        events = await read_events(r, 4, 30)
        # SIGTERM with a stream still open: a clean exit, promptly
        t0 = time.monotonic()
        code = await asyncio.to_thread(mon.stop)
        assert code == 0 and time.monotonic() - t0 < 8, mon.log.read_text()[-2000:]
    status = [e for e in events if e.get("event") == "status"]
    assert status and all(json.loads(e["data"])["connected"] is False for e in status)
    assert any("gone.sock" in json.loads(e["data"])["error"] for e in status)
    assert any(e.get("comment") == "keepalive" for e in events)
