"""The real sidecar binary against the real local exchange (both subprocesses on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sidecar_helpers import Sidecar, Venue, wait_for

from exchange.sidecar import SidecarClient

MIN = 60_000
SYMS = ["BTC", "ETH"]


def start(binary: Path, tmp: Path, venue: Venue, *args: str, **kw: object) -> Sidecar:
    env = kw.get("env")
    assert env is None or isinstance(env, dict)
    return Sidecar(binary, tmp, venue, "--symbols", "BTC,ETH", "--intervals", "1m", *args, env=env)


def ready(c: SidecarClient) -> bool:
    return c.candles_ready(SYMS, "1m").ready


def test_version_flag(sidecar_binary: Path) -> None:
    import subprocess

    out = subprocess.run(
        [str(sidecar_binary), "--version"], capture_output=True, text=True, check=True, timeout=10
    )
    version = (Path(__file__).resolve().parents[2] / "VERSION").read_text().strip()
    assert out.stdout.strip() == f"ai-quant-sidecar {version}"


def test_candles_equal_the_exchange_and_market_data_flows(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    sc = start(sidecar_binary, tmp_path, venue)
    try:
        with sc.client() as c:
            wait_for(lambda: ready(c), what="bootstrap")
            # A fresh DB gets the retention window of 1m (one day) over REST.
            assert len(sc.db_rows("BTC", "1m")) >= 1440
            venue.advance(5 * MIN)
            sc.wait_candles_match(SYMS, "1m", MIN)
            # Mids and BBO flow, and agree with the venue.
            venue_mids = venue.post("/info", {"type": "allMids"})
            m = wait_for(
                lambda: (r := c.get_mids(SYMS)) and r.mids.get("BTC") == float(venue_mids["BTC"]) and r
            )
            assert set(m.mids) == set(SYMS)
            bbo = c.get_bbo("BTC")
            assert bbo is not None and bbo.bid is not None and bbo.ask is not None and bbo.bid < bbo.ask
            # wait_mids long-polls for a newer sequence number.
            seq = m.mids_seq
            timer = threading.Timer(0.3, lambda: venue.advance(MIN))
            timer.start()
            newer = c.wait_mids(seq, symbols=SYMS, timeout_ms=10_000)
            timer.join()
            assert not newer.timed_out and newer.mids_seq > seq
            timed_out = c.wait_mids(newer.mids_seq + 1000, timeout_ms=200)
            assert timed_out.timed_out
            # Latest and last closed bar times.
            latest = c.get_latest_candle_times("BTC", "1m")
            closed = c.get_last_closed_candle_times("BTC", "1m")
            assert latest.t is not None and closed.t is not None
            assert latest.t == venue.now() // MIN * MIN
            assert closed.t == latest.t - MIN and closed.t_close == latest.t - 1
            h = c.health(SYMS, "1m")
            assert h.connected and not h.stale and h.mids_age_s is not None
    finally:
        assert sc.stop() == 0


def test_forced_disconnect_is_recovered_without_gap(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    sc = start(sidecar_binary, tmp_path, venue, "--reconnect-min-ms", "1000")
    try:
        with sc.client() as c:
            wait_for(lambda: ready(c), what="bootstrap")
            venue.advance(MIN)
            before = c.health().disconnects
            venue.admin("disconnect")
            venue.advance(4 * MIN)  # bars pass while the sidecar is away
            wait_for(lambda: c.health().disconnects > before and c.health().connected, what="reconnect")
            venue.advance(MIN)
            sc.wait_candles_match(SYMS, "1m", MIN)
    finally:
        sc.stop()


def test_stale_stream_is_detected_and_recovered(sidecar_binary: Path, venue: Venue, tmp_path: Path) -> None:
    sc = start(sidecar_binary, tmp_path, venue, "--stale-secs", "1")
    try:
        with sc.client() as c:
            wait_for(lambda: ready(c), what="bootstrap")
            venue.faults(freeze_mids=True)
            h = wait_for(
                lambda: (x := c.health()).stale_reconnects >= 1 and x, timeout=15, what="stale detection"
            )
            assert "stale" in (h.last_close or "")
            venue.faults(freeze_mids=False)
            venue.advance(3 * MIN)

            def caught_up() -> bool:
                venue.advance(1_000)  # keep data flowing so a 1 s stale bound is not hit again
                time.sleep(0.5)  # let the pushes of that step reach the DB before comparing
                return all(not sc.candle_diff(s, "1m", MIN) for s in SYMS)

            try:
                wait_for(caught_up, timeout=30, interval=0.2, what="candles after a stale stream")
            except AssertionError:
                diffs = {s: sc.candle_diff(s, "1m", MIN) for s in SYMS}
                raise AssertionError(f"{diffs} {c.health().raw}\n{sc.read_log()[-2000:]}") from None
    finally:
        sc.stop()


def test_dropped_frames_leave_no_gap(sidecar_binary: Path, venue: Venue, tmp_path: Path) -> None:
    sc = start(sidecar_binary, tmp_path, venue)
    try:
        with sc.client() as c:
            wait_for(lambda: ready(c), what="bootstrap")
            venue.faults(ws_drop_rate=0.6, seed=3)
            for _ in range(8):
                venue.advance(30_000, step_ms=10_000)
            venue.faults(ws_drop_rate=0.0)
            venue.advance(1_000)
            sc.wait_candles_match(SYMS, "1m", MIN)
    finally:
        sc.stop()


def test_restart_mid_stream_leaves_a_consistent_db(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    sc = start(sidecar_binary, tmp_path, venue)
    try:
        with sc.client() as c:
            wait_for(lambda: ready(c), what="bootstrap")
        venue.advance(2 * MIN)
        assert sc.stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to flush
        venue.advance(5 * MIN)
        sc.start()
        with sc.client() as c:
            wait_for(lambda: ready(c), what="ready after restart")
        sc.wait_candles_match(SYMS, "1m", MIN)
        # A graceful stop flushes, closes the DBs, removes the socket and exits 0.
        venue.advance(MIN)
        assert sc.stop(signal.SIGTERM) == 0
        assert not sc.sock.exists()
        sc.start()
        sc.wait_candles_match(SYMS, "1m", MIN)
    finally:
        sc.stop()


def test_duplicate_fill_pushes_reach_the_client_once(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    from eth_account import Account
    from hyperliquid.exchange import Exchange

    wallet = Account.from_key("0x" + "11" * 32)
    venue.admin("deposit", {"user": wallet.address, "usd": "100000"})
    sc = start(sidecar_binary, tmp_path, venue, "--user", wallet.address.lower())
    try:
        with sc.client() as c:
            wait_for(lambda: c.ws_stats()["active_subscriptions"] >= 9, what="user subscriptions")
            venue.faults(duplicate_fill_rate=1.0)
            ex = Exchange(wallet, venue.base_url)
            res = ex.market_open("ETH", True, 0.05)
            assert res["status"] == "ok", res
            fills: list[dict[str, object]] = []

            def got() -> bool:
                fills.extend(c.drain_user_fills().items)
                return len(fills) >= 1 and c.ws_stats()["duplicate_fills"] >= 1

            wait_for(got, what="fill and its duplicate")
            keys = [(f["hash"], f["tid"]) for f in fills]
            assert len(keys) == len(set(keys))
            n_fills = len(fills)
            # Resubscribing brings an isSnapshot batch that repeats the fills: still delivered once.
            snap_before = c.ws_stats()["duplicate_fills"]
            c.restart()
            wait_for(
                lambda: c.ws_stats()["duplicate_fills"] >= snap_before + n_fills,
                what="snapshot after resubscribe",
            )
            assert c.drain_user_fills().items == []
            assert c.drain_order_updates().items, "order updates are queued too"
    finally:
        sc.stop()


def test_socket_protocol_errors_do_not_stall_other_clients(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    import json
    import socket

    sc = start(sidecar_binary, tmp_path, venue)
    try:
        raw = socket.socket(socket.AF_UNIX)
        raw.settimeout(5)
        raw.connect(str(sc.sock))
        f = raw.makefile("rwb")
        f.write(b"{not json\n")
        f.flush()
        r = json.loads(f.readline())
        assert r == {"id": 0, "ok": False, "error": r["error"]} and r["error"].startswith("bad json")
        f.write(b'{"id":5,"method":"no_such_method"}\n{"id":6,"method":"get_bbo","params":{}}\n')
        f.flush()
        r5, r6 = json.loads(f.readline()), json.loads(f.readline())
        assert (r5["id"], r5["ok"]) == (5, False) and "unknown method" in r5["error"]
        assert (r6["id"], r6["ok"]) == (6, False) and "symbol" in r6["error"]
        # An oversized line: the other client is answered meanwhile, this one gets an error, and the
        # connection still works afterwards.
        big = b'{"id":7,"method":"health","params":{"x":"' + b"a" * (2 << 20)
        chunk = 64 << 10

        def send_slowly() -> None:  # about 8 s: the other client must be answered before it ends
            for i in range(0, len(big), chunk):
                raw.sendall(big[i : i + chunk])
                time.sleep(0.25)
            raw.sendall(b'"}}\n')

        sender = threading.Thread(target=send_slowly)
        sender.start()
        with sc.client(timeout=5) as other:
            assert other.health().version
            assert sender.is_alive(), "answered only after the oversized line was complete"
        sender.join(timeout=30)
        r = json.loads(f.readline())
        assert (r["id"], r["ok"]) == (0, False) and "too large" in r["error"]
        f.write(b'{"id":8,"method":"ws_stats"}\n')
        f.flush()
        r = json.loads(f.readline())
        assert r["id"] == 8 and r["ok"] and r["result"]["sock_oversized"] == 1
        raw.close()
        assert oct(os.stat(sc.sock).st_mode & 0o777) == "0o600"
    finally:
        sc.stop()


def test_client_registrations_expire(sidecar_binary: Path, venue: Venue, tmp_path: Path) -> None:
    sc = Sidecar(
        sidecar_binary, tmp_path, venue, "--symbols", "BTC", env={"AI_QUANT_WS_CLIENT_TTL_SECS": "4"}
    )
    try:
        with sc.client() as c:
            base = wait_for(lambda: c.ws_stats()["active_subscriptions"], what="subscriptions")
            c.ensure_started(["ETH"], "5m", candle_limit=100)
            stats = wait_for(
                lambda: (s := c.ws_stats())["active_subscriptions"] == base + 2 and s, what="client subs"
            )
            assert stats["clients"] == 1
            wait_for(lambda: c.candles_ready(["ETH"], "5m").ready, what="ETH 5m backfill")
            assert len(sc.db_rows("ETH", "5m")) >= 100
            # A TTL well above a loaded box's pause between the calls above; expiry bounded far above it.
            wait_for(lambda: c.ws_stats()["clients"] == 0, timeout=40, what="TTL expiry")
            wait_for(lambda: c.ws_stats()["active_subscriptions"] == base, what="unsubscribe after expiry")
    finally:
        sc.stop()


def test_sd_notify_ready_and_watchdog(sidecar_binary: Path, venue: Venue, tmp_path: Path) -> None:
    import socket

    path = tmp_path / "notify.sock"
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(path))
    rx.settimeout(10)
    try:
        sc = Sidecar(
            sidecar_binary, tmp_path, venue, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}
        )
        try:
            got = {rx.recv(256).decode() for _ in range(3)}
            assert "READY=1" in got and "WATCHDOG=1" in got
        finally:
            assert sc.stop() == 0
        seen = set()
        for _ in range(50):
            msg = rx.recv(256).decode()
            seen.add(msg)
            if msg == "STOPPING=1":
                break
        assert "STOPPING=1" in seen
    finally:
        rx.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_python_client_reconnects_to_a_restarted_sidecar(
    sidecar_binary: Path, venue: Venue, tmp_path: Path, kind: str
) -> None:
    import asyncio

    from exchange.sidecar import AsyncSidecarClient, SidecarUnavailable

    sc = start(sidecar_binary, tmp_path, venue)
    try:
        if kind == "sync":
            with sc.client() as c:
                assert c.health().connected in (True, False)
                sc.stop()
                with pytest.raises(SidecarUnavailable):
                    c.health()
                sc.start()
                assert c.health().version
        else:

            async def go() -> None:
                async with AsyncSidecarClient(sc.sock, timeout=5) as c:
                    assert (await c.health()).version
                    sc.stop()
                    with pytest.raises(SidecarUnavailable):
                        await c.health()
                    sc.start()
                    assert (await c.health()).version
                    m = await c.get_mids(["BTC"])
                    assert m.mids_seq >= 0

            asyncio.run(go())
    finally:
        sc.stop()


def test_the_hub_registers_every_sub_bar_interval(sidecar_binary: Path, venue: Venue, tmp_path: Path) -> None:
    """A sub-bar mode needs the main interval and each sub-bar interval: the sidecar keeps one
    interval per client registration, so the hub registers each under its own client id (a second
    ``ensure_started`` on one id would replace the first and drop the main interval's candles)."""
    from engine.market_data import MarketDataHub

    sc = Sidecar(sidecar_binary, tmp_path, venue, "--symbols", "BTC")
    try:
        with sc.client() as c:
            base = wait_for(lambda: c.ws_stats()["active_subscriptions"], what="subscriptions")
            hub = MarketDataHub(None, "15m", 900_000, sidecar=c)
            assert hub.keep_subscribed(["ETH"], 60, sub_intervals=["5m", "15m"])
            stats = wait_for(lambda: (s := c.ws_stats())["clients"] == 2 and s, what="both intervals")
            assert stats["candle_pairs"] == 2 and stats["active_subscriptions"] > base  # ETH 15m and 5m
            for iv in ("15m", "5m"):
                wait_for(lambda iv=iv: c.candles_ready(["ETH"], iv).ready, what=f"ETH {iv} backfill")
                assert len(sc.db_rows("ETH", iv)) >= 1
    finally:
        sc.stop()
