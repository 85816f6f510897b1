"""End to end: the daemon in dry_live and live (``python -m daemon``) against the local
exchange process, through the official SDK path.

The venue replays real Hyperliquid 5m candles at x300; the daemon runs the paper e2e config, so the
kernel trades within a bounded time. Checked against the venue's own records (historicalOrders,
userFills, clearinghouseState): every fill in ``oms_fills`` once and booked once in ``trades``, OMS
and kernel positions equal to the venue's, no cloid sent twice across SIGKILL restarts, the
restart-to-reconciled time of the real process, no trace of the private key in any file written.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.daemon_harness import Daemon, real_data_venue, wait_for
from tools.daemon_proc import read_db

pytestmark = pytest.mark.slow

CONFIRM = "I_UNDERSTAND_THIS_CAN_LOSE_MONEY"
KEYS = {
    name: "0x" + f"{0xA11CE000 + n:064x}"
    for n, name in enumerate(("live", "dry", "gates", "nokey", "kill", "master", "preflight", "drift"))
}
ADDR = {name: Account.from_key(k).address.lower() for name, k in KEYS.items()}
DEPOSIT_USD = 10_000


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    deposits = [a for addr in ADDR.values() for a in ("--deposit", f"{addr}={DEPOSIT_USD}")]
    with real_data_venue(tmp_path_factory.mktemp("venue"), *deposits) as url:
        yield url


class LiveDaemon(Daemon):
    """A daemon in dry_live/live with its wallet in a 0600 secrets file outside the repository."""

    def __init__(
        self, url: str, root: Path, who: str, mode: str = "live", agent_key: str | None = None, **env: str
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        secrets = root / "secrets.json"
        if agent_key is not None:  # an API wallet trading for ``who`` (the master account)
            secrets.write_text(json.dumps({"secret_key": agent_key, "account_address": ADDR[who]}))
            secrets.chmod(0o600)
        elif who in KEYS and who != "nokey":
            secrets.write_text(json.dumps({"secret_key": KEYS[who]}))
            secrets.chmod(0o600)
        gates = {"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": CONFIRM} if mode == "live" else {}
        super().__init__(
            url, root, AI_QUANT_MODE=mode, AI_QUANT_SECRETS_PATH=str(secrets),
            **{**gates, **env},
        )  # fmt: skip
        self.db_path = root / "data" / "trading_engine_live.db"
        self.oms_path = root / "data" / f"oms_{mode}.db"
        self.addr = ADDR.get(who, "")
        self.url = url

    def oq(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return read_db(self.oms_path, sql, args)

    def on(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        rows = self.oq(sql, args)
        return int(rows[0][0] or 0) if rows else 0

    def info(self, req: dict[str, Any]) -> Any:
        from hyperliquid.info import Info

        return Info(self.url, skip_ws=True, timeout=10).post("/info", req)

    def venue_positions(self) -> dict[str, Decimal]:
        st = self.info({"type": "clearinghouseState", "user": self.addr})
        out = {}
        for ap in st.get("assetPositions", []):
            p = ap["position"]
            if Decimal(p["szi"]) != 0:
                out[p["coin"]] = Decimal(p["szi"])
        return out

    def oms_positions(self) -> dict[str, Decimal]:
        pos: dict[str, Decimal] = {}
        for sym, side, size in self.oq("SELECT symbol, side, size FROM oms_fills"):
            pos[sym] = pos.get(sym, Decimal(0)) + (Decimal(size) if side == "BUY" else -Decimal(size))
        return {s: v for s, v in pos.items() if v != 0}

    def kernel_positions(self) -> dict[str, Decimal]:
        kv = dict(self.q("SELECT key, value FROM kv"))
        out: dict[str, Decimal] = {}
        if "kernel_state" not in kv:  # no loop has committed yet
            return out
        for sym, p in json.loads(kv["kernel_state"])["positions"].items():
            size = Decimal(repr(float(p["quantity"])))
            out[sym] = size if str(p["side"]).lower() == "long" else -size
        return out

    def venue_orders(self) -> list[dict[str, Any]]:
        return list(self.info({"type": "historicalOrders", "user": self.addr}))

    def venue_fills(self) -> list[dict[str, Any]]:
        return list(self.info({"type": "userFills", "user": self.addr}))


def _reconciled_events(d: LiveDaemon) -> int:
    return d.n("SELECT COUNT(*) FROM audit_events WHERE event='LIVE_RECONCILED'")


def _restart_and_time(d: LiveDaemon, *args: str) -> tuple[float, float]:
    """(wall seconds from spawn to the LIVE_RECONCILED row, the daemon's own figure in ms)."""
    before = _reconciled_events(d)
    t0 = time.monotonic()
    d.start(*args)
    wait_for(lambda: _reconciled_events(d) > before, 60, "reconciled after the restart", every=0.02)
    wall = time.monotonic() - t0
    row = d.q("SELECT data_json FROM audit_events WHERE event='LIVE_RECONCILED' ORDER BY id DESC LIMIT 1")
    return wall, float(json.loads(row[0][0])["restart_to_reconciled_ms"])


def _assert_books_agree(d: LiveDaemon) -> None:
    # every venue fill once in oms_fills, once in trades; positions OMS == venue == kernel
    venue_fills = {(f["hash"], int(f["tid"])) for f in d.venue_fills()}
    oms_fills = d.oq("SELECT fill_hash, fill_tid FROM oms_fills")
    assert len(oms_fills) == len(set(oms_fills)) and set(oms_fills) == venue_fills
    trades = d.q("SELECT fill_hash, fill_tid FROM trades WHERE action != 'FUNDING'")
    assert len(trades) == len(set(trades)) and set(trades) == venue_fills
    # The money of each fill, exactly as the venue reported it: fee and realised PnL in the OMS
    # ledger (decimal text) and in the trading DB (the float of that text).
    venue_money = {
        (f["hash"], int(f["tid"])): (Decimal(f["fee"]), Decimal(f["closedPnl"])) for f in d.venue_fills()
    }
    oms_money = {
        (h, int(t)): (Decimal(fee), Decimal(pnl or "0"))
        for h, t, fee, pnl in d.oq("SELECT fill_hash, fill_tid, fee_usd, pnl_usd FROM oms_fills")
    }
    assert oms_money == venue_money
    booked = d.q("SELECT fill_hash, fill_tid, fee_usd, pnl FROM trades WHERE action != 'FUNDING'")
    assert {(h, int(t)): (fee, pnl) for h, t, fee, pnl in booked} == {
        k: (float(fee), float(pnl)) for k, (fee, pnl) in venue_money.items()
    }
    assert d.on("SELECT COUNT(*) FROM oms_fills WHERE intent_id IS NULL") == 0
    venue = d.venue_positions()
    assert d.oms_positions() == venue
    kernel = d.kernel_positions()
    assert {s: abs(v) for s, v in kernel.items()} == {s: abs(v) for s, v in venue.items()}
    # and the live loop's own kernel-vs-venue check never cried wolf on the way
    assert d.n("SELECT COUNT(*) FROM audit_events WHERE event='KERNEL_VENUE_DIVERGENCE'") == 0
    # no intent has two venue orders (cloid is derived from the intent)
    cloids = [o["order"].get("cloid") for o in d.venue_orders()]
    cloids = [c for c in cloids if c]
    assert len(cloids) == len(set(cloids)), "an intent was sent twice"


def test_live_daemon_trades_kernel_decisions_survives_sigkill_and_never_writes_the_key(
    venue: str, tmp_path: Path
) -> None:
    d = LiveDaemon(venue, tmp_path, "live", AI_QUANT_ALERT_DRY_RUN="1")
    # x300 replay: the dead man's horizon (default 60 s of wall time) is scaled to the venue's clock
    d.start("--log-file", str(tmp_path / "daemon-file.log"), "--reconcile-s", "2")
    with d:
        wait_for(lambda: d.on("SELECT COUNT(*) FROM oms_fills") >= 2, 180, "live fills from kernel decisions")
        d.alive()
        # The orders come from kernel intents: each intent carries the kernel's intent id and a decision.
        rows = d.oq("SELECT kernel_intent_id, status, client_order_id FROM oms_intents")
        assert rows and all(r[0] is not None and r[2].startswith("0x6169715f") for r in rows)
        wait_for(lambda: d.n("SELECT COUNT(*) FROM trades") >= 2, 30, "fills booked in trades")
        assert d.n("SELECT COUNT(*) FROM decision_events WHERE status='executed'") >= 1
        # SIGKILL inside back-to-back loops, restart: reconciled quickly, nothing doubled or lost.
        d.stop()
        timings = []
        for delay in (0.6, 1.3, 0.35):
            wall, own_ms = _restart_and_time(d, "--loop-s", "0.001", "--reconcile-s", "1")
            timings.append((wall, own_ms))
            at = d.loops()
            wait_for(lambda at=at: d.loops() > at + 3, 60, "loops after the restart")
            time.sleep(delay)
            d.alive()
            d.stop(signal.SIGKILL)
        wall, own_ms = _restart_and_time(d, "--reconcile-s", "1")
        timings.append((wall, own_ms))
        before = d.on("SELECT COUNT(*) FROM oms_fills")
        wait_for(lambda: d.on("SELECT COUNT(*) FROM oms_fills") > before, 150, "trading after the restarts")
        d.alive()
        assert d.stop() == 0
    for wall, own_ms in timings:
        print(
            f"restart_to_reconciled: spawn->reconciled {wall * 1000:.0f} ms wall; daemon says {own_ms:.0f} ms"
        )
        assert wall <= 10.0 and own_ms <= 10_000
    _assert_books_agree(d)
    assert d.on("SELECT COUNT(*) FROM oms_fills WHERE kernel_applied=0") == 0
    log = d.log.read_text()
    assert "ALERT (dry run) [ai-quant live] fill: OPEN" in log  # fill alerts through the Alerter
    assert "scheduleCancel failed" not in log  # the dead man's switch was refreshed every loop
    # The key is in no file the run wrote: DBs, WAL/SHM, logs, state files.
    key = KEYS["live"].removeprefix("0x").lower().encode()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "secrets.json"]
    assert any(p.name.endswith(".db") for p in written) and any(p.suffix == ".log" for p in written)
    for p in written:
        assert key not in p.read_bytes().lower(), p


