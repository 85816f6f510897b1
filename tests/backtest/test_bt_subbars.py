"""Sub-bar entries and exits (`--entry-interval`, `--exit-interval`) on real Hyperliquid candles.

Semantics (docs/backtester.md): a main bar decides at its close `T`; the sub-bars that close in
the forward window `(T, T_next)` (the union of every symbol's sub-bar close times) run, in time
order, exits at the sub-bar close (`on_mid`) and/or entries on the main bar's indicators with the
sub-bar close; the tick at `T_next` itself is the next main bar's own evaluate. Funding due at or
before a tick is booked before it.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, INTERVAL_MS, hl_frames, hl_funding, run_bt, write_candles_db, write_funding_db
from kernel_rows import fill_row

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

COINS = ["BTC", "ETH", "SOL", "kPEPE"]
GLOBAL = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "filters": {"enable_ranging_filter": False, "enable_anomaly_filter": False},
    "trade": {"entry_min_confidence": "low", "tp_partial_pct": 0.7, "tp_partial_atr_mult": 1.0},
    "engine": {"interval": "1h"},
}
HOUR = INTERVAL_MS["1h"]
FIVE = INTERVAL_MS["5m"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bt_subbars")
    # The HL 5m files start 2025-03-14; the 1h files reach further back (auto-scope trims them).
    write_candles_db(d / "candles_1h.db", hl_frames(COINS, "1h"), "1h")
    write_candles_db(d / "candles_5m.db", hl_frames(COINS, "5m"), "5m")
    write_funding_db(d / "funding_rates.db", hl_funding(COINS))
    cfg = d / "cfg.yaml"
    cfg.write_text(json.dumps({"global": GLOBAL}))
    return {"dir": d, "h1": d / "candles_1h.db", "m5": d / "candles_5m.db", "funding": d / "funding_rates.db",
            "cfg": cfg}  # fmt: skip


def _replay(data: dict[str, Path], out: Path, *extra: str | Path) -> dict:
    out.mkdir(exist_ok=True)
    run_bt(
        "replay", "--config", data["cfg"], "--candles-db", data["h1"], "--interval", "1h",
        "--funding-db", data["funding"], "--output", out / "report.json", "--export-trades", out / "trades.csv",
        "--equity-curve", out / "equity.csv", "-q", *extra,
    )  # fmt: skip
    with open(out / "trades.csv") as f:
        trades = list(csv.DictReader(f))
    return {"report": json.loads((out / "report.json").read_text()), "trades": trades}


@pytest.fixture(scope="module")
def exit_run(data: dict[str, Path]) -> dict:
    return _replay(data, data["dir"] / "exit5m", "--exit-interval", "5m", "--exit-candles-db", data["m5"])


def _bars(db: Path, interval: str) -> list[tuple]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT symbol, t, o, h, l, c, v FROM candles WHERE interval=?", (interval,)
    ).fetchall()
    con.close()
    return rows


def _python_exit_replay(data: dict[str, Path], first_open: int, last_open: int) -> list[tuple]:
    """The daemon's path (bt_runtime.Kernel): step/evaluate on 1h bars, on_mid at 5m closes between."""
    bt_runtime = pytest.importorskip("bt_runtime")
    main = sorted(
        (r for r in _bars(data["h1"], "1h") if first_open <= r[1] <= last_open), key=lambda r: (r[1], r[0])
    )
    # Sub-bar ticks by close time, symbols in name order; only ticks inside the scoped range.
    subs = sorted(
        (r[1] + FIVE, r[0], r[5])
        for r in _bars(data["m5"], "5m")
        if first_open <= r[1] and r[1] + FIVE <= last_open + HOUR
    )
    con = sqlite3.connect(data["funding"])
    funding = sorted(
        (t, s, r)
        for s, t, r in con.execute("SELECT symbol, time, funding_rate FROM funding_rates")
        if s in COINS
    )
    con.close()
    kernel = bt_runtime.Kernel(json.dumps(GLOBAL), initial_cash=10_000.0)
    fills: list[tuple] = []
    last_px: dict[str, float] = {}

    def take(res: bt_runtime.StepResult) -> None:
        fills.extend(fill_row(f) for f in res.fills)

    def fund_until(limit: int) -> None:
        nonlocal j
        while j < len(funding) and funding[j][0] <= limit:
            ft, sym, rate = funding[j]
            if sym in last_px and sym in json.loads(kernel.positions_json()):
                kernel.on_funding(sym, rate, last_px[sym], ft)
            j += 1

    j = 0
    while j < len(funding) and funding[j][0] <= first_open:
        j += 1
    i = s = 0
    last_eval: int | None = None
    while i < len(main):
        t = main[i][1]
        t_close = t + HOUR
        while s < len(subs) and subs[s][0] < t_close:
            tau = subs[s][0]
            if last_eval is not None and tau > last_eval:
                fund_until(tau)
                while s < len(subs) and subs[s][0] == tau:
                    _, sym, c = subs[s]
                    last_px[sym] = c
                    if sym in json.loads(kernel.positions_json()):
                        take(kernel.on_mid(sym, c, tau))
                    s += 1
            else:
                s += 1
        while i < len(main) and main[i][1] == t:
            sym, _, o, h, lo, c, v = main[i]
            take(kernel.step_candle(sym, t, o, h, lo, c, v))
            last_px[sym] = c
            i += 1
        fund_until(t_close)
        take(kernel.evaluate(t_close))
        last_eval = t_close
    return fills


