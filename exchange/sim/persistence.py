"""SQLite persistence of accounts, orders, fills, funding payments and nonces (``--state-db``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from .accounts import Account
from .matching import Engine
from .nonces import NonceTracker
from .orders import Order

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (address TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (oid INTEGER PRIMARY KEY, user TEXT NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (tid INTEGER NOT NULL, user TEXT NOT NULL, time INTEGER NOT NULL, data TEXT NOT NULL,
                                  PRIMARY KEY (tid, user));
CREATE TABLE IF NOT EXISTS fundings (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, time INTEGER NOT NULL,
                                     data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (signer TEXT PRIMARY KEY, data TEXT NOT NULL);
"""


class StateStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, check_same_thread=False)
        self.conn.executescript(SCHEMA)
        self.conn.commit()
        self.dirty_signers: set[str] = set()

    def close(self) -> None:
        self.conn.close()

    def get_kv(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_kv(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))
        self.conn.commit()

    def load(self, engine: Engine, nonces: NonceTracker) -> bool:
        """Restore state into a fresh engine; False when the database is empty."""
        meta = self.get_kv("engine")
        if meta is None:
            return False
        engine.next_oid = int(meta["next_oid"])
        engine.next_tid = int(meta["next_tid"])
        engine.next_lid = int(meta.get("next_lid", 1))
        engine.t = max(engine.t, int(meta["t"]))
        for (data,) in self.conn.execute("SELECT data FROM accounts"):
            acct = Account.from_dict(json.loads(data))
            engine.accounts[acct.address] = acct
        for (data,) in self.conn.execute("SELECT data FROM orders ORDER BY oid"):
            o = Order.from_dict(json.loads(data))
            engine.orders[o.oid] = o
            if o.cloid is not None:
                engine.cloids[(o.user, o.cloid)] = o.oid
            if o.status == "open" and not o.waiting_for_parent and o.coin in engine.resting:
                if o.is_trigger and not o.triggered:
                    engine.triggers[o.coin].append(o)
                else:
                    engine.resting[o.coin].append(o)
        for user, data in self.conn.execute("SELECT user, data FROM fills ORDER BY time, tid"):
            engine.fills.setdefault(user, []).append(json.loads(data))
        for user, data in self.conn.execute("SELECT user, data FROM fundings ORDER BY id"):
            engine.fundings.setdefault(user, []).append(json.loads(data))
        for signer, data in self.conn.execute("SELECT signer, data FROM nonces"):
            nonces.restore(signer, [int(x) for x in json.loads(data)])
        return True

    def flush(self, engine: Engine, nonces: NonceTracker) -> None:
        """Write what changed since the last flush, in one transaction."""
        c = self.conn
        with c:
            for addr in engine.dirty_accounts:
                acct = engine.accounts.get(addr)
                if acct is not None:
                    c.execute(
                        "INSERT OR REPLACE INTO accounts (address, data) VALUES (?, ?)",
                        (addr, json.dumps(acct.to_dict())),
                    )
            for oid in engine.dirty_orders:
                o = engine.orders.get(oid)
                if o is not None:
                    c.execute(
                        "INSERT OR REPLACE INTO orders (oid, user, status, data) VALUES (?, ?, ?, ?)",
                        (oid, o.user, o.status, json.dumps(o.to_dict())),
                    )
            c.executemany(
                "INSERT OR REPLACE INTO fills (tid, user, time, data) VALUES (?, ?, ?, ?)",
                [(f["tid"], u, f["time"], json.dumps(f)) for u, f in engine.new_fills],
            )
            c.executemany(
                "INSERT INTO fundings (user, time, data) VALUES (?, ?, ?)",
                [(u, f["time"], json.dumps(f)) for u, f in engine.new_fundings],
            )
            for signer in self.dirty_signers:
                c.execute(
                    "INSERT OR REPLACE INTO nonces (signer, data) VALUES (?, ?)",
                    (signer, json.dumps(nonces.snapshot(signer))),
                )
            meta = {
                "next_oid": engine.next_oid,
                "next_tid": engine.next_tid,
                "next_lid": engine.next_lid,
                "t": engine.t,
            }
            c.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('engine', ?)", (json.dumps(meta),))
        engine.dirty_accounts.clear()
        engine.dirty_orders.clear()
        engine.new_fills.clear()
        engine.new_fundings.clear()
        self.dirty_signers.clear()
