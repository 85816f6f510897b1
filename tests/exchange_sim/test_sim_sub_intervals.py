"""The local exchange serves the blueprint's intervals (3m, 30m) from 1m data, for which
Hyperliquid ships no native file: every candle of a multiple of the replayed ``--interval`` is the
exact aggregation of the source bars (engine/data/aggregate.py: first open, max high, min low,
last close, summed volume), published at the venue's price precision. ``make run``, the daemon's
sub-bar modes and tests/ops/test_reality_check_subbars.py rely on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hyperliquid.info import Info

from engine.data.aggregate import aggregate
from engine.data.candle_store import CandleBatch
from exchange.sim.config import SimConfig
from exchange.sim.harness import SimServer
from exchange.sim.numfmt import fmt, to_decimal
from exchange.sim.rules import round_price
from tests.shared_data import HL_FUTURES

COINS = ["BTC", "kPEPE"]  # a 5-figure price and a sub-cent one
START = 1_753_228_800_000  # 2025-07-23 00:00 UTC, inside the HL 1m files (07-21 .. 07-26)
DAY = 86_400_000


@pytest.fixture(scope="module")
def sim() -> SimServer:
    if not (HL_FUTURES / "BTC_USDC_USDC-1m-futures.feather").exists():
        pytest.skip(f"real data not found under {HL_FUTURES}")
    cfg = SimConfig(clock_mode="stepped", data_dir=HL_FUTURES, symbols=COINS, interval="1m", start=START,
                    time_shift=False, rate_limit=0)  # fmt: skip
    with SimServer(cfg) as server:
        yield server


def _expected(coin: str, interval: str, sz_dec: int) -> dict[int, tuple[str, ...]]:
    df = pd.read_feather(HL_FUTURES / f"{coin}_USDC_USDC-1m-futures.feather")
    t = (df["date"].astype("int64") // 1_000_000).to_numpy(np.int64)
    keep = (t >= START - DAY) & (t < START)
    batch = CandleBatch(
        coin, "1m", t[keep], *(df[k].to_numpy(float)[keep] for k in ("open", "high", "low", "close", "volume")),
        np.zeros(int(keep.sum())),
    )  # fmt: skip
    agg = aggregate(batch, interval).batch

    def px(x: float) -> str:
        return fmt(round_price(to_decimal(float(x)), sz_dec))

    return {
        int(agg.t[i]): (px(agg.o[i]), px(agg.h[i]), px(agg.l[i]), px(agg.c[i]),
                        fmt(round(to_decimal(float(agg.v[i])), sz_dec)))
        for i in range(len(agg))
    }  # fmt: skip


@pytest.mark.parametrize("interval", ["3m", "30m"])
def test_candles_are_the_exact_aggregation_of_the_1m_bars(sim: SimServer, interval: str) -> None:
    info = Info(sim.base_url, skip_ws=True, timeout=10)
    for coin in COINS:
        sz_dec = sim.call(lambda v, c=coin: v.market.by_name[c].sz_decimals)
        want = _expected(coin, interval, sz_dec)
        got = info.candles_snapshot(coin, interval, START - DAY, START - 1)
        assert len(want) == len(got) == DAY // {"3m": 180_000, "30m": 1_800_000}[interval]
        for c in got:
            assert (c["o"], c["h"], c["l"], c["c"], c["v"]) == want[int(c["t"])], (coin, c)
            assert (
                c["i"] == interval
                and int(c["T"]) == int(c["t"]) + {"3m": 180_000, "30m": 1_800_000}[interval] - 1
            )
