"""reality_check: what the daemon did (trading DB) against a replay of the same candles.

How the replay is lined up with the daemon:

* bars: the daemon's kernel state says how many bars it fed each symbol (the indicator count) and
  ``kv.last_bar_t`` which was the last, so its first bar is ``last - (count - 1) * interval``;
* warm-up: the daemon's first loop feeds ``engine.lookback_bars`` bars without trading. The same
  bars go through the same kernel here (``on_candle`` + ``evaluate``, external fills: no trade),
  and that kernel state is the replay's ``--init-state``; the replay starts at the first live bar;
* the whole watchlist is replayed (entries compete for slots and margin), the report covers one
  symbol and the last ``--hours`` (daemon time: the venue's clock).

Divergences the replay cannot reproduce are explained from the daemon's own records, not hidden:
a kernel entry the daemon blocked or rejected (risk, kill switch, stale bar, minimum notional) is
in ``decision_events``, as is what a dry_live daemon would have sent; a trade with no kernel intent
(intent id 0: ``flat_now.py``'s ``manual_flatten``, ``manual_trade.py``'s orders that the live
daemon books from the OMS, a venue fill it adopted) is the operator's.
Prices differ by design (the daemon fills at the venue's touch or mid when its loop runs, the
backtester at the bar close with slippage), and sizes follow equity (funding is not replayed
unless ``--funding-db`` is given): both are reported as differences, not divergences.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.common import EXIT_FAILED, OpsError, trading_db_read_only

MANUAL_CODES = ("manual_flatten",)
#: Kernel intent ids start at 1; a trade booked with 0 was not the kernel's decision.
NO_KERNEL_INTENT = 0


@dataclass(frozen=True)
class Action:
    source: str  # daemon | replay
    symbol: str
    ts_ms: int
    kind: str  # open | add | reduce | close
    side: str  # the position's side: long | short
    price: float
    size: float
    reason_code: str
    manual: bool = False  # no kernel intent behind it (see NO_KERNEL_INTENT)


@dataclass
class Report:
    symbol: str
    window: dict[str, Any]
    inputs: dict[str, Any]
    matched: list[dict[str, Any]] = field(default_factory=list)
    missing_in_daemon: list[dict[str, Any]] = field(default_factory=list)
    extra_in_daemon: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        return sum(1 for x in self.missing_in_daemon + self.extra_in_daemon if not x.get("explained_by"))

    def summary(self) -> dict[str, Any]:
        bps = [abs(m["price_diff_bps"]) for m in self.matched]
        return {
            "matched": len(self.matched),
            "missing_in_daemon": len(self.missing_in_daemon),
            "extra_in_daemon": len(self.extra_in_daemon),
            "unexplained": self.unexplained,
            "max_abs_price_diff_bps": round(max(bps), 3) if bps else None,
            "median_abs_price_diff_bps": round(sorted(bps)[len(bps) // 2], 3) if bps else None,
            "reason_mismatches": sum(
                1 for m in self.matched if m["daemon"]["reason_code"] != m["replay"]["reason_code"]
            ),
        }

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary(), **asdict(self)}, indent=2, default=str) + "\n"


# ---- the daemon's side -----------------------------------------------------------------------


@dataclass
class DaemonRun:
    db: Path
    symbols: list[str]
    last_bar_t: dict[str, int]
    bars_fed: dict[str, int]
    config_id: str | None  # at the daemon's last start or config reload
    restarts: int
    first_equity: float | None  # the equity of the first heartbeat (live: the start balance)
    trades: list[Action]
    decisions: list[dict[str, Any]]


def _fed(state: dict[str, Any], symbol: str) -> int:
    """Bars the kernel was fed for ``symbol`` (its fast EMA's sample count)."""
    try:
        return int(state["symbols"][symbol]["bank"]["ema_fast"]["count"])
    except (KeyError, TypeError, ValueError):
        raise OpsError(f"kernel state has no bar count for {symbol}: pass --start") from None


def read_daemon(db: Path) -> DaemonRun:
    if not db.is_file():
        raise OpsError(f"trading DB {db} does not exist (AI_QUANT_DB_PATH / --db)")
    with trading_db_read_only(db) as conn:
        conn.row_factory = sqlite3.Row
        kv = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM kv")}
        events = [(r["event"], json.loads(r["data_json"] or "{}")) for r in conn.execute(
            "SELECT event, data_json FROM audit_events WHERE event IN ('ENGINE_START','CONFIG_RELOADED') "
            "ORDER BY id")]  # fmt: skip
        hb = conn.execute(
            "SELECT message FROM runtime_logs WHERE message LIKE 'engine ok.%equity=%' ORDER BY id LIMIT 1"
        ).fetchone()
        rows = conn.execute(
            "SELECT ts_ms, symbol, type, action, price, size, reason_code, meta_json FROM trades "
            "WHERE action IN ('OPEN','ADD','REDUCE','CLOSE') ORDER BY ts_ms, id"
        ).fetchall()
        decisions = [dict(r) for r in conn.execute(
            "SELECT timestamp_ms, symbol, event_type, status, decision_phase, rejection_reason, reason_code, "
            "context_json FROM decision_events WHERE status != 'executed' ORDER BY timestamp_ms")]  # fmt: skip
    if "kernel_state" not in kv or "last_bar_t" not in kv:
        raise OpsError(f"{db}: the daemon has not completed a loop yet")
    state = json.loads(kv["kernel_state"])
    last = {s: int(t) for s, t in json.loads(kv["last_bar_t"]).items()}
    symbols = sorted(last)
    trades = [
        Action("daemon", str(r["symbol"]), int(r["ts_ms"]), str(r["action"]).lower(), str(r["type"]).lower(), float(r["price"]),
               float(r["size"]), str(r["reason_code"] or ""), _no_kernel_intent(r["meta_json"]))
        for r in rows
    ]  # fmt: skip
    ids = [d.get("config_id") for _, d in events if d.get("config_id")]
    return DaemonRun(
        db=db, symbols=symbols, last_bar_t=last, bars_fed={s: _fed(state, s) for s in symbols},
        config_id=ids[-1] if ids else None, restarts=max(0, sum(e == "ENGINE_START" for e, _ in events) - 1),
        first_equity=_equity(hb[0]) if hb else None, trades=trades, decisions=decisions,
    )  # fmt: skip


def _no_kernel_intent(meta_json: str | None) -> bool:
    try:
        return int(json.loads(meta_json or "{}").get("intent_id", -1)) == NO_KERNEL_INTENT
    except (TypeError, ValueError, AttributeError):
        return False


def _equity(heartbeat: str) -> float | None:
    for word in heartbeat.split():
        if word.startswith("equity="):
            try:
                return float(word.removeprefix("equity="))
            except ValueError:
                return None
    return None


# ---- candles ----------------------------------------------------------------------------------


def fetch_candles(
    url: str, symbols: list[str], interval: str, step: int, start: int, end: int, out: Path
) -> Path:
    """The venue's closed candles [start, end] (bar open times) into an engine-layout candles DB."""
    from hyperliquid.info import Info

    from exchange.candle_db import CANDLE_TABLE_SQL

    info = Info(url, skip_ws=True, timeout=20)
    out.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(out)
    conn.execute(CANDLE_TABLE_SQL.format(table="candles"))
    for s in symbols:
        t = start
        while t <= end:
            chunk_end = min(end, t + 4000 * step)
            try:
                rows = info.candles_snapshot(s, interval, t, chunk_end + step - 1)
            except Exception as exc:
                raise OpsError(
                    f"venue {url}: candles for {s}: {type(exc).__name__}: {exc}", EXIT_FAILED
                ) from None
            conn.executemany(
                "INSERT OR REPLACE INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(s, interval, int(c["t"]), int(c["t"]) + step, float(c["o"]), float(c["h"]), float(c["l"]),
                  float(c["c"]), float(c["v"]), int(c.get("n", 0)), "") for c in rows if start <= int(c["t"]) <= end],
            )  # fmt: skip
            t = chunk_end + step
    conn.commit()
    conn.close()
    return out


