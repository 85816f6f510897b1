"""UnifiedEngine in process with a stand-in market (no network): fail-closed risk inside the loop,
drawdown kill, rollback of a failed loop, exits first and the per-loop entry limit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from daemon.loop import EngineSettings, UnifiedEngine
from engine.market_data import MarketDataHub
from engine.risk import RiskLimits, RiskManager
from engine.strategy_manager import StrategyManager
from engine.trading_db import TradingDB
from exchange.meta import AssetMeta, Meta
from exchange.model import Bar

STEP = 300_000
T0 = 1_700_000_000_000 // STEP * STEP
CONFIG = """\
global:
  trade: {entry_min_confidence: low, max_open_positions: 5, enable_ssf_filter: false, enable_reef_filter: false,
          max_entry_orders_per_loop: 1}
  indicators: {ema_fast_window: 8, ema_slow_window: 15}
  thresholds: {entry: {min_adx: 10.0}}
  engine: {interval: 5m, loop_target_s: 1, lookback_bars: 120}
"""
SYMS = ("AAA", "BBB", "CCC", "DDD")


def price(sym: str, k: int) -> float:
    """Trending, wiggly series; each symbol with its own phase and drift."""
    i = SYMS.index(sym)
    return 100.0 * (1 + 0.002 * (i + 1)) ** k * (1 + 0.01 * math.sin(k / (3 + i)))


class StubHub(MarketDataHub):
    def __init__(self) -> None:
        super().__init__(info=None, interval="5m", interval_ms=STEP)
        self.now = T0 + 200 * STEP
        self.fail = False
        self.fail_with: Exception = ConnectionError("venue down")

    def now_ms(self) -> int:
        return self.now

    def closed_bars(self, symbol: str, last_t: int | None, now_ms: int, warmup_bars: int) -> list[Bar]:
        if self.fail:
            raise self.fail_with
        newest = self.last_closed_open_time(now_ms)
        first = newest - (warmup_bars - 1) * STEP if last_t is None else last_t + STEP
        out = []
        for t in range(first, newest + 1, STEP):
            k = (t - T0) // STEP
            c, o = price(symbol, k), price(symbol, k - 1)
            out.append(Bar(symbol, t, o, max(o, c) * 1.002, min(o, c) * 0.998, c, 1000.0 + k))
        return out

    def mids(self, symbols: Any) -> dict[str, float]:
        k = (self.last_closed_open_time(self.now) - T0) // STEP
        return {s: price(s, k) for s in symbols}

    def bbo(self, symbol: str) -> tuple[float | None, float | None]:
        return None, None

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        return []


def make(
    tmp_path: Path, risk: RiskManager | None = None
) -> tuple[UnifiedEngine, StubHub, TradingDB, list[str]]:
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG)
    alerts: list[str] = []
    hub = StubHub()
    db = TradingDB(tmp_path / "t.db")
    eng = UnifiedEngine(
        EngineSettings(symbols=SYMS, loop_s=0.01), hub, StrategyManager(cfg),
        risk or RiskManager(alert=lambda k, m: alerts.append(k)), db,
        Meta(AssetMeta(s, 2, 20) for s in SYMS), alert=lambda k, m: alerts.append(k),
    )  # fmt: skip
    eng.startup()
    return eng, hub, db, alerts


def run_until_trades(eng: UnifiedEngine, hub: StubHub, db: TradingDB, n: int, max_loops: int = 200) -> None:
    for _ in range(max_loops):
        hub.now += STEP
        eng.run_once()
        if db.count("trades") >= n:
            return
    raise AssertionError(f"fewer than {n} trades after {max_loops} loops")


def test_engine_trades_ranks_and_respects_the_per_loop_limit(tmp_path: Path) -> None:
    eng, hub, db, _ = make(tmp_path)
    hub.now += STEP
    eng.run_once()  # warm-up: no trades
    assert db.count("trades") == 0
    run_until_trades(eng, hub, db, 3)
    opens_per_ts: dict[int, int] = {}
    for t in db.trades():
        if t["action"] == "OPEN":
            opens_per_ts[t["ts_ms"]] = opens_per_ts.get(t["ts_ms"], 0) + 1
    assert max(opens_per_ts.values()) == 1  # max_entry_orders_per_loop: 1
    limited = [
        d for d in db.decisions() if d["rejection_reason"] in ("max_entry_orders_per_loop", "max_positions")
    ]
    assert limited, "with 4 trending symbols some entries wait for the next loop"
    kv = json.loads(db.get("kernel_state") or "{}")
    assert sorted(kv["positions"]) == sorted(eng.paper.positions)  # type: ignore[union-attr]


def test_an_exception_inside_risk_blocks_the_order(tmp_path: Path) -> None:
    alerts: list[str] = []
    risk = RiskManager(alert=lambda k, m: alerts.append(k))
    eng, hub, db, _ = make(tmp_path, risk)

    def boom(order: Any, account: Any) -> Any:
        raise RuntimeError("bug in a check")

    risk._check = boom  # type: ignore[method-assign]
    for _ in range(200):
        hub.now += STEP
        eng.run_once()
        if db.count("decision_events"):
            break
    assert db.count("trades") == 0
    blocked = [d for d in db.decisions() if d["rejection_reason"].startswith("risk_check_error")]
    assert blocked and "risk_error" in alerts, [(d["status"], d["rejection_reason"]) for d in db.decisions()][
        :20
    ]


def test_drawdown_kill_engages_close_only(tmp_path: Path) -> None:
    eng, hub, db, _ = make(tmp_path)
    eng.s.risk_overrides = {"max_drawdown_pct": 0.0001}
    eng.risk.set_limits(RiskLimits.from_config(eng.strategy.model(), max_drawdown_pct=0.0001))
    run_until_trades(eng, hub, db, 1)
    for _ in range(40):
        hub.now += STEP
        eng.run_once()
        if eng.risk.status.state == "close_only":
            break
    assert eng.risk.status.state == "close_only" and "drawdown" in eng.risk.status.reason
    audits = db.conn.execute("SELECT data_json FROM audit_events WHERE event='RISK_KILL_SWITCH'").fetchall()
    assert json.loads(audits[-1][0])["to"] == "close_only"


def test_a_failed_loop_rolls_back_and_the_next_one_continues(tmp_path: Path) -> None:
    eng, hub, db, alerts = make(tmp_path)
    run_until_trades(eng, hub, db, 1)
    saved = db.get("kernel_state")
    hub.fail = True
    hub.now += STEP
    rep = eng.run_once()
    # a connection error is a venue outage: one venue_unreachable alert, not a loop_error per loop
    assert rep.error == "venue unreachable (ConnectionError)" and eng.errors == 1
    assert "venue_unreachable" in alerts and "loop_error" not in alerts
    assert eng.heartbeat().line().startswith("venue unreachable since ")
    assert db.get("kernel_state") == saved  # nothing of the failed loop was committed
    assert eng.orch is not None and eng.orch.kernel.save_state() == saved  # memory rolled back too
    hub.now += STEP
    eng.run_once()
    assert alerts.count("venue_unreachable") == 1  # once per outage
    hub.fail = False
    hub.now += STEP
    assert not eng.run_once().error
    assert eng.heartbeat().errors == 2 and eng.heartbeat().line().startswith("engine ok.")
    assert alerts.count("venue_recovered") == 1
    hub.fail, hub.fail_with = True, RuntimeError("a bug")  # any other failure: loop_error
    hub.now += STEP
    assert eng.run_once().error == "RuntimeError" and "loop_error" in alerts
    assert eng.heartbeat().line().startswith("engine ok.")


@pytest.mark.parametrize("word", ["halt_all", "close_only"])
def test_kill_file_blocks_entries_in_the_loop(tmp_path: Path, word: str) -> None:
    kill = tmp_path / "kill"
    eng, hub, db, _ = make(tmp_path, RiskManager(kill_file=kill))
    kill.write_text(word)
    for _ in range(200):
        hub.now += STEP
        eng.run_once()
        if any(d["rejection_reason"] == word for d in db.decisions()):
            break
    assert db.count("trades") == 0
    assert any(d["rejection_reason"] == word for d in db.decisions())


def test_hot_reload_reaches_the_kernel(tmp_path: Path) -> None:
    eng, hub, db, _ = make(tmp_path)
    run_until_trades(eng, hub, db, 1)
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG.replace("entry_min_confidence: low", "entry_min_confidence: high"))
    hub.now += STEP
    eng.run_once()
    assert eng.strategy.merged("AAA")["trade"]["entry_min_confidence"] == "high"
    n_opens = len([t for t in db.trades() if t["action"] == "OPEN"])
    n_decisions = len(db.decisions())
    for _ in range(80):
        hub.now += STEP
        eng.run_once()
    assert (
        len([t for t in db.trades() if t["action"] == "OPEN"]) == n_opens
    )  # the stand-in volume never makes a high-confidence signal
    # ... and not because the loop stalled: it kept deciding on new bars, and what it refused it
    # refused for confidence under the reloaded threshold.
    new = db.decisions()[n_decisions:]
    blocked = [d for d in new if d["event_type"] == "gate_block"]
    assert len({json.loads(d["gates_json"])["bar_t"] for d in blocked}) >= 20, len(blocked)
    assert {d["rejection_reason"] for d in blocked} == {"low_confidence"}
    assert {json.loads(d["gates_json"])["entry_min_confidence"] for d in blocked} == {"high"}
    assert (
        db.conn.execute("SELECT COUNT(*) FROM audit_events WHERE event='CONFIG_RELOADED'").fetchone()[0] == 1
    )


def test_shadow_mode_agreement_in_the_heartbeat(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG)
    hub = StubHub()
    db = TradingDB(tmp_path / "t.db")
    eng = UnifiedEngine(
        EngineSettings(symbols=SYMS[:2], loop_s=0.01, kernel_mode="shadow", warmup_bars=60), hub,
        StrategyManager(cfg), RiskManager(), db, Meta(AssetMeta(s, 2, 20) for s in SYMS), alert=lambda k, m: None,
    )  # fmt: skip
    eng.startup()
    for _ in range(5):
        hub.now += STEP
        eng.run_once()
    hb = eng.heartbeat()
    assert hb.shadow_agreement is not None and 0.0 <= hb.shadow_agreement <= 1.0
    assert "shadow_agree=" in hb.line() and "shadow_agree=-" not in hb.line()


def test_hourly_funding_from_venue_rates_moves_both_accounts(tmp_path: Path) -> None:
    eng, hub, db, _ = make(tmp_path)
    hour = 3_600_000
    calls: list[tuple[int, int]] = []

    def funding(symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        calls.append((start_ms, end_ms))
        return [
            (h * hour, 0.0001)
            for h in range(start_ms // hour, end_ms // hour + 1)
            if start_ms <= h * hour <= end_ms
        ]

    hub.funding_history = funding  # type: ignore[method-assign]
    run_until_trades(eng, hub, db, 1)
    assert eng.orch is not None and eng.paper is not None and eng.paper.positions
    # (The stand-in market closes positions within a bar, so step the clock past two funding hours here.)
    now = (hub.now // hour + 2) * hour + 1
    with db.tx():
        eng.mids = hub.mids(SYMS)
        eng._funding(now)
        eng._funding(now)  # the same hours are never paid twice
    rows = db.conn.execute("SELECT ts_ms, pnl, type FROM trades WHERE action='FUNDING'").fetchall()
    assert len(rows) == 2 * len(eng.paper.positions) and all(ts % hour == 0 for ts, _, _ in rows)
    assert all((p < 0) == (side == "LONG") for _, p, side in rows)  # longs pay a positive rate
    assert eng.orch.kernel.cash == pytest.approx(eng.paper.balance, abs=1e-9)
    assert len(calls) == len(eng.paper.positions)  # the second call had nothing due: no venue request


def test_sub_bar_intervals_must_divide_the_main_interval(tmp_path: Path) -> None:
    """engine.entry_interval / exit_interval are followed exactly as a replay does (sub-bar mode);
    one that does not divide engine.interval is refused at start and as an edit, as the replay
    refuses it."""
    from engine.config import ConfigError

    ok = tmp_path / "ok.yaml"
    ok.write_text(CONFIG.replace("interval: 5m,", "interval: 5m, entry_interval: 1m, exit_interval: 1m,"))
    assert StrategyManager(ok).merged()["engine"]["entry_interval"] == "1m"
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("interval: 5m,", "interval: 5m, exit_interval: 3m,"))
    assert "exit_interval: 3m" in bad.read_text()  # the replacement happened
    with pytest.raises(ConfigError, match=r"engine\.exit_interval: 3m must divide engine\.interval 5m"):
        StrategyManager(bad)

    alerts: list[tuple[str, str]] = []
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG)
    sm = StrategyManager(cfg, alert=lambda k, m: alerts.append((k, m)))
    good_id = sm.config_id
    cfg.write_text(CONFIG.replace("interval: 5m,", "interval: 5m, entry_interval: 15m,") + "\n")
    out = sm.poll(SYMS)
    assert out.event.status == "invalid" and not out.applied
    assert sm.config_id == good_id and not sm.merged()["engine"]["entry_interval"]
    assert [k for k, _ in alerts] == ["config_rejected"] and "entry_interval" in alerts[0][1]


@pytest.mark.parametrize("strategy_mode", [None, "primary", "fallback", "conservative", "flat"])
def test_the_example_config_starts_the_daemon_in_every_strategy_mode(
    tmp_path: Path, strategy_mode: str | None
) -> None:
    """The example carries the blueprint's modes (primary 30m/3m, fallback 1h/3m, conservative and
    flat 1h/15m: bars / sub-bar entries and exits); each validates for the daemon, paper and live."""
    example = Path(__file__).resolve().parents[2] / "config" / "strategy_overrides.example.yaml"
    want = {None: ("1h", "", ""), "primary": ("30m", "3m", "3m"), "fallback": ("1h", "3m", "3m"),
            "conservative": ("1h", "15m", "15m"), "flat": ("1h", "15m", "15m")}  # fmt: skip
    for mode in ("paper", "live"):
        sm = StrategyManager(example, mode=mode, strategy_mode=strategy_mode)
        eng = sm.merged()["engine"]
        assert (eng["interval"], eng["entry_interval"], eng["exit_interval"]) == want[strategy_mode]
        assert sm.interval == want[strategy_mode][0]