def test_live_daemon_trades_with_an_api_wallet_for_the_master(venue: str, tmp_path: Path) -> None:
    """The recommended set-up: the master approves an API wallet (official SDK, user-signed); the daemon
    holds only the agent's key and names the master as account_address; fills are the master's."""
    from hyperliquid.exchange import Exchange

    resp, agent_key = Exchange(Account.from_key(KEYS["master"]), venue).approve_agent("ai-quant")
    assert resp["status"] == "ok", resp
    agent = Account.from_key(agent_key).address.lower()
    d = LiveDaemon(venue, tmp_path, "master", agent_key=agent_key, AI_QUANT_ALERT_DRY_RUN="1")
    d.start("--reconcile-s", "2")
    with d:
        wait_for(
            lambda: d.on("SELECT COUNT(*) FROM oms_fills") >= 1, 180, "live fills signed by the API wallet"
        )
        wait_for(lambda: d.n("SELECT COUNT(*) FROM trades") >= 1, 30, "fills booked in trades")
        d.alive()
        assert d.stop() == 0
    pf = json.loads(d.q("SELECT data_json FROM audit_events WHERE event='PREFLIGHT'")[0][0])
    assert pf["ok"] and pf["problems"] == [] and pf["signer"] == agent and pf["account"] == ADDR["master"]
    _assert_books_agree(d)  # the master's venue fills, positions and orders (d.addr is the master)
    assert d.info({"type": "userFills", "user": agent}) == []
    assert d.info({"type": "clearinghouseState", "user": agent})["assetPositions"] == []
    log = d.log.read_text()
    assert "pre-flight: no problem" in log and "scheduleCancel failed" not in log
    key = agent_key.removeprefix("0x").lower().encode()
    for p in (p for p in tmp_path.rglob("*") if p.is_file() and p.name != "secrets.json"):
        assert key not in p.read_bytes().lower(), p


