"""tools/factory_report.py over a real smoke factory run (tools/factory_run.py on the bundled
Hyperliquid bars): the page opens in headless Chromium with no console error and no request, lists
every candidate with every gate (value, threshold, pass/FAIL/skipped) as in report.json, draws DSR
and PBO against their thresholds and the walk-forward chart, and, from the registry (read-only),
shows a paper candidate's gate progress from a real paper trading DB and a live candidate's ramp
stage. The monitor lists the page."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.trading_db import TradingDB
from monitor.reports import list_reports
from strategy.factory.backtester import find_binary
from strategy.factory.pipeline import default_data_src
from strategy.factory.thresholds import THRESHOLDS
from tools.bench_reports import open_report
from tools.factory_report import main as factory_report

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def factory_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        find_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    if not (default_data_src() / "hyperliquid" / "futures").is_dir():
        pytest.skip("bundled data not found (AI_QUANT_SHARED_DATA)")
    root = tmp_path_factory.mktemp("factory_report")
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "factory_run.py"), "--profile", "smoke", "--run-id", "rep",
         "--artifacts-root", str(root), "--threads", "2"],
        capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    (run_dir,) = list(root.glob("*/run_rep"))
    return run_dir / "report.json", root / "registry" / "registry.sqlite"


def test_factory_report_page(factory_run: tuple[Path, Path], browser: Any, tmp_path: Path) -> None:
    report_json, registry = factory_run
    rep = json.loads(report_json.read_text())
    cands = rep["candidates"]
    assert len(cands) >= 2
    # a registry copy where the first candidate is in paper and the second is live at ramp stage 1
    reg = tmp_path / "registry.sqlite"
    shutil.copy(registry, reg)
    now = time.time()
    con = sqlite3.connect(reg)
    a, b = cands[0]["config_id"], cands[1]["config_id"]
    con.execute("INSERT INTO transitions(config_hash, from_state, to_state, trigger, timestamp, reason) VALUES (?,?,?,?,?,?)",
                (a, "validated", "paper", "paper_deploy", now - 7200, "test: deployed to paper"))  # fmt: skip
    con.execute("INSERT INTO transitions(config_hash, from_state, to_state, trigger, timestamp, reason) VALUES (?,?,?,?,?,?)",
                (b, "paper", "live_small", "live_ramp", now - 3600, "test: ramp"))  # fmt: skip
    con.execute("INSERT INTO deployments(timestamp, action, config_hash, target, mode, size_multiplier, ramp_stage, reason)"
                " VALUES (?,?,?,?,?,?,?,?)", (now - 3600, "ramp", b, "live.yaml", "live", 0.5, 1, "test"))  # fmt: skip
    con.commit()
    con.close()
    paper_db = tmp_path / "paper" / "trading_engine.db"
    TradingDB(paper_db).conn.close()  # a real, empty paper trading DB: nothing closed yet
    reports = tmp_path / "data" / "reports"
    reports.mkdir(parents=True)
    html = reports / "factory_rep.html"
    before = reg.read_bytes()
    rc = factory_report(
        [str(report_json), "--html", str(html), "--registry", str(reg), "--paper-db", str(paper_db)]
    )
    assert rc == 0
    assert reg.read_bytes() == before  # the registry is only read
    assert [(r.kind, r.name) for r in list_reports(tmp_path / "data")] == [("factory", html.name)]

    page, opened = open_report(browser, html.as_uri(), shot=tmp_path / "factory_report.png")
    print(f"screenshot: {tmp_path / 'factory_report.png'}")
    assert opened.errors == [] and opened.requests == []
    assert page.eval_on_selector_all("[data-chart]", "els => els.map(e => e.dataset.drawn)") == ["1", "1"]
    assert page.eval_on_selector_all("#candidates tbody tr", "rs => rs.map(r => r.dataset.configId)") == [
        c["config_id"] for c in cands
    ]
    # every gate of every candidate, with its value, threshold and result
    for c in cands:
        cells = page.eval_on_selector_all(
            f"table.gates[data-config-id='{c['config_id']}'] tbody tr",
            "rs => rs.map(r => [...r.cells].map(td => td.textContent))",
        )
        assert [x[0] for x in cells] == [ch["name"] for ch in c["checks"]]
        want = [
            "skipped" if not ch["enabled"] else ("pass" if ch["passed"] else "FAIL") for ch in c["checks"]
        ]
        assert [x[3] for x in cells] == want
        assert [x[4] for x in cells] == [ch["detail"] for ch in c["checks"]]
    dsr = page.evaluate("document.getElementById('chart-dsr-pbo').data.map(d => d.y)")
    assert dsr == [[c["metrics"]["dsr"] for c in cands], [c["metrics"]["pbo"] for c in cands]]
    lines = page.evaluate("document.getElementById('chart-dsr-pbo').layout.shapes.map(s => s.y0)")
    assert lines == [THRESHOLDS.dsr_min, THRESHOLDS.pbo_max]
    # paper gates' progress of the paper candidate, the ramp stage of the live one
    paper = page.eval_on_selector_all(
        f"div[data-config-id='{a}'] table.paper-gates tbody tr",
        "rs => rs.map(r => [...r.cells].map(td => td.textContent))",
    )
    assert paper[0][:4] == [
        "closed trades (gate 1, or hours)",
        "0",
        str(THRESHOLDS.paper_min_closed_trades),
        "FAIL",
    ]
    assert (
        paper[1][0].startswith("hours in paper") and 1.9 < float(paper[1][1]) < 2.5 and paper[1][3] == "FAIL"
    )
    ramp = page.inner_text(f"div[data-config-id='{b}'] p.ramp")
    assert ramp.startswith(f"Live ramp: stage 2 of {len(THRESHOLDS.ramp_stages)} (size 50%)")
    page.close()


def test_factory_report_operator_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "report.json"
    bad.write_text("{}")
    assert factory_report([str(bad), "--html", str(tmp_path / "x.html")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"factory_report: {bad}: not a factory run report (no `run` / `candidates`)"
    )
    bad.write_text('{"run": {}, "candidates": []}')
    missing = tmp_path / "nope.sqlite"
    assert factory_report([str(bad), "--html", str(tmp_path / "x.html"), "--registry", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"factory_report: {missing}: no such file"
    assert not (tmp_path / "x.html").exists()


def test_factory_report_shows_the_walk_forward_folds(browser: Any, tmp_path: Path) -> None:
    """A real smoke-tpe run (re-optimised walk-forward): the page charts and lists every fold."""
    import dataclasses

    from strategy.factory.pipeline import PROFILES, RunOptions, run_factory

    try:
        find_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    if not (default_data_src() / "hyperliquid" / "futures").is_dir():
        pytest.skip("bundled data not found (AI_QUANT_SHARED_DATA)")
    prof = dataclasses.replace(PROFILES["smoke-tpe"], tpe_trials=16, reopt_trials=6, per_lane=1)
    run_factory(
        RunOptions(prof, "tpe", tmp_path / "run", tmp_path / "reg.sqlite", default_data_src(), threads=2)
    )
    html = tmp_path / "factory_tpe.html"
    assert factory_report([str(tmp_path / "run" / "report.json"), "--html", str(html)]) == 0
    folds = json.loads((tmp_path / "run" / "report.json").read_text())["reopt_walk_forward"]["folds"]
    page, opened = open_report(browser, html.as_uri(), shot=tmp_path / "factory_tpe.png")
    assert opened.errors == [] and opened.requests == []
    wf = page.evaluate("document.getElementById('chart-wf').data.map(d => d.y)")
    assert wf == [[f["is_pnl"] for f in folds], [f["oos_pnl"] for f in folds]]
    rows = page.eval_on_selector_all("#wf-folds tbody tr", "rs => rs.map(r => r.cells[3].textContent)")
    assert rows == [f["config_id"][:12] for f in folds]
    assert "No registry given" in page.inner_text("#lifecycle")
    page.close()


def test_the_monitor_renders_factory_runs_under_the_data_dir(
    factory_run: tuple[Path, Path], browser: Any, tmp_path: Path
) -> None:
    """`<data dir>/artifacts/<day>/run_<id>/` (where the factory service writes) is listed and its
    report and sweep pages are rendered read-only; a symlinked run is neither listed nor served."""
    from aiohttp.test_utils import TestClient, TestServer

    from engine.env import HostPort
    from monitor.app import make_app
    from monitor.reports import REPORT_CSP
    from monitor.settings import Settings

    report_json, registry = factory_run
    data = tmp_path / "data"
    shutil.copytree(registry.parent.parent, data / "artifacts")
    day = report_json.parent.parent.name
    (data / "artifacts" / day / "run_evil").symlink_to(report_json.parent)
    # SQLite's read-only open of a WAL DB may add its -shm/-wal side files; the files themselves stay
    files = lambda: sorted(  # noqa: E731
        (p, p.stat().st_mtime_ns, p.stat().st_size)
        for p in (data / "artifacts").rglob("*")
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    )
    before = files()
    s = Settings(
        bind=HostPort("127.0.0.1", 61010), token=None,
        dbs={"paper": data / "trading_engine.db", "live": data / "trading_engine_live.db"},
        oms_db=data / "oms_live.db", candles_dir=data / "candles_dbs", sidecar_sock=data / "no.sock",
        default_mode="paper", default_interval="5m",
    )  # fmt: skip
    name = f"{day}--run_rep"

    async def serve() -> dict[str, bytes]:
        c = TestClient(TestServer(make_app(s, start_mids=False), host="127.0.0.1"))
        await c.start_server()
        try:
            listed = (await (await c.get("/api/reports")).json())["reports"]
            assert [(x["kind"], x["name"]) for x in listed] == [
                ("factory-run", name),
                ("factory-sweep", name),
            ]
            pages = {}
            for kind in ("factory-run", "factory-sweep"):
                r = await c.get(f"/api/reports/{kind}/{name}")
                assert r.status == 200 and r.headers["Content-Security-Policy"] == REPORT_CSP
                pages[kind] = await r.read()
                assert (await c.post(f"/api/reports/{kind}/{name}")).status == 405
            for bad in (f"{day}--run_evil", "2020-01-01--run_rep", f"{day}--..", "x"):
                assert (await c.get(f"/api/reports/factory-run/{bad}")).status == 404, bad
            return pages
        finally:
            await c.close()

    # the sync Playwright fixture owns this thread's event loop: serve from another thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pages = pool.submit(asyncio.run, serve()).result(timeout=120)
    assert files() == before
    for kind, body in pages.items():
        f = tmp_path / f"{kind}.html"
        f.write_bytes(body)
        page, opened = open_report(browser, f.as_uri(), shot=tmp_path / f"{kind}.png")
        assert opened.errors == [] and opened.requests == []
        assert set(page.eval_on_selector_all("[data-chart]", "els => els.map(e => e.dataset.drawn)")) == {"1"}
        page.close()
