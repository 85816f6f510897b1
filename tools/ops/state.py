"""The versioned state export (``export_state.py``) that ``ai-quant-bt replay --init-state`` reads.

Format (``format: ai-quant-state``, ``version: 1``)::

    {"format": "ai-quant-state", "version": 1, "mode": "paper" | "live",
     "exported_at_ms": ..., "source": {...}, "cash": ..., "positions": [{symbol, side, size,
     entry_price, leverage}], "notes": [...], "state": <the kernel's save_state() object>}

The backtester unwraps ``state`` (a top-level object with ``state`` and no ``cash_usd``), so the
file is accepted by ``--init-state`` as it is; the other keys are for people and tools.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ops.common import EXIT_FAILED, OpsError, trading_db_read_only

FORMAT = "ai-quant-state"
VERSION = 1


@dataclass(frozen=True)
class ExportPosition:
    symbol: str
    side: str  # long | short
    size: float
    entry_price: float
    leverage: float


@dataclass
class Export:
    mode: str
    source: dict[str, Any]
    state: dict[str, Any]
    positions: list[ExportPosition]
    notes: list[str] = field(default_factory=list)
    exported_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "mode": self.mode,
            "exported_at_ms": self.exported_at_ms,
            "source": self.source,
            "cash": self.state.get("cash_usd"),
            "positions": [asdict(p) for p in self.positions],
            "notes": self.notes,
            "state": self.state,
        }
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def kernel_positions(state: dict[str, Any]) -> dict[str, tuple[str, float]]:
    return {s: (str(p["side"]), float(p["quantity"])) for s, p in (state.get("positions") or {}).items()}


def export_paper(db_path: Path, state_file: Path | None) -> Export:
    """From the paper trading DB: the kernel state committed with the last loop, cross-checked
    against ``position_state`` (same transaction, so they must agree)."""
    if not db_path.is_file():
        raise OpsError(f"paper trading DB {db_path} does not exist (AI_QUANT_DB_PATH / --db)")
    with trading_db_read_only(db_path) as conn:
        kv = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM kv")}
        rows = conn.execute(
            "SELECT symbol, side, size, entry_price, leverage FROM position_state ORDER BY symbol"
        ).fetchall()
        (schema,) = conn.execute("SELECT MAX(id) FROM schema_migrations").fetchone()
    if "kernel_state" not in kv:
        raise OpsError(f"{db_path}: no kernel state yet (the daemon has not completed a loop)")
    state = json.loads(kv["kernel_state"])
    positions = [
        ExportPosition(str(s), str(sd), float(sz), float(px), float(lev)) for s, sd, sz, px, lev in rows
    ]
    db_pos = {p.symbol: (p.side, p.size) for p in positions}
    k_pos = kernel_positions(state)
    if {s: v[0] for s, v in db_pos.items()} != {s: v[0] for s, v in k_pos.items()} or any(
        abs(db_pos[s][1] - k_pos[s][1]) > 1e-9 * max(1.0, abs(k_pos[s][1])) for s in db_pos
    ):
        raise OpsError(
            f"{db_path}: position_state {db_pos} disagrees with the kernel state {k_pos}; not exported",
            EXIT_FAILED,
        )
    notes = []
    if state_file is not None and state_file.is_file() and json.loads(state_file.read_text()) != state:
        notes.append(
            f"{state_file} differs from the DB's kernel state (the DB's committed state is exported)"
        )
    paper = json.loads(kv.get("paper_account", "{}") or "{}")
    source = {
        "db": str(db_path),
        "schema_version": schema,
        "loops": int(kv.get("loops", "0") or 0),
        "last_bar_t": json.loads(kv.get("last_bar_t", "{}") or "{}"),
        "paper_balance": paper.get("balance"),
    }
    return Export("paper", source, state, positions, notes)


def live_positions_from_venue(url: str, address: str) -> tuple[Decimal, dict[str, ExportPosition]]:
    """(account value, positions) from the venue's clearinghouseState (official SDK)."""
    from hyperliquid.info import Info

    try:
        st = Info(url, skip_ws=True, timeout=10).user_state(address)
    except Exception as exc:
        raise OpsError(
            f"venue {url}: cannot read the account ({type(exc).__name__}: {exc})", EXIT_FAILED
        ) from None
    out: dict[str, ExportPosition] = {}
    for ap in st.get("assetPositions", []):
        p = ap["position"]
        szi = Decimal(str(p["szi"]))
        if szi == 0:
            continue
        lev = p.get("leverage", {}).get("value", 1)
        out[p["coin"]] = ExportPosition(
            p["coin"], "long" if szi > 0 else "short", float(abs(szi)), float(p["entryPx"]), float(lev)
        )
    return Decimal(str(st["marginSummary"]["accountValue"])), out


