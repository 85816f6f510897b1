"""Positions the operator owns: coins ``tools/manual_trade.py open`` marked, which the daemon leaves alone.

The mark lives in the live OMS's ``oms_kv`` (key ``operator_positions``, JSON ``{symbol: {"id",
"since_ms"}}``), the file the tools and the daemon already share, so it survives restarts of both.
The venue holds one net position per coin, so the mark is per coin: while it is set the daemon's
kernel sends nothing for that coin (no entries, no adds, no exits), the fills still reach the
kernel's books and every risk limit counts the position, and the monitor shows it as ``operator``.
``manual_trade.py close`` (once flat), ``flat_now.py --mode live`` (once flat) and
``manual_trade.py release`` remove the mark.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from engine.oms_store import OmsStore

log = logging.getLogger("engine.operator_positions")

KEY = "operator_positions"


class OperatorMarkError(ValueError):
    """The stored marks are not readable (the daemon's loop fails, nothing is sent, until repaired)."""


def _load(raw: str | None) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        # Never read a damaged mark as "no operator coins": that would hand them to the kernel.
        # The daemon's loop fails (alerted, nothing sent) until the value is repaired.
        raise OperatorMarkError(
            f"oms_kv {KEY!r} is not a JSON object: write the marks back (or delete the row to hand every "
            "coin to the strategy)"
        )
    return {str(k): dict(v) if isinstance(v, dict) else {} for k, v in doc.items()}


def operator_symbols(oms: OmsStore) -> dict[str, dict[str, Any]]:
    """The marked coins (``oms``: the live OMS, an ``engine.oms.LiveOms``)."""
    return _load(oms.get_kv(KEY))


def mark(oms: OmsStore, symbol: str, order_id: str, now_ms: int) -> bool:
    """Mark ``symbol`` as the operator's (before the order is sent). True if it was not marked."""

    def add(raw: str | None) -> str | None:
        marks = _load(raw)
        if symbol in marks:
            return None
        marks[symbol] = {"id": order_id, "since_ms": int(now_ms)}
        return json.dumps(marks, sort_keys=True)

    if not oms.update_kv(KEY, add):
        return False
    log.info("%s marked as the operator's (%s)", symbol, order_id)
    return True


def release(oms: OmsStore, symbol: str) -> bool:
    """Hand ``symbol`` back to the strategy. True if it was marked."""

    def drop(raw: str | None) -> str | None:
        marks = _load(raw)
        if symbol not in marks:
            return None
        del marks[symbol]
        return json.dumps(marks, sort_keys=True)

    if not oms.update_kv(KEY, drop):
        return False
    log.info("%s released to the strategy", symbol)
    return True


__all__ = ["KEY", "OperatorMarkError", "mark", "operator_symbols", "release"]
