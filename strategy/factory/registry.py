"""SQLite registry: runs, configs, metrics, verdicts, reasons and lifecycle transitions."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .lifecycle import State, Transition

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, profile TEXT NOT NULL, started_at REAL NOT NULL,
    finished_at REAL, status TEXT NOT NULL, artifacts_dir TEXT, n_trials INTEGER,
    meta_json TEXT
);
CREATE TABLE IF NOT EXISTS configs (
    config_hash TEXT PRIMARY KEY, config_json TEXT NOT NULL, first_seen_run TEXT,
    state TEXT NOT NULL DEFAULT 'candidate', created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, config_hash TEXT NOT NULL, name TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_id, config_hash, name)
);
CREATE TABLE IF NOT EXISTS verdicts (
    run_id TEXT NOT NULL, config_hash TEXT NOT NULL, lane TEXT, verdict TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (run_id, config_hash)
);
CREATE TABLE IF NOT EXISTS reasons (
    run_id TEXT NOT NULL, config_hash TEXT NOT NULL, check_name TEXT NOT NULL,
    passed INTEGER NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, config_hash TEXT NOT NULL, from_state TEXT NOT NULL,
    to_state TEXT NOT NULL, trigger TEXT NOT NULL, timestamp REAL NOT NULL, pnl REAL,
    profit_factor REAL, max_drawdown_pct REAL, trades INTEGER, sharpe REAL, ramp_stage INTEGER,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp REAL NOT NULL, action TEXT NOT NULL,
    config_hash TEXT, target TEXT NOT NULL, mode TEXT NOT NULL, size_multiplier REAL,
    ramp_stage INTEGER, kill_events_seen INTEGER, file_sha256 TEXT, engine_config_id TEXT,
    reason TEXT NOT NULL
);
"""


