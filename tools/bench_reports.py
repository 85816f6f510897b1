#!/usr/bin/env python3
"""Replay report benchmark: file size and open+draw time of `ai-quant-bt replay --html` in Chromium.

Replays the example config over the 10 Hyperliquid 5m coins of ../shared/data (about 385k bars,
with their hourly funding), writes the self-contained HTML report, opens it in Debian's headless
Chromium through Playwright (file://, no network) and prints the file size and the time from
navigation to every chart drawn (the page sets body[data-ready] when plotly has drawn them all).
Targets: <= 10 MB and <= 2 s. Not a timed test: the figures depend on the machine.

Usage: .venv/bin/python tools/bench_reports.py [--out DIR] [--runs 3]
Build first: cargo build --release -p aiq-backtest
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HL = DATA / "hyperliquid" / "futures"
BIN = Path(os.environ.get("AI_QUANT_BT", ROOT / "target" / "release" / "ai-quant-bt"))
CONFIG = ROOT / "config" / "strategy_overrides.example.yaml"
COINS = ["BNB", "BTC", "DOGE", "ENA", "ETH", "HYPE", "SOL", "SUI", "XRP", "kPEPE"]
CHROMIUM = Path("/usr/bin/chromium")
MAX_BYTES = 10_000_000
MAX_SECONDS = 2.0


def build_inputs(folder: Path, coins: list[str] = COINS) -> tuple[Path, Path]:
    """`candles_5m.db` and `funding_rates.db` in `folder` from the real feather files (kept if present)."""
    import pandas as pd

    candles, funding = folder / "candles_5m.db", folder / "funding_rates.db"
    if candles.exists() and funding.exists():
        return candles, funding
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / "candles.tmp")
    con.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL, h REAL, l REAL,"
        " c REAL, v REAL, n INTEGER, updated_at TEXT, PRIMARY KEY(symbol, interval, t))"
    )
    fcon = sqlite3.connect(folder / "funding.tmp")
    fcon.execute(
        "CREATE TABLE funding_rates (symbol TEXT, time INTEGER, funding_rate REAL, premium REAL,"
        " PRIMARY KEY(symbol, time))"
    )
    for c in coins:
        df = pd.read_feather(HL / f"{c}_USDC_USDC-5m-futures.feather")
        t = df["date"].astype("int64") // 1_000_000
        con.executemany(
            "INSERT OR REPLACE INTO candles VALUES (?,'5m',?,?,?,?,?,?,?,0,'')",
            zip(
                [c] * len(df),
                t,
                t + 300_000,
                df["open"],
                df["high"],
                df["low"],
                df["close"],
                df["volume"],
                strict=True,
            ),
        )
        fr = pd.read_feather(HL / f"{c}_USDC_USDC-1h-funding_rate.feather")
        ft = (fr["date"].astype("int64") // 1_000_000 // 3_600_000) * 3_600_000
        fcon.executemany(
            "INSERT OR REPLACE INTO funding_rates VALUES (?,?,?,0.0)",
            zip([c] * len(fr), ft, fr["open"], strict=True),
        )
    con.commit()
    con.close()
    fcon.commit()
    fcon.close()
    (folder / "candles.tmp").rename(candles)
    (folder / "funding.tmp").rename(funding)
    return candles, funding


def replay_html(folder: Path, out: Path, config: Path = CONFIG) -> Path:
    """Run the replay with `--html out` (and the JSON report next to it); return the HTML path."""
    candles, funding = build_inputs(folder)
    subprocess.run(
        [str(BIN), "replay", "--config", str(config), "--candles-db", str(candles), "--interval", "5m",
         "--funding-db", str(funding), "--symbols", ",".join(COINS), "--output", str(out.with_suffix(".json")),
         "--html", str(out), "--quiet"],
        check=True,
    )  # fmt: skip
    return out


def chromium() -> str:
    exe = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if not exe:
        raise SystemExit("chromium not found (apt-get install chromium)")
    return exe


def launch(p: Any) -> Any:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return p.chromium.launch(executable_path=chromium(), args=[*args, "--disable-gpu"], headless=True)


@dataclass
class Opened:
    seconds: float
    draw_ms: float
    start_ms: float
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def open_report(
    browser: Any, url: str, shot: Path | None = None, timeout_ms: int = 60_000
) -> tuple[Any, Opened]:
    """Open `url` in a new page and wait until every chart is drawn; collect console errors, page
    errors and every request other than the page itself (a self-contained report makes none)."""
    page = browser.new_page()  # a Browser or a BrowserContext (one that holds the monitor's cookie)
    page.set_viewport_size({"width": 1366, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url) if r.url != url else None)
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=timeout_ms, state="attached")
    seconds = time.perf_counter() - t0
    draw_ms = float(page.evaluate("window.__reportDrawMs"))
    start_ms = float(page.evaluate("window.__reportStartMs"))
    if shot is not None:
        page.screenshot(path=str(shot), full_page=True)
    return page, Opened(seconds, draw_ms, start_ms, errors, requests)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="keep the inputs and the report here")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} is not built (cargo build --release -p aiq-backtest)")
    from playwright.sync_api import sync_playwright

    folder = a.out or Path(tempfile.mkdtemp(prefix="bench_reports_"))
    t0 = time.perf_counter()
    html = replay_html(folder, folder / "replay_report.html")
    print(f"replay + report: {time.perf_counter() - t0:.2f} s (inputs in {folder})")
    size = html.stat().st_size
    print(f"report file: {html} {size / 1e6:.2f} MB ({size} bytes; target <= {MAX_BYTES / 1e6:.2f} MB)")
    times = []
    with sync_playwright() as p:
        b = launch(p)
        for i in range(a.runs):
            page, o = open_report(b, html.as_uri(), shot=folder / "replay_report.png" if i == 0 else None)
            page.close()
            if o.errors or o.requests:
                print(f"errors {o.errors[:3]} requests {o.requests[:3]}")
                return 1
            times.append(o.seconds)
            print(
                f"open+draw run {i + 1}: {o.seconds:.3f} s (page script starts at {o.start_ms:.0f} ms, draws in {o.draw_ms:.0f} ms)"
            )
        b.close()
    best, median = min(times), sorted(times)[len(times) // 2]
    print(
        f"open+draw best {best:.3f} s, median {median:.3f} s (target <= {MAX_SECONDS} s); file {size / 1e6:.2f} MB"
    )
    return 0 if size <= MAX_BYTES and best <= MAX_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
