"""flat_now.py and export_state.py on a paper trading DB written by the real daemon process.

The daemon trades against the local exchange until it holds an open position, then stops
(SIGTERM). Each test works on its own copy of that data directory.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import Daemon, Venue, base_env, bt_binary, run_tool, tool_json, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper_run(venue: Venue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("paper_run")
    d = Daemon(base_env(root, venue.url))
    with d.start():
        wait_for(
            lambda: (d.q("SELECT COUNT(*) FROM position_state") or [(0,)])[0][0],
            120,
            "an open paper position",
        )
        assert d.stop() == 0
    yield root


def copy_run(src: Path, dst: Path, url: str) -> dict[str, str]:
    shutil.copytree(src / "data", dst / "data")
    shutil.copy(src / "strategy.yaml", dst / "strategy.yaml")
    return base_env(dst, url)


def q(db: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_export_state_replays_from_the_exported_positions(
    paper_run: Path, venue: Venue, candles_db: Path, tmp_path: Path
) -> None:
    env = copy_run(paper_run, tmp_path, venue.url)
    db = tmp_path / "data" / "trading_engine.db"
    pos = q(db, "SELECT symbol, side, size, entry_price FROM position_state ORDER BY symbol")
    assert pos
    dry = tool_json("export_state.py", "--mode", "paper", "--dry-run", env=env)
    assert dry["dry_run"] is True and not (tmp_path / "state.json").exists()
    out = tmp_path / "state.json"
    rep = tool_json("export_state.py", "--mode", "paper", "--output", str(out), env=env)
    assert rep["positions"] == [f"{s} {z:g} {sym} @ {p:g}" for sym, s, z, p in pos]
    doc = json.loads(out.read_text())
    assert (doc["format"], doc["version"], doc["mode"]) == ("ai-quant-state", 1, "paper")
    assert [(p["symbol"], p["side"], p["size"]) for p in doc["positions"]] == [
        (s, sd, z) for s, sd, z, _ in pos
    ]
    (kstate,) = q(db, "SELECT value FROM kv WHERE key='kernel_state'")[0]
    assert doc["state"] == json.loads(kstate)
    assert out.stat().st_mode & 0o777 == 0o600

    # The backtester starts from it: the restored positions are the first to be closed.
    last_t = max(doc["source"]["last_bar_t"].values())
    report, trades = tmp_path / "report.json", tmp_path / "trades.csv"
    import subprocess

    r = subprocess.run(
        [str(bt_binary()), "replay", "--config", str(tmp_path / "strategy.yaml"), "--candles-db", str(candles_db),
         "--interval", "5m", "--start", str(last_t + 300_000), "--end", str(last_t + 2 * 86_400_000),
         "--init-state", str(out), "--output", str(report), "--export-trades", str(trades), "-q"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(report.read_text())["inputs"]["init_state"] == str(out)
    rows = list(csv.DictReader(trades.open()))
    first_close = {}
    for row in rows:
        first_close.setdefault(row["symbol"], row)
    for sym, side, size, _ in pos:
        row = first_close[sym]  # the first fill of a restored symbol closes (part of) the restored position
        assert row["kind"] in ("close", "reduce") and row["side"] == ("short" if side == "long" else "long")
        assert float(row["quantity"]) <= size + 1e-12
    # A file that is not an export is refused with a clear message.
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = subprocess.run([str(bt_binary()), "replay", "--config", str(tmp_path / "strategy.yaml"), "--candles-db",
                        str(candles_db), "--init-state", str(bad), "-q"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode != 0 and "not a kernel state" in r.stderr


def test_export_state_refuses_a_db_whose_positions_disagree_with_the_kernel(
    paper_run: Path, venue: Venue, tmp_path: Path
) -> None:
    env = copy_run(paper_run, tmp_path, venue.url)
    db = tmp_path / "data" / "trading_engine.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE position_state SET size = size * 2")
    conn.commit()
    conn.close()
    r = run_tool("export_state.py", "--mode", "paper", "--output", str(tmp_path / "s.json"), env=env)
    assert r.returncode == 1 and "disagrees with the kernel state" in r.stderr
    assert not (tmp_path / "s.json").exists()
    r = run_tool(
        "export_state.py", "--mode", "paper", "--db", str(tmp_path / "nope.db"), "--dry-run", env=env
    )
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_flat_now_paper_closes_consistently_and_the_daemon_restarts_flat_in_close_only(
    paper_run: Path, venue: Venue, tmp_path: Path
) -> None:
    env = copy_run(paper_run, tmp_path, venue.url)
    db = tmp_path / "data" / "trading_engine.db"
    kill = Path(env["AI_QUANT_KILL_SWITCH_FILE"])
    before = q(db, "SELECT symbol, side, size FROM position_state ORDER BY symbol")
    n_trades = q(db, "SELECT COUNT(*) FROM trades")[0][0]

    dry = tool_json("flat_now.py", "--mode", "paper", "--dry-run", env=env)
    assert [(p["symbol"], p["side"], p["size"]) for p in dry["positions"]] == before
    assert not kill.exists() and q(db, "SELECT COUNT(*) FROM trades")[0][0] == n_trades

    kill.write_text("halt_all\n")  # the daemon holds the position (no exits either) while it runs
    d = Daemon(env)
    with d.start():
        wait_for(lambda: "paper engine" in d.log.read_text(), 90, "the daemon's start-up")
        wait_for(lambda: d.loops() > 0, 60, "a loop")
        assert d.proc is not None
        d.proc.send_signal(signal.SIGSTOP)  # frozen with its lock held: exits cannot race the check below
        kill.write_text("clear\n")
        r = run_tool("flat_now.py", "--mode", "paper", env=env)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "already running" in r.stderr and "systemctl --user stop ai-quant-paper.service" in r.stderr
        assert kill.read_text().strip() == "close_only"  # engaged although the flatten had to wait
        assert '"kill_before"' not in r.stdout  # no report: nothing was closed
        kill.write_text("halt_all\n")
        d.proc.send_signal(signal.SIGCONT)
        assert d.stop() == 0

    held = q(db, "SELECT symbol, side, size FROM position_state ORDER BY symbol")
    assert held == before
    rep = tool_json("flat_now.py", "--mode", "paper", env=env)
    assert rep["still_open"] == [] and rep["kill_before"] == "halt_all"
    assert kill.read_text().strip() == "halt_all"  # flat_now never weakens halt_all
    assert [(p["symbol"], p["side"], p["size"], p["status"]) for p in rep["positions"]] == [
        (s, sd, z, "closed") for s, sd, z in held
    ]
    assert q(db, "SELECT COUNT(*) FROM position_state")[0][0] == 0
    closes = q(
        db,
        "SELECT symbol, action, size, price, pnl, reason_code FROM trades WHERE reason_code='manual_flatten'",
    )
    assert [(c[0], c[1], c[2]) for c in closes] == [(s, "CLOSE", z) for s, _, z in held]
    for (sym, _a, _z, price, _p, _r), p in zip(closes, rep["positions"], strict=True):
        assert price == p["price"] and sym == p["symbol"]
    kv = dict(q(db, "SELECT key, value FROM kv"))
    kstate, paper = json.loads(kv["kernel_state"]), json.loads(kv["paper_account"])
    assert kstate["positions"] == {} and paper["positions"] == {}
    assert abs(kstate["cash_usd"] - paper["balance"]) < 1e-6  # kernel and paper accounts still agree
    assert json.loads((tmp_path / "data" / "kernel_state_paper.json").read_text()) == kstate
    decisions = q(
        db,
        "SELECT status, decision_phase, reason_code FROM decision_events WHERE reason_code='manual_flatten'",
    )
    assert decisions == [("executed", "manual", "manual_flatten")] * len(held)
    assert q(db, "SELECT COUNT(*) FROM audit_events WHERE event='MANUAL_FLATTEN'")[0][0] == 1

    # Running it again finds nothing to close.
    again = tool_json("flat_now.py", "--mode", "paper", env=env)
    assert again["positions"] == [] and again["still_open"] == []

    # The daemon restarts from the flat state and, with close_only engaged, opens nothing.
    kill.write_text("close_only\n")
    flat_trades = q(db, "SELECT MAX(id) FROM trades")[0][0]
    d = Daemon(env)
    with d.start():
        start_loops = d.loops()
        wait_for(lambda: d.loops() >= start_loops + 15, 90, "15 more loops")
        assert d.stop() == 0
    assert "restored state: 0 open positions" in d.log.read_text()
    assert (
        q(db, f"SELECT COUNT(*) FROM trades WHERE id > {flat_trades} AND action IN ('OPEN','ADD')")[0][0] == 0
    )


def test_flat_now_paper_dry_run_changes_nothing_and_prices_at_the_mid(
    paper_run: Path, venue: Venue, tmp_path: Path
) -> None:
    from hyperliquid.info import Info

    env = copy_run(paper_run, tmp_path, venue.url)
    db = tmp_path / "data" / "trading_engine.db"
    kill = Path(env["AI_QUANT_KILL_SWITCH_FILE"])
    held = {
        s: (sd, z, px) for s, sd, z, px in q(db, "SELECT symbol, side, size, entry_price FROM position_state")
    }
    assert held
    before = db.read_bytes()
    dry = tool_json("flat_now.py", "--mode", "paper", "--dry-run", env=env)
    mids = {k: float(v) for k, v in Info(venue.url, skip_ws=True, timeout=10).all_mids().items()}
    for p in dry["positions"]:
        side, size, entry = held[p["symbol"]]
        assert (p["side"], p["size"], p["status"]) == (side, size, "would close")
        # The venue's mid at the time of the run (the replay moves on: within 2 % of the mid now).
        assert p["price"] > 0 and abs(p["price"] / mids[p["symbol"]] - 1) < 0.02, (p, mids)
        sign = 1 if side == "long" else -1
        assert p["pnl"] == pytest.approx(sign * (p["price"] - entry) * size) and p["fee"] is None
    # Nothing engaged, nothing written: the report says what a real run would write.
    assert not kill.exists() and db.read_bytes() == before
    assert dry["kill_now"] == "off" and dry["would_engage"] == "close_only" and dry["still_open"] == []
    kill.write_text("halt_all\n")
    dry = tool_json("flat_now.py", "--mode", "paper", "--dry-run", env=env)
    assert dry["kill_now"] == "halt_all" and dry["would_engage"] == "halt_all"
    assert "halt_all" in dry["note"] and kill.read_text() == "halt_all\n"


def test_flat_now_usage_errors(tmp_path: Path) -> None:
    env = base_env(tmp_path, "http://127.0.0.1:9")
    del env["AI_QUANT_KILL_SWITCH_FILE"]
    r = run_tool("flat_now.py", "--mode", "paper", env=env)
    assert r.returncode == 2 and "no kill file" in r.stderr
    r = run_tool("flat_now.py", "--mode", "paper", "--symbol", "BTC", env=env)
    assert r.returncode == 2 and "--symbol is for live mode" in r.stderr
    r = run_tool("flat_now.py", "--mode", "live", env=env)
    assert r.returncode == 2 and "live gates closed" in r.stderr and "AI_QUANT_LIVE_ENABLE" in r.stderr
    r = run_tool("flat_now.py", "--help", env=env)
    assert r.returncode == 0 and "close_only" in r.stdout


def test_a_file_that_is_not_a_trading_db_is_one_line(tmp_path: Path) -> None:
    """export_state, flat_now and reality_check read the trading DB through the one read-only opener:
    a file that is not SQLite is the operator's one line naming it, exit 2, no traceback."""
    env = base_env(tmp_path, "http://127.0.0.1:9")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database\n" * 200)
    env["AI_QUANT_DB_PATH"] = str(junk)
    runs = {
        "export_state": run_tool(
            "export_state.py", "--mode", "paper", "--db", str(junk), "--dry-run", env=env
        ),
        "flat_now": run_tool("flat_now.py", "--mode", "paper", "--dry-run", env=env),
        "reality_check": run_tool(
            "reality_check.py", "--db", str(junk), "--symbol", "BTC", "--hours", "1", env=env
        ),
    }
    for name, r in runs.items():
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert f"{junk}: not a trading DB (" in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
