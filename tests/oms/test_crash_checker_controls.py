"""Negative controls for the crash harness's checker (`tools/crash_harness.py` `_check`).

A checker that reports 0 duplicates, 0 lost fills and 0 mismatches is only worth something if it
can report anything else. One real trader life (OMS + executor + reconciler against the local
exchange) builds a clean state; each test plants exactly one defect, in the OMS DB or in the venue,
and requires the checker to count it.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from exchange.sim.harness import SimServer

from .conftest import new_wallet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import crash_harness


@dataclasses.dataclass
class Life:
    sim: SimServer
    addr: str
    db: Path


@pytest.fixture
def life(sim: SimServer, tmp_path: Path) -> Iterator[Life]:
    w = new_wallet()
    sim.deposit(w.address, 1_000_000)
    db = tmp_path / "live.db"
    key = "0x" + w.key.hex().removeprefix("0x")
    crash_harness._trader_life(sim.base_url, key, str(db), [0, 1, 2], None, 0)
    addr = Account.from_key(key).address.lower()
    yield Life(sim, addr, db)


def _check(life: Life, db: Path | None = None) -> dict[str, Any]:
    return crash_harness._check(life.sim, life.addr, db or life.db)


def _planted_db(life: Life, tmp_path: Path, sql: str, *args: Any) -> Path:
    copy = tmp_path / "planted.db"
    shutil.copy(life.db, copy)
    conn = sqlite3.connect(copy)
    with conn:
        assert conn.execute(sql, args).rowcount == 1
    conn.close()
    return copy


def test_clean_life_checks_clean(life: Life) -> None:
    c = _check(life)
    assert c["venue_orders"] == 3 and c["venue_fills"] >= 3, c
    assert (c["duplicates"], c["lost"], c["double"], c["position_mismatch"]) == (0, 0, 0, 0), c


def test_counts_a_duplicate_order_at_the_venue(life: Life) -> None:
    def plant(v: Any) -> None:
        o = next(o for o in v.engine.orders.values() if o.user == life.addr and o.cloid)
        oid = max(v.engine.orders) + 1
        v.engine.orders[oid] = dataclasses.replace(o, oid=oid)

    life.sim.call(plant)
    assert _check(life)["duplicates"] == 1


def test_counts_a_lost_fill(life: Life, tmp_path: Path) -> None:
    db = _planted_db(life, tmp_path, "DELETE FROM oms_fills WHERE id = (SELECT MIN(id) FROM oms_fills)")
    c = _check(life, db)
    assert c["lost"] == 1
    assert c["double"] == 1  # the intent's filled size no longer equals its fills
    assert c["position_mismatch"] == 1


def test_counts_a_double_booked_fill(life: Life, tmp_path: Path) -> None:
    cols = "ts_ms, symbol, intent_id, order_id, cloid, action, side, pos_type, price, size, notional, fee_usd, fee_token, pnl_usd, fill_tid, first_seen_ms"
    db = _planted_db(
        life,
        tmp_path,
        f"INSERT INTO oms_fills ({cols}, fill_hash) SELECT {cols}, fill_hash || 'x' FROM oms_fills "
        "WHERE id = (SELECT MIN(id) FROM oms_fills)",
    )
    c = _check(life, db)
    assert c["double"] == 1 and c["position_mismatch"] == 1
    assert c["lost"] == 0


def test_counts_a_position_mismatch(life: Life) -> None:
    def plant(v: Any) -> None:
        p = next(p for p in v.engine.accounts[life.addr].positions.values() if p.szi != 0)
        p.szi = p.szi * 2 if isinstance(p.szi, Decimal) else type(p.szi)(p.szi * 2)

    life.sim.call(plant)
    c = _check(life)
    assert c["position_mismatch"] == 1
    assert (c["duplicates"], c["lost"], c["double"]) == (0, 0, 0)


# ---- the daemon driver's extra checks (`_check_daemon`): trades booked once, kernel = venue --------


@dataclasses.dataclass
class DaemonFiles:
    """What `_check_daemon` reads of a daemon: the OMS file and the trading DB's trades and kv."""

    oms: Path
    db: Path