def test_live_refuses_to_trade_when_the_pre_flight_finds_a_problem(venue: str, tmp_path: Path) -> None:
    """An API wallet the master never approved: live exits 4 with one line naming the problem and sends
    nothing; dry_live (which sends nothing anyway) runs on with the warning."""
    stranger = "0x" + f"{0xBADA9E47:064x}"
    signer = Account.from_key(stranger).address.lower()
    line = f"signer {signer} is not an approved API wallet of account {ADDR['preflight']}"
    d = LiveDaemon(venue, tmp_path / "live", "preflight", agent_key=stranger)
    r = d.run("--max-loops", "1")
    assert r.returncode == 4, r.stderr[-3000:]
    assert f"ai-quant: pre-flight: {line}" in r.stderr
    assert (
        "AI_QUANT_MODE=live refused: the pre-flight check found 1 problem(s); no order was placed" in r.stderr
    )
    assert "Traceback" not in r.stderr
    assert d.venue_orders() == [] and d.on("SELECT COUNT(*) FROM oms_intents") == 0
    pf = json.loads(d.q("SELECT data_json FROM audit_events WHERE event='PREFLIGHT'")[0][0])
    assert not pf["ok"] and len(pf["problems"]) == 1 and pf["problems"][0].startswith(line)
    dry = LiveDaemon(venue, tmp_path / "dry", "preflight", mode="dry_live", agent_key=stranger)
    r = dry.run("--max-loops", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"pre-flight: {line}" in r.stderr and "refused" not in r.stderr
    assert dry.venue_orders() == []


def test_dry_live_records_would_intents_and_sends_nothing(venue: str, tmp_path: Path) -> None:
    d = LiveDaemon(venue, tmp_path, "dry", mode="dry_live")
    with d.start():
        wait_for(
            lambda: d.on("SELECT COUNT(*) FROM oms_intents WHERE status='WOULD'") >= 1, 180, "WOULD intents"
        )
        d.alive()
        # live on the same trading DB while dry_live runs: refused (one daemon per DB file)
        r = LiveDaemon(venue, tmp_path, "dry", mode="live").run("--max-loops", "1")
        assert r.returncode == 3 and "already running" in r.stderr and "trading_engine_live.db" in r.stderr
        assert d.stop() == 0
    assert d.on("SELECT COUNT(*) FROM oms_intents WHERE status != 'WOULD'") == 0
    assert d.venue_orders() == [] and d.venue_fills() == []
    assert d.oq("SELECT COUNT(*) FROM oms_fills")[0][0] == 0
    assert d.n("SELECT COUNT(*) FROM decision_events WHERE status='would'") >= 1
    ev = json.loads(d.q("SELECT data_json FROM audit_events WHERE event='LIVE_RECONCILED'")[0][0])
    assert ev["mode"] == "dry_live" and not ev["entries_blocked"]


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"AI_QUANT_LIVE_ENABLE": "0", "AI_QUANT_LIVE_CONFIRM": CONFIRM}, "AI_QUANT_LIVE_ENABLE is not 1"),
        ({"AI_QUANT_LIVE_ENABLE": "1"}, "AI_QUANT_LIVE_CONFIRM is not the confirmation phrase"),
        ({"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": CONFIRM, "AI_QUANT_HARD_KILL_SWITCH": "1"},
         "AI_QUANT_HARD_KILL_SWITCH is on"),
        ({}, "AI_QUANT_LIVE_ENABLE is not 1"),
    ],
)  # fmt: skip
def test_live_refuses_to_start_unless_every_gate_is_open(
    venue: str, tmp_path: Path, env: dict[str, str], problem: str
) -> None:
    d = LiveDaemon(venue, tmp_path, "gates", mode="live")
    for k in ("AI_QUANT_LIVE_ENABLE", "AI_QUANT_LIVE_CONFIRM"):
        d.env.pop(k, None)
    d.env.update(env)
    r = d.run("--max-loops", "1")
    assert r.returncode == 2 and "AI_QUANT_MODE=live refused" in r.stderr and problem in r.stderr
    assert CONFIRM not in r.stderr
    assert d.venue_orders() == []


