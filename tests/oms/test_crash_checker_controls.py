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
