"""Python reference vs Rust kernel: entry signal and confidence on every real bar.

Covers every Hyperliquid 5m coin in ../shared/data, with the default config and an active
(sweep-tuned) one, with BTC alignment unknown and, for non-BTC coins, derived from BTC's own EMAs.
Any disagreement must be a floating-point boundary case: some gate input within 1e-9 (relative)
of its threshold. Anything else fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bt_runtime
import numpy as np
import pandas as pd
import pytest

from strategy import mei_alpha_v1 as ref

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HL = DATA / "hyperliquid" / "futures"
COINS = ["BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "BNB", "ENA", "kPEPE"]
ACTIVE: dict[str, Any] = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "filters": {"enable_ranging_filter": False},
}
CONFIGS = {"default": None, "active": ACTIVE}
BOUNDARY_REL = 1e-9


def _load(coin: str) -> pd.DataFrame:
    path = HL / f"{coin}_USDC_USDC-5m-futures.feather"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set AI_QUANT_SHARED_DATA)")
    df = pd.read_feather(path)
    df["t"] = df["date"].astype("int64") // 1_000_000
    return df


def _kernel(df: pd.DataFrame, coin: str, cfg: dict[str, Any] | None, btc: list[int] | None) -> tuple:
    cols = [df[c].astype(float).tolist() for c in ("open", "high", "low", "close", "volume")]
    out = bt_runtime.analyze_series(df["t"].tolist(), *cols, json.dumps(cfg) if cfg else None, coin, btc)
    return np.array(out["signal"]), np.array(out["confidence"])


def _near(a: float, b: float) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and abs(a - b) <= BOUNDARY_REL * max(abs(a), abs(b), 1e-12))


def _is_boundary(
    py: pd.DataFrame, i: int, cfg: dict[str, Any], coin: str, btc: list[bool | None] | None
) -> bool:
    """Some comparison behind the reference's decision on bar `i` sits within 1e-9 of its threshold."""
    if i == 0:
        return False
    d = ref.decide(py.iloc[i], py.iloc[i - 1], cfg, coin, None if btc is None else btc[i])
    return any(_near(float(g.value), float(g.threshold)) for g in d.gates)


def _btc_bullish() -> pd.Series:
    btc = _load("BTC")
    ind = ref.compute_indicators(btc)
    bull = (ind["ema_fast"] > ind["ema_slow"]).where(ind["ready"])
    return pd.Series(bull.to_numpy(), index=btc["t"])


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
def test_python_and_rust_agree_on_every_bar(cfg_name: str) -> None:
    cfg_over = CONFIGS[cfg_name]
    cfg = ref.merged_config(cfg_over)
    btc_series = _btc_bullish()
    total = agree = signals = 0
    unexplained: list[str] = []
    for coin in COINS:
        df = _load(coin)
        runs: list[tuple[str, list[bool | None] | None, list[int] | None]] = [("unknown", None, None)]
        if coin != "BTC":
            aligned = btc_series.reindex(df["t"])
            py_btc = [None if pd.isna(x) else bool(x) for x in aligned]
            rust_btc = [-1 if b is None else int(b) for b in py_btc]
            runs.append(("btc", py_btc, rust_btc))
        for label, py_btc, rust_btc in runs:
            py = ref.analyze_series(df, coin, py_btc, cfg_over)
            k_sig, k_conf = _kernel(df, coin, cfg_over, rust_btc)
            p_sig, p_conf = py["signal"].to_numpy(), py["confidence"].to_numpy()
            same = (k_sig == p_sig) & (k_conf == p_conf)
            total += len(df)
            agree += int(same.sum())
            signals += int(np.count_nonzero(k_sig))
            for i in np.flatnonzero(~same):
                if not _is_boundary(py, int(i), cfg, coin, py_btc):
                    unexplained.append(
                        f"{coin}/{label} bar {i} t={int(df['t'].iat[i])}: kernel ({k_sig[i]},{k_conf[i]}) "
                        f"reference ({p_sig[i]},{p_conf[i]})"
                    )
    rate = agree / total
    print(f"{cfg_name}: {agree}/{total} bars agree ({rate:.6%}), {signals} kernel entry signals")
    assert signals > 1000, "parity on mostly-neutral data would be vacuous"
    assert rate >= 0.999
    assert not unexplained, "\n".join(unexplained[:20])


def test_reference_indicators_match_talib() -> None:
    talib = pytest.importorskip("talib")
    df = _load("ETH")
    ind = ref.compute_indicators(df)
    c, h, lo = (df[x].to_numpy(dtype=float) for x in ("close", "high", "low"))
    checks = {
        "ema_slow": talib.EMA(c, 50),
        "rsi": talib.RSI(c, 14),
        "atr": talib.ATR(h, lo, c, 14),
        "adx": talib.ADX(h, lo, c, 14),
        "macd_hist": talib.MACD(c, 12, 26, 9)[2],
    }
    for name, expected in checks.items():
        ours = ind[name].to_numpy()
        assert np.array_equal(np.isnan(ours), np.isnan(expected)), f"{name}: warm-up differs"
        mask = ~np.isnan(expected)
        rel = np.abs(ours[mask] - expected[mask]) / np.maximum(np.abs(expected[mask]), 1e-12)
        assert rel.max() <= 1e-9, f"{name}: max rel error {rel.max():.2e}"
