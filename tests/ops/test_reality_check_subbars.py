"""The blueprint's sub-bar modes live: the paper daemon (a process) on the local exchange runs the
primary mode (30m bars, 3m entries and exits), then the fallback mode (1h bars, 3m entries and
exits), then the conservative mode's intervals (1h bars, 15m entries and exits) over three days of
real Binance 1m candles each, and ``tools/reality_check.py`` against
``ai-quant-bt replay`` of the same candles matches every entry and exit: same tick, side, kind,
reason code, fill price equal to the sub-bar close (no slippage configured), quantity within the
venue's lot (the paper trader rounds sizes down to szDecimals, the replay does not); nothing
missing, nothing extra. Funding (Binance's 8-hourly rates, served by the venue and given to the
replay) is booked by both between the sub-bar ticks.

The venue's clock is stepped (``--stepped``): the test advances it an hour at a time and waits for
two more daemon loops, so several 3m ticks and one or two main bars arrive per loop (the catch-up
path) and nothing depends on the machine's speed. 3m, 15m, 30m and 1h candles are the venue's
exact aggregation of the 1m file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
import yaml

from tests.daemon_harness import LocalExchange
from tests.ops.conftest import WALLETS, Daemon, base_env, bt_binary, tool_json, wait_for
from tests.shared_data import SHARED_DATA
from tools.daemon_proc import trading_config

pytestmark = pytest.mark.slow
BINANCE_1M = SHARED_DATA / "binance" / "futures-1m"
SYMS = "BTC,ETH,SOL"
LOT = {"BTC": 1e-5, "ETH": 1e-4, "SOL": 1e-2}  # exchange/sim/data.py KNOWN_META szDecimals
START = "2025-05-10T00:00:00Z"  # the 1m files begin 2025-05-04 15:33
DAYS = 3
HOUR = 3_600_000
# Settings that trade real data often (tools/daemon_proc.py), no slippage so a fill is the close;
# 220 bars of warm-up are what the signals need (macro EMA 200): 4.6 days of 30m, 9.2 of 1h.
_SETTINGS = yaml.safe_load(trading_config(loop_target_s=0.05))
_SETTINGS["global"]["trade"].update(slippage_bps=0.0, use_bbo_for_fills=False)
_SETTINGS["global"]["engine"].update(interval="1h", lookback_bars=220)
_SETTINGS["modes"] = {
    "primary": {"engine": {"interval": "30m", "entry_interval": "3m", "exit_interval": "3m"}},
    "fallback": {"engine": {"interval": "1h", "entry_interval": "3m", "exit_interval": "3m"}},
    "conservative": {"engine": {"interval": "1h", "entry_interval": "15m", "exit_interval": "15m"}},
}
CONFIG = yaml.safe_dump(_SETTINGS, sort_keys=False)


class SteppedVenue(LocalExchange):
    """``python -m exchange.sim`` on the 1m candles, stepped clock, admin API on 127.0.0.1."""

    def __init__(self, root: Path, db: Path) -> None:
        self.funding_db = db.parent / "funding_rates.db"
        super().__init__(
            root / "venue.log", "--no-time-shift", "--start", START,
            *(x for w in WALLETS for x in ("--deposit", f"{w}=100000")),
            symbols=SYMS, source=("--candles-db", str(db), "--interval", "1m", "--stepped", "--enable-admin"),
            up_timeout=120,
        )  # fmt: skip

    def admin(self, op: str, body: dict[str, object] | None = None) -> dict[str, object]:
        import urllib.request

        req = urllib.request.Request(
            f"{self.url}/admin/{op}", data=json.dumps(body or {}).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read()))

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            return "time" in self.admin("time")
        except OSError:
            return False

    def now(self) -> int:
        return int(str(self.admin("time")["time"]))


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SteppedVenue]:
    if not BINANCE_1M.exists():
        pytest.skip(f"real data not found under {BINANCE_1M}")
    import pandas as pd

    root = tmp_path_factory.mktemp("subbar_venue")
    db = root / "candles_1m.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL, h REAL, l REAL,"
        " c REAL, v REAL, n INTEGER, updated_at TEXT, PRIMARY KEY(symbol, interval, t))"
    )
    for sym in SYMS.split(","):
        df = pd.read_feather(BINANCE_1M / f"{sym}_USDT_USDT-1m-futures.feather")
        ts = df["date"].astype("int64") // 1_000_000
        con.executemany(
            "INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(sym, "1m", int(t), int(t) + 60_000, float(o), float(h), float(lo), float(c), float(v), None, "")
             for t, o, h, lo, c, v in zip(ts, df["open"], df["high"], df["low"], df["close"], df["volume"],
                                          strict=True)],
        )  # fmt: skip
    con.commit()
    con.close()
    # Funding beside it (the venue reads funding_rates.db next to --candles-db): Binance's 8-hourly
    # rates at the venue's published precision (8 decimals), so the replay books what the daemon saw.
    con = sqlite3.connect(root / "funding_rates.db")
    con.execute("CREATE TABLE funding_rates (symbol TEXT, time INTEGER, funding_rate REAL, premium REAL,"
                " PRIMARY KEY(symbol, time))")  # fmt: skip
    for sym in SYMS.split(","):
        df = pd.read_feather(BINANCE_1M / f"{sym}_USDT_USDT-8h-funding_rate.feather")
        ts = df["date"].astype("int64") // 1_000_000 // HOUR * HOUR
        con.executemany(
            "INSERT OR REPLACE INTO funding_rates VALUES (?,?,?,0.0)",
            [(sym, int(t), float(Decimal(repr(float(r))).quantize(Decimal("1e-8"), ROUND_HALF_EVEN)))
             for t, r in zip(ts, df["open"], strict=True)],
        )  # fmt: skip
    con.commit()
    con.close()
    v = SteppedVenue(root, db)
    try:
        yield v
    finally:
        v.stop()


def _run_mode(
    venue: SteppedVenue, root: Path, mode: str, wallet: int, begin: int
) -> tuple[dict[str, str], Daemon]:
    """The paper daemon in ``mode`` from ``begin`` for DAYS days of venue time, an hour per step."""
    if venue.now() < begin:
        venue.admin("advance", {"ms": begin - venue.now()})
    root.mkdir(parents=True, exist_ok=True)
    (root / "strategy.yaml").write_text(CONFIG)
    env = base_env(root, venue.url, wallet=wallet, AI_QUANT_SYMBOLS=SYMS, AI_QUANT_STRATEGY_MODE=mode)
    d = Daemon(env)
    # The risk manager's entry rate limits count wall minutes: days of venue time pass in seconds here.
    d.start("--entries-per-min", "100000", "--entries-per-symbol-per-min", "100000")
    try:
        wait_for(lambda: d.loops() >= 2 or not d.alive(), 120, "the daemon's warm-up loops")
        assert d.alive(), d.log.read_text()[-3000:]
        end = venue.now() + DAYS * 24 * HOUR
        for _ in range(DAYS * 24 + 1):  # bounded: one step per hour of venue time
            if venue.now() >= end:
                break
            venue.admin("advance", {"ms": HOUR})
            n = d.loops()
            wait_for(lambda n=n: d.loops() >= n + 2 or not d.alive(), 120, "two loops after a clock step")
            assert d.alive(), d.log.read_text()[-3000:]
    finally:
        rc = d.stop()
    assert rc == 0, d.log.read_text()[-3000:]
    return env, d


def _check(env: dict[str, str], d: Daemon, step_ms: int, funding_db: Path, sub: str) -> dict[str, float]:
    trades = d.q(
        "SELECT ts_ms, symbol, action, price, size, reason_code FROM trades WHERE action != 'FUNDING'"
    )
    funded = d.q("SELECT COUNT(*) FROM trades WHERE action = 'FUNDING'")[0][0]
    assert len(trades) >= 8, f"too few trades to prove anything: {trades}"
    assert [t for t in trades if t[0] % step_ms], "no fill between main-bar closes: sub-bars unused"
    out = {"matched": 0, "total": 0, "max_price_diff": 0.0, "max_size_diff_lots": 0.0, "sub_bar_fills": 0}
    for sym in SYMS.split(","):
        rep = tool_json("reality_check.py", "--symbol", sym, "--hours", str(DAYS * 24 + 1), "--funding-db",
                        str(funding_db), env=env)  # fmt: skip
        s = rep["summary"]
        assert s["missing_in_daemon"] == 0 and s["extra_in_daemon"] == 0, json.dumps(
            {k: rep[k] for k in ("summary", "missing_in_daemon", "extra_in_daemon", "notes")}, indent=1
        )
        assert s["unexplained"] == 0 and s["reason_mismatches"] == 0
        assert rep["inputs"]["entry_interval"] == rep["inputs"]["exit_interval"] == sub
        legs = 0
        for m in sorted(rep["matched"], key=lambda m: m["daemon"]["ts_ms"]):
            dm, rp = m["daemon"], m["replay"]
            assert m["dt_ms"] == 0, m  # the same tick
            assert (dm["kind"], dm["side"], dm["reason_code"]) == (
                rp["kind"],
                rp["side"],
                rp["reason_code"],
            ), m
            assert dm["price"] == rp["price"], m  # the bar or sub-bar close, both sides
            lots = abs(dm["size"] - rp["size"]) / LOT[sym]
            # The paper trader rounds each fill down to the lot (the replay does not): an exit carries
            # the roundings of the position's entries, plus its own.
            legs = 1 if dm["kind"] == "open" else legs + (dm["kind"] == "add")
            assert lots <= legs + 1 + 1e-6, m
            legs = 0 if dm["kind"] == "close" else legs
            out["max_size_diff_lots"] = max(out["max_size_diff_lots"], lots)
            out["max_price_diff"] = max(out["max_price_diff"], abs(dm["price"] - rp["price"]))
            out["sub_bar_fills"] += dm["ts_ms"] % step_ms != 0
        mine = [
            t for t in trades if t[1] == sym and rep["window"]["from_ms"] <= t[0] <= rep["window"]["to_ms"]
        ]
        assert s["matched"] == len(mine) > 0
        out["matched"] += s["matched"]
        out["total"] += len(mine)
    assert out["sub_bar_fills"] > 0
    assert funded >= 1, "no funding booked: the interleaved funding path is untested"
    out["funding_payments"] = funded
    return out


# (mode, main interval, sub-bar interval, wallet, first day): the 220 1h bars of warm-up need 9.2
# days; each mode starts where the previous one stopped (one venue, one clock).
MODES = [
    ("primary", 1_800_000, "3m", 4, "2025-05-10"),
    ("fallback", HOUR, "3m", 5, "2025-05-14"),
    ("conservative", HOUR, "15m", 3, "2025-05-17"),
]


@pytest.mark.parametrize(("mode", "step_ms", "sub", "wallet", "day"), MODES)
def test_daemon_sub_bar_mode_matches_the_replay(
    venue: SteppedVenue, tmp_path: Path, mode: str, step_ms: int, sub: str, wallet: int, day: str
) -> None:
    from datetime import UTC, datetime

    bt_binary()
    t0 = time.monotonic()
    begin = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    env, d = _run_mode(venue, tmp_path / mode, mode, wallet, begin)
    got = _check(env, d, step_ms, venue.funding_db, sub)
    print(f"\n{mode}: {got} in {time.monotonic() - t0:.0f} s")
