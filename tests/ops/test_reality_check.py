"""reality_check.py on trading DBs written by bounded real daemon runs (local exchange, real
candles), paper and live: every divergence between the daemon and the replay is either absent or
explained (a manual order included), the report carries the config_id and the matched actions, a
hot reload is not mistaken for another config, and a tampered DB is caught."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import (
    CONFIG,
    LIVE_GATES,
    SYMBOLS,
    Daemon,
    Venue,
    base_env,
    bt_binary,
    run_tool,
    tool_json,
    wait_for,
)

pytestmark = pytest.mark.slow
STEP = 300_000


@pytest.fixture(scope="module")
def daemon_run(venue: Venue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    bt_binary()
    root = tmp_path_factory.mktemp("reality_run")
    d = Daemon(base_env(root, venue.url))
    with d.start("--max-loops", "150"):
        assert d.proc is not None
        # The operator edits an engine-only key mid-run: the daemon hot-reloads it (new config_id).
        wait_for(lambda: d.loops() >= 40 or not d.alive(), 120, "40 loops")
        (root / "strategy.yaml").write_text(CONFIG.replace("loop_target_s: 0.4", "loop_target_s: 0.41"))
        d.proc.wait(180)
    assert d.proc.returncode == 0, d.log.read_text()[-3000:]
    assert d.q("SELECT COUNT(*) FROM audit_events WHERE event='CONFIG_RELOADED'") == [(1,)]
    yield root


def trades(db: Path) -> list[tuple]:  # type: ignore[type-arg]
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, ts_ms, symbol, action FROM trades WHERE action != 'FUNDING' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_no_unexplained_divergence_for_any_symbol(daemon_run: Path, venue: Venue, candles_db: Path) -> None:
    env = base_env(daemon_run, venue.url)
    db = daemon_run / "data" / "trading_engine.db"
    done = trades(db)
    assert len(done) >= 4, "the run should have traded"
    matched_total = 0
    for sym in SYMBOLS.split(","):
        out = tool_json("reality_check.py", "--symbol", sym, "--hours", "48", env=env)
        s = out["summary"]
        assert s["unexplained"] == 0, json.dumps(out, indent=1)
        w = out["window"]
        # Every daemon action in the window is accounted for: matched or (explained) extra.
        mine = [t for t in done if t[2] == sym and w["from_ms"] <= t[1] <= w["to_ms"] + 2 * STEP]
        assert s["matched"] + s["extra_in_daemon"] == len(mine)
        matched_total += s["matched"]
        # The candles the daemon read from the venue are the real files: same result from the DB.
        again = tool_json(
            "reality_check.py", "--symbol", sym, "--hours", "48", "--candles-db", str(candles_db), env=env
        )
        assert again["summary"] == s
    assert matched_total >= len(done) // 2  # most of what the daemon did, the replay did too


def test_report_details_and_a_tampered_db_is_caught(daemon_run: Path, venue: Venue, tmp_path: Path) -> None:
    shutil.copytree(daemon_run / "data", tmp_path / "data")
    shutil.copy(daemon_run / "strategy.yaml", tmp_path / "strategy.yaml")
    env = base_env(tmp_path, venue.url)
    db = tmp_path / "data" / "trading_engine.db"
    opens = [t for t in trades(db) if t[3] == "OPEN"]
    sym = opens[0][2]
    full = tmp_path / "full.json"
    tool_json("reality_check.py", "--symbol", sym, "--hours", "48", "--output", str(full), env=env)
    rep = json.loads(full.read_text())
    entries = [m for m in rep["matched"] if m["daemon"]["kind"] == "open"]
    assert entries
    for m in entries:
        assert m["daemon"]["reason_code"] == m["replay"]["reason_code"] == "entry_signal"
        assert 0 <= m["dt_ms"] <= 2 * STEP  # the daemon fills in the loop after the bar closed
        assert abs(m["price_diff_bps"]) < 100 and abs(m["size_diff_pct"]) < 5
    # The daemon reloaded the file: the config it ran last is the file's, not "another config".
    assert rep["inputs"]["daemon_config_id"] == rep["inputs"]["config_id"]
    assert not [n for n in rep["notes"] if "differs" in n], rep["notes"]
    # stdout is the same report: config_id and the matched actions, as the runbook says.
    out = tool_json("reality_check.py", "--symbol", sym, "--hours", "48", env=env)
    assert out["inputs"]["config_id"] == rep["inputs"]["config_id"] and out["inputs"]["mode"] == "paper"
    assert out["matched"] == rep["matched"]

    # Remove one of the daemon's entries: the replay's entry is now missing, with no explanation.
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM trades WHERE id = ?", (opens[0][0],))
    conn.commit()
    conn.close()
    r = run_tool("reality_check.py", "--symbol", sym, "--hours", "48", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    gone = [x for x in out["missing_in_daemon"] if x["kind"] == "open" and not x["explained_by"]]
    assert len(gone) == 1 and out["summary"]["unexplained"] >= 1

    r = run_tool("reality_check.py", "--symbol", "DOGE", "--hours", "1", env=env)
    assert r.returncode == 2 and "not in the daemon's watchlist" in r.stderr
    r = run_tool("reality_check.py", "--symbol", sym, "--hours", "0", env=env)
    assert r.returncode == 2 and "--hours must be positive" in r.stderr
    r = run_tool(
        "reality_check.py", "--symbol", sym, "--hours", "1", "--db", str(tmp_path / "nope.db"), env=env
    )
    assert r.returncode == 2 and "does not exist" in r.stderr


LIVE_OVERLAY = "live:\n  trade:\n    size_multiplier: 0.5\n"


def test_live_daemon_with_a_manual_order(venue: Venue, tmp_path: Path) -> None:
    """A live daemon (gates open, local exchange) and an operator's manual_trade.py open and close
    in the middle of its run: the tool reads the live DB, merges the config as the live daemon
    does (its ``live`` overlay) and explains the manual orders instead of failing on them."""
    bt_binary()
    env = base_env(tmp_path, venue.url, wallet=2, AI_QUANT_MODE="live", **LIVE_GATES)
    (tmp_path / "strategy.yaml").write_text(CONFIG + LIVE_OVERLAY)
    d = Daemon(env)
    d.db_path = tmp_path / "data" / "trading_engine_live.db"
    sym = "SOL"
    with d.start("--max-loops", "150", "--no-user-stream"):
        assert d.proc is not None
        wait_for(lambda: d.loops() >= 50 or not d.alive(), 150, "50 live loops")
        tool_json("manual_trade.py", "open", "--id", "rc-1", "--symbol", sym, "--side", "long", "--size", "1",
                  env=env)  # fmt: skip
        n = d.loops()
        wait_for(lambda: d.loops() >= n + 3 or not d.alive(), 60, "3 more loops")
        # The daemon may have closed the position it now holds by then; otherwise the operator does.
        r = run_tool("manual_trade.py", "close", "--id", "rc-2", "--symbol", sym, env=env)
        assert r.returncode == 0 or "no open SOL position" in r.stderr, r.stderr
        d.proc.wait(240)
    assert d.proc.returncode == 0, d.log.read_text()[-3000:]
    manual = d.q("SELECT action, meta_json FROM trades WHERE symbol=? AND json_extract(meta_json,"
                 " '$.intent_id')=0", (sym,))  # fmt: skip
    assert manual, "the daemon booked the operator's fills from the OMS"

    r = run_tool("reality_check.py", "--symbol", sym, "--hours", "48", env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    out = json.loads(r.stdout)
    assert out["inputs"]["mode"] == "live" and out["inputs"]["db"].endswith("trading_engine_live.db")
    assert out["inputs"]["daemon_config_id"] == out["inputs"]["config_id"]
    assert not [n for n in out["notes"] if "differs" in n], out["notes"]
    explained = [x for x in out["extra_in_daemon"] if str(x["explained_by"]).startswith("manual order")]
    assert explained and all(x["manual"] for x in explained), json.dumps(out, indent=1)[-4000:]
    assert "matched" in out and out["summary"]["unexplained"] == 0


def test_dry_live_daemon(venue: Venue, tmp_path: Path) -> None:
    """dry_live sends nothing: the replay's actions are set against what the daemon would have sent."""
    bt_binary()
    # Its own wallet: the live test's positions on wallet 2 would block its entries (foreign positions).
    env = base_env(tmp_path, venue.url, wallet=3, AI_QUANT_MODE="dry_live")
    (tmp_path / "strategy.yaml").write_text(CONFIG + LIVE_OVERLAY)
    d = Daemon(env)
    d.db_path = tmp_path / "data" / "trading_engine_live.db"
    with d.start("--max-loops", "120", "--no-user-stream"):
        assert d.proc is not None
        d.proc.wait(240)
    assert d.proc.returncode == 0, d.log.read_text()[-3000:]
    would = 0
    seen = []
    for sym in SYMBOLS.split(","):
        out = tool_json("reality_check.py", "--symbol", sym, "--hours", "48", env=env)
        assert out["inputs"]["mode"] == "dry_live" and out["inputs"]["db"].endswith("trading_engine_live.db")
        assert out["summary"]["unexplained"] == 0 and out["summary"]["matched"] == 0, json.dumps(out)[-3000:]
        assert any("dry_live sends no orders" in n for n in out["notes"])
        would += sum(str(x["explained_by"]).startswith("dry_live:") for x in out["missing_in_daemon"])
        seen += [(sym, x["ts_ms"], x["kind"], x["explained_by"]) for x in out["missing_in_daemon"]]
    assert would >= 1, seen  # the daemon's own decisions explain the replay's entries