def _fills(trades: list[dict]) -> list[tuple]:
    return [
        (
            int(r["timestamp_ms"]), r["symbol"], r["kind"], r["side"], float(r["quantity"]), float(r["price"]),
            float(r["fee_usd"]), float(r["pnl_usd"]), r["reason_code"],
        )
        for r in trades
    ]  # fmt: skip


def test_sub_bar_exits_fire_inside_the_main_bar(data: dict[str, Path], exit_run: dict) -> None:
    rep = exit_run["report"]
    assert rep["inputs"]["exit_sub_bars"]["interval"] == "5m"
    assert rep["sub_ticks"] > 30_000
    closes = {(r[0], r[1] + FIVE): r[5] for r in _bars(data["m5"], "5m")}
    inside = [r for r in exit_run["trades"] if int(r["timestamp_ms"]) % HOUR != 0]
    assert len(inside) >= 20, f"too few sub-bar exits: {len(inside)}"
    reasons = {r["reason_code"] for r in inside}
    assert reasons & {"stop_loss", "trailing_stop", "take_profit", "take_profit_partial"}, reasons
    slip = GLOBAL["trade"].get("slippage_bps", 10.0) / 10_000.0
    for r in inside:
        assert r["kind"] in {"close", "reduce"}, r  # entries only at main closes without --entry-interval
        tau = int(r["timestamp_ms"])
        assert tau % FIVE == 0
        ref = closes[(r["symbol"], tau)]  # the close of the 5m sub-bar that ends at the fill time
        sign = 1.0 if r["side"] == "long" else -1.0
        assert float(r["price"]) == ref * (1.0 + sign * slip)


def test_sub_bar_exits_match_the_daemon_path(data: dict[str, Path], exit_run: dict) -> None:
    inputs = exit_run["report"]["inputs"]
    py = _python_exit_replay(data, inputs["first_bar_ms"], inputs["last_bar_ms"])
    rs = _fills(exit_run["trades"])
    assert len(rs) >= 100
    assert rs == py


def test_sub_bar_exits_change_the_result(data: dict[str, Path], exit_run: dict, tmp_path: Path) -> None:
    plain = _replay(data, tmp_path / "plain", "--start", str(exit_run["report"]["inputs"]["first_bar_ms"]))
    assert all(int(r["timestamp_ms"]) % HOUR == 0 for r in plain["trades"])
    assert plain["report"]["inputs"]["first_bar_ms"] == exit_run["report"]["inputs"]["first_bar_ms"]
    assert _fills(plain["trades"]) != _fills(exit_run["trades"])


def test_sub_bar_entries_fill_at_the_sub_bar_close(data: dict[str, Path], tmp_path: Path) -> None:
    run = _replay(
        data, tmp_path / "entry", "--entry-interval", "5m", "--entry-candles-db", data["m5"],
        "--exit-interval", "5m", "--exit-candles-db", data["m5"],
    )  # fmt: skip
    closes = {(r[0], r[1] + FIVE): r[5] for r in _bars(data["m5"], "5m")}
    opens = [r for r in run["trades"] if r["kind"] == "open"]
    inside = [r for r in opens if int(r["timestamp_ms"]) % HOUR != 0]
    assert len(inside) >= 20, f"too few sub-bar entries: {len(inside)} of {len(opens)}"
    slip = 10.0 / 10_000.0
    for r in inside:
        ref = closes[(r["symbol"], int(r["timestamp_ms"]))]
        sign = 1.0 if r["side"] == "long" else -1.0
        assert float(r["price"]) == ref * (1.0 + sign * slip)
    rep = run["report"]
    assert rep["inputs"]["entry_sub_bars"]["bars"] == rep["inputs"]["exit_sub_bars"]["bars"] > 0


