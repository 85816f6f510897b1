"""Report pages in the monitor (monitor/reports.py): a real `ai-quant-bt replay --html` report in
`<data dir>/reports/` is listed at /api/reports and served at /api/reports/replay/<name>, read-only
(405 on every write method), behind the token, only for plain report files in that folder; the page
opens through the monitor in headless Chromium with no console error and no other request, and the
monitor's main page links it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.env import HostPort, Secret
from monitor.app import ROUTES, SECURITY_HEADERS, make_app
from monitor.reports import REPORT_CSP
from monitor.settings import Settings
from tests.backtest.bt_helpers import BIN, HL, hl_frames, run_bt, write_candles_db
from tests.monitor.conftest import TOKEN, Monitor, PaperRun
from tools.bench_reports import open_report

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.skipif(
        not BIN.exists(), reason="ai-quant-bt not built (cargo build --release -p aiq-backtest)"
    ),
    pytest.mark.skipif(not HL.exists(), reason="real data not found (set AI_QUANT_SHARED_DATA)"),
]
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose reports/ holds one real replay report (BTC, ETH: 6,000 real 5m bars each)
    and things that must not be served: a page without the marker, a symlink, a dot file, a file
    in a sub-folder."""
    root = tmp_path_factory.mktemp("monitor_reports")
    db = write_candles_db(root / "candles_5m.db", hl_frames(["BTC", "ETH"], n=6000), "5m")
    reports = root / "data" / "reports"
    reports.mkdir(parents=True)
    run_bt("replay", "--config", ROOT / "config" / "strategy_overrides.example.yaml", "--candles-db", db,
           "--interval", "5m", "--output", root / "r.json", "--html", reports / "replay_btc_eth.html", "--quiet")  # fmt: skip
    (reports / "notes.html").write_text("<html><body>not a report</body></html>")
    (reports / "link.html").symlink_to(reports / "replay_btc_eth.html")
    shutil.copy(reports / "replay_btc_eth.html", reports / ".hidden.html")
    (reports / "sub").mkdir()
    shutil.copy(reports / "replay_btc_eth.html", reports / "sub" / "nested.html")
    return root / "data"


def settings(data_dir: Path, **kw: Any) -> Settings:
    s = Settings(
        bind=HostPort("127.0.0.1", 61010), token=None,
        dbs={"paper": data_dir / "trading_engine.db", "live": data_dir / "trading_engine_live.db"},
        oms_db=data_dir / "oms_live.db", candles_dir=data_dir / "candles_dbs", sidecar_sock=data_dir / "no.sock",
        default_mode="paper", default_interval="5m",
    )  # fmt: skip
    return replace(s, **kw)


@asynccontextmanager
async def client(s: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    c = TestClient(TestServer(make_app(s, start_mids=False), host="127.0.0.1"))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def test_lists_and_serves_only_report_pages(data_dir: Path) -> None:
    page = data_dir / "reports" / "replay_btc_eth.html"
    async with client(settings(data_dir)) as c:
        r = await c.get("/api/reports")
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        listed = (await r.json())["reports"]
        assert [(x["kind"], x["name"], x["url"], x["bytes"]) for x in listed] == [
            ("replay", "replay_btc_eth.html", "/api/reports/replay/replay_btc_eth.html", page.stat().st_size)
        ]
        r = await c.get("/api/reports/replay/replay_btc_eth.html")
        assert r.status == 200 and r.content_type == "text/html"
        assert await r.read() == page.read_bytes()
        assert r.headers["Content-Security-Policy"] == REPORT_CSP
        for k in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
            assert r.headers[k] == SECURITY_HEADERS[k]
        # the rest of the monitor keeps its own CSP
        assert (await c.get("/")).headers["Content-Security-Policy"] == SECURITY_HEADERS[
            "Content-Security-Policy"
        ]
        for path in (
            "/api/reports/replay/notes.html",  # no generator marker
            "/api/reports/replay/link.html",  # a symlink
            "/api/reports/replay/.hidden.html",
            "/api/reports/replay/sub%2Fnested.html",
            "/api/reports/replay/..%2Ftrading_engine.db",
            "/api/reports/sweep/replay_btc_eth.html",  # wrong kind
            "/api/reports/replay/missing.html",
        ):
            r = await c.get(path)
            assert r.status == 404, path
            assert "text/html" not in r.headers.get("Content-Type", "")


async def test_report_routes_are_read_only(data_dir: Path) -> None:
    assert "/api/reports" in ROUTES
    before = {p.name: p.stat().st_mtime_ns for p in (data_dir / "reports").iterdir()}
    async with client(settings(data_dir)) as c:
        for path in ("/api/reports", "/api/reports/replay/replay_btc_eth.html", "/api/reports/replay/x.html"):
            for method in WRITE_METHODS:
                r = await c.request(method, path, data=b"{}" if method in ("POST", "PUT", "PATCH") else None)
                assert r.status == 405, (method, path)
                assert r.headers["Allow"] == "GET, HEAD"
            assert (await c.head(path)).status in (200, 404)
    assert {p.name: p.stat().st_mtime_ns for p in (data_dir / "reports").iterdir()} == before


async def test_report_routes_need_the_token(data_dir: Path) -> None:
    async with client(settings(data_dir, token=Secret(TOKEN))) as c:
        for path in ("/api/reports", "/api/reports/replay/replay_btc_eth.html"):
            assert (await c.get(path)).status == 401, path
            r = await c.get(path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
            assert r.status == 401, path
            assert (await c.get(path, headers={"Authorization": "Bearer " + TOKEN})).status == 200, path
            assert (await c.get(path, headers={"Cookie": f"aiq_monitor_token={TOKEN}"})).status == 200, path


def test_bind_refusal_covers_the_report_pages(data_dir: Path) -> None:
    from monitor.settings import BindRefused

    with pytest.raises(BindRefused):
        settings(data_dir, bind=HostPort("0.0.0.0", 61010)).check_bind()


@pytest.mark.slow
def test_the_monitor_links_and_shows_the_report(data_dir: Path, browser: Any, tmp_path: Path) -> None:
    run = PaperRun(root=data_dir, db=data_dir / "trading_engine.db", config=ROOT / "config" / "strategy_overrides.example.yaml",
                   candles_dir=data_dir / "candles_dbs", sock=None, venue_url="")  # fmt: skip
    mon = Monitor(run, tmp_path, AI_QUANT_MONITOR_TOKEN=TOKEN)
    try:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(f"{mon.url}/#token={TOKEN}")
        link = page.wait_for_selector("#reports tr[data-kind='replay'] a", timeout=20_000)
        href = link.get_attribute("href")
        assert href == "/api/reports/replay/replay_btc_eth.html"
        page.screenshot(path=str(tmp_path / "monitor_reports.png"), full_page=True)
        # the report through the monitor: authorised by the page's cookie, drawn, nothing fetched
        cookies = ctx.cookies()
        assert any(c["name"] == "aiq_monitor_token" for c in cookies)
        rp, opened = open_report(ctx, mon.url + href, shot=tmp_path / "monitor_replay_report.png")
        assert opened.errors == [] and opened.requests == []
        drawn = rp.eval_on_selector_all("[data-chart]", "els => els.map(e => e.dataset.drawn)")
        assert drawn == ["1"] * 10
        ctx.close()
    finally:
        mon.stop()
    assert os.path.exists(tmp_path / "monitor_replay_report.png")
