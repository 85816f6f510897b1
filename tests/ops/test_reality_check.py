"""reality_check.py on a trading DB written by a bounded real paper daemon run (local exchange,
real candles): every divergence between the daemon and the replay is either absent or explained,
and a tampered DB is caught."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import SYMBOLS, Daemon, Venue, base_env, bt_binary, run_tool, tool_json

pytestmark = pytest.mark.slow
STEP = 300_000


@pytest.fixture(scope="module")
def daemon_run(venue: Venue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    bt_binary()
    root = tmp_path_factory.mktemp("reality_run")
    d = Daemon(base_env(root, venue.url))
    with d.start("--max-loops", "150"):
        assert d.proc is not None
        d.proc.wait(180)
    assert d.proc.returncode == 0, d.log.read_text()[-3000:]
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
    assert rep["inputs"]["daemon_config_id"] == rep["inputs"]["config_id"]

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
