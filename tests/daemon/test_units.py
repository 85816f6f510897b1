"""Trading DB, PaperTrader, lock file, sd_notify and the heartbeat line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import bt_runtime
import pytest

from engine.heartbeat import Heartbeat, parse_heartbeat
from engine.lock import AlreadyRunning, DaemonLock
from engine.paper_trader import FillRejected, PaperTrader
from engine.systemd_watchdog import Notifier
from engine.trading_db import SCHEMA_VERSION, DecisionRow, PositionRow, TradeRow, TradingDB
from exchange.meta import AssetMeta, Meta
from exchange.model import Fill, Kind, Order, Quote

META = Meta([AssetMeta("BTC", 5, 40), AssetMeta("ETH", 4, 25), AssetMeta("DOGE", 0, 10)])


# ---- trading DB ------------------------------------------------------------------------------


def trade(tid: int = 1, **kw: object) -> TradeRow:
    base: dict[str, object] = dict(
        ts_ms=1_700_000_000_000, symbol="BTC", type="LONG", action="OPEN", price=50_000.0, size=0.01,
        notional=500.0, fill_hash="0xabc", fill_tid=tid,
    )  # fmt: skip
    base.update(kw)
    return TradeRow(**base)  # type: ignore[arg-type]


def test_db_schema_wal_and_unique_fills(tmp_path: Path) -> None:
    db = TradingDB(tmp_path / "t.db", run_fingerprint="run1")
    assert db.schema_version() == SCHEMA_VERSION
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oct(os.stat(tmp_path / "t.db").st_mode & 0o777) == "0o600"
    assert db.insert_trade(trade()) is not None
    assert db.insert_trade(trade()) is None  # same (fill_hash, fill_tid): ignored
    assert db.insert_trade(trade(2)) is not None
    assert db.count("trades") == 2
    db.close()
    db2 = TradingDB(tmp_path / "t.db")  # reopening applies nothing new
    assert db2.migrate() == []
    assert [t["fill_tid"] for t in db2.trades()] == [1, 2]


def test_db_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    db = TradingDB(tmp_path / "t.db")
    with pytest.raises(RuntimeError), db.tx():
        db.insert_trade(trade())
        db.put("kernel_state", "{}")
        raise RuntimeError("crash in the middle of a loop")
    assert db.count("trades") == 0 and db.get("kernel_state") is None
    with db.tx():
        db.insert_trade(trade())
        db.replace_positions([PositionRow("BTC", "long", 0.01, 50_000, 5, 100)], 1)
        db.insert_decision(
            DecisionRow(
                "d1", 1, "BTC", "entry_signal", "executed", gates={"adx": {"value": 30, "threshold": 20}}
            )
        )
        db.put("kernel_state", "{}")
    assert db.positions()[0]["symbol"] == "BTC"
    assert json.loads(db.decisions()[0]["gates_json"])["adx"]["threshold"] == 20
    db.replace_positions([], 2)
    assert db.positions() == []
    db.audit("RISK_KILL", data={"state": "close_only"})
    db.log("engine ok.")
    assert db.count("audit_events") == 1 and db.count("runtime_logs") == 1


# ---- PaperTrader -----------------------------------------------------------------------------


def order(
    sym: str,
    is_buy: bool,
    qty: float,
    reduce_only: bool,
    *,
    kind: Kind = "open",
    leverage: float = 1.0,
    intent_id: int = 0,
) -> Order:
    """A kernel decision as the daemon hands it on (its floats as exact decimals)."""
    return Order(
        sym, kind, "long" if is_buy else "short", Decimal(repr(float(qty))), 0,
        leverage=Decimal(repr(float(leverage))), reduce_only=reduce_only, kernel_intent_id=intent_id,
    )  # fmt: skip


def test_paper_fill_at_bbo_with_rounding_fees_and_margin() -> None:
    pt = PaperTrader(META, 10_000.0, taker_fee_bps=4.5)
    q = Quote("BTC", mid=50_000.5, bid=50_000.0, ask=50_001.0)
    f = pt.execute(order("BTC", True, 0.0123456789, False, leverage=5, intent_id=7), q, 1000)
    assert isinstance(f, Fill)
    # the money exact, as a venue's; a paper fill has no venue ids or record
    assert (f.action, f.size, f.price) == ("OPEN", Decimal("0.01234"), Decimal("50001"))
    assert f.notional == Decimal("0.01234") * Decimal("50001") and f.oid is None and f.raw == {}
    assert float(f.fee) == pytest.approx(0.01234 * 50_001 * 4.5e-4)
    assert f.margin_used == pytest.approx(0.01234 * 50_001 / 5)
    assert f.slippage_bps == pytest.approx(0.5 / 50_000.5 * 1e4)
    assert pt.balance == pytest.approx(10_000 - float(f.fee))
    # close at the bid: realised PnL into cash
    q2 = Quote("BTC", mid=51_000.5, bid=51_000.0, ask=51_001.0)
    c = pt.execute(order("BTC", False, 0.0123456, True, kind="close", intent_id=8), q2, 2000)
    assert isinstance(c, Fill) and c.action == "CLOSE" and c.size == Decimal("0.01234")
    assert float(c.pnl) == pytest.approx((51_000 - 50_001) * 0.01234)
    assert pt.positions == {}


def test_paper_fill_mid_plus_slippage_without_book_and_rejections() -> None:
    pt = PaperTrader(META, 1_000.0, slippage_bps=10, use_bbo=False)
    f = pt.execute(order("DOGE", False, 120.7, False, leverage=2), Quote("DOGE", mid=0.2), 1)
    assert isinstance(f, Fill)
    assert f.size == 120 and float(f.price) == pytest.approx(0.1998) and f.position_side == "short"
    small = pt.execute(order("ETH", True, 0.001, False), Quote("ETH", mid=3000.0), 2)
    assert isinstance(small, FillRejected) and small.reason == "below_min_notional"
    dust = pt.execute(order("ETH", True, 0.00001, False), Quote("ETH", mid=3000.0), 2)
    assert isinstance(dust, FillRejected) and dust.reason == "size_below_lot"
    big = pt.execute(order("ETH", True, 10, False, leverage=1), Quote("ETH", mid=3000.0), 3)
    assert isinstance(big, FillRejected) and big.reason == "insufficient_margin"
    ro = pt.execute(order("ETH", False, 1, True), Quote("ETH", mid=3000.0), 3)
    assert isinstance(ro, FillRejected) and ro.reason == "reduce_only_without_position"


def test_paper_account_mirrors_the_kernel_through_apply_fill_and_funding() -> None:
    kernel = bt_runtime.Kernel(None, 10_000.0, "external")
    pt = PaperTrader(META, 10_000.0, taker_fee_bps=4.5)
    seq = [
        (order("ETH", True, 1.2345, False, leverage=3), Quote("ETH", 3000.0, 2999.5, 3000.5), 1000),
        (order("ETH", True, 0.5, False, leverage=3), Quote("ETH", 3100.0, 3099.5, 3100.5), 2000),
        (order("ETH", False, 0.7, True, kind="reduce"), Quote("ETH", 3200.0, 3199.5, 3200.5), 3000),
    ]
    for spec, q, t in seq:
        f = pt.execute(spec, q, t)
        assert isinstance(f, Fill)
        size, px, fee = float(f.size), float(f.price), float(f.fee)
        kernel.apply_fill("ETH", "buy" if f.is_buy else "sell", size, px, fee, t, "medium", f.leverage)
    kernel.step_candle("ETH", 3_600_000, 3200, 3200, 3200, 3200, 1)
    paid_k = kernel.on_funding("ETH", 0.0001, 3200.0, 3_600_000)
    paid_p = pt.apply_funding("ETH", 0.0001, 3200.0, 3_600_000)
    assert paid_p == pytest.approx(paid_k) and paid_p < 0  # a long pays a positive rate
    assert pt.apply_funding("ETH", 0.0001, 3200.0, 3_600_000) == 0.0  # applied once
    assert kernel.cash == pytest.approx(pt.balance, abs=1e-9)
    kpos = json.loads(kernel.positions_json())["ETH"]
    assert kpos["quantity"] == pytest.approx(pt.positions["ETH"].size)
    assert kpos["avg_entry_price"] == pytest.approx(pt.positions["ETH"].entry_price)
    restored = PaperTrader(META, 0.0)
    restored.load_json(pt.to_json())
    assert restored.to_json() == pt.to_json()


# ---- lock, sd_notify, heartbeat ----------------------------------------------------------------


def test_lock_refuses_a_second_holder_and_names_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "ai_quant_paper.lock"
    code = (
        "import sys,time; from engine.lock import DaemonLock; DaemonLock(sys.argv[1]).acquire();"
        " print('held', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunning, match=f"already running \\(pid {holder.pid}\\)"):
            DaemonLock(path).acquire()
    finally:
        holder.kill()
        holder.wait(10)
    with DaemonLock(path) as lock:  # released by the kernel when the holder died (SIGKILL)
        assert lock.held and path.read_text().strip() == str(os.getpid())


def test_sd_notify_messages(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(2)
    n = Notifier({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "30000000"})
    assert n.watchdog_s == 30
    n.ready("loops=1")
    n.ready("again")  # READY once
    n.watchdog()
    n.status("engine ok.\nloops=2")
    got = [srv.recv(1000).decode() for _ in range(3)]
    srv.close()
    assert got == ["READY=1\nSTATUS=loops=1", "WATCHDOG=1", "STATUS=engine ok. loops=2"]
    assert not Notifier({}).notify("READY=1")  # not under systemd: a no-op


def test_heartbeat_line_round_trips() -> None:
    hb = Heartbeat(
        "paper", 3, 0, 10, 2, 0.0123, "close_only", "kill file", "primary", "abcdef0123456789", "0.1.0"
    )
    kv = parse_heartbeat(hb.line())
    assert kv["loops"] == "3" and kv["open_pos"] == "2" and kv["kill"] == "close_only"
    assert kv["kill_reason"] == "kill_file" and kv["config_id"] == "abcdef012345" and kv["loop"] == "0.012s"