def read_bars(candles: Path, symbols: list[str], interval: str, start: int, end: int) -> list[Any]:
    """Bars of every symbol in [start, end] from a candle DB file or partition directory."""
    from exchange.candle_db import CandleReader
    from exchange.model import Bar

    files = sorted(candles.glob(f"candles_{interval}*.db")) if candles.is_dir() else [candles]
    if not files:
        raise OpsError(f"{candles}: no candles_{interval}*.db files")
    by_key: dict[tuple[int, str], Any] = {}
    for f in files:
        try:
            with CandleReader(f) as db:
                for s, t, o, h, lo, c, v in db.window(interval, symbols, start, end):
                    by_key[(int(t), str(s))] = Bar(
                        str(s), int(t), float(o), float(h), float(lo), float(c), float(v)
                    )
        except sqlite3.DatabaseError as exc:
            raise OpsError(f"{f}: not a candles DB ({exc})") from None
    return [by_key[k] for k in sorted(by_key)]


# ---- warm-up and replay -----------------------------------------------------------------------


def warm_state(strategy: Any, symbols: list[str], bars: list[Any], step: int, cash: float) -> str:
    """The kernel after the daemon's warm-up: the same bars, ``evaluate`` after each bar time, no fills."""
    from strategy.kernel_orchestrator import KernelOrchestrator

    orch = KernelOrchestrator(strategy.merged(), {s: strategy.merged(s) for s in symbols}, initial_cash=cash,
                              fill_mode="external")  # fmt: skip
    i = 0
    while i < len(bars):
        t = bars[i].t
        while i < len(bars) and bars[i].t == t:
            orch.on_candle(bars[i])
            i += 1
        orch.evaluate(t + step, cash)
    return orch.kernel.save_state()


