"""Hyperliquid's fill record (``userFills`` pushes, ``userFillsByTime`` pages) read into the model's
:class:`~exchange.model.Fill` (its venue facts; the booking facts are the live backend's), field by
field, money as exact decimals.

The one place that knows the wire keys (protocol doc: userFills): the executor's ``fills_by_time``
and the user fill streams (exchange/ws.py) hand on only the typed value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from exchange.model import Fill

log = logging.getLogger(__name__)


def parse_fill(f: Mapping[str, Any]) -> Fill:
    """One wire fill; raises KeyError/ValueError when a required field (coin, px, sz, side, time)
    is missing or malformed."""
    return Fill(
        symbol=str(f["coin"]),
        is_buy=f["side"] == "B",
        size=Decimal(str(f["sz"])),
        price=Decimal(str(f["px"])),
        ts_ms=int(f["time"]),
        fee=Decimal(str(f.get("fee", "0"))),
        pnl=Decimal(str(f.get("closedPnl", "0"))),
        fill_hash=str(f.get("hash", "")),
        fill_tid=int(f.get("tid", 0)),
        oid=int(f["oid"]) if f.get("oid") is not None else None,
        cloid=str(f["cloid"]).lower() if f.get("cloid") else None,
        fee_token=str(f.get("feeToken", "USDC")),
        direction=str(f.get("dir", "")),
        raw=dict(f),
    )


def parse_pushed(fills: Iterable[Mapping[str, Any]]) -> list[Fill]:
    """A stream's batch: a malformed push is logged and skipped (one line), not allowed to cost
    the rest of the batch; the reconciler's ``userFillsByTime`` pass still adopts every real fill."""
    out: list[Fill] = []
    for f in fills:
        try:
            out.append(parse_fill(f))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            log.warning("user fill push skipped, not a fill (%s: %s)", type(exc).__name__, exc)
    return out


__all__ = ["parse_fill", "parse_pushed"]