def test_sub_intervals_equal_to_main_give_the_plain_replay(data: dict[str, Path], tmp_path: Path) -> None:
    plain = _replay(data, tmp_path / "plain")
    same = _replay(data, tmp_path / "same", "--entry-interval", "1h", "--exit-interval", "1h")
    assert len(plain["trades"]) > 100
    for name in ("trades.csv", "equity.csv"):
        assert (tmp_path / "same" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    a, b = plain["report"], same["report"]
    assert b["inputs"].pop("entry_sub_bars")["interval"] == "1h"
    assert b["inputs"].pop("exit_sub_bars")["interval"] == "1h"
    assert b.pop("sub_ticks", 0) == 0
    # The scope line names the sub-bar inputs too; everything else is the same, byte for byte.
    assert "exit sub-bars (1h)" in b["inputs"].pop("auto_scope")
    a["inputs"].pop("auto_scope")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_sub_bar_runs_are_deterministic(data: dict[str, Path], exit_run: dict, tmp_path: Path) -> None:
    _replay(data, tmp_path / "again", "--exit-interval", "5m", "--exit-candles-db", data["m5"])
    for name in ("report.json", "trades.csv", "equity.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (data["dir"] / "exit5m" / name).read_bytes(), name
    spec = tmp_path / "spec.yaml"
    spec.write_text("axes:\n  - {path: trade.sl_atr_mult, values: [1.5, 2.5]}\n"
                    "  - {path: trade.trailing_distance_atr, values: [0.5, 0.8]}\n")  # fmt: skip
    outs = []
    for threads in ("1", "2"):
        out = tmp_path / f"sweep{threads}.jsonl"
        run_bt(
            "sweep", "--config", data["cfg"], "--candles-db", data["h1"], "--interval", "1h",
            "--exit-interval", "5m", "--exit-candles-db", data["m5"], "--sweep-spec", spec,
            "--output", out, "--threads", threads, "-q",
        )  # fmt: skip
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    rows = [json.loads(x) for x in outs[0].splitlines()]
    assert len(rows) == 4 and len({r["total_pnl"] for r in rows}) > 1


def test_bad_sub_interval_is_refused(data: dict[str, Path]) -> None:
    r = run_bt(
        "replay", "--config", data["cfg"], "--candles-db", data["h1"], "--interval", "1h",
        "--exit-interval", "4h", "-q", check=False,
    )  # fmt: skip
    assert r.returncode == 2 and "--exit-interval 4h must divide the main interval 1h" in r.stderr
    r = run_bt(
        "replay", "--config", data["cfg"], "--candles-db", data["h1"], "--interval", "1h",
        "--entry-candles-db", data["m5"], "-q", check=False,
    )  # fmt: skip
    assert r.returncode == 2 and "--entry-candles-db needs --entry-interval" in r.stderr


def test_pipelined_indicators_equal_single_thread(data: dict[str, Path], tmp_path: Path) -> None:
    """Replay computes indicators on a second thread by default; --single-thread must match it."""
    outs = {}
    for mode in ("pipe", "single"):
        extra = ["--single-thread"] if mode == "single" else []
        _replay(
            data, tmp_path / mode, "--exit-interval", "5m", "--exit-candles-db", data["m5"],
            "--export-state", tmp_path / mode / "state.json", *extra,
        )  # fmt: skip
        outs[mode] = {
            n: (tmp_path / mode / n).read_bytes() for n in ("report.json", "trades.csv", "state.json")
        }
    assert outs["pipe"] == outs["single"]
    state = json.loads(outs["pipe"]["state.json"])
    # The exported banks are the warm ones (a continuation needs them), not fresh banks.
    assert state["symbols"]["BTC"]["bank"]["last"]["bar_count"] > 3000
