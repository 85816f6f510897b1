"""UnifiedEngine in a sub-bar mode (engine.entry_interval / exit_interval) with a stand-in market:
exits and entries at the sub-bar closes, a restart in the middle changes nothing (the schedule's
place is persisted with the kernel state), a loop that fails rolls the schedule back too, and the
live mid reaches the kernel between sub-bar closes only with ``mid_exits`` (AI_QUANT_MID_EXITS)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from daemon.loop import EngineSettings, UnifiedEngine
from engine.market_data import MarketDataHub
from engine.risk import RiskManager
from engine.strategy_manager import StrategyManager
from engine.trading_db import TradingDB
from exchange.meta import AssetMeta, Meta
from exchange.model import Bar

SUB, MAIN = 300_000, 900_000  # 5m sub-bars, 15m bars
T0 = 1_700_000_000_000 // MAIN * MAIN
CONFIG = """\
global:
  trade: {entry_min_confidence: low, max_open_positions: 5, enable_ssf_filter: false, enable_reef_filter: false,
          slippage_bps: 0.0, use_bbo_for_fills: false, sl_atr_mult: 1.0, trailing_start_atr: 0.5}
  indicators: {ema_fast_window: 8, ema_slow_window: 15, ema_macro_window: 30}
  filters: {require_btc_alignment: false}
  thresholds: {entry: {min_adx: 10.0}}
  engine: {interval: 15m, entry_interval: 5m, exit_interval: 5m, loop_target_s: 1, lookback_bars: 120}
