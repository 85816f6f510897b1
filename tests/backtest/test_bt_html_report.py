"""`ai-quant-bt replay --html`: the self-contained report page, opened in real headless Chromium
(Debian's, through Playwright) over a real replay of the 10 Hyperliquid 5m coins (about 385k bars,
hourly funding). No console error, no network request, every chart drawn, the trades table sorts
and filters, the candle chart zooms to finer candles; screenshots go to the test's tmp dir."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.backtest.bt_helpers import BIN, HL, run_bt
from tools.bench_reports import COINS, MAX_BYTES, open_report, replay_html

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not BIN.exists(), reason="ai-quant-bt not built (cargo build --release -p aiq-backtest)"
    ),
    pytest.mark.skipif(not HL.exists(), reason="real data not found (set AI_QUANT_SHARED_DATA)"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("html_report")
    html = replay_html(folder, folder / "replay_report.html")
    return html, json.loads(html.with_suffix(".json").read_text())


def test_report_is_self_contained_and_draws_every_chart(
    report: tuple[Path, dict[str, Any]], browser: Any, tmp_path: Path
) -> None:
    html, rep = report
    assert rep["inputs"]["symbols"] == sorted(COINS) and rep["bars"] > 380_000
    size = html.stat().st_size
    assert size <= MAX_BYTES, f"report is {size} bytes"
    text = html.read_text()
    assert "http://" not in text.split("<script>", 1)[0] and "<link" not in text  # nothing fetched
    page, opened = open_report(browser, html.as_uri(), shot=tmp_path / "replay_report.png")
    print(
        f"screenshot: {tmp_path / 'replay_report.png'}; {size / 1e6:.2f} MB, open+draw {opened.seconds:.2f} s"
    )
    assert opened.errors == []
    assert opened.requests == []
    assert (tmp_path / "replay_report.png").stat().st_size > 10_000
    charts = page.eval_on_selector_all(
        "[data-chart]", "els => els.map(e => [e.id, e.dataset.drawn, !!e.querySelector('.main-svg')])"
    )
    assert len(charts) == 10
    assert all(d == "1" and svg for _, d, svg in charts), charts
    # numbers on the page are the report's
    assert rep["config_id"] in page.inner_text("#meta")
    assert rep["config_id"] in page.inner_text("#config-ids")
    cards = dict(
        zip(
            page.locator(".card .k").all_inner_texts(),
            page.locator(".card .v").all_inner_texts(),
            strict=True,
        )
    )
    assert cards["Trades"] == str(rep["total_trades"])
    assert cards["Net PnL"] == f"{rep['total_pnl']:.2f}"
    by_reason = page.evaluate(
        "() => { const d = document.getElementById('chart-exit-reason').data[0]; return [d.x, d.y]; }"
    )
    assert by_reason == [list(rep["by_exit_reason"]), [b["net_pnl"] for b in rep["by_exit_reason"].values()]]
    # every closed trade is in the table data; the table shows the first page, sorted by id
    ids = page.eval_on_selector_all("#trades tbody tr", "rs => rs.map(r => +r.dataset.tradeId)")
    assert len(ids) == min(300, rep["total_trades"]) and ids == sorted(ids)
    assert f"{rep['total_trades']} of {rep['total_trades']} trades" in page.inner_text("#trade-count")
    page.close()


def test_trades_table_filters_and_sorts(report: tuple[Path, dict[str, Any]], browser: Any) -> None:
    html, _ = report
    page, _ = open_report(browser, html.as_uri())
    page.select_option("#f-side", "long")
    page.select_option("#f-reason", "stop_loss")
    sides = page.eval_on_selector_all("#trades tbody tr td:nth-child(3)", "ts => ts.map(t => t.textContent)")
    reasons = page.eval_on_selector_all(
        "#trades tbody tr td:nth-child(14)", "ts => ts.map(t => t.textContent)"
    )
    assert sides and set(sides) == {"long"} and set(reasons) == {"stop_loss"}
    page.click("#trades th[data-col='net_pnl']")  # ascending
    net = page.eval_on_selector_all("#trades tbody tr td:nth-child(13)", "ts => ts.map(t => +t.textContent)")
    assert net == sorted(net) and len(net) > 1
    page.click("#trades th[data-col='net_pnl']")  # descending
    net = page.eval_on_selector_all("#trades tbody tr td:nth-child(13)", "ts => ts.map(t => +t.textContent)")
    assert net == sorted(net, reverse=True)
    page.select_option("#f-symbol", "ETH")
    syms = page.eval_on_selector_all("#trades tbody tr td:nth-child(2)", "ts => ts.map(t => t.textContent)")
    assert set(syms) <= {"ETH"}
    page.close()


def test_candles_zoom_to_finer_levels_and_show_trades(
    report: tuple[Path, dict[str, Any]], browser: Any, tmp_path: Path
) -> None:
    html, rep = report
    page, _ = open_report(browser, html.as_uri())
    page.select_option("#symbol-select", "ETH")
    page.wait_for_function("document.getElementById('chart-candles').data[0].name === 'ETH'")
    full = page.evaluate("document.getElementById('chart-candles').data[0].x.length")
    assert 100 < full <= 2500
    # zoom to one day: the page swaps in finer candles
    day = 86_400_000
    t = rep["inputs"]["first_bar_ms"] + 30 * day
    page.evaluate(f"Plotly.relayout('chart-candles', {{'xaxis.range': [{t}, {t + day}]}})")
    page.wait_for_function("document.getElementById('candle-note').textContent.includes('level 0')")
    xs = page.evaluate("document.getElementById('chart-candles').data[0].x")
    step = min(b - a for a, b in itertools.pairwise(xs))
    assert step < 3_600_000  # finer than an hour
    # entries, exits, stops and take profits of ETH are drawn
    traces = page.evaluate("document.getElementById('chart-candles').data.map(d => [d.name, d.x.length])")
    n = dict(traces)
    eth = rep["by_symbol"]["ETH"]["trades"]
    assert (
        n["entry"] == eth and n["exit"] == eth and n["stop loss"] == 3 * eth and n["take profit"] == 3 * eth
    )
    page.screenshot(path=str(tmp_path / "replay_report_zoom.png"))
    page.close()


def payload(html: Path) -> dict[str, Any]:
    text = html.read_text()
    start = text.index('id="report-data">') + len('id="report-data">')
    data: dict[str, Any] = json.loads(text[start : text.index("</script>", start)])
    return data


def test_stops_and_take_profits_are_the_kernels(report: tuple[Path, dict[str, Any]]) -> None:
    """The drawn levels come from the kernel's own exit functions: every stop is on the losing side
    of the entry and every take profit on the winning side, and every `take_profit` exit filled at
    or beyond its drawn level (less the configured slippage and the 6-digit rounding)."""
    html, rep = report
    d = payload(html)
    cols = d["trips"]["cols"]
    rows = [dict(zip(cols, r, strict=True)) for r in d["trips"]["rows"]]
    for col, values in d["trips"]["dict"].items():
        for r in rows:
            r[col] = values[r[col]]
    assert len(rows) == rep["total_trades"]
    tol = (d["config"]["trade"]["slippage_bps"] + 1) / 1e4
    tp_exits = 0
    for r in rows:
        e, sl, tp = r["entry_price"], r["stop_loss"], r["take_profit"]
        assert (sl < e < tp) if r["side"] == "long" else (tp < e < sl), r
        if r["exit_reason"] == "take_profit" and r["adds"] == 0:
            tp_exits += 1
            x = r["exit_price"]
            assert (x >= tp * (1 - tol)) if r["side"] == "long" else (x <= tp * (1 + tol)), r
    assert tp_exits > 10


def test_html_to_an_unwritable_path_is_one_line(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    html, rep = report
    cfg = rep["config_path"]
    db = html.parent / "candles_5m.db"
    bad = tmp_path / "missing" / "r.html"
    r = run_bt("replay", "--config", cfg, "--candles-db", db, "--interval", "5m", "--symbols", "BTC",
               "--output", tmp_path / "r.json", "--html", bad, "--quiet", check=False)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {bad}: cannot write: No such file or directory (os error 2)"
    ]
    assert os.path.exists(tmp_path / "r.json")
