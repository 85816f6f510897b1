"""What the loop commits, restores and reports: its state in the trading DB, the kernel state
file, and the heartbeat line.

* :func:`save`: positions, the kernel state, the account (paper or venue view), the last bar time
  per symbol and the sub-bar schedule, in the loop's transaction (a crash loses a whole loop or
  nothing).
* :func:`load`: that state as committed last (None before the first commit); a restart and a failed
  loop both continue from it.
* :func:`write_state_file`: the kernel state file, rewritten atomically after a good loop.
* :func:`publish_heartbeat`: the heartbeat line to the log, the DB and systemd.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.execution import Execution
from engine.systemd_watchdog import Notifier
from engine.trading_db import PositionRow, TradingDB

if TYPE_CHECKING:
    from strategy.kernel_orchestrator import KernelOrchestrator

log = logging.getLogger("daemon.loop")


def state_digest(kernel_state: str, paper_state: str) -> str:
    return hashlib.sha256((kernel_state + "\n" + paper_state).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Saved:
    """The loop's state as committed last."""

    kernel: str
    account: str  # the execution backend's state (kv ``exec.state_key``)
    last_t: dict[str, int]
    loops: int
    sub_bars: str | None

    @property
    def digest(self) -> str:
        return state_digest(self.kernel, self.account)


def load(db: TradingDB, state_key: str) -> Saved | None:
    k, p, lt = db.get("kernel_state"), db.get(state_key), db.get("last_bar_t")
    if not (k and p and lt):
        return None
    last_t = {s: int(t) for s, t in json.loads(lt).items()}
    return Saved(k, p, last_t, int(db.get("loops") or 0), db.get("sub_bars"))


def save(
    db: TradingDB, orch: KernelOrchestrator, ex: Execution, last_t: Mapping[str, int], sub_bars: str | None,
    now: int,
) -> None:  # fmt: skip
    kpos = orch.positions()
    rows = []
    for sym, p in sorted(ex.positions.items()):
        k = kpos.get(sym)
        rows.append(
            PositionRow(
                symbol=sym, side=p.side, size=p.size, entry_price=p.entry_price, leverage=p.leverage,
                margin_used=p.margin_used, trailing_sl=k.trailing_sl if k else None, last_funding_time=p.last_funding_ms,
                adds_count=p.adds, tp1_taken=bool(k and k.tp1_taken), last_add_time=p.last_add_ms or None,
                entry_adx_threshold=k.entry_adx_threshold if k else None,
            )
        )  # fmt: skip
    db.replace_positions(rows, now)
    db.put("kernel_state", orch.kernel.save_state())
    db.put(ex.state_key, ex.to_json())
    db.put("last_bar_t", json.dumps(dict(last_t), sort_keys=True))
    if sub_bars is not None:
        db.put("sub_bars", sub_bars)


def write_state_file(orch: KernelOrchestrator | None, path: Path | None) -> None:
    if path is None or orch is None:
        return
    try:
        orch.save_state(path)
    except OSError as exc:
        log.warning("kernel state file not written: %s", exc)


def publish_heartbeat(line: str, error: str, db: TradingDB, notifier: Notifier) -> None:
    """Log, store and tell systemd one heartbeat line (READY only after a good loop)."""
    log.info("%s%s", line, f" error={error}" if error else "")
    try:
        db.log(line)
    except Exception as exc:
        log.warning("heartbeat not stored: %s", type(exc).__name__)
    if not error:
        notifier.ready(line)
    notifier.watchdog()
    notifier.status(line)


__all__ = ["Saved", "load", "publish_heartbeat", "save", "state_digest", "write_state_file"]