"""
SYMS = ("AAA", "BBB", "CCC")
# hours of market time pass in milliseconds here: the wall-clock entry rate limits would bind
FAST = {"entries_per_min": 1e9, "entries_per_symbol_per_min": 1e9}


def px(sym: str, k: int) -> float:
    """5m closes: trending and swinging, one phase per symbol."""
    i = SYMS.index(sym)
    return 100.0 * (1 + 0.0015 * (i + 1)) ** k * (1 + 0.02 * math.sin(k / (2.5 + i)))


def sub_bar(sym: str, t: int) -> Bar:
    k = (t - T0) // SUB
    o, c = px(sym, k - 1), px(sym, k)
    return Bar(sym, t, o, max(o, c) * 1.001, min(o, c) * 0.999, c, 100.0 + k % 7)


def main_bar(sym: str, t: int) -> Bar:
    parts = [sub_bar(sym, t + j * SUB) for j in range(MAIN // SUB)]
    return Bar(sym, t, parts[0].o, max(b.h for b in parts), min(b.l for b in parts), parts[-1].c,
               sum(b.v for b in parts))  # fmt: skip


class SubHub(MarketDataHub):
    def __init__(self) -> None:
        super().__init__(info=None, interval="15m", interval_ms=MAIN)
        self.now = T0 + 150 * MAIN
        self.mid_factor = 1.0

    def now_ms(self) -> int:
        return self.now

    def closed_bars(
        self, symbol: str, last_t: int | None, now_ms: int, warmup_bars: int, interval: str | None = None
    ) -> list[Bar]:
        iv, make = (SUB, sub_bar) if interval == "5m" else (MAIN, main_bar)
        newest = self.last_closed_open_time(now_ms, iv)
        first = newest - (warmup_bars - 1) * iv if last_t is None else last_t + iv
        return [make(symbol, t) for t in range(first, newest + 1, iv)]

    def mids(self, symbols: Any) -> dict[str, float]:
        t = self.last_closed_open_time(self.now, SUB)
        return {s: sub_bar(s, t).c * self.mid_factor for s in symbols}

    def bbo(self, symbol: str) -> tuple[float | None, float | None]:
        return None, None

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        first = (start_ms + 3_599_999) // 3_600_000 * 3_600_000
        return [(t, 0.0001) for t in range(first, end_ms + 1, 3_600_000)]


def make(tmp_path: Path, hub: SubHub | None = None, mid_exits: bool = False) -> tuple[UnifiedEngine, SubHub]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "s.yaml"
    cfg.write_text(CONFIG)
    hub = hub or SubHub()
    eng = UnifiedEngine(
        EngineSettings(symbols=SYMS, loop_s=0.01, mid_exits=mid_exits, risk_overrides=FAST), hub, StrategyManager(cfg),
        RiskManager(), TradingDB(tmp_path / "t.db"), Meta(AssetMeta(s, 2, 20) for s in SYMS), alert=lambda k, m: None,
    )  # fmt: skip
    eng.startup()
    return eng, hub


def trades(eng: UnifiedEngine) -> list[tuple[Any, ...]]:
    rows = eng.db.conn.execute(
        "SELECT ts_ms, symbol, action, price, size, reason_code FROM trades ORDER BY id"
    )
    return [tuple(r) for r in rows]


def run(eng: UnifiedEngine, hub: SubHub, loops: int, step: int = 2 * SUB) -> None:
    for _ in range(loops):
        hub.now += step
        assert not eng.run_once().error


def test_sub_bar_mode_trades_on_sub_bar_closes_and_survives_a_restart(tmp_path: Path) -> None:
    eng, hub = make(tmp_path / "a")
    eng.run_once()  # warm-up
    run(eng, hub, 120)
    full = trades(eng)
    fills = [t for t in full if t[2] != "FUNDING"]
    assert len(fills) >= 6, full
    inside = [t for t in fills if t[0] % MAIN]
    assert (
        inside and {t[2] for t in inside} & {"OPEN", "ADD"} and {t[2] for t in inside} & {"CLOSE", "REDUCE"}
    )
    for ts, sym, _, price, _, _ in fills:  # at the close of the bar or sub-bar ending then (5 figures)
        assert ts % SUB == 0 and price == pytest.approx(px(sym, (ts - T0) // SUB - 1), rel=5e-5)
    assert [t for t in full if t[2] == "FUNDING"], "funding is booked between the ticks"

    # The same run, stopped after 50 loops and restarted from its DB: the same trades.
    eng2, hub2 = make(tmp_path / "b")
    eng2.run_once()
    run(eng2, hub2, 50)
    eng2.db.close()
    eng3, _ = make(tmp_path / "b", hub2)
    assert eng3.sub is not None and eng3.sub.last_eval == eng2.sub.last_eval  # type: ignore[union-attr]
    run(eng3, hub2, 70)
    assert trades(eng3) == full


def test_a_failed_loop_rolls_the_sub_bar_schedule_back(tmp_path: Path) -> None:
    eng, hub = make(tmp_path / "a")
    eng.run_once()
    run(eng, hub, 40)
    before = eng.sub.to_json() if eng.sub else ""
    real = eng._sub_tick
    calls = {"n": 0}

    def fail_late(*a: Any, **k: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug in the second tick")
        real(*a, **k)

    eng._sub_tick = fail_late  # type: ignore[method-assign]
    hub.now += 2 * MAIN  # four sub-bar ticks and two bars in one loop
    assert eng.run_once().error == "RuntimeError"
    assert eng.sub is not None and eng.sub.to_json() == before  # the first tick's progress is undone
    eng._sub_tick = real  # type: ignore[method-assign]
    assert not eng.run_once().error and eng.sub.to_json() != before


@pytest.mark.parametrize("mid_exits", [False, True])
def test_the_live_mid_reaches_the_kernel_only_with_mid_exits(tmp_path: Path, mid_exits: bool) -> None:
    eng, hub = make(tmp_path, mid_exits=mid_exits)
    hub.mid_factor = 1.003  # mids apart from every sub-bar close
    seen: list[float] = []
    assert eng.orch is not None
    real = eng.orch.on_mid

    def spy(symbol: str, price: float, t: int) -> Any:
        seen.append(price / sub_bar(symbol, hub.last_closed_open_time(hub.now, SUB)).c)
        return real(symbol, price, t)

    eng.orch.on_mid = spy  # type: ignore[method-assign]
    eng.run_once()
    run(eng, hub, 60)
    assert seen, "no position was ever held"
    at_mid = [r for r in seen if r == pytest.approx(1.003)]
    assert bool(at_mid) == mid_exits