class Registry:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=10.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.conn:
            yield self.conn

    # runs
    def start_run(self, run_id: str, profile: str, artifacts_dir: str, meta: Mapping[str, Any]) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO runs(run_id, profile, started_at, status, artifacts_dir, meta_json) "
                "VALUES (?,?,?,?,?,?)",
                (run_id, profile, time.time(), "running", artifacts_dir, json.dumps(meta, sort_keys=True)),
            )

    def finish_run(self, run_id: str, status: str, n_trials: int | None = None) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE runs SET finished_at=?, status=?, n_trials=COALESCE(?, n_trials) WHERE run_id=?",
                (time.time(), status, n_trials, run_id),
            )

    def run(self, run_id: str) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,))
        row = cur.fetchone()
        return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))

    # configs
    def add_config(self, config_hash: str, config: Mapping[str, Any], run_id: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO configs(config_hash, config_json, first_seen_run, created_at) "
                "VALUES (?,?,?,?)",
                (config_hash, json.dumps(config, sort_keys=True), run_id, time.time()),
            )

    def state(self, config_hash: str) -> State | None:
        row = self.conn.execute("SELECT state FROM configs WHERE config_hash=?", (config_hash,)).fetchone()
        return None if row is None else State(row[0])

    def in_states(self, states: tuple[State, ...]) -> list[str]:
        """Config hashes currently in any of `states`, oldest first."""
        marks = ",".join("?" * len(states))
        rows = self.conn.execute(
            f"SELECT config_hash FROM configs WHERE state IN ({marks}) ORDER BY created_at, config_hash",
            [s.value for s in states],
        ).fetchall()
        return [r[0] for r in rows]

    # metrics / verdicts / reasons
    def add_metrics(self, run_id: str, config_hash: str, metrics: Mapping[str, float | None]) -> None:
        with self.tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO metrics(run_id, config_hash, name, value) VALUES (?,?,?,?)",
                [(run_id, config_hash, k, v) for k, v in sorted(metrics.items())],
            )

    def add_verdict(
        self,
        run_id: str,
        config_hash: str,
        lane: str,
        verdict: str,
        reasons: list[tuple[str, bool, str]],
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO verdicts(run_id, config_hash, lane, verdict, created_at) "
                "VALUES (?,?,?,?,?)",
                (run_id, config_hash, lane, verdict, time.time()),
            )
            c.execute("DELETE FROM reasons WHERE run_id=? AND config_hash=?", (run_id, config_hash))
            c.executemany(
                "INSERT INTO reasons(run_id, config_hash, check_name, passed, detail) VALUES (?,?,?,?,?)",
                [(run_id, config_hash, n, int(p), d) for n, p, d in reasons],
            )

    def latest_verdict(self, config_hash: str, since: float = 0.0) -> tuple[str, str, float] | None:
        """(run_id, verdict, created_at) of the newest verdict on a config recorded at or after
        `since` (epoch s), from any run: a candidate's or a nightly re-validation's."""
        row = self.conn.execute(
            "SELECT run_id, verdict, created_at FROM verdicts WHERE config_hash=? AND created_at>=? "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (config_hash, since),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), float(row[2]))

    def metrics(self, run_id: str, config_hash: str) -> dict[str, float | None]:
        rows = self.conn.execute(
            "SELECT name, value FROM metrics WHERE run_id=? AND config_hash=?", (run_id, config_hash)
        )
        return dict(rows.fetchall())

    def verdicts(self, run_id: str) -> list[tuple[str, str, str]]:
        rows = self.conn.execute(
            "SELECT config_hash, lane, verdict FROM verdicts WHERE run_id=? ORDER BY config_hash", (run_id,)
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows.fetchall()]

    def reasons(self, run_id: str, config_hash: str) -> list[tuple[str, bool, str]]:
        rows = self.conn.execute(
            "SELECT check_name, passed, detail FROM reasons WHERE run_id=? AND config_hash=? ORDER BY rowid",
            (run_id, config_hash),
        )
        return [(str(n), bool(p), str(d)) for n, p, d in rows.fetchall()]

    # lifecycle
    def record_transition(self, t: Transition) -> None:
        """Store a transition and move the config's state; refuses a stale ``from_state``."""
        current = self.state(t.config_hash)
        if current is None:
            raise KeyError(f"unknown config {t.config_hash}")
        if current is not t.from_state:
            raise ValueError(f"config {t.config_hash[:12]} is {current.value}, not {t.from_state.value}")
        row = t.as_row()
        cols = ", ".join(row)
        with self.tx() as c:
            c.execute(
                f"INSERT INTO transitions({cols}) VALUES ({','.join('?' * len(row))})", list(row.values())
            )
            c.execute("UPDATE configs SET state=? WHERE config_hash=?", (t.to_state.value, t.config_hash))

    def transitions(self, config_hash: str) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT * FROM transitions WHERE config_hash=? ORDER BY id", (config_hash,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    # deployments (what was written where, by which tool)
    def add_deployment(
        self,
        action: str,
        config_hash: str | None,
        target: str,
        mode: str,
        reason: str,
        *,
        size_multiplier: float | None = None,
        ramp_stage: int | None = None,
        kill_events_seen: int | None = None,
        file_sha256: str | None = None,
        engine_config_id: str | None = None,
        timestamp: float | None = None,
    ) -> int:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO deployments(timestamp, action, config_hash, target, mode, size_multiplier, "
                "ramp_stage, kill_events_seen, file_sha256, engine_config_id, reason) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (time.time() if timestamp is None else timestamp, action, config_hash, target, mode,
                 size_multiplier, ramp_stage, kill_events_seen, file_sha256, engine_config_id, reason),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    def deployments(self, target: str | None = None, config_hash: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM deployments WHERE 1=1"
        args: list[str] = []
        if target is not None:
            q, args = q + " AND target=?", [*args, target]
        if config_hash is not None:
            q, args = q + " AND config_hash=?", [*args, config_hash]
        cur = self.conn.execute(q + " ORDER BY id", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def config(self, config_hash: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT config_json FROM configs WHERE config_hash=?", (config_hash,)
        ).fetchone()
        if row is None:
            raise KeyError(f"unknown config {config_hash}")
        return dict(json.loads(row[0]))

    def resolve_id(self, prefix: str) -> str:
        """A full config hash from a unique prefix (at least 8 characters)."""
        if len(prefix) < 8:
            raise KeyError(f"config id {prefix!r} is too short: give at least 8 characters")
        rows = self.conn.execute(
            "SELECT config_hash FROM configs WHERE config_hash LIKE ? ORDER BY config_hash", (prefix + "%",)
        ).fetchall()
        if not rows:
            raise KeyError(f"no config {prefix} in the registry {self.path}")
        if len(rows) > 1:
            raise KeyError(f"config id {prefix} is ambiguous ({len(rows)} matches)")
        return str(rows[0][0])
