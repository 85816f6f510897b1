"""How an intent's status follows from its fills and what the venue said (the OMS's ``_settle``).

Each case: an intent for 0.5, the venue's ack (done or resting, with its total filled size or
none), then fills matched by order id; the status must be exactly the one the rules give.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.oms import IntentStatus, LiveOms
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.hl_fills import parse_fill
from exchange.model import Fill, Order

D = Decimal
S = IntentStatus


def _fill(size: str, tid: int) -> Fill:
    return parse_fill({"coin": "ETH", "px": "2000", "sz": size, "side": "B", "time": 1000 + tid, "dir": "Open Long",
            "closedPnl": "0", "hash": f"0x{tid:064x}", "tid": tid, "oid": 77, "fee": "0", "feeToken": "USDC"})  # fmt: skip


@pytest.mark.parametrize(
    ("done", "total", "fills", "status"),
    [
        (False, None, ["0.5"], S.FILLED),  # filled the request: filled, even while the venue rests it
        (False, None, ["0.2", "0.3"], S.FILLED),
        (False, None, ["0.3"], S.PARTIAL),
        (True, "0.3", ["0.3"], S.FILLED),  # the venue is done at 0.3 and all of it arrived
        (True, "0.3", ["0.2"], S.PARTIAL),  # done at 0.3, a fill still on its way
        (True, None, ["0.2"], S.FILLED),  # done, no total known: what arrived is all there is
        (True, "0", [], S.CANCELLED),  # done with nothing filled (an IOC that found no liquidity)
        (True, None, [], S.CANCELLED),
        (True, "0.3", [], S.SENT),  # done at 0.3 but no fill yet: wait for the fills
        (False, None, [], S.SENT),  # resting, nothing yet
    ],
)
def test_status_from_fills_and_the_venue(
    tmp_path: Path, done: bool, total: str | None, fills: list[str], status: IntentStatus
) -> None:
    oms = LiveOms(tmp_path / "o.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    intent, _ = oms.create_intent(Order("ETH", "open", "long", D("0.5"), 1))
    oms.note_send_attempt(intent.intent_id)
    oms.record_ack(
        intent.intent_id, oid=77, order_type="IOC", venue_status="filled" if done else "resting",
        total_sz=None if total is None else D(total), done=done,
    )  # fmt: skip
    for i, size in enumerate(fills):
        assert oms.ingest_fill(_fill(size, i + 1)).intent_id == intent.intent_id
    got = oms.intent(intent.intent_id)
    assert got is not None and got.status is status
    assert got.filled_size == sum((D(s) for s in fills), D(0))
    oms.close()
