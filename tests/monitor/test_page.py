"""The page in real headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright), against
``python -m monitor`` serving the DB of a real paper run. Screenshots go to .build/artifacts/monitor/."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.heartbeat import Heartbeat
from engine.trading_db import TradingDB
from tests.daemon_harness import wait_for
from tests.monitor.conftest import ARTIFACTS, TOKEN, Monitor, PaperRun, db_copy

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    exe = str(CHROMIUM) if CHROMIUM.exists() else str(shutil.which("chromium"))
    with sync_api.sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=exe, args=[*args, "--disable-gpu"], headless=True)
        yield b
        b.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_page_shows_the_paper_run(paper_run: PaperRun, monitor_factory: Any, browser: Any) -> None:
    mon: Monitor = monitor_factory(paper_run)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(mon.url + "/?mode=paper")

    # open positions, exactly those of position_state
    symbols = [r[0] for r in q(paper_run.db, "SELECT symbol FROM position_state ORDER BY symbol")]
    page.wait_for_selector("#positions tbody tr[data-symbol]", timeout=TIMEOUT_MS)
    shown = page.eval_on_selector_all(
        "#positions tbody tr[data-symbol]", "rs => rs.map(r => r.dataset.symbol)"
    )
    assert shown == symbols
    first = page.locator(f'#positions tr[data-symbol="{symbols[0]}"] td').all_inner_texts()
    side = q(paper_run.db, f"SELECT side FROM position_state WHERE symbol = '{symbols[0]}'")[0][0]
    assert first[1] == side
    # recent trades, newest first, as in the trades table
    ids = [r[0] for r in q(paper_run.db, "SELECT id FROM trades ORDER BY id DESC LIMIT 25")]
    page.wait_for_selector("#trades tbody tr[data-trade-id]", timeout=TIMEOUT_MS)
    assert page.eval_on_selector_all("#trades tbody tr", "rs => rs.map(r => +r.dataset.tradeId)") == ids
    # pills, kill banner, account cards, charts
    assert page.inner_text("#pill-db") == "DB ok"
    assert page.is_hidden("#kill-banner")  # the run ended with the kill switch off
    assert page.inner_text("#equity").startswith("$")
    page.wait_for_selector("#equity-chart path", timeout=TIMEOUT_MS)
    assert page.get_attribute("#mode-paper", "aria-pressed") == "true"
    if paper_run.sock is not None:
        page.wait_for_selector("#candle-chart rect", timeout=TIMEOUT_MS)
        assert page.locator("#candle-chart rect").count() >= 50
    # decisions timeline: select one, its gate table appears
    page.wait_for_selector("#decisions li[data-i]", timeout=TIMEOUT_MS)
    last = page.locator("#decisions li[data-i]").last
    symbol, event = last.locator("b").first.inner_text(), last.inner_text().split()[3]
    last.click()
    assert page.inner_text("#gate-title").startswith(f"{symbol} {event} ")
    assert last.get_attribute("aria-selected") == "true"
    page.wait_for_selector("#gates tbody tr td", timeout=TIMEOUT_MS)
    gates = page.locator("#gates tbody tr td:first-child").all_inner_texts()
    assert "adx" in gates and "risk" in gates
    # no request left this server (no CDN), and the page raised no error
    assert all(u.startswith(mon.url) for u in requests), [u for u in requests if not u.startswith(mon.url)]
    assert errors == []
    shot(page, "monitor-laptop.png")
    # a phone: one column, nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "monitor-phone.png")
    # the mode toggle: live has no DB in this run, which the page says (and the OMS panel appears)
    page.click("#mode-live")
    page.wait_for_selector("#oms-panel:not([hidden])", timeout=TIMEOUT_MS)
    assert page.get_attribute("#mode-live", "aria-pressed") == "true"
    assert any(
        "trading_engine_live.db does not exist" in w for w in page.locator("#warnings li").all_inner_texts()
    )
    assert "mode=live" in page.url
    page.close()


def test_mids_update_via_sse(paper_run: PaperRun, monitor_factory: Any, browser: Any) -> None:
    if paper_run.sock is None:
        pytest.skip("target/release/ai-quant-sidecar is not built: no live mids")
    mon: Monitor = monitor_factory(paper_run)
    page = browser.new_page()
    page.goto(mon.url + "/")
    # (wait_for_function would need eval, which the page's Content-Security-Policy forbids: poll)
    seq0 = wait_for(lambda: _seq(page), TIMEOUT_MS / 1000, "a first SSE mids event")
    wait_for(lambda: (_seq(page) or 0) > seq0, TIMEOUT_MS / 1000, "a newer SSE mids event")
    assert page.inner_text("#pill-mids") == "mids live"
    btc = page.inner_text('#mids tr[data-symbol="BTC"] td.mid')
    assert float(btc) > 0
    page.wait_for_selector('#mids tr[data-symbol="BTC"] svg.spark path', timeout=TIMEOUT_MS)
    shot(page, "monitor-mids.png")
    page.close()


def _seq(page: Any) -> int | None:
    m = re.fullmatch(r"seq (\d+)", page.inner_text("#mids-age"))
    return int(m.group(1)) if m else None


def test_missing_db_shows_the_warning(
    paper_run: PaperRun, monitor_factory: Any, browser: Any, tmp_path: Path
) -> None:
    mon: Monitor = monitor_factory(paper_run, "--paper-db", str(tmp_path / "absent" / "trading_engine.db"))
    page = browser.new_page()
    page.goto(mon.url + "/")
    page.wait_for_selector("#warnings li", timeout=TIMEOUT_MS)
    warnings = page.locator("#warnings li").all_inner_texts()
    assert any("absent/trading_engine.db does not exist" in w for w in warnings), warnings
    assert page.inner_text("#pill-db") == "DB missing"
    assert "bad" in (page.get_attribute("#pill-db", "class") or "")
    assert page.inner_text("#kill-banner").startswith("Kill-switch state unknown")
    shot(page, "monitor-missing-db.png")
    page.close()


def test_kill_switch_banner_and_token(
    paper_run: PaperRun, monitor_factory: Any, browser: Any, tmp_path: Path
) -> None:
    path = db_copy(paper_run, tmp_path / "killed")
    db = TradingDB(path)
    db.log(Heartbeat("paper", 7, 0, 3, 0, 0.01, "close_only", "kill file", "", "cfg", "0.1.0").line())
    db.close()
    mon: Monitor = monitor_factory(paper_run, "--paper-db", str(path), AI_QUANT_MONITOR_TOKEN=TOKEN)
    page = browser.new_page()
    page.goto(mon.url + "/")
    page.wait_for_selector("#token-form:not([hidden])", timeout=TIMEOUT_MS)  # no token yet: it asks
    page.close()
    page = browser.new_page()
    page.goto(mon.url + "/#token=" + TOKEN)  # a fragment never reaches the server or its logs
    page.wait_for_selector("#kill-banner:not([hidden])", timeout=TIMEOUT_MS)
    assert "KILL SWITCH: CLOSE ONLY" in page.inner_text("#kill-banner")
    assert page.get_attribute("#kill-banner", "data-state") == "close_only"
    assert "#token" not in page.url
    shot(page, "monitor-kill-switch.png")
    page.close()
