"""MarketDataHub source order and due-ness; the engine's breadth helper (the regime rules themselves are
decided by the kernel: kernel/aiq-kernel/src/regime.rs and its tests)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from daemon.decision_log import breadth_pct
from engine.market_data import MarketDataHub
from exchange.hl_market_data import HyperliquidMarketData
from exchange.sidecar import CandleTimes

STEP = 300_000
T0 = 1_800_000_000_000 // STEP * STEP


class FakeInfo:
    def __init__(self) -> None:
        self.snapshot_calls = 0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"time": T0 + 10 * STEP + 5}

    def candles_snapshot(self, sym: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        self.snapshot_calls += 1
        return [
            {"t": t, "o": "1", "h": "2", "l": "0.5", "c": "1.5", "v": "10"}
            for t in range(T0, end, STEP)
            if t >= start
        ]

    def all_mids(self) -> dict[str, str]:
        return {"BTC": "100.5", "ETH": "10"}


class FakeSidecar:
    def __init__(self, t: int | None) -> None:
        self.t = t

    def get_last_closed_candle_times(self, symbol: str, interval: str) -> CandleTimes:
        return CandleTimes(self.t, None if self.t is None else self.t + STEP - 1)


def write_db(d: Path, last_t: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    c = sqlite3.connect(d / "candles_5m.db")
    c.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL, h REAL,"
        " l REAL, c REAL, v REAL, n INTEGER, updated_at TEXT, PRIMARY KEY (symbol, interval, t))"
    )
    for t in range(T0, last_t + 1, STEP):
        c.execute("INSERT INTO candles VALUES ('BTC','5m',?,?,1,2,0.5,1.5,10,1,'x')", (t, t + STEP - 1))
    c.commit()
    c.close()


def hub(tmp: Path | None, sidecar: Any = None) -> tuple[MarketDataHub, FakeInfo]:
    info = FakeInfo()
    return MarketDataHub(HyperliquidMarketData(info), "5m", STEP, candles_dir=tmp, sidecar=sidecar), info


def test_due_and_no_fetch_when_nothing_closed() -> None:
    h, info = hub(None)
    now = h.now_ms()
    newest = h.last_closed_open_time(now)
    assert newest == T0 + 9 * STEP  # the bar opened at T0+10*STEP is still forming
    assert h.due(None, now) and h.due(newest - STEP, now) and not h.due(newest, now)
    assert h.closed_bars("BTC", newest, now, 100) == [] and info.snapshot_calls == 0


def test_sidecar_then_sqlite_then_rest(tmp_path: Path) -> None:
    write_db(tmp_path, T0 + 9 * STEP)
    h, info = hub(tmp_path, FakeSidecar(T0 + 9 * STEP))
    bars = h.closed_bars("BTC", T0 + 5 * STEP, h.now_ms(), 100)
    assert [b.t for b in bars] == [T0 + k * STEP for k in (6, 7, 8, 9)] and h.stats.last == "sidecar"
    h.sidecar = FakeSidecar(T0 + 8 * STEP)  # sidecar behind: the DB still has the bar
    h.closed_bars("BTC", T0 + 5 * STEP, h.now_ms(), 100)
    assert h.stats.last == "sqlite" and info.snapshot_calls == 0


def test_stale_db_falls_back_to_rest(tmp_path: Path) -> None:
    write_db(tmp_path, T0 + 7 * STEP)  # two bars behind
    h, info = hub(tmp_path)
    bars = h.closed_bars("BTC", None, h.now_ms(), 5)
    assert h.stats.last == "rest" and info.snapshot_calls == 1
    assert [b.t for b in bars] == [T0 + k * STEP for k in range(5, 10)]  # the forming bar is excluded


def test_mids_from_rest_without_sidecar() -> None:
    h, _ = hub(None)
    assert h.mids(["BTC"]) == {"BTC": 100.5}


def snap(fast: float, slow: float, ready: bool = True) -> dict[str, Any]:
    return {"ema_fast": fast, "ema_slow": slow, "ready": ready, "adx": 30.0, "atr": 1.0, "close": 100.0}


def test_breadth() -> None:
    assert breadth_pct({}) is None
    assert breadth_pct({"A": snap(2, 1), "B": snap(1, 2), "C": snap(3, 1, ready=False)}) == 50.0


def test_sidecar_subscription_is_renewed_not_spammed() -> None:
    calls: list[tuple[list[str], str, int | None]] = []

    class Sub(FakeSidecar):
        def ensure_started(
            self, symbols: list[str], interval: str, *, candle_limit: int | None = None
        ) -> dict[str, Any]:
            calls.append((symbols, interval, candle_limit))
            return {}

    h, _ = hub(None, Sub(None))
    assert h.keep_subscribed(["BTC", "ETH"], 300)
    assert not h.keep_subscribed(["BTC", "ETH"], 300)  # within the renewal period
    h._subscribed_at -= 31
    assert h.keep_subscribed(["BTC", "ETH"], 300)
    assert calls == [(["BTC", "ETH"], "5m", 300)] * 2
    assert not hub(None)[0].keep_subscribed(["BTC"], 300)  # no sidecar: nothing to do
