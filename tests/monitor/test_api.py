"""The monitor's JSON API, in process, over the DB of a real paper run (see conftest.py)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.env import HostPort, Secret, read_env
from engine.heartbeat import Heartbeat
from engine.oms import LiveOms
from engine.trading_db import TradingDB
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.model import Order
from monitor.app import ROUTES, make_app
from monitor.settings import BindRefused, Settings, from_env
from tests.monitor.conftest import ROOT, TOKEN, PaperRun, db_copy, free_port

pytestmark = pytest.mark.slow


def settings_for(run: PaperRun, db: Path | None = None, **kw: Any) -> Settings:
    env = read_env(
        {
            "AI_QUANT_DATA_DIR": str((db or run.db).parent),
            "AI_QUANT_CANDLES_DIR": str(run.candles_dir),
            "AI_QUANT_WS_SIDECAR_SOCK": str(run.root / "nothing-here.sock"),
            "AI_QUANT_STRATEGY_YAML": str(run.config),
        }
    )
    return replace(from_env(env), **kw)


@asynccontextmanager
async def client(settings: Settings, *, start_mids: bool = False) -> AsyncIterator[TestClient[Any, Any]]:
    c = TestClient(TestServer(make_app(settings, start_mids=start_mids), host="127.0.0.1"))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


def q(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# ---- read-only: 405 everywhere -------------------------------------------------------------------


async def test_every_non_get_method_is_405_on_every_route(paper_run: PaperRun) -> None:
    paths = [*ROUTES, "/static/app.js", "/static/index.html", "/no/such/route", "/api/decisions/1"]
    before = (paper_run.db.stat().st_mtime_ns, paper_run.db.stat().st_size)
    async with client(settings_for(paper_run)) as c:
        for path in paths:
            for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"):
                body = b'{"action":"close_all"}' if method in ("POST", "PUT", "PATCH", "DELETE") else None
                r = await c.request(method, path, data=body, headers={"Connection": "close"})
                assert r.status == 405, (method, path, r.status)
                assert r.headers["Allow"] == "GET, HEAD"
                assert "read-only" in (await r.json())["error"]
        for path in ROUTES:  # and GET (HEAD) still works on each of them
            if path != "/api/mids/stream":
                r = await c.get(path, params={"symbol": "BTC"} if path == "/api/candles" else None)
                assert r.status == 200, path
            r = await asyncio.wait_for(c.head(path, params={"symbol": "BTC"}), 10)
            assert r.status == 200, path
    assert (paper_run.db.stat().st_mtime_ns, paper_run.db.stat().st_size) == before


async def test_the_db_is_opened_read_only(paper_run: PaperRun) -> None:
    from monitor.db import ReadOnlyDB

    db = ReadOnlyDB(paper_run.db, "paper")
    conn = db._connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM trades")
    finally:
        conn.close()


# ---- auth and bind -------------------------------------------------------------------------------


async def test_bearer_token_guards_data_routes_but_not_the_static_page(paper_run: PaperRun) -> None:
    s = settings_for(paper_run, token=Secret(TOKEN))
    async with client(s) as c:
        for path in ("/api/snapshot", "/api/trades", "/api/mids", "/metrics", "/api/health"):
            r = await c.get(path)
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path
            r = await c.get(path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
            assert r.status == 401, path
            r = await c.get(path, headers={"Authorization": "Bearer " + TOKEN})
            assert r.status == 200, path
        r = await c.get("/api/snapshot", headers={"Cookie": f"aiq_monitor_token={TOKEN}"})
        assert r.status == 200
        r = await c.get("/api/snapshot", headers={"Cookie": "aiq_monitor_token=nope"})
        assert r.status == 401
        assert (await c.get("/")).status == 200
        assert (await c.get("/static/app.js")).status == 200


def test_refuses_a_non_loopback_bind_without_a_token(paper_run: PaperRun) -> None:
    s = settings_for(paper_run, bind=HostPort("0.0.0.0", 61010))
    with pytest.raises(BindRefused, match="without AI_QUANT_MONITOR_TOKEN"):
        s.check_bind()
    replace(s, token=Secret(TOKEN)).check_bind()  # with a token it may listen beyond loopback
    with pytest.raises(BindRefused, match="shorter than 16"):
        replace(s, token=Secret("short")).check_bind()
    settings_for(paper_run).check_bind()  # loopback without a token is fine
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "AI_QUANT_DATA_DIR": str(paper_run.db.parent)}
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "--bind", f"0.0.0.0:{port}"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "refusing to bind 0.0.0.0" in r.stderr, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "--bind", "localhost"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "HOST:PORT" in r.stderr


# ---- content equals the DB ----------------------------------------------------------------------


async def test_snapshot_matches_the_paper_run_db(paper_run: PaperRun) -> None:
    db = paper_run.db
    async with client(settings_for(paper_run)) as c:
        s = await (await c.get("/api/snapshot", params={"mode": "paper"})).json()
    assert s["mode"] == "paper" and s["db"]["ok"]
    assert [p["symbol"] for p in s["open_positions"]] == [
        r[0] for r in q(db, "SELECT symbol FROM position_state ORDER BY symbol")
    ]
    for p in s["open_positions"]:
        size, entry, side = q(
            db, "SELECT size, entry_price, side FROM position_state WHERE symbol=?", (p["symbol"],)
        )[0]
        assert (p["size"], p["entry_price"], p["side"]) == (size, entry, side)
        assert p["mid"] is not None  # the last candle close stands in while no sidecar answers
        sign = 1 if side == "long" else -1
        assert p["unrealized_pnl"] == pytest.approx(sign * (p["mid"] - entry) * size)
    assert [t["id"] for t in s["recent_trades"]] == [
        r[0] for r in q(db, "SELECT id FROM trades ORDER BY id DESC LIMIT 25")
    ]
    kv = dict(q(db, "SELECT key, value FROM kv"))
    assert s["balances"]["cash"] == json.loads(kv["paper_account"])["balance"]
    assert s["balances"]["equity"] == pytest.approx(s["balances"]["cash"] + s["balances"]["unrealized_pnl"])
    last_hb = q(db, "SELECT message FROM runtime_logs ORDER BY id DESC LIMIT 1")[0][0]
    assert s["kill"]["state"] == "off" and "kill=off" in last_hb
    assert s["config_id"] and s["config_id"] in last_hb
    assert s["symbols"] == ["BTC", "ETH", "SOL"]
    assert s["heartbeat"]["present"] and s["heartbeat"]["fields"]["loops"].isdigit()
    assert s["drawdown"]["max_pct"] is not None and s["drawdown"]["max_pct"] <= 0
    # the daemon has stopped and no sidecar answers here: both are warnings, not failures
    assert any("WS sidecar down" in w for w in s["warnings"])
    assert s["daily"]["trades"] >= 1


async def test_trades_decisions_equity_candles_oms(paper_run: PaperRun) -> None:
    db = paper_run.db
    async with client(settings_for(paper_run)) as c:
        t = await (await c.get("/api/trades", params={"limit": "2"})).json()
        assert [x["id"] for x in t["trades"]] == [
            r[0] for r in q(db, "SELECT id FROM trades ORDER BY id DESC LIMIT 2")
        ]
        d = await (await c.get("/api/decisions", params={"status": "executed"})).json()
        executed = q(db, "SELECT id, trade_id FROM decision_events WHERE status='executed'")
        assert {x["id"] for x in d["decisions"]} == {r[0] for r in executed}
        for x in d["decisions"]:
            gates = {g["name"]: g for g in x["gates"]}
            assert gates["risk"]["passed"] is True  # the risk manager's verdict behind the fill
            if x["action"] == "OPEN":
                adx = gates["adx"]
                assert adx["op"] == ">=" and adx["passed"] is True and adx["value"] >= adx["threshold"]
        e = await (await c.get("/api/equity")).json()
        pts = e["equity"]["points"]
        assert len(pts) >= 2 and all(p["drawdown_pct"] <= 0 for p in pts)
        assert pts == sorted(pts, key=lambda p: p["ts_ms"])
        sym = q(db, "SELECT symbol FROM trades WHERE action='OPEN' ORDER BY id DESC LIMIT 1")[0][0]
        cd = await (
            await c.get("/api/candles", params={"symbol": sym, "interval": "5m", "limit": "50"})
        ).json()
        if paper_run.sock is not None:
            assert len(cd["candles"]) == 50 and cd["candles"] == sorted(cd["candles"])
        o = await (await c.get("/api/oms", params={"mode": "live"})).json()
        assert any("oms_live.db does not exist" in w for w in o["warnings"]) and o["oms"] is None


async def test_oms_tables_of_a_live_db(paper_run: PaperRun, tmp_path: Path) -> None:
    from decimal import Decimal

    live = tmp_path / "trading_engine_live.db"
    env = read_env({"AI_QUANT_MODE": "live", "AI_QUANT_DB_PATH": str(live)})
    settings = from_env(env, paper_db=paper_run.db)
    assert settings.oms_db == tmp_path / "oms_live.db"  # where python -m daemon keeps it
    oms = LiveOms(settings.oms_db, client_ids=HYPERLIQUID_CLIENT_IDS)
    intent, _ = oms.create_intent(
        Order("BTC", "open", "long", Decimal("0.01"), 1_700_000_000_000, reason_code="t")
    )
    oms.close()
    async with client(settings) as c:
        o = await (await c.get("/api/oms")).json()  # AI_QUANT_MODE=live: live is the default mode
        paper = await (await c.get("/api/oms", params={"mode": "paper"})).json()
    assert o["mode"] == "live" and o["warnings"] == []
    assert [i["intent_id"] for i in o["oms"]["intents"]] == [intent.intent_id]
    assert o["oms"]["intents"][0]["status"] == "NEW" and o["oms"]["fills"] == []
    assert paper["oms"] is None and "paper mode has no OMS" in paper["warnings"][0]
    # The live daemon commits its account (live/execution.py LiveExecution.to_json: the venue's
    # account value and the OMS path) in kv: equity comes from there, /api/oms follows the path.
    moved = tmp_path / "elsewhere" / "oms.db"
    moved.parent.mkdir()
    settings.oms_db.rename(moved)
    db = TradingDB(live, mode="live")
    db.put("live_account", json.dumps({"account_value": "1234.5", "positions": {}, "oms": str(moved)}))
    db.close()
    async with client(settings) as c:
        snap = await (await c.get("/api/snapshot")).json()
        o = await (await c.get("/api/oms")).json()
    assert snap["mode"] == "live" and snap["balances"]["equity"] == 1234.5
    assert o["warnings"] == [] and [i["intent_id"] for i in o["oms"]["intents"]] == [intent.intent_id]


async def test_oms_is_only_read_from_the_oms_db(paper_run: PaperRun, tmp_path: Path) -> None:
    """OMS tables inside a live trading DB (the layout of the removed ``python -m live.trader``) are
    not read: without the OMS DB /api/oms says so and shows nothing."""
    from decimal import Decimal

    live = tmp_path / "trading_engine_live.db"
    env = read_env({"AI_QUANT_MODE": "live", "AI_QUANT_DB_PATH": str(live)})
    settings = from_env(env, paper_db=paper_run.db)
    # OMS tables in the trading DB itself, no oms_live.db beside it
    oms = LiveOms(live, client_ids=HYPERLIQUID_CLIENT_IDS)
    oms.create_intent(Order("BTC", "open", "long", Decimal("0.01"), 1_700_000_000_000, reason_code="t"))
    oms.close()
    assert not settings.oms_db.exists()
    async with client(settings) as c:
        o = await (await c.get("/api/oms")).json()
    assert o["oms"] is None and any("oms_live.db does not exist" in w for w in o["warnings"])


async def test_bad_parameters_are_400_with_a_reason(paper_run: PaperRun) -> None:
    async with client(settings_for(paper_run)) as c:
        for path, params, words in (
            ("/api/snapshot", {"mode": "backtest"}, "mode must be paper or live"),
            ("/api/trades", {"limit": "lots"}, "limit must be a whole number"),
            ("/api/trades", {"limit": "0"}, "limit must be between"),
            ("/api/candles", {}, "symbol is required"),
            ("/api/candles", {"symbol": "../etc"}, "not a symbol name"),
            ("/api/candles", {"symbol": "BTC", "interval": "../../x"}, "not an interval"),
            ("/api/decisions", {"status": "x' OR 1=1"}, "status must be a word"),
        ):
            r = await c.get(path, params=params)
            assert r.status == 400, (path, params)
            assert words in (await r.json())["error"]


# ---- degraded inputs: warnings, never a crash ----------------------------------------------------


async def test_missing_db_is_a_warning(paper_run: PaperRun, tmp_path: Path) -> None:
    s = replace(
        settings_for(paper_run), dbs={"paper": tmp_path / "nope.db", "live": tmp_path / "nope_live.db"}
    )
    async with client(s) as c:
        for path in ("/api/snapshot", "/api/trades", "/api/decisions", "/api/equity", "/api/oms", "/metrics"):
            r = await c.get(path)
            assert r.status == 200, path
        snap = await (await c.get("/api/snapshot")).json()
        assert not snap["db"]["ok"] and "does not exist" in snap["db"]["error"]
        assert any("nope.db does not exist" in w for w in snap["warnings"])
        m = await (await c.get("/metrics")).text()
        assert 'aiq_db_up{mode="paper"} 0' in m


async def test_a_panel_listed_in_readers_reaches_the_snapshot(
    paper_run: PaperRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "add a monitor panel" path of docs/architecture.md: a reader and a `Panel` row in
    monitor/readers.py put new data into /api/snapshot, with its empty value when the DB is gone."""
    from monitor import readers

    def fills_today(db: Any, w: readers.Warnings) -> int:
        return int(db.query("SELECT COUNT(*) AS n FROM trades")[0]["n"])

    monkeypatch.setattr(readers, "PANELS", (*readers.PANELS, readers.Panel("trade_count", fills_today, int)))
    async with client(settings_for(paper_run)) as c:
        s = await (await c.get("/api/snapshot", params={"mode": "paper"})).json()
    assert s["trade_count"] == q(paper_run.db, "SELECT COUNT(*) FROM trades")[0][0] > 0
    assert [t["id"] for t in s["recent_trades"]][:1] == [q(paper_run.db, "SELECT MAX(id) FROM trades")[0][0]]
    gone = replace(
        settings_for(paper_run), dbs={"paper": tmp_path / "nope.db", "live": tmp_path / "nope_live.db"}
    )
    async with client(gone) as c:
        s = await (await c.get("/api/snapshot")).json()
    assert not s["db"]["ok"] and s["trade_count"] == 0 and s["recent_trades"] == [] and s["daily"] == {}