def test_live_modes_refuse_without_a_wallet_key(venue: str, tmp_path: Path) -> None:
    d = LiveDaemon(venue, tmp_path, "nokey", mode="dry_live")
    d.env.pop("AI_QUANT_PRIVATE_KEY", None)
    r = d.run("--max-loops", "1")
    assert r.returncode == 2 and "needs the wallet" in r.stderr and "no wallet key" in r.stderr


def test_live_kill_switches_within_one_loop_and_a_foreign_position_is_flagged(
    venue: str, tmp_path: Path
) -> None:
    from test_daemon_e2e import _kill_seen

    from exchange.executor import HyperliquidExecutor, MemoryNonceStore, MonotonicNonce

    d = LiveDaemon(venue, tmp_path, "kill", AI_QUANT_ALERT_DRY_RUN="1")
    d.start("--reconcile-s", "1")
    with d:
        wait_for(lambda: d.on("SELECT COUNT(*) FROM oms_intents") >= 1, 180, "a first live order")
        for word, want in (("close_only", "close_only"), ("halt_all", "halt_all")):
            at = d.loops()
            d.kill_file.write_text(word + "\n")
            assert _kill_seen(d, want, at) <= at + 2  # the next loop after the write
            opens = d.on("SELECT COUNT(*) FROM oms_intents WHERE action IN ('OPEN', 'ADD')")
            total = d.on("SELECT COUNT(*) FROM oms_intents")
            time.sleep(3)  # ~9 bars at x300
            assert d.on("SELECT COUNT(*) FROM oms_intents WHERE action IN ('OPEN', 'ADD')") == opens
            if want == "halt_all":
                assert d.on("SELECT COUNT(*) FROM oms_intents") == total  # exits blocked too
        d.kill_file.write_text("clear\n")
        at = d.loops()
        assert _kill_seen(d, "off", at) <= at + 2
        # An order placed on the account by someone else (no ai-quant cloid): flagged, alerted.
        other = HyperliquidExecutor(Account.from_key(KEYS["kill"]), venue, MonotonicNonce(MemoryNonceStore()))
        held = d.venue_positions()
        sym = next(s for s in ("BTC", "ETH", "SOL") if s not in held)
        qty = {"BTC": Decimal("0.001"), "ETH": Decimal("0.02"), "SOL": Decimal("0.5")}[sym]
        assert other.market_open(sym, True, qty).status == "filled"
        # Its fill is adopted (never dropped) but matches no intent: alerted, and that symbol takes no
        # new entries while it stays unexplained.
        wait_for(lambda: d.on("SELECT COUNT(*) FROM oms_fills WHERE intent_id IS NULL AND symbol=?", (sym,)), 30,
                 "the foreign fill adopted")  # fmt: skip
        wait_for(lambda: d.on("SELECT COUNT(*) FROM oms_reconcile_events WHERE kind='UNMATCHED_FILL'"), 30,
                 "the unmatched-fill alert")  # fmt: skip
        gate = wait_for(lambda: d.oq("SELECT detail_json FROM oms_reconcile_events WHERE kind='ENTRY_GATE' AND "
                                     "result='blocked' ORDER BY id DESC LIMIT 1"), 30, "entries refused")  # fmt: skip
        assert sym in json.loads(gate[0][0])["symbols"]
        opened = d.on("SELECT COUNT(*) FROM oms_intents WHERE symbol=? AND action IN ('OPEN','ADD')", (sym,))
        time.sleep(3)
        assert (
            d.on("SELECT COUNT(*) FROM oms_intents WHERE symbol=? AND action IN ('OPEN','ADD')", (sym,))
            == opened
        )
        d.alive()
        assert d.stop() == 0
    events = [json.loads(r[0])["to"] for r in d.q(
        "SELECT data_json FROM audit_events WHERE event='RISK_KILL_SWITCH' ORDER BY id")]  # fmt: skip
    assert events == ["close_only", "halt_all", "off"]
    log = d.log.read_text()
    assert "[ai-quant live] kill_switch" in log and "[ai-quant live] unmatched_fill: fill " + sym in log