def replay_actions(
    bt: Path, config: Path, candles: Path, interval: str, symbols: list[str], start: int, end: int,
    init_state: Path, balance: float, work: Path, funding_db: Path | None, overlay: list[str] | None = None,
) -> list[Action]:  # fmt: skip
    trades = work / "replay_trades.csv"
    cmd = [str(bt), "replay", "--config", str(config), "--candles-db", str(candles), "--interval", interval,
           "--symbols", ",".join(symbols), "--start", str(start), "--end", str(end), "--init-state", str(init_state),
           "--initial-balance", repr(balance), "--output", str(work / "replay_report.json"),
           "--export-trades", str(trades), "-q"]  # fmt: skip
    if funding_db is not None:
        cmd += ["--funding-db", str(funding_db)]
    cmd += overlay or []
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        raise OpsError(f"ai-quant-bt replay failed ({r.returncode}): {r.stderr.strip()[-800:]}", EXIT_FAILED)
    out = []
    for row in csv.DictReader(trades.open()):
        kind = row["kind"]
        side = row["side"] if kind in ("open", "add") else ("short" if row["side"] == "long" else "long")
        out.append(Action("replay", row["symbol"], int(row["timestamp_ms"]), kind, side, float(row["price"]), float(row["quantity"]),
                          row["reason_code"]))  # fmt: skip
    return out


# ---- comparison -------------------------------------------------------------------------------