def _daemon_files(life: Life, tmp_path: Path) -> DaemonFiles:
    """A trading DB that booked every venue fill once and whose kernel holds the venue's positions."""
    fills = life.sim.call(lambda v: [dict(f) for f in v.engine.fills.get(life.addr, [])])
    pos = life.sim.call(
        lambda v: {c: float(p.szi) for c, p in v.engine.accounts[life.addr].positions.items() if p.szi != 0}
    )
    db = tmp_path / "trading.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "CREATE TABLE trades (id INTEGER PRIMARY KEY, action TEXT, fill_hash TEXT, fill_tid INTEGER)"
        )
        conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany(
            "INSERT INTO trades (action, fill_hash, fill_tid) VALUES ('OPEN', ?, ?)",
            [(str(f["hash"]), int(f["tid"])) for f in fills],
        )
        kernel = {s: {"side": "long" if q > 0 else "short", "quantity": abs(q)} for s, q in pos.items()}
        conn.execute(
            "INSERT INTO kv VALUES ('kernel_state', ?)", (crash_harness.json.dumps({"positions": kernel}),)
        )
    conn.close()
    return DaemonFiles(life.db, db)


def _check_daemon(life: Life, files: DaemonFiles, sql: str = "", *args: Any) -> dict[str, Any]:
    if sql:
        conn = sqlite3.connect(files.db)
        with conn:
            assert conn.execute(sql, args).rowcount == 1
        conn.close()
    return crash_harness._check_daemon(life.sim, life.addr, files)  # type: ignore[arg-type]


DAEMON_KEYS = (
    "duplicates",
    "lost",
    "double",
    "position_mismatch",
    "unbooked",
    "double_booked",
    "kernel_mismatch",
)


def test_daemon_checks_clean(life: Life, tmp_path: Path) -> None:
    c = _check_daemon(life, _daemon_files(life, tmp_path))
    assert c["venue_fills"] >= 3 and all(c[k] == 0 for k in DAEMON_KEYS), c


def test_daemon_check_counts_a_fill_never_booked_in_trades(life: Life, tmp_path: Path) -> None:
    files = _daemon_files(life, tmp_path)
    c = _check_daemon(life, files, "DELETE FROM trades WHERE id = (SELECT MIN(id) FROM trades)")
    assert c["unbooked"] == 1 and c["double_booked"] == 0, c


def test_daemon_check_counts_a_fill_booked_twice(life: Life, tmp_path: Path) -> None:
    files = _daemon_files(life, tmp_path)
    c = _check_daemon(
        life, files, "INSERT INTO trades (action, fill_hash, fill_tid) SELECT action, fill_hash, fill_tid "
        "FROM trades WHERE id = (SELECT MIN(id) FROM trades)",
    )  # fmt: skip
    assert c["double_booked"] == 1 and c["unbooked"] == 0, c


def test_daemon_check_counts_a_kernel_position_off_by_one_unit(life: Life, tmp_path: Path) -> None:
    """The soak's real finding in miniature: the kernel 0.00001 away from the venue."""
    files = _daemon_files(life, tmp_path)
    conn = sqlite3.connect(files.db)
    state = crash_harness.json.loads(
        conn.execute("SELECT value FROM kv WHERE key='kernel_state'").fetchone()[0]
    )
    sym = next(iter(state["positions"]))
    state["positions"][sym]["quantity"] += 0.00001
    conn.close()
    c = _check_daemon(
        life, files, "UPDATE kv SET value=? WHERE key='kernel_state'", crash_harness.json.dumps(state)
    )
    assert c["kernel_mismatch"] == 1 and c["position_mismatch"] == 0, c
    assert c["kernel_positions"][sym] != c["venue_positions"][sym]
