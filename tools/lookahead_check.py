#!/usr/bin/env python3
"""Lookahead check: a replay of the data truncated at a cut must reproduce, up to the cut, every
decision, fill and indicator value of the full-data run.

For each random cut (a main bar with open time ``t``, deciding at ``tau = t + interval``), the
inputs are truncated at ``tau``: main bars that close by ``tau``, sub-bars that close by ``tau``,
funding at or before ``tau``. Then, for the same window of real data:

``replay``       ``ai-quant-bt replay``: every fill (``--export-trades``) and equity step up to
                 ``tau``; the truncated run's final kernel state equals the kernel path's state
                 after the step at ``tau``
``replay-exit``  the same with ``--exit-interval`` sub-bars
``replay-sub``   the same with ``--entry-interval`` and ``--exit-interval`` sub-bars
``indicators``   ``ai-quant-bt dump-indicators``, every column of every bar up to ``t``, per symbol
``kernel``       ``bt_runtime.Kernel`` driven from Python as the daemon drives it (the calling
                 convention of docs/backtester.md): per step the intents, fills, blocked entries,
                 indicator snapshots, last decisions and equity; the full state after the cut step

Values are compared as exact text (the binary writes shortest round-trip floats) or as bit-equal
floats. The first difference of each path is printed.

    python tools/lookahead_check.py --candles-db candles_dbs/candles_1h.db --interval 1h \\
        --sub-candles-db candles_dbs/candles_5m.db --sub-interval 5m --funding-db candles_dbs/funding_rates.db \\
        --config config/strategy_overrides.yaml --symbols BTC,ETH,SOL --start 2025-03-20 --end 2025-04-05 --cuts 5

Exit status: 0 no difference, 1 a difference (a lookahead, or a run that is not deterministic),
2 usage or input errors.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data.intervals import interval_ms  # noqa: E402
from exchange.candle_db import CandleReader  # noqa: E402

DEFAULT_BIN = ROOT / "target" / "release" / "ai-quant-bt"
PATHS = ("replay", "replay-exit", "replay-sub", "indicators", "kernel")

Bar = tuple[str, int, float, float, float, float, float]  # symbol, t (open), o, h, l, c, v
Funding = tuple[int, str, float]  # time, symbol, rate


class InputError(Exception):
    """Bad arguments or inputs: one line, exit 2."""


def iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """``YYYY-MM-DD[THH:MM[:SS]][Z]`` (UTC) or epoch seconds/milliseconds -> ms."""
    if text.isdigit():
        value = int(text)
        return value if value >= 10**11 else value * 1000
    try:
        dt = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        raise InputError(f"not a time: {text!r} (YYYY-MM-DD[THH:MM[:SS]] or epoch)") from None
    return int(dt.replace(tzinfo=UTC).timestamp() * 1000)


# ---- inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    interval: str
    main: list[Bar]
    sub_interval: str | None = None
    sub: list[Bar] = field(default_factory=list)
    funding: list[Funding] = field(default_factory=list)

    @property
    def iv(self) -> int:
        return interval_ms(self.interval)

    def truncated(self, tau: int) -> Inputs:
        """Everything known at ``tau``: bars that closed by then, funding at or before it."""
        sub_ms = interval_ms(self.sub_interval) if self.sub_interval else 0
        return Inputs(
            self.interval,
            [b for b in self.main if b[1] + self.iv <= tau],
            self.sub_interval,
            [b for b in self.sub if b[1] + sub_ms <= tau],
            [f for f in self.funding if f[0] <= tau],
        )


def read_bars(db: Path, interval: str, symbols: Sequence[str], start: int, end: int) -> list[Bar]:
    """Bars of ``symbols`` with ``start <= t`` and ``t + interval <= end``, by (t, symbol)."""
    if not db.is_file():
        raise InputError(f"no such candle DB: {db}")
    try:
        with CandleReader(db) as cdb:
            rows = cdb.window(interval, symbols, start, end - interval_ms(interval))
    except sqlite3.Error as exc:
        raise InputError(f"{db}: cannot read candles: {exc}") from None
    missing = set(symbols) - {r[0] for r in rows}
    if missing:
        raise InputError(f"{db}: no {interval} bars for {', '.join(sorted(missing))} in the window")
    return sorted(
        ((str(s), int(t), o, h, lo, c, v) for s, t, o, h, lo, c, v in rows), key=lambda b: (b[1], b[0])
    )


def read_funding(db: Path, symbols: Sequence[str], start: int, end: int) -> list[Funding]:
    if not db.is_file():
        raise InputError(f"no such funding DB: {db}")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT symbol, time, funding_rate FROM funding_rates").fetchall()
    except sqlite3.Error as exc:
        raise InputError(f"{db}: cannot read funding_rates: {exc}") from None
    finally:
        con.close()
    out = []
    for sym, t, rate in rows:
        t = int(t) * 1000 if abs(int(t)) < 100_000_000_000 else int(t)  # seconds, as the binary reads them
        if sym in symbols and start <= t <= end:
            out.append((t, str(sym), float(rate)))
    return sorted(out)


def write_inputs(inputs: Inputs, folder: Path) -> dict[str, Path]:
    """The inputs as the SQLite files ai-quant-bt reads."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"main": folder / f"candles_{inputs.interval}.db"}
    _write_bars(out["main"], inputs.interval, inputs.main)
    if inputs.sub_interval:
        out["sub"] = folder / f"candles_{inputs.sub_interval}.db"
        _write_bars(out["sub"], inputs.sub_interval, inputs.sub)
    if inputs.funding:
        out["funding"] = folder / "funding_rates.db"
        con = sqlite3.connect(out["funding"])
        con.execute(
            "CREATE TABLE funding_rates (symbol TEXT, time INTEGER, funding_rate REAL, PRIMARY KEY(symbol, time))"
        )
        con.executemany("INSERT INTO funding_rates VALUES (?,?,?)", [(s, t, r) for t, s, r in inputs.funding])
        con.commit()
        con.close()
    return out