async def test_locked_db_is_a_warning(paper_run: PaperRun, tmp_path: Path) -> None:
    path = db_copy(paper_run, tmp_path / "locked")
    w = sqlite3.connect(path, isolation_level=None)
    w.execute("PRAGMA journal_mode=DELETE")  # rollback journal: an exclusive lock blocks readers
    w.execute("BEGIN EXCLUSIVE")
    try:
        async with client(settings_for(paper_run, path)) as c:
            snap = await (await c.get("/api/snapshot")).json()
            trades = await c.get("/api/trades")
            assert trades.status == 200 and any("locked" in x for x in (await trades.json())["warnings"])
    finally:
        w.execute("ROLLBACK")
        w.close()
    assert any("is locked by a writer" in x for x in snap["warnings"])


async def test_stale_heartbeat_is_a_warning(paper_run: PaperRun) -> None:
    async with client(settings_for(paper_run, stale_s=0.001)) as c:
        snap = await (await c.get("/api/snapshot")).json()
    assert snap["heartbeat"]["stale"]
    assert any("heartbeat is stale" in w for w in snap["warnings"])


async def test_malformed_rows_are_skipped_and_named(paper_run: PaperRun, tmp_path: Path) -> None:
    path = db_copy(paper_run, tmp_path / "bad")
    conn = sqlite3.connect(path, isolation_level=None)
    bad_trade = conn.execute("SELECT MAX(id) FROM trades").fetchone()[0]
    conn.execute("UPDATE trades SET price = 'garbage' WHERE id = ?", (bad_trade,))
    bad_dec = conn.execute("SELECT id FROM decision_events ORDER BY timestamp_ms DESC LIMIT 1").fetchone()[0]
    conn.execute("UPDATE decision_events SET gates_json = '{broken' WHERE id = ?", (bad_dec,))
    good_pos = [r[0] for r in conn.execute("SELECT symbol FROM position_state")]
    conn.execute(
        "INSERT INTO position_state (symbol, side, size, entry_price, leverage, margin_used, updated_at)"
        " VALUES ('ZZZ', 'sideways', 'x', 1, 1, 1, 'now')"
    )
    conn.execute("INSERT INTO runtime_logs (ts_ms, ts, pid, mode, stream, level, message)"
                 " VALUES (1, 'x', 1, 'paper', 'heartbeat', 'INFO', 'engine ok. equity=NaNx loops=')")  # fmt: skip
    conn.execute("UPDATE kv SET value = 'not json' WHERE key = 'paper_account'")
    conn.close()
    async with client(settings_for(paper_run, path)) as c:
        snap = await (await c.get("/api/snapshot")).json()
        dec = await (await c.get("/api/decisions")).json()
        tr = await (await c.get("/api/trades")).json()
        for p in ("/api/equity", "/metrics", "/api/health"):
            assert (await c.get(p)).status == 200
    text = " | ".join(snap["warnings"])
    assert f"trades row id={bad_trade} skipped: malformed (price='garbage' is not a number)" in text
    assert "position_state row symbol='ZZZ' skipped" in text
    assert "kv paper_account is malformed" in text
    assert "heartbeat line could not be parsed" in text
    assert [p["symbol"] for p in snap["open_positions"]] == sorted(good_pos)
    assert bad_trade not in [t["id"] for t in tr["trades"]] and len(tr["trades"]) >= 1
    assert bad_dec not in [d["id"] for d in dec["decisions"]] and len(dec["decisions"]) >= 1
    assert any("gates_json is not valid JSON" in w for w in dec["warnings"])
    assert snap["balances"]["cash"] is not None  # taken from the newest readable trade


