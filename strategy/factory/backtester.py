"""Subprocess wrapper around the CPU backtester ``ai-quant-bt`` with typed result parsing."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .stats import FloatArray

REPO = Path(__file__).resolve().parents[2]


def find_binary() -> Path:
    env = os.environ.get("AI_QUANT_BT")
    p = Path(env) if env else REPO / "target" / "release" / "ai-quant-bt"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: cargo build --release -p aiq-backtest (or set AI_QUANT_BT)")
    return p


class BacktestError(RuntimeError):
    pass


@dataclass(frozen=True)
class DataScope:
    candles_db: Path
    funding_db: Path | None
    interval: str
    symbols: tuple[str, ...]
    start: str
    end: str
    # sub-bar entries / exits (engine.entry_interval / exit_interval): candles_<iv>.db beside
    # candles_db; "" = none
    entry_interval: str = ""
    exit_interval: str = ""

    def args(self) -> list[str]:
        a = ["--candles-db", str(self.candles_db), "--interval", self.interval]
        if self.funding_db is not None:
            a += ["--funding-db", str(self.funding_db)]
        if self.symbols:
            a += ["--symbols", ",".join(self.symbols)]
        for what, iv in (("entry", self.entry_interval), ("exit", self.exit_interval)):
            if iv:
                a += [
                    f"--{what}-interval",
                    iv,
                    f"--{what}-candles-db",
                    str(self.candles_db.parent / f"candles_{iv}.db"),
                ]
        return [*a, "--start", self.start, "--end", self.end]


@dataclass(frozen=True)
class ReplayResult:
    config_id: str
    total_pnl: float
    total_trades: int
    profit_factor: float | None
    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown_pct: float
    total_fees: float
    steps: int
    exposure_pct: float
    by_symbol_pnl: dict[str, float]
    by_symbol_trades: dict[str, int]
    equity_t_ms: tuple[int, ...]
    equity: tuple[float, ...]
    trade_pnls: tuple[float, ...]  # per round trip: realised PnL - fees (funding not in fills)

    def step_returns(self) -> FloatArray:
        eq = np.asarray(self.equity, dtype=np.float64)
        return np.asarray(eq[1:] / eq[:-1] - 1.0, dtype=np.float64)

    def holding_steps(self) -> int:
        """Average steps a position is held (the label horizon for purging)."""
        held = self.steps * self.exposure_pct / 100.0
        return max(1, round(held / max(self.total_trades, 1)))

    def metrics(self) -> dict[str, float | None]:
        return {
            "total_pnl": self.total_pnl,
            "total_trades": float(self.total_trades),
            "profit_factor": self.profit_factor,
            "sharpe_ratio": self.sharpe_ratio,
            "sortino_ratio": self.sortino_ratio,
            "max_drawdown_pct": self.max_drawdown_pct,
            "total_fees": self.total_fees,
        }


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise BacktestError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def parse_replay(report: dict[str, Any], equity_csv: Path, trades_csv: Path) -> ReplayResult:
    t_ms: list[int] = []
    eq: list[float] = []
    with equity_csv.open() as fh:
        for row in csv.DictReader(fh):
            t_ms.append(int(row["timestamp_ms"]))
            eq.append(float(row["equity"]))
    per_trade: dict[str, float] = defaultdict(float)
    with trades_csv.open() as fh:
        for row in csv.DictReader(fh):
            per_trade[row["trade_id"]] += float(row["pnl_usd"] or 0.0) - float(row["fee_usd"] or 0.0)
    pf = report.get("profit_factor")
    by_sym = report.get("by_symbol") or {}
    return ReplayResult(
        config_id=str(report["config_id"]),
        total_pnl=float(report["total_pnl"]),
        total_trades=int(report["total_trades"]),
        profit_factor=None if pf is None else float(pf),
        sharpe_ratio=float(report.get("sharpe_ratio") or 0.0),
        sortino_ratio=float(report.get("sortino_ratio") or 0.0),
        max_drawdown_pct=float(report["max_drawdown_pct"]),
        total_fees=float(report.get("total_fees") or 0.0),
        steps=int(report.get("steps") or len(eq)),
        exposure_pct=float(report.get("exposure_pct") or 0.0),
        by_symbol_pnl={s: float(v["net_pnl"]) for s, v in sorted(by_sym.items())},
        by_symbol_trades={s: int(v["trades"]) for s, v in sorted(by_sym.items())},
        equity_t_ms=tuple(t_ms),
        equity=tuple(eq),
        trade_pnls=tuple(per_trade[k] for k in sorted(per_trade, key=int)),
    )


def replay(
    config: Path,
    scope: DataScope,
    out_dir: Path,
    slippage_bps: float | None = None,
    timeout: float = 600.0,
) -> ReplayResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    rep, eqf, trf = out_dir / "report.json", out_dir / "equity.csv", out_dir / "trades.csv"
    cmd = [str(find_binary()), "replay", "--config", str(config), *scope.args(), "-q"]
    cmd += ["--output", str(rep), "--equity-curve", str(eqf), "--export-trades", str(trf)]
    if slippage_bps is not None:
        cmd += ["--slippage-bps", repr(float(slippage_bps))]
    _run(cmd, timeout)
    return parse_replay(json.loads(rep.read_text()), eqf, trf)


def sweep(
    config: Path,
    spec: Path,
    scope: DataScope,
    output: Path,
    top_k: int,
    threads: int | None = None,
    timeout: float = 3600.0,
    backend_args: tuple[str, ...] = (),
) -> Path:
    """The grid sweep; ``backend_args`` e.g. ("--backend", "gpu") (docs/backtester.md "CUDA sweep")."""
    cmd = [str(find_binary()), "sweep", "--config", str(config), "--sweep-spec", str(spec), *scope.args()]
    cmd += ["--output", str(output), "--top-k", str(top_k), "--no-progress", "--resume", *backend_args]
    if threads:
        cmd += ["--threads", str(threads)]
    _run(cmd, timeout)
    return output