def venue_time_ms(url: str) -> int:
    """The venue's clock (exchangeStatus; the local exchange may replay history), else ours."""
    from hyperliquid.info import Info

    try:
        st = Info(url, skip_ws=True, timeout=10).post("/info", {"type": "exchangeStatus"})
        if isinstance(st, dict) and isinstance(st.get("time"), int):
            return int(st["time"])
    except Exception:
        pass
    return int(time.time() * 1000)


def export_live(
    url: str, address: str, oms_db: Path | None, config: Path | None, symbols_mode: str = "live"
) -> Export:
    """Live positions as the venue reports them. The OMS's kernel state (``oms_kv.kernel_state``)
    is used when its positions match the venue's; otherwise a kernel state is rebuilt from the
    venue positions (entry ATR unknown: the kernel's ATR-based exits then start from the first bar)."""
    import bt_runtime

    value, venue = live_positions_from_venue(url, address)
    notes: list[str] = []
    source: dict[str, Any] = {"venue": url, "address": address, "account_value": str(value)}
    if oms_db is not None and oms_db.is_file():
        from engine.oms_store import OmsStore

        raw = None
        try:
            store = OmsStore.open_read_only(oms_db)
            if store is not None:
                try:
                    raw = store.get_kv("kernel_state")
                finally:
                    store.close()
        except sqlite3.DatabaseError:  # not an SQLite file: no kernel state to use
            raw = None
        source["oms_db"] = str(oms_db)
        if raw:
            state = json.loads(raw)
            want = {s: (p.side, p.size) for s, p in venue.items()}
            have = kernel_positions(state)
            if {s: v[0] for s, v in have.items()} == {s: v[0] for s, v in want.items()} and all(
                abs(have[s][1] - want[s][1]) <= 1e-9 * max(1.0, want[s][1]) for s in want
            ):
                return Export("live", source, state, list(venue.values()), notes)
            notes.append(f"OMS kernel state {have} disagrees with the venue {want}: rebuilt from the venue")
    cfg_json = None
    if config is not None:
        from engine.config import load_config

        cfg_json = json.dumps(load_config(config, None, symbols_mode).merged)
    upnl = Decimal(0)
    info_state = None
    if venue:
        from hyperliquid.info import Info

        info_state = Info(url, skip_ws=True, timeout=10).user_state(address)
        upnl = sum(
            (Decimal(str(ap["position"]["unrealizedPnl"])) for ap in info_state["assetPositions"]), Decimal(0)
        )
    cash = value - upnl  # the kernel's equity is cash + unrealised PnL
    k = bt_runtime.Kernel(cfg_json, initial_cash=float(cash), fill_mode="external")
    now = venue_time_ms(url)
    for p in venue.values():
        k.apply_fill(p.symbol, "buy" if p.side == "long" else "sell", p.size, p.entry_price, 0.0, now, "medium",
                     max(1.0, p.leverage), 0)  # fmt: skip
    notes.append("kernel state rebuilt from venue positions (cash = account value - unrealised PnL)")
    return Export("live", source, json.loads(k.save_state()), list(venue.values()), notes)