async def test_kill_switch_state_from_the_heartbeat(paper_run: PaperRun, tmp_path: Path) -> None:
    path = db_copy(paper_run, tmp_path / "kill")
    db = TradingDB(path)  # the daemon's own writer and heartbeat format
    db.log(Heartbeat("paper", 99, 0, 3, 1, 0.01, "halt_all", "drawdown 12%", "", "cfg", "0.1.0").line())
    db.close()
    async with client(settings_for(paper_run, path)) as c:
        snap = await (await c.get("/api/snapshot")).json()
        m = await (await c.get("/metrics")).text()
    assert snap["kill"]["state"] == "halt_all" and snap["kill"]["reason"] == "drawdown_12%"
    assert 'aiq_kill_switch{mode="paper",state="halt_all"} 1' in m
    assert 'aiq_kill_switch{mode="paper",state="off"} 0' in m


async def test_sidecar_down_is_a_warning_and_metrics_say_so(paper_run: PaperRun) -> None:
    async with client(settings_for(paper_run), start_mids=True) as c:
        r = await c.get("/api/mids")
        m = await r.json()
        assert r.status == 200 and m["mids"] == {}
        snap = await (await c.get("/api/snapshot")).json()
        text = await (await c.get("/metrics")).text()
    assert any("WS sidecar down" in w for w in snap["warnings"])
    assert "aiq_sidecar_connected 0" in text


# ---- /metrics -----------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$')


async def test_metrics_are_prometheus_text(paper_run: PaperRun) -> None:
    async with client(settings_for(paper_run)) as c:
        r = await c.get("/metrics")
        body = await r.text()
    assert r.headers["Content-Type"].startswith("text/plain")
    for line in body.strip().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _SAMPLE.match(line), line
    n_pos = q(paper_run.db, "SELECT COUNT(*) FROM position_state")[0][0]
    assert f'aiq_open_positions{{mode="paper"}} {n_pos}' in body
    for name in ("aiq_loop_seconds", "aiq_loop_errors_total", "aiq_equity_usd", "aiq_drawdown_pct",
                 "aiq_heartbeat_age_seconds", "aiq_sidecar_connected", "aiq_kill_switch"):  # fmt: skip
        assert f"# TYPE {name} " in body, name
