"""The daemon and the venue it trades on (issue #22 items 3, 4 and 6), end to end: the paper daemon,
the real sidecar binary and the local exchange (``python -m exchange.sim``), all subprocesses on
127.0.0.1; the monitor too for the outage. Every wait is bounded.

* a sidecar streaming another venue is refused in one line, and the daemon reads REST;
* the start line names the socket it looked at, and a candle directory other than the sidecar's;
* a venue outage: the heartbeat, sd_notify STATUS and the monitor say "venue unreachable since T",
  stale mids are flagged, one alert marks the outage and one the recovery, and the daemon recovers.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.venue import unreachable_reason
from exchange.venue_url import same_venue
from tests.daemon_harness import DATA, SIDECAR, Daemon, LocalExchange, real_data_venue, sidecar, wait_for

pytestmark = pytest.mark.slow
needs_sidecar = pytest.mark.skipif(
    not SIDECAR.exists(), reason="target/release/ai-quant-sidecar is not built"
)


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with real_data_venue(tmp_path_factory.mktemp("venue")) as url:
        yield url


def _run(d: Daemon, loops: int = 3) -> str:
    """Run the daemon for ``loops`` loops; its log."""
    with d.start("--max-loops", str(loops)):
        assert d.proc is not None
        assert d.proc.wait(120) == 0, d.log.read_text()[-3000:]
    return d.log.read_text()


def test_venue_urls_compare_after_normalising() -> None:
    assert same_venue("http://127.0.0.1:3001", "ws://127.0.0.1:3001/ws")
    assert same_venue("http://127.0.0.1:3001/", "http://localhost:3001")
    assert same_venue("https://api.hyperliquid.xyz", "wss://API.hyperliquid.xyz:443/ws")
    assert not same_venue("http://127.0.0.1:35001", "http://127.0.0.1:35002")
    assert not same_venue("http://api.hyperliquid.xyz", "https://api.hyperliquid.xyz")
    assert not same_venue("https://api.hyperliquid.xyz", "https://api.hyperliquid-testnet.xyz")


def test_what_means_unreachable() -> None:
    import requests
    from hyperliquid.utils.error import ClientError, ServerError

    from exchange.sidecar import SidecarUnavailable

    assert unreachable_reason(requests.exceptions.ConnectionError("refused")) == "ConnectionError"
    assert unreachable_reason(requests.exceptions.ReadTimeout("slow")) == "ReadTimeout"
    assert unreachable_reason(ServerError(502, "bad gateway")) == "HTTP 502"
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as exc:
            raise RuntimeError("reconcile failed") from exc
    except RuntimeError as wrapped:
        assert unreachable_reason(wrapped) == "ConnectionRefusedError"
    assert unreachable_reason(ClientError(429, None, "slow down", None)) is None
    assert unreachable_reason(SidecarUnavailable("sidecar gone")) is None
    assert unreachable_reason(ValueError("bug")) is None


def test_start_line_names_the_socket_it_looked_at(venue: str, tmp_path: Path) -> None:
    d = Daemon(venue, tmp_path)
    log = _run(d, loops=1)
    assert f"sidecar no (no socket at {tmp_path / 'no.sock'})" in log


@needs_sidecar
def test_a_sidecar_of_another_venue_is_refused_in_one_line(venue: str, tmp_path: Path) -> None:
    other = LocalExchange(tmp_path / "other_venue.log")
    other_url = other.url
    try:
        with sidecar(tmp_path / "side", other_url) as (sock, _candles):
            d = Daemon(venue, tmp_path / "d", AI_QUANT_WS_SIDECAR_SOCK=str(sock))
            log = _run(d)
    finally:
        other.stop()
    lines = [line for line in log.splitlines() if "serves venue" in line]
    assert len(lines) == 1, log[-3000:]
    assert f"WS sidecar at {sock} serves venue {other_url}, not this daemon's {venue}: refused" in lines[0]
    assert "WARNING" in lines[0]
    assert f"sidecar no (refused: {sock} serves another venue)" in log and "sidecar yes" not in log
    assert d.heartbeat()["data"] == "rest"  # its own REST, never the other venue's candles or mids


@needs_sidecar
def test_a_different_candle_dir_is_named_at_start(venue: str, tmp_path: Path) -> None:
    # The venue URL spelled another way (trailing slash, localhost) is the same venue.
    with sidecar(tmp_path / "side", venue + "/") as (sock, candles):
        spelled = venue.replace("127.0.0.1", "localhost")
        d = Daemon(venue, tmp_path / "d", AI_QUANT_WS_SIDECAR_SOCK=str(sock), AI_QUANT_EXCHANGE_URL=spelled)
        log = _run(d)
    mine = (tmp_path / "d" / "no_candles").resolve()
    lines = [line for line in log.splitlines() if "the sidecar writes candles to" in line]
    assert len(lines) == 1, log[-3000:]
    assert f"the sidecar writes candles to {candles.resolve()} but this daemon reads {mine}" in lines[0]
    assert "data=rest" in lines[0]
    assert f"sidecar yes ({sock}, venue {venue})" in log
    assert d.heartbeat()["data"] == "rest"


# ---- a venue outage ----------------------------------------------------------------------------------


def _hb_message(d: Daemon) -> str:
    rows = d.q("SELECT message FROM runtime_logs WHERE stream = 'heartbeat' ORDER BY id DESC LIMIT 1")
    return str(rows[0][0]) if rows else ""


def _snapshot(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/api/snapshot", timeout=10) as r:
        return dict(json.loads(r.read()))


def _alerts(d: Daemon, kind: str) -> list[str]:
    return [
        line for line in d.log.read_text().splitlines() if f"ALERT (dry run) [ai-quant paper] {kind}:" in line
    ]


@needs_sidecar
def test_venue_outage_is_visible_alerted_once_and_recovered(tmp_path: Path) -> None:
    from tests.monitor.conftest import Monitor, PaperRun

    if not DATA.exists():
        pytest.skip(f"real data not found under {DATA}")
    sim = LocalExchange(tmp_path / "venue.log")
    url = sim.url
    notify_path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(notify_path))
    srv.settimeout(0.2)
    statuses: list[str] = []
    done = threading.Event()

    def read_notify() -> None:  # drained all along: a full datagram queue would block the daemon
        while not done.is_set():
            try:
                msg = srv.recv(4096).decode()
            except (TimeoutError, OSError):
                continue
            statuses.extend(m for m in msg.split("\n") if m.startswith("STATUS="))

    reader = threading.Thread(target=read_notify, daemon=True)
    reader.start()

    try:
        with sidecar(tmp_path / "side", url, "--reconnect-max-ms", "1000") as (sock, candles):
            d = Daemon(
                url, tmp_path / "d", AI_QUANT_WS_SIDECAR_SOCK=str(sock), AI_QUANT_CANDLES_DIR=str(candles),
                AI_QUANT_ALERT_DRY_RUN="1", AI_QUANT_MIDS_STALE_S="3", NOTIFY_SOCKET=str(notify_path),
            )  # fmt: skip
            with d.start():
                wait_for(lambda: d.loops() >= 2 and _hb_message(d).startswith("engine ok."), 90, "loops")
                run = PaperRun(tmp_path / "d", d.db_path, d.config, candles, sock, url)
                mon = Monitor(run, tmp_path, AI_QUANT_MIDS_STALE_S="3")
                try:
                    snap = _snapshot(mon.url)
                    assert not any("venue unreachable" in w for w in snap["warnings"])
                    sim.stop(kill=True)  # the exchange goes away under the running daemon
                    msg = wait_for(
                        lambda: (m := _hb_message(d)).startswith("venue unreachable since ") and m, 30,
                        "the heartbeat to say the venue is unreachable",
                    )  # fmt: skip
                    since = msg.split()[3].rstrip(".")
                    assert f"venue_down_since={since}" in msg
                    at = d.loops()
                    wait_for(lambda: d.loops() >= at + 3, 30, "loops during the outage")
                    d.alive()  # still running, still looping
                    assert any(s.startswith(f"STATUS=venue unreachable since {since}.") for s in statuses)
                    snap = wait_for(
                        lambda: (s := _snapshot(mon.url))["sidecar"]["stale"] and s, 30, "stale mids in the monitor"
                    )  # fmt: skip
                    warnings = " | ".join(snap["warnings"])
                    assert f"venue unreachable since {since}" in warnings, warnings
                    assert "live mids are stale" in warnings, warnings
                    with urllib.request.urlopen(mon.url + "/metrics", timeout=10) as r:
                        assert 'aiq_venue_unreachable{mode="paper"} 1' in r.read().decode()
                    assert len(_alerts(d, "venue_unreachable")) == 1
                    assert _alerts(d, "venue_recovered") == []

                    sim = LocalExchange(sim.log, port=sim.port)  # the exchange comes back
                    wait_for(lambda: _hb_message(d).startswith("engine ok."), 60, "the daemon to recover")
                    at = d.loops()
                    wait_for(lambda: d.loops() >= at + 3, 30, "loops after the recovery")
                    assert "venue_down_since=-" in _hb_message(d)
                    wait_for(lambda: len(_alerts(d, "venue_recovered")) == 1, 10, "the recovery alert")
                    assert len(_alerts(d, "venue_unreachable")) == 1  # once per outage, not per loop
                    snap = wait_for(
                        lambda: (s := _snapshot(mon.url))["sidecar"]["connected"]
                        and not s["sidecar"]["stale"]
                        and not any("venue unreachable" in w for w in s["warnings"])
                        and s,
                        60, "the monitor to clear its warnings",
                    )  # fmt: skip
                finally:
                    mon.stop()
                events = [r[0] for r in d.q(
                    "SELECT event FROM audit_events WHERE event LIKE 'VENUE_%' ORDER BY id")]  # fmt: skip
                assert events == ["VENUE_UNREACHABLE", "VENUE_RECOVERED"]
                assert d.stop() == 0
    finally:
        done.set()
        reader.join(5)
        srv.close()
        sim.stop()


def test_live_daemon_outage_one_alert_each_and_a_quiet_journal(tmp_path: Path) -> None:
    """The issue's case: a live daemon with the exchange stopped under it. The heartbeat says so,
    the outage and the recovery alert once each, and the dead man's switch failing every loop is one
    journal line per rate-limit interval, not one per loop."""
    from eth_account import Account

    if not DATA.exists():
        pytest.skip(f"real data not found under {DATA}")
    key = "0x" + f"{0xA11CE0FF:064x}"
    addr = Account.from_key(key).address.lower()
    sim_args = ("--state-db", str(tmp_path / "sim_state.db"), "--deposit", f"{addr}=10000")
    sim = LocalExchange(tmp_path / "venue.log", *sim_args)
    url = sim.url
    root = tmp_path / "d"
    root.mkdir()
    secrets = root / "secrets.json"
    secrets.write_text(json.dumps({"secret_key": key}))
    secrets.chmod(0o600)
    d = Daemon(
        url, root, AI_QUANT_MODE="live", AI_QUANT_SECRETS_PATH=str(secrets), AI_QUANT_LIVE_ENABLE="1",
        AI_QUANT_LIVE_CONFIRM="I_UNDERSTAND_THIS_CAN_LOSE_MONEY", AI_QUANT_ALERT_DRY_RUN="1",
    )  # fmt: skip
    d.db_path = root / "data" / "trading_engine_live.db"
    try:
        with d.start("--no-user-stream"):
            wait_for(lambda: d.loops() >= 2 and _hb_message(d).startswith("engine ok."), 90, "live loops")
            sim.stop(kill=True)
            wait_for(
                lambda: _hb_message(d).startswith("venue unreachable since "), 60, "the outage heartbeat"
            )
            at = d.loops()
            wait_for(lambda: d.loops() >= at + 8, 60, "loops during the outage")
            d.alive()
            log = d.log.read_text()
            live_alerts = [line for line in log.splitlines() if "ALERT (dry run) [ai-quant live]" in line]
            assert len([a for a in live_alerts if " venue_unreachable: " in a]) == 1, live_alerts
            journal_dms = [
                line
                for line in log.splitlines()
                if "engine.alerting: alert" in line and "dead_man_switch" in line
            ]
            assert len(journal_dms) <= 1, journal_dms  # 8+ loops within one 60 s limit: at most one line
            assert "Traceback" not in log, log[-3000:]  # an outage is not a bug: no traceback per loop
            sim = LocalExchange(sim.log, *sim_args, port=sim.port)
            wait_for(lambda: _hb_message(d).startswith("engine ok."), 90, "the live daemon to recover")
            wait_for(lambda: len(_alerts_live(d, "venue_recovered")) == 1, 10, "the recovery alert")
            assert len(_alerts_live(d, "venue_unreachable")) == 1
            assert d.stop() == 0
    finally:
        sim.stop()


def _alerts_live(d: Daemon, kind: str) -> list[str]:
    return [
        line for line in d.log.read_text().splitlines() if f"ALERT (dry run) [ai-quant live] {kind}:" in line
    ]
