"""partition_candles_db.py (a replay over the partitions equals the replay over the single DB) and
prune_runtime.py (old runtime rows and log files go, everything else stays) on real files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from engine.trading_db import TradingDB
from tests.ops.conftest import REPO, base_env, bt_binary, run_tool

CONFIG = REPO / "config" / "strategy_overrides.example.yaml"


def replay(candles: Path, out: Path) -> tuple[dict, bytes, bytes]:  # type: ignore[type-arg]
    out.mkdir()
    r = subprocess.run(
        [str(bt_binary()), "replay", "--config", str(CONFIG), "--candles-db", str(candles), "--interval", "5m",
         "--start", "2025-03-25", "--end", "2025-05-05", "--output", str(out / "report.json"),
         "--export-trades", str(out / "trades.csv"), "--equity-curve", str(out / "equity.csv"), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return (
        json.loads((out / "report.json").read_text()),
        (out / "trades.csv").read_bytes(),
        (out / "equity.csv").read_bytes(),
    )


def test_partitions_replay_byte_identical_to_the_single_db(candles_db: Path, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    env = base_env(tmp_path, "http://127.0.0.1:9")
    r = run_tool(
        "partition_candles_db.py", "--db", str(candles_db), "--out-dir", str(parts), "--dry-run", env=env
    )
    assert r.returncode == 0 and "would write" in r.stdout and not parts.exists()
    r = run_tool("partition_candles_db.py", "--db", str(candles_db), "--out-dir", str(parts), env=env)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in parts.iterdir())
    assert (
        files[0] == "candles_5m_2025-03.db"
        and len(files) >= 4
        and all(f.startswith("candles_5m_20") for f in files)
    )
    src = sqlite3.connect(candles_db)
    total = src.execute("SELECT COUNT(*) FROM candles").fetchone()[0]
    got = 0
    for f in parts.iterdir():
        c = sqlite3.connect(f)
        month = f.stem.rsplit("_", 1)[1]
        rows = c.execute("SELECT MIN(t), MAX(t), COUNT(*) FROM candles").fetchone()
        assert (
            time.strftime("%Y-%m", time.gmtime(rows[0] / 1000))
            == month
            == time.strftime("%Y-%m", time.gmtime(rows[1] / 1000))
        )
        meta = c.execute("SELECT SUM(rows) FROM candle_meta").fetchone()[0]
        assert meta == rows[2]  # meta recomputed for the month
        got += rows[2]
        c.close()
    assert got == total

    single, t1, e1 = replay(candles_db, tmp_path / "single")
    parted, t2, e2 = replay(parts, tmp_path / "parted")
    assert t1 == t2 and e1 == e2 and len(t1.splitlines()) > 10  # trades and equity byte-identical
    fp1, fp2 = single["inputs"].pop("candles"), parted["inputs"].pop("candles")
    assert sum(f["rows"] for f in fp2) == fp1[0]["rows"]
    assert json.dumps(single, sort_keys=True) == json.dumps(
        parted, sort_keys=True
    )  # only the input paths differ

    # A second run refuses to overwrite; --force rebuilds; a bad source is named.
    r = run_tool("partition_candles_db.py", "--db", str(candles_db), "--out-dir", str(parts), env=env)
    assert r.returncode == 2 and "--force" in r.stderr
    r = run_tool(
        "partition_candles_db.py", "--db", str(candles_db), "--out-dir", str(parts), "--force", env=env
    )
    assert r.returncode == 0
    r = run_tool(
        "partition_candles_db.py", "--db", str(tmp_path / "nope.db"), "--out-dir", str(parts), env=env
    )
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_tool(
        "partition_candles_db.py", "--db", str(candles_db), "--out-dir", str(candles_db.parent), env=env
    )
    assert r.returncode == 2 and "must not be the source" in r.stderr


def test_prune_runtime_removes_only_old_runtime_rows_and_logs(tmp_path: Path) -> None:
    env = base_env(tmp_path, "http://127.0.0.1:9")
    data = Path(env["AI_QUANT_DATA_DIR"])
    data.mkdir(parents=True)
    now = int(time.time() * 1000)
    day = 86_400_000
    db = TradingDB(data / "trading_engine.db", mode="paper", run_fingerprint="t")
    with db.tx() as c:
        for age in (1, 10, 40, 400):
            ts = now - age * day
            c.execute("INSERT INTO runtime_logs (ts_ms, ts, pid, mode, stream, level, message) VALUES (?,?,?,?,?,?,?)",
                      (ts, "x", 1, "paper", "heartbeat", "INFO", f"age {age}"))  # fmt: skip
            db.audit("TEST", data={"age": age}, ts_ms=ts)
            c.execute("INSERT INTO trades (timestamp, ts_ms, symbol, type, action, price, size, notional, fill_hash,"
                      " fill_tid) VALUES ('x', ?, 'BTC', 'LONG', 'OPEN', 1, 1, 1, ?, 0)", (ts, f"h{age}"))  # fmt: skip
    db.close()
    logs = data / "logs"
    logs.mkdir()
    for name, age in (("daemon.log", 1), ("daemon.log.1", 40), ("sidecar.log.2", 90), ("notes.txt", 90)):
        f = logs / name
        f.write_text("x")
        os.utime(f, (time.time() - age * 86_400,) * 2)

    def counts() -> tuple[int, int, int]:
        c = sqlite3.connect(data / "trading_engine.db")
        try:
            return tuple(
                c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runtime_logs", "audit_events", "trades")
            )  # type: ignore[return-value]
        finally:
            c.close()

    r = run_tool("prune_runtime.py", "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    assert (
        "would delete 2 runtime_logs, 1 audit_events" in r.stdout and "would delete 2 log files" in r.stdout
    )
    assert counts() == (4, 4, 4) and len(list(logs.iterdir())) == 4
    r = run_tool("prune_runtime.py", "--vacuum", env=env)
    assert r.returncode == 0, r.stderr
    assert "deleted 2 runtime_logs, 1 audit_events" in r.stdout and "vacuumed" in r.stdout
    assert counts() == (2, 3, 4)  # trades are never pruned
    assert sorted(p.name for p in logs.iterdir()) == ["daemon.log", "notes.txt"]
    wal = data / "trading_engine.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed
    r = run_tool("prune_runtime.py", "--days", "5", "--audit-days", "5", env=env)
    assert "deleted 1 runtime_logs, 2 audit_events" in r.stdout
    r = run_tool("prune_runtime.py", "--db", str(tmp_path / "nope.db"), env=env)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_tool("prune_runtime.py", "--days", "0", env=env)
    assert r.returncode == 2 and "positive" in r.stderr
