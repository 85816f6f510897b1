"""tools/sweep_report.py over a real `ai-quant-bt sweep` (BTC, ETH: 6,000 real Hyperliquid 5m bars,
3 x 3 grid): the page opens in headless Chromium with no console error and no request, draws the
one-axis and the two-axis charts with the chosen combo marked, lists the top combos; `--replay ID`
makes that combo's replay report, whose config_id is the sweep row's, and the row links it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.reports import list_reports
from tests.backtest.bt_helpers import BIN, HL, hl_frames, run_bt, write_candles_db
from tools.bench_reports import open_report
from tools.sweep_report import main as sweep_report

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "strategy_overrides.example.yaml"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not BIN.exists(), reason="ai-quant-bt not built (cargo build --release -p aiq-backtest)"
    ),
    pytest.mark.skipif(not HL.exists(), reason="real data not found (set AI_QUANT_SHARED_DATA)"),
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("sweep_report")
    db = write_candles_db(root / "candles_5m.db", hl_frames(["BTC", "ETH"], n=6000), "5m")
    spec = root / "spec.yaml"
    spec.write_text(
        "axes:\n  - {path: trade.sl_atr_mult, values: [1.5, 2.0, 3.0]}\n"
        "  - {path: trade.tp_atr_mult, values: [2.0, 4.0, 6.0]}\n"
    )
    out = root / "sweep.jsonl"
    run_bt("sweep", "--config", CONFIG, "--candles-db", db, "--interval", "5m", "--sweep-spec", spec,
           "--output", out, "--threads", "2", "--no-progress", "--quiet")  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 9
    return out, db, rows


def test_sweep_report_page(
    sweep: tuple[Path, Path, list[dict[str, Any]]], browser: Any, tmp_path: Path
) -> None:
    out, db, rows = sweep
    html = tmp_path / "reports" / "sweep_report.html"
    html.parent.mkdir()
    best = max(rows, key=lambda r: (r["total_pnl"], -r["combo"]))
    # an on-demand replay of the best combo: its config_id is the sweep row's
    rc = sweep_report([str(out), "--html", str(html), "--replay", best["id"], "--config", str(CONFIG), "--",
                       "--candles-db", str(db), "--interval", "5m"])  # fmt: skip
    assert rc == 0
    replay = html.parent / f"replay_{best['id']}.html"
    assert replay.exists()
    assert {(r.kind, r.name) for r in list_reports(tmp_path)} == {
        ("sweep", html.name),
        ("replay", replay.name),
    }
    page, opened = open_report(browser, html.as_uri(), shot=tmp_path / "sweep_report.png")
    print(f"screenshot: {tmp_path / 'sweep_report.png'}")
    assert opened.errors == [] and opened.requests == []
    assert page.eval_on_selector_all("[data-chart]", "els => els.map(e => e.dataset.drawn)") == ["1", "1"]
    # the chosen (best) combo is marked in both charts and highlighted in the table
    star = page.evaluate("document.getElementById('chart-axis').data[2]")
    assert star["x"] == [best["overrides"]["trade.sl_atr_mult"]] and star["y"] == [best["total_pnl"]]
    axis = page.evaluate("document.getElementById('chart-axis').data[0]")
    assert axis["x"] == [1.5, 2.0, 3.0]
    assert axis["y"] == [
        max(r["total_pnl"] for r in rows if r["overrides"]["trade.sl_atr_mult"] == v) for v in axis["x"]
    ]
    heat = page.evaluate("document.getElementById('chart-heatmap').data")
    z = {
        (float(x), float(y)): heat[0]["z"][j][i]
        for i, x in enumerate(heat[0]["x"])
        for j, y in enumerate(heat[0]["y"])
    }
    for r in rows:
        assert z[(r["overrides"]["trade.sl_atr_mult"], r["overrides"]["trade.tp_atr_mult"])] == r["total_pnl"]
    assert [float(x) for x in heat[1]["x"]] == [best["overrides"]["trade.sl_atr_mult"]]
    assert page.eval_on_selector_all("#top tbody tr", "rs => rs.map(r => r.dataset.id)")[0] == best["id"]
    assert page.get_attribute("#top tbody tr.chosen", "data-id") == best["id"]
    link = page.get_attribute(f"#top tr[data-id='{best['id']}'] a", "href")
    assert link == replay.name
    others = page.eval_on_selector_all("#top tbody tr:not(.chosen) code", "cs => cs.length")
    assert others == 8  # no report yet: the command that makes it
    page.close()


def test_replay_that_cannot_match_is_refused(sweep: tuple[Path, Path, list[dict[str, Any]]], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out, db, rows = sweep
    html = tmp_path / "s.html"
    # a config other than the sweep's (a non-axis key changed): the config_id differs, nothing is written
    import yaml

    doc = yaml.safe_load(CONFIG.read_text())
    doc.setdefault("global", {}).setdefault("trade", {})["breakeven_buffer_atr"] = 0.123
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(doc))
    rc = sweep_report([str(out), "--html", str(html), "--replay", rows[0]["id"], "--config", str(other), "--",
                       "--candles-db", str(db), "--interval", "5m"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert (
        len(err) == 1 and "is not the sweep row's" in err[0] and err[0].startswith("sweep_report: --replay")
    )
    assert not (tmp_path / f"replay_{rows[0]['id']}.html").exists() and not html.exists()
    rc = sweep_report([str(out), "--html", str(html), "--replay", "sweep_999999", "--config", str(CONFIG), "--",
                       "--candles-db", str(db)])  # fmt: skip
    assert rc == 2
    assert (
        capsys.readouterr().err.strip()
        == "sweep_report: --replay sweep_999999: no such combo id in the sweep"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "overrides": {}}\nnot json\n')
    assert sweep_report([str(bad), "--html", str(html)]) == 2
    assert capsys.readouterr().err.strip() == f"sweep_report: {bad}:2: not a JSON line (Expecting value)"