def _write_bars(db: Path, interval: str, bars: list[Bar]) -> None:
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, o REAL, h REAL, l REAL, c REAL, v REAL,"
        " PRIMARY KEY(symbol, interval, t))"
    )
    con.executemany("INSERT INTO candles VALUES (?,?,?,?,?,?,?,?)", [(b[0], interval, *b[1:]) for b in bars])
    con.commit()
    con.close()


# ---- ai-quant-bt -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BinRun:
    fills: list[dict[str, str]]
    equity: list[dict[str, str]]
    state: Any


def _run(cmd: Sequence[str | Path]) -> None:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, check=False)
    if res.returncode != 0:
        raise InputError(f"{Path(str(cmd[0])).name} {cmd[1]} failed: {res.stderr.strip()[-600:]}")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def bin_replay(
    binary: Path, config: Path, files: dict[str, Path], inputs: Inputs, path: str, out: Path
) -> BinRun:
    out.mkdir(parents=True, exist_ok=True)
    cmd: list[str | Path] = [
        binary, "replay", "--config", config, "--candles-db", files["main"], "--interval", inputs.interval,
        "--output", out / "report.json", "--export-trades", out / "trades.csv",
        "--equity-curve", out / "equity.csv", "--export-state", out / "state.json", "-q",
        # The inputs are already cut to the window; auto-scope would also trim main bars to the
        # funding range, which ends up to an hour before a cut that is not on the hour.
        "--no-auto-scope",
    ]  # fmt: skip
    if "funding" in files:
        cmd += ["--funding-db", files["funding"]]
    if path in ("replay-exit", "replay-sub"):
        cmd += ["--exit-interval", str(inputs.sub_interval), "--exit-candles-db", files["sub"]]
    if path == "replay-sub":
        cmd += ["--entry-interval", str(inputs.sub_interval), "--entry-candles-db", files["sub"]]
    _run(cmd)
    state = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else None
    return BinRun(_csv(out / "trades.csv"), _csv(out / "equity.csv"), state)


