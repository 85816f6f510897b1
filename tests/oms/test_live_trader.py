"""live/trader.py end to end against the local exchange: live and dry_live, dead man's switch,
gates re-read every tick, and no trace of the key in any log or database written."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from engine.live_gates import LIVE_CONFIRM_PHRASE
from engine.oms import IntentStatus, LiveOms
from engine.secrets import load_wallet_secrets, wallet_from
from exchange.executor import HyperliquidExecutor, MonotonicNonce
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.model import Order
from exchange.sim.harness import SimServer
from live.trader import LiveTrader, TraderConfig

from .conftest import new_wallet

D = Decimal
LIVE_ENV = {"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": LIVE_CONFIRM_PHRASE}


def build(sim: SimServer, tmp_path: Path, env: dict[str, str], want_live: bool) -> tuple[LiveTrader, str]:
    w = new_wallet()
    sim.deposit(w.address, 50_000)
    key = "0x" + w.key.hex().removeprefix("0x")
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"secret_key": key}))
    secrets.chmod(0o600)
    loaded = load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(secrets)})
    oms = LiveOms(tmp_path / "db" / "trading_engine_live.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    ex = HyperliquidExecutor(wallet_from(loaded.key), sim.base_url, MonotonicNonce(oms))
    cfg = TraderConfig(
        base_url=sim.base_url, db_path=oms.path, want_live=want_live, min_gap_s=0, reconcile_every_s=0
    )
    secrets.unlink()
    return LiveTrader(cfg, ex, oms, environ=env), key


def intent(kind: str, side: str, qty: str, ts: int) -> Order:
    return Order("ETH", kind, side, D(qty), ts)  # type: ignore[arg-type]


def test_live_end_to_end_and_key_never_written(
    sim: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "trader.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    try:
        trader, key = build(sim, tmp_path, dict(LIVE_ENV), want_live=True)
        assert trader.live
        rep = trader.startup()
        assert not rep.entries_blocked and trader.restart_to_reconciled_ms is not None
        tick = trader.tick()
        assert tick.dead_man_set
        addr = trader.ex.address
        assert sim.call(lambda v: v.engine.accounts[addr].schedule_cancel_at) is not None
        out = trader.execute([intent("open", "long", "0.2", 1)])
        assert out[0].status is IntentStatus.SENT
        trader.tick()
        assert trader.oms.positions() == {"ETH": D("0.2")}
        assert trader.account().positions["ETH"].size == D("0.2")
        out = trader.execute([intent("close", "short", "0.2", 2)])
        trader.tick()
        assert trader.oms.positions() == {} and trader.account().positions == {}
        # The hard kill switch closes the gate at the next tick: nothing more is sent.
        assert trader.environ is not None
        trader.environ["AI_QUANT_HARD_KILL_SWITCH"] = "1"  # type: ignore[index]
        trader.tick()
        assert not trader.live
        out = trader.execute([intent("open", "long", "0.2", 3)])
        assert out[0].status is IntentStatus.WOULD
        trader.shutdown()
        trader.oms.close()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    needles = [key.lower().removeprefix("0x").encode(), key.lower().removeprefix("0x").upper().encode()]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in written)
    for p in written:
        data = p.read_bytes().lower()
        assert all(n.lower() not in data for n in needles), p
    assert key[2:] not in caplog.text.lower()


def test_dry_live_records_would_and_sends_nothing(sim: SimServer, tmp_path: Path) -> None:
    trader, _ = build(sim, tmp_path, {"AI_QUANT_LIVE_ENABLE": "1"}, want_live=True)  # confirm missing
    assert not trader.live and trader.gates.mode == "dry_live"
    trader.startup()
    tick = trader.tick()
    assert not tick.dead_man_set
    out = trader.execute([intent("open", "long", "0.2", 1)])
    assert out[0].status is IntentStatus.WOULD
    addr = trader.ex.address
    assert sim.call(lambda v: [o for o in v.engine.orders.values() if o.user == addr]) == []
    assert [i.status for i in trader.oms.intents()] == [IntentStatus.WOULD]
    trader.shutdown()
    trader.oms.close()


def test_restart_to_reconciled_time(sim: SimServer, tmp_path: Path) -> None:
    trader, _ = build(sim, tmp_path, dict(LIVE_ENV), want_live=True)
    trader.startup()
    trader.execute([intent("open", "long", "0.1", ts) for ts in range(1, 6)])
    wallet = trader.ex._wallet
    trader.shutdown()
    trader.oms.close()
    # Restart: new OMS handle, executor and trader on the same file; time until reconciled.
    import time

    t0 = time.perf_counter()
    oms = LiveOms(trader.cfg.db_path, client_ids=HYPERLIQUID_CLIENT_IDS)
    ex = HyperliquidExecutor(wallet, sim.base_url, MonotonicNonce(oms))
    t2 = LiveTrader(trader.cfg, ex, oms, environ=dict(LIVE_ENV))
    rep = t2.startup(t_process_start=t0)
    assert not rep.entries_blocked
    assert t2.restart_to_reconciled_ms is not None and t2.restart_to_reconciled_ms < 10_000
    print(f"restart_to_reconciled_ms={t2.restart_to_reconciled_ms:.0f}")
    t2.shutdown()
    oms.close()


def test_user_fills_come_through_the_sidecar_where_it_serves_the_account(
    sim: SimServer, tmp_path: Path
) -> None:
    """With the sidecar's socket configured, the trader takes its user fills from the sidecar (one
    venue WebSocket for market data and fills); a sidecar that serves another account is refused
    and the trader falls back to the SDK's own stream."""
    import subprocess
    import time

    from exchange.ws import SidecarUserFills, UserFillStream

    binary = Path(__file__).resolve().parents[2] / "target" / "release" / "ai-quant-sidecar"
    if not binary.is_file():
        pytest.skip(f"{binary} not built (make bins)")
    sock = tmp_path / "sidecar.sock"
    log = (tmp_path / "sidecar.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "--sock", str(sock), "--exchange-url", sim.base_url, "--candles-dir", str(tmp_path / "c")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists(), (tmp_path / "sidecar.log").read_text()
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        trader, _ = build(sim, tmp_path / "a", dict(LIVE_ENV), want_live=True)
        trader.cfg.sidecar_sock = sock
        trader.startup()
        assert isinstance(trader.stream, SidecarUserFills)
        out = trader.execute([intent("open", "long", "0.1", 1)])
        assert out[0].status is IntentStatus.SENT
        venue_fills = {
            (str(h), int(i)) for h, i in trader.oms.db.execute("SELECT fill_hash, fill_tid FROM oms_fills")
        }
        assert venue_fills, "the order filled"
        seen: set[tuple[str, int]] = set()
        for _ in range(100):  # the push reaches the sidecar asynchronously
            seen |= {(f.fill_hash, f.fill_tid) for f in trader.stream.drain()}
            if venue_fills <= seen:
                break
            time.sleep(0.05)
        assert venue_fills <= seen, "every fill of the order came through the sidecar"
        trader.tick()  # drains again; the OMS already has them: nothing booked twice
        assert trader.oms.db.execute("SELECT COUNT(*) FROM oms_fills").fetchone()[0] == len(venue_fills)
        # a second account: the sidecar serves the first one, so this trader uses the SDK stream
        other, _ = build(sim, tmp_path / "b", dict(LIVE_ENV), want_live=True)
        other.cfg.sidecar_sock = sock
        other.startup()
        assert isinstance(other.stream, UserFillStream)
        for t in (trader, other):
            t.shutdown()
            t.oms.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