def _explain_missing(a: Action, decisions: list[dict[str, Any]], symbol: str, tol_ms: int) -> str | None:
    for d in decisions:
        if d["symbol"] != symbol or abs(int(d["timestamp_ms"]) - a.ts_ms) > tol_ms:
            continue
        ctx = json.loads(d.get("context_json") or "{}")
        want = "entry_signal" if a.kind in ("open", "add") else "exit_check"
        if d["event_type"] == want and (
            not ctx.get("side") or a.kind in ("reduce", "close") or ctx["side"] == a.side
        ):
            if d["status"] == "would":
                return "dry_live: the daemon would have sent it (no orders in dry_live)"
            return f"daemon {d['status']}: {d['rejection_reason'] or d['reason_code']}"
        if d["event_type"] == "gate_block" and a.kind in ("open", "add"):
            # e.g. a post-exit cooldown after an exit at another time: the gate values are in the row
            return f"the daemon's kernel blocked the entry: {d['reason_code']}"
    return None


def _explain_chains(matched: list[dict[str, Any]], unmatched: list[dict[str, Any]]) -> None:
    """Explain what follows from an earlier difference in the same symbol's position.

    * an exit that only one side made, on a position whose entry matched at a different price:
      the exit rules (stop, trailing stop, take profit, ``profit_atr``) measure from the entry
      price, and the daemon fills at its loop's quote while the replay fills at the bar close;
    * anything after an earlier unmatched action: from there on the two positions differ."""
    entries = sorted(
        (m for m in matched if m["daemon"]["kind"] in ("open", "add")), key=lambda m: m["daemon"]["ts_ms"]
    )
    first_gap: int | None = None
    for u in sorted(unmatched, key=lambda x: int(x["ts_ms"])):
        if u.get("explained_by"):
            first_gap = int(u["ts_ms"]) if first_gap is None else first_gap
            continue
        if u["kind"] in ("close", "reduce"):
            entry = next((m for m in reversed(entries) if m["daemon"]["side"] == u["side"]
                          and m["daemon"]["ts_ms"] <= u["ts_ms"] + 1), None)  # fmt: skip
            if entry is not None and entry["price_diff_bps"]:
                u["explained_by"] = (
                    f"{u['reason_code']} measures from the entry price, which differs by {entry['price_diff_bps']} bps "
                    "(the daemon fills at its loop's quote, the replay at the bar close)"
                )
        if not u.get("explained_by") and first_gap is not None and first_gap < int(u["ts_ms"]):
            u["explained_by"] = f"follows the divergence at {first_gap}: the positions differ from there on"
        first_gap = int(u["ts_ms"]) if first_gap is None else first_gap


def compare(
    daemon: list[Action], replay: list[Action], decisions: list[dict[str, Any]], symbol: str, tol_ms: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Greedy in time order: each daemon action takes the nearest unmatched replay action of the same
    kind and position side within ``tol_ms``."""
    used: set[int] = set()
    matched, extra = [], []
    for d in daemon:
        best = None
        for j, r in enumerate(replay):
            if j in used or r.kind != d.kind or r.side != d.side or abs(r.ts_ms - d.ts_ms) > tol_ms:
                continue
            if best is None or abs(r.ts_ms - d.ts_ms) < abs(replay[best].ts_ms - d.ts_ms):
                best = j
        if best is None:
            why = (
                f"manual order (operator): {d.reason_code or 'no kernel intent'}"
                if d.manual or d.reason_code in MANUAL_CODES or d.reason_code.startswith("manual:")
                else None
            )
            extra.append({**asdict(d), "explained_by": why})
            continue
        used.add(best)
        r = replay[best]
        matched.append({
            "daemon": asdict(d), "replay": asdict(r), "dt_ms": d.ts_ms - r.ts_ms,
            "price_diff_bps": round((d.price - r.price) / r.price * 10_000, 3) if r.price else None,
            "size_diff_pct": round((d.size - r.size) / r.size * 100, 3) if r.size else None,
        })  # fmt: skip
    missing = [
        {**asdict(r), "explained_by": _explain_missing(r, decisions, symbol, tol_ms)}
        for j, r in enumerate(replay) if j not in used
    ]  # fmt: skip
    _explain_chains(matched, missing + extra)
    return matched, missing, extra