def bin_indicators(
    binary: Path, config: Path, files: dict[str, Path], interval: str, symbol: str, out: Path
) -> list[dict[str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ind_{symbol}.csv"
    _run([binary, "dump-indicators", "--config", config, "--candles-db", files["main"], "--interval", interval,
          "--symbol", symbol, "--output", path])  # fmt: skip
    return _csv(path)


def merged_configs(binary: Path, config: Path, symbols: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The merged config (JSON text) for the base and each symbol, as ai-quant-bt builds it."""

    def one(symbol: str | None) -> str:
        cmd: list[str | Path] = [
            binary,
            "config",
            "--config",
            config,
            *(["--symbol", symbol] if symbol else []),
        ]
        res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, check=False)
        if res.returncode != 0:
            raise InputError(f"ai-quant-bt config failed: {res.stderr.strip()}")
        return json.dumps(json.loads(res.stdout)["config"], sort_keys=True)

    return one(None), {s: one(s) for s in symbols}


# ---- the daemon's kernel path ----------------------------------------------------------------------


@dataclass
class KernelRun:
    steps: list[tuple[Any, ...]] = field(default_factory=list)  # one record per decision time
    states: dict[int, str] = field(default_factory=dict)  # decision time -> save_state() text


def kernel_run(
    inputs: Inputs,
    base_cfg: str,
    symbol_cfgs: dict[str, str],
    *,
    initial_cash: float = 10_000.0,
    keep_states: frozenset[int] = frozenset(),
) -> KernelRun:
    """Drive ``bt_runtime.Kernel`` over the main bars as docs/backtester.md describes: step every
    symbol's bar (name order), book funding due by the close, evaluate once at the close."""
    import bt_runtime

    kernel = bt_runtime.Kernel(base_cfg, initial_cash=initial_cash)
    for sym, cfg in symbol_cfgs.items():
        if cfg != base_cfg:
            kernel.set_symbol_config(sym, cfg)
    bars, funding, iv = inputs.main, inputs.funding, inputs.iv
    run = KernelRun()
    j = 0
    while j < len(funding) and bars and funding[j][0] <= bars[0][1]:
        j += 1  # funding at or before the first bar's open is not due
    last_close: dict[str, float] = {}
    i = 0
    while i < len(bars):
        t = bars[i][1]
        stepped: list[str] = []
        results = []
        while i < len(bars) and bars[i][1] == t:
            sym, _, o, h, lo, c, v = bars[i]
            results.append(kernel.step_candle(sym, t, o, h, lo, c, v))
            last_close[sym] = c
            stepped.append(sym)
            i += 1
        t_close = t + iv
        booked = []
        while j < len(funding) and funding[j][0] <= t_close:
            ft, sym, rate = funding[j]
            if sym in last_close:
                booked.append((sym, ft, kernel.on_funding(sym, rate, last_close[sym], ft)))
            j += 1
        results.append(kernel.evaluate(t_close))
        run.steps.append(
            (
                t_close,
                [_result(r) for r in results],
                booked,
                {s: kernel.snapshot_json(s) for s in stepped},
                {s: kernel.last_decision(s) for s in stepped},
                kernel.equity(),
                kernel.cash,
            )
        )
        if t_close in keep_states:
            run.states[t_close] = kernel.save_state()
    return run


def _result(r: Any) -> tuple[Any, ...]:
    intents = [
        (x.intent_id, x.symbol, x.kind, x.side, x.quantity, x.price, x.notional_usd, x.reason, x.reason_code,
         x.confidence, x.score, x.timestamp_ms, x.reduce_only, x.leverage)
        for x in r.intents
    ]  # fmt: skip
    fills = [
        (f.intent_id, f.symbol, f.kind, f.side, f.quantity, f.price, f.notional_usd, f.fee_usd, f.pnl_usd,
         f.reason_code, f.timestamp_ms)
        for f in r.fills
    ]  # fmt: skip
    return (intents, fills, list(r.blocked))


# ---- comparison ------------------------------------------------------------------------------------

STEP_FIELDS = ("t_close", "kernel calls (intents, fills, blocked)", "funding booked", "indicator snapshots",
               "last decisions", "equity", "cash")  # fmt: skip


def first_difference(full: Sequence[Any], cut: Sequence[Any], what: str) -> str | None:
    """``cut`` must equal the prefix of ``full`` of the same length; the first difference, named."""
    for k, (a, b) in enumerate(zip(full, cut, strict=False)):
        if a != b:
            return f"{what} #{k}: full run {_short(a)} != truncated run {_short(b)}"
    if len(cut) > len(full):
        return f"{what}: the truncated run has {len(cut)} rows, the full run only {len(full)}"
    return None


def _short(x: Any, limit: int = 300) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[:limit] + "..."


def compare_steps(full: KernelRun, cut: KernelRun) -> str | None:
    if len(cut.steps) > len(full.steps):
        return f"kernel: {len(cut.steps)} steps truncated, {len(full.steps)} full"
    for a, b in zip(full.steps, cut.steps, strict=False):
        for name, x, y in zip(STEP_FIELDS, a, b, strict=True):
            if x != y:
                return f"kernel step t_close={a[0]} ({iso(a[0])}): {name} differ: full {_short(x)} != truncated {_short(y)}"
    return None


def compare_bin(full: BinRun, cut: BinRun, tau: int, path: str) -> str | None:
    if not cut.equity or int(cut.equity[-1]["timestamp_ms"]) != tau:
        last = cut.equity[-1]["timestamp_ms"] if cut.equity else "none"
        return f"{path}: the truncated run's last step is {last}, not the cut's close {tau}"
    eq = [r for r in full.equity if int(r["timestamp_ms"]) <= tau]
    fills = [r for r in full.fills if int(r["timestamp_ms"]) <= tau]
    return first_difference(eq, cut.equity, f"{path} equity step") or first_difference(
        fills, cut.fills, f"{path} fill"
    )


# ---- driver ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    failures: int = 0

    def check(self, label: str, diff: str | None, detail: str = "") -> None:
        if diff is None:
            self.lines.append(f"ok    {label}{detail}")
        else:
            self.failures += 1
            self.lines.append(f"DIFF  {label}: {diff}")


def choose_cuts(main: list[Bar], iv: int, count: int, seed: int, warmup_frac: float = 0.25) -> list[int]:
    """Random decision times (bar closes) after the first ``warmup_frac`` of the window, never the last."""
    closes = sorted({b[1] + iv for b in main})
    pool = closes[int(len(closes) * warmup_frac) : -1]
    if len(pool) < count:
        raise InputError(f"the window has {len(closes)} decision times: too short for {count} cut(s)")
    return sorted(random.Random(seed).sample(pool, count))


def check(
    inputs: Inputs,
    config: Path,
    binary: Path,
    cuts: Sequence[int],
    paths: Sequence[str],
    work: Path,
) -> Outcome:
    out = Outcome()
    symbols = sorted({b[0] for b in inputs.main})
    full_files = write_inputs(inputs, work / "full")
    replays = [p for p in paths if p.startswith("replay")]
    full_bin = {p: bin_replay(binary, config, full_files, inputs, p, work / "full" / p) for p in replays}
    full_ind = (
        {s: bin_indicators(binary, config, full_files, inputs.interval, s, work / "full") for s in symbols}
        if "indicators" in paths
        else {}
    )
    need_kernel = "kernel" in paths or "replay" in paths
    base_cfg, sym_cfgs = merged_configs(binary, config, symbols) if need_kernel else ("", {})
    full_k = kernel_run(inputs, base_cfg, sym_cfgs, keep_states=frozenset(cuts)) if need_kernel else None
    for p, run in full_bin.items():
        out.lines.append(f"full  {p}: {len(run.fills)} fills, {len(run.equity)} steps")
    if full_k is not None:
        out.lines.append(f"full  kernel: {len(full_k.steps)} steps")
    for n, tau in enumerate(cuts):
        cut_inputs = inputs.truncated(tau)
        files = write_inputs(cut_inputs, work / f"cut{n}")
        tag = f"cut {iso(tau)}"
        for p in replays:
            run = bin_replay(binary, config, files, cut_inputs, p, work / f"cut{n}" / p)
            diff = compare_bin(full_bin[p], run, tau, p)
            kernel_state = (
                json.loads(full_k.states[tau]) if p == "replay" and full_k is not None else run.state
            )
            if diff is None and run.state != kernel_state:
                diff = (
                    "replay: the truncated run's final kernel state differs from the kernel path's at the cut"
                )
            out.check(f"{tag} {p}", diff, f" ({len(run.fills)} fills, {len(run.equity)} steps)")
        for s in symbols if "indicators" in paths else ():
            rows = bin_indicators(binary, config, files, inputs.interval, s, work / f"cut{n}")
            out.check(f"{tag} indicators {s}", first_difference(full_ind[s], rows, f"indicators {s} bar"),
                      f" ({len(rows)} bars)")  # fmt: skip
        if "kernel" in paths and full_k is not None:
            cut_k = kernel_run(cut_inputs, base_cfg, sym_cfgs, keep_states=frozenset([tau]))
            diff = compare_steps(full_k, cut_k)
            if diff is None and len(cut_k.steps) == 0:
                diff = "kernel: the truncated run made no step"
            if diff is None and cut_k.states.get(tau) != full_k.states[tau]:
                diff = "kernel: the state after the cut step differs"
            out.check(f"{tag} kernel", diff, f" ({len(cut_k.steps)} steps)")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candles-db", type=Path, required=True, help="SQLite candle DB of the main interval")
    p.add_argument("--interval", required=True, help="main interval (e.g. 1h)")
    p.add_argument("--sub-candles-db", type=Path, help="candle DB of the sub-bars (default --candles-db)")
    p.add_argument("--sub-interval", help="sub-bar interval for replay-exit / replay-sub (e.g. 5m)")
    p.add_argument("--funding-db", type=Path, help="funding_rates DB (optional)")
    p.add_argument("--config", type=Path, required=True, help="strategy YAML")
    p.add_argument("--symbols", required=True, help="comma-separated")
    p.add_argument("--start", required=True, help="first bar open (UTC date/time or epoch)")
    p.add_argument("--end", required=True, help="last bar close (UTC date/time or epoch)")
    p.add_argument("--cuts", type=int, default=5, help="random cut points (default 5)")
    p.add_argument("--seed", type=int, default=1, help="random seed for the cut points (default 1)")
    p.add_argument(
        "--paths",
        help=f"what to check, comma-separated (default all of {','.join(PATHS)}; "
        "without --sub-interval, all but the sub-bar replays)",
    )
    p.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="ai-quant-bt binary")
    p.add_argument("--work-dir", type=Path, help="keep the truncated inputs and outputs here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.paths is None:
            paths = [p for p in PATHS if args.sub_interval or p not in ("replay-exit", "replay-sub")]
        else:
            paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        unknown = set(paths) - set(PATHS)
        if unknown:
            raise InputError(f"unknown path(s) {', '.join(sorted(unknown))}; known: {', '.join(PATHS)}")
        if any(p in ("replay-exit", "replay-sub") for p in paths) and not args.sub_interval:
            raise InputError("replay-exit and replay-sub need --sub-interval (or leave them out of --paths)")
        if not args.bin.is_file():
            raise InputError(f"no ai-quant-bt at {args.bin} (cargo build --release -p aiq-backtest)")
        if not args.config.is_file():
            raise InputError(f"no such config: {args.config}")
        symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
        start, end = parse_time(args.start), parse_time(args.end)
        main_bars = read_bars(args.candles_db, args.interval, symbols, start, end)
        sub_iv = args.sub_interval if any(p.startswith("replay-") for p in paths) else None
        sub = read_bars(args.sub_candles_db or args.candles_db, sub_iv, symbols, start, end) if sub_iv else []
        funding = read_funding(args.funding_db, symbols, start, end) if args.funding_db else []
        inputs = Inputs(args.interval, main_bars, sub_iv, sub, funding)
        cuts = choose_cuts(main_bars, inputs.iv, args.cuts, args.seed)
        with tempfile.TemporaryDirectory(prefix="lookahead-") as tmp:
            work = args.work_dir or Path(tmp)
            outcome = check(inputs, args.config, args.bin, cuts, paths, work)
    except (InputError, KeyError, ValueError) as exc:
        print(f"lookahead_check: {exc}", file=sys.stderr)
        return 2
    print("\n".join(outcome.lines))
    print(f"result: {'LOOKAHEAD OR NONDETERMINISM FOUND' if outcome.failures else 'OK'} "
          f"({len(cuts)} cut(s), {outcome.failures} difference(s))")  # fmt: skip
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