def _set_kernel_quantity(d: LiveDaemon, symbol: str, factor: float) -> None:
    """Tamper with the stopped daemon's saved kernel state: ``symbol``'s position times ``factor``."""
    conn = sqlite3.connect(d.db_path, timeout=10)
    try:
        (text,) = conn.execute("SELECT value FROM kv WHERE key='kernel_state'").fetchone()
        state = json.loads(text)
        state["positions"][symbol]["quantity"] *= factor
        conn.execute("UPDATE kv SET value=? WHERE key='kernel_state'", (json.dumps(state),))
        conn.commit()
    finally:
        conn.close()


def test_a_kernel_that_diverged_from_the_venue_is_an_alert_and_an_audit_row(
    venue: str, tmp_path: Path
) -> None:
    """The kernel's exits act on the positions it believes it holds; when they differ from the
    venue's (here: a saved state tampered with while the daemon was stopped), the live loop
    alerts and writes KERNEL_VENUE_DIVERGENCE once the difference has lasted three loops."""
    d = LiveDaemon(venue, tmp_path, "drift", AI_QUANT_ALERT_DRY_RUN="1")
    held: dict[str, Decimal] = {}
    with d:
        for _ in range(3):  # a position may close just before the stop: bounded retries
            d.start("--reconcile-s", "2")
            wait_for(lambda: bool(d.kernel_positions()), 180, "a kernel position")
            assert d.stop() == 0
            held = d.kernel_positions()
            if held:
                break
        assert held, "no position was held at a stop"
        sym = sorted(held)[0]
        assert d.venue_positions()[sym] == held[sym]  # they agreed when it stopped
        assert d.n("SELECT COUNT(*) FROM audit_events WHERE event='KERNEL_VENUE_DIVERGENCE'") == 0
        _set_kernel_quantity(d, sym, 2.0)
        d.start("--reconcile-s", "2", "--loop-s", "0.05")
        wait_for(
            lambda: d.n("SELECT COUNT(*) FROM audit_events WHERE event='KERNEL_VENUE_DIVERGENCE'") >= 1,
            60,
            "the divergence audit row",
        )
        d.alive()
        assert d.stop() == 0
    sym_row, data = d.q(
        "SELECT symbol, data_json FROM audit_events WHERE event='KERNEL_VENUE_DIVERGENCE' ORDER BY id LIMIT 1"
    )[0]
    got = json.loads(data)
    assert sym_row == sym and got["loops"] == 3
    # Whatever the kernel did since (its exits act on the size it believes), each venue fill was
    # booked once on both sides, so the two differ by exactly what the tamper added.
    assert got["kernel"] - got["venue"] == pytest.approx(float(held[sym]))
    assert f"ALERT (dry run) [ai-quant live] kernel_divergence: {sym}: kernel" in d.log.read_text()
