"""End to end: the paper daemon as a process against the local exchange process (127.0.0.1).

The venue replays real Hyperliquid 5m candles at x300 (one bar a second); the daemon loops every
0.4 s with an active config. Every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.persistence import state_digest
from tests.daemon_harness import (
    CONFIG,
    ROOT,
    SIDECAR,
    SYMBOLS,
    Daemon,
    real_data_venue,
    sidecar,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with real_data_venue(tmp_path_factory.mktemp("venue")) as url:
        yield url


def test_refuses_live_modes_unknown_mode_and_a_second_daemon(venue: str, tmp_path: Path) -> None:
    d = Daemon(venue, tmp_path)
    r = Daemon(venue, tmp_path, AI_QUANT_MODE="live").run()  # gates closed (tests/daemon/test_daemon_live.py)
    assert r.returncode == 2 and "AI_QUANT_MODE=live refused" in r.stderr
    r = Daemon(venue, tmp_path, AI_QUANT_MODE="dry_live", AI_QUANT_SECRETS_PATH=str(tmp_path / "none")).run()
    assert r.returncode == 2 and "needs the wallet" in r.stderr
    r = Daemon(venue, tmp_path, AI_QUANT_MODE="papr").run()
    assert r.returncode == 2 and "paper, dry_live, live" in r.stderr
    with d.start():
        wait_for(lambda: d.loops() >= 1, 60, "the first loop")
        r = d.run()
        assert r.returncode == 3
        assert f"another ai-quant daemon is already running (pid {d.proc.pid})" in r.stderr  # type: ignore[union-attr]
        t0 = time.monotonic()
        assert d.stop(signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 10  # clean shutdown within a bound
    assert "stopped after" in d.log.read_text()


def test_trades_restarts_after_sigkill_with_identical_state_and_explains_trades(
    venue: str, tmp_path: Path
) -> None:
    d = Daemon(venue, tmp_path)
    with d.start():
        wait_for(lambda: d.n("SELECT COUNT(*) FROM trades WHERE action='OPEN'") >= 2, 150, "paper trades")
        d.stop()
        # Back to back loops (no pause): a SIGKILL now lands inside a loop (venue I/O or the commit).
        d.start("--loop-s", "0.001")
        for delay in (0.5, 0.77, 1.13, 0.31):
            at = d.loops()
            wait_for(lambda at=at: d.loops() > at + 5, 30, "loops")
            time.sleep(delay)
            d.alive()
            d.stop(signal.SIGKILL)
            kv = dict(d.q("SELECT key, value FROM kv"))
            committed = state_digest(kv["kernel_state"], kv["paper_account"])
            n_trades = d.n("SELECT COUNT(*) FROM trades")
            starts = d.n("SELECT COUNT(*) FROM audit_events WHERE event='ENGINE_START'")
            d.start("--loop-s", "0.001")
            wait_for(
                lambda s=starts: d.n("SELECT COUNT(*) FROM audit_events WHERE event='ENGINE_START'") > s,
                60, "the restart",
            )  # fmt: skip
            start = d.q(
                "SELECT data_json FROM audit_events WHERE event='ENGINE_START' ORDER BY id DESC LIMIT 1"
            )
            info = json.loads(start[0][0])
            assert info["restored"] and info["state_digest"] == committed  # continues from the exact state
            assert d.n("SELECT COUNT(*) FROM trades") >= n_trades
        before = d.n("SELECT COUNT(*) FROM trades")
        wait_for(lambda: d.n("SELECT COUNT(*) FROM trades") > before, 120, "trading after the restarts")
        d.alive()
        assert d.stop() == 0
    dup = d.n("SELECT COUNT(*) - COUNT(DISTINCT fill_hash || ':' || fill_tid) FROM trades")
    assert dup == 0
    # The paper account equals the kernel's: positions in position_state match the kernel state.
    kv = dict(d.q("SELECT key, value FROM kv"))
    kernel = json.loads(kv["kernel_state"])
    paper = json.loads(kv["paper_account"])
    assert sorted(kernel["positions"]) == sorted(paper["positions"]) == [r[0] for r in d.q(
        "SELECT symbol FROM position_state ORDER BY symbol")]  # fmt: skip
    assert kernel["cash_usd"] == pytest.approx(paper["balance"], abs=1e-6)
    # The ledger: replaying every booked row (fee, realised PnL, funding) from the initial balance
    # gives each row's balance and the final paper balance bit for bit, across the SIGKILLs.
    bal = 10_000.0  # AI_QUANT_PAPER_BALANCE's default
    rows = d.q("SELECT id, action, pnl, fee_usd, balance FROM trades ORDER BY id")
    assert {r[1] for r in rows} >= {"OPEN", "CLOSE"}, {r[1] for r in rows}
    for tid, action, pnl, fee, balance in rows:
        if action == "FUNDING":
            bal += pnl
        else:
            bal -= fee
            bal += pnl
        assert balance == bal, (tid, action, balance, bal)
    assert paper["balance"] == bal
    # Each trade has an executed decision with the gate values behind it.
    rows = d.q(
        "SELECT t.id, t.action, d.gates_json, d.reason_code FROM trades t JOIN decision_events d"
        " ON d.trade_id = t.id AND d.status = 'executed' WHERE t.action != 'FUNDING'"
    )
    n = d.n("SELECT COUNT(*) FROM trades WHERE action != 'FUNDING'")
    assert len(rows) == n and n > 0
    for _tid, action, gates_json, reason in rows:
        gates = json.loads(gates_json)
        assert gates["risk"]["allowed"] is True and "fill" in gates
        if action == "OPEN":
            assert gates["adx"]["value"] >= gates["adx"]["threshold"] and reason == "entry_signal"
            assert gates["confidence"]["value"] in ("low", "medium", "high")


def _kill_seen(d: Daemon, want: str, after_loop: int) -> int:
    def seen() -> int:
        hb = d.heartbeat()
        return int(hb["loops"]) if hb.get("kill") == want and int(hb["loops"]) > after_loop else 0

    return int(wait_for(seen, 30, f"kill={want}", every=0.05))


def test_kill_switches_take_effect_within_one_loop(venue: str, tmp_path: Path) -> None:
    d = Daemon(venue, tmp_path)
    with d.start():
        wait_for(lambda: d.loops() >= 3, 90, "three loops")
        for word, want in (("close_only", "close_only"), ("halt_all", "halt_all"), ("clear", "off")):
            at = d.loops()
            d.kill_file.write_text(word + "\n")
            seen_at = _kill_seen(d, want, at)
            assert seen_at <= at + 2, (word, at, seen_at)  # the next loop started after the write
            if want == "close_only":
                last_id = d.n("SELECT MAX(id) FROM trades")
                time.sleep(3)
                opens = d.n(
                    "SELECT COUNT(*) FROM trades WHERE action IN ('OPEN','ADD') AND id > ?", (last_id,)
                )
                assert opens == 0
        events = [json.loads(r[0])["to"] for r in d.q(
            "SELECT data_json FROM audit_events WHERE event='RISK_KILL_SWITCH' ORDER BY id")]  # fmt: skip
        assert events == ["close_only", "halt_all", "off"]
        assert "kill switch off -> close_only" in d.log.read_text()  # logged and alerted
        assert d.stop() == 0
    # Env kill switches at start: close_only, and the hard kill that blocks exits too.
    for env, want in (
        ({"AI_QUANT_KILL_SWITCH": "close"}, "close_only"),
        ({"AI_QUANT_HARD_KILL_SWITCH": "1"}, "hard"),
    ):
        e = Daemon(venue, tmp_path / want, **env)
        with e.start():
            wait_for(lambda e=e, want=want: e.heartbeat().get("kill") == want, 90, f"kill={want}")
            time.sleep(2)
            blocked = e.n("SELECT COUNT(*) FROM trades WHERE action IN ('OPEN','ADD')")
            assert blocked == 0
            assert e.stop() == 0


def test_bad_config_edit_is_rejected_and_the_daemon_keeps_running(venue: str, tmp_path: Path) -> None:
    d = Daemon(venue, tmp_path)
    with d.start():
        wait_for(lambda: d.loops() >= 2, 90, "two loops")
        cid = d.heartbeat()["config_id"]
        time.sleep(0.05)
        d.config.write_text(CONFIG.replace("ema_fast_window: 8", "ema_fast_window: 40"))  # fast >= slow
        wait_for(lambda: d.n("SELECT COUNT(*) FROM audit_events WHERE event='CONFIG_REJECTED'"), 30,
                 "the rejection")  # fmt: skip
        at = d.loops()
        wait_for(lambda: d.loops() >= at + 3, 30, "loops after the bad edit")
        d.alive()
        assert d.heartbeat()["config_id"] == cid  # the last good config stays in force
        err = d.q("SELECT data_json FROM audit_events WHERE event='CONFIG_REJECTED'")[0][0]
        assert "ema_fast_window" in err
        # A good edit is applied without a restart; an interval change says it needs one.
        d.config.write_text(
            CONFIG.replace("min_adx: 15.0", "min_adx: 16.0").replace("interval: 5m", "interval: 15m")
        )
        wait_for(lambda: d.heartbeat().get("config_id") not in (None, cid), 30, "the reload")
        ev = json.loads(d.q("SELECT data_json FROM audit_events WHERE event='CONFIG_RELOADED'")[0][0])
        assert "engine.interval" in ev["restart_required"]
        assert "needs a restart" in d.log.read_text() or "only after a restart" in d.log.read_text()
        assert d.stop() == 0


@pytest.mark.skipif(not SIDECAR.exists(), reason="target/release/ai-quant-sidecar is not built")
def test_daemon_reads_candles_through_the_ws_sidecar(venue: str, tmp_path: Path) -> None:
    with sidecar(tmp_path, venue) as (sock, candles):
        d = Daemon(
            venue, tmp_path / "d", AI_QUANT_WS_SIDECAR_SOCK=str(sock), AI_QUANT_CANDLES_DIR=str(candles)
        )
        with d.start():
            wait_for(lambda: d.heartbeat().get("data") == "sidecar", 90, "candles from the sidecar")
            at = d.loops()
            wait_for(lambda: d.loops() >= at + 5, 30, "more loops")
            d.alive()
            assert "sidecar yes" in d.log.read_text()
            assert d.stop() == 0


def test_sd_notify_ready_after_first_loop_watchdog_and_stopping(venue: str, tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(path))
    srv.settimeout(60)
    d = Daemon(venue, tmp_path, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="10000000")
    got: list[str] = []
    try:
        with d.start():
            while not any(m.startswith("WATCHDOG=1") for m in got):
                got.append(srv.recv(4096).decode())
            assert got[0].startswith("READY=1\nSTATUS=engine ok.") and "loops=1 " in got[0]
            assert d.stop() == 0
            srv.settimeout(5)
            while "STOPPING=1" not in got:
                got.append(srv.recv(4096).decode())
    finally:
        srv.close()
    assert any(m.startswith("STATUS=engine ok.") for m in got)


def test_watchlist_top_n_by_volume_without_symbols(venue: str, tmp_path: Path) -> None:
    d = Daemon(venue, tmp_path, AI_QUANT_TOP_N="2")
    del d.env["AI_QUANT_SYMBOLS"]
    with d.start():
        wait_for(lambda: d.loops() >= 1, 60, "the first loop")
        assert d.heartbeat()["symbols"] == "2"
        start = json.loads(d.q("SELECT data_json FROM audit_events WHERE event='ENGINE_START'")[0][0])
        assert len(start["symbols"]) == 2 and set(start["symbols"]) <= set(SYMBOLS.split(","))
        assert d.stop() == 0


def test_console_script_entry_starts_the_daemon() -> None:
    r = subprocess.run([sys.executable, "-m", "daemon.cli", "run", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0 and "--max-loops" in r.stdout and "python -m daemon" in r.stdout
    r = subprocess.run([sys.executable, "-m", "daemon.cli", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stdout.startswith("ai-quant ")
