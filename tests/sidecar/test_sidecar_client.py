"""exchange.sidecar against fake Unix-socket servers (no binary needed): timeouts, errors, typing."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.sidecar import (
    AsyncSidecarClient,
    Bbo,
    Health,
    Mids,
    SidecarClient,
    SidecarError,
    SidecarTimeout,
    SidecarUnavailable,
    read_candles,
)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A server that answers ``silent`` with nothing, ``fail`` with ok:false, else echoes a result."""
    path = tmp_path / "fake.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(8)
    srv.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        f = conn.makefile("rwb")
        for _ in range(100):
            line = f.readline()
            if not line:
                return
            req = json.loads(line)
            seen.append(req["method"])
            if req["method"] == "silent":
                continue
            if req["method"] == "fail":
                out = {"id": req["id"], "ok": False, "error": "nope"}
            elif req["method"] == "get_mids":
                out = {
                    "id": req["id"],
                    "ok": True,
                    "result": {"mids": {"BTC": 1.5}, "mids_seq": 3, "bbo": {}},
                }
            else:
                out = {"id": req["id"], "ok": True, "result": {"echo": req["params"]}}
            f.write((json.dumps(out) + "\n").encode())
            f.flush()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield path, seen
    stop.set()
    t.join(timeout=2)
    srv.close()


def test_sync_client_results_errors_and_timeouts(fake: tuple[Path, list[str]]) -> None:
    path, seen = fake
    with SidecarClient(path, timeout=0.3) as c:
        assert c.call("x", {"a": 1}) == {"echo": {"a": 1}}
        m = c.get_mids(["BTC"])
        assert isinstance(m, Mids) and m.mids == {"BTC": 1.5} and m.mids_seq == 3
        with pytest.raises(SidecarError, match="nope"):
            c.call("fail")
        t0 = time.monotonic()
        with pytest.raises(SidecarTimeout):
            c.call("silent")
        assert time.monotonic() - t0 < 2
        # The next call uses a fresh connection and works.
        assert c.call("y") == {"echo": {}}
    assert seen.count("silent") == 1


def test_sync_client_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SidecarUnavailable):
        SidecarClient(tmp_path / "missing.sock", timeout=0.2).health()


def test_async_client(fake: tuple[Path, list[str]]) -> None:
    path, _ = fake

    async def go() -> None:
        async with AsyncSidecarClient(path, timeout=0.3) as c:
            assert await c.call("x") == {"echo": {}}
            assert (await c.get_mids()).mids == {"BTC": 1.5}
            with pytest.raises(SidecarError):
                await c.call("fail")
            with pytest.raises(SidecarTimeout):
                await c.call("silent")
            assert await c.call("y", {"b": 2}) == {"echo": {"b": 2}}
        with pytest.raises(SidecarUnavailable):
            await AsyncSidecarClient(path.parent / "missing.sock").health()

    asyncio.run(go())


def test_async_client_is_the_sync_one_and_a_cancelled_long_poll_ends_at_once(
    fake: tuple[Path, list[str]],
) -> None:
    """AsyncSidecarClient runs SidecarClient's calls on a worker thread (one client, #24). A call
    the server never answers, with a 30 s read timeout, is cancelled (or the client closed): the
    worker's socket is shut down, so it ends at once and the client serves the next call."""
    path, seen = fake

    async def wait_seen(n: int) -> None:
        for _ in range(200):  # bounded: 2 s
            if seen.count("silent") >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the server never saw the request")

    async def go() -> None:
        c = AsyncSidecarClient(path, timeout=30.0)
        assert isinstance(c.client, SidecarClient) and c.path == path
        task = asyncio.create_task(c.call("silent"))
        await wait_seen(1)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 2.0
        assert await c.call("y", {"b": 2}) == {"echo": {"b": 2}}  # fresh connection, not aborted
        task = asyncio.create_task(c.call("silent"))
        await wait_seen(2)
        t0 = time.monotonic()
        await c.close()  # closing ends the call in progress with one clear error
        with pytest.raises(SidecarUnavailable):
            await task
        assert time.monotonic() - t0 < 2.0
        assert (await c.get_mids()).mids == {"BTC": 1.5}
        await c.close()

    asyncio.run(asyncio.wait_for(go(), 20))


def test_read_candles_is_read_only_and_ordered(tmp_path: Path) -> None:
    assert read_candles(tmp_path, "BTC", "1m") == []
    assert list(tmp_path.iterdir()) == []  # a missing DB is not created
    conn = sqlite3.connect(tmp_path / "candles_1m.db")
    conn.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL, h REAL, l REAL,"
        " c REAL, v REAL, n INTEGER, updated_at TEXT, PRIMARY KEY (symbol, interval, t))"
    )
    conn.executemany(
        "INSERT INTO candles VALUES ('BTC', '1m', ?, ?, 1, 2, 0.5, 1.5, 10, NULL, 'x')",
        [(t, t + 59_999) for t in range(0, 600_000, 60_000)],
    )
    conn.commit()
    conn.close()
    db = tmp_path / "candles_1m.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    rows = read_candles(tmp_path, "BTC", "1m", limit=3)
    assert [r.t for r in rows] == [420_000, 480_000, 540_000]
    # Nothing written: same bytes, same mtime, no journal or WAL files left beside it.
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candles_1m.db"]
    assert rows[0].n == 0 and rows[0].low == 0.5


def test_typed_results_read_missing_and_null_fields_as_their_defaults() -> None:
    d = {"ok": 1, "connects": None, "uptime_s": "2.5", "last_error": None, "venue_time_ms": "7", "extra": 1}
    h = Health.from_json(d)
    assert (h.ok, h.connected, h.connects, h.uptime_s, h.version, h.last_error) == (
        True,
        False,
        0,
        2.5,
        "",
        None,
    )
    assert (h.venue_time_ms, h.stale_after_s, h.mids_age_s) == (7, None, None)
    assert h.raw is d
    m = Mids.from_json({"mids": {"BTC": "1.5"}, "bbo": {"ETH": {"symbol": "ETH", "bid": 2}}, "mids_seq": 3})
    assert (m.mids, m.mids_seq, m.bbo_seq, m.timed_out, m.mids_age_s) == ({"BTC": 1.5}, 3, 0, False, None)
    assert m.bbo["ETH"] == Bbo("ETH", 2.0, None, None, None, 0, 0.0)
    with pytest.raises(KeyError):
        Bbo.from_json({"bid": 1.0})  # a BBO without its symbol is a broken answer
