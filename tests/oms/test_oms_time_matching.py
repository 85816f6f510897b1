"""Fill-to-intent matching by time with several candidates at different distances and states.

A fill that carries no known order id, sibling hash or cloid is matched to the open, not yet fully
filled intent of the same symbol and side whose send time is NEAREST the fill, within the TTL.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from engine.oms import LiveOms
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.hl_fills import parse_fill
from exchange.model import Fill, Order

T = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T

    def __call__(self) -> int:
        return self.ms


def _sent(oms: LiveOms, clock: Clock, at_ms: int, decision: int, side: str = "BUY") -> str:
    clock.ms = at_ms
    intent, _ = oms.create_intent(
        Order("ETH", "open", "long" if side == "BUY" else "short", Decimal("0.5"), decision)
    )
    oms.note_send_attempt(intent.intent_id)
    return intent.intent_id


def _fill(time_ms: int, tid: int, side: str = "B") -> Fill:
    return parse_fill(
        {
            "coin": "ETH",
            "px": "2000",
            "sz": "0.1",
            "side": side,
            "time": time_ms,
            "dir": "Open Long" if side == "B" else "Open Short",
            "closedPnl": "0",
            "hash": f"0x{tid:064x}",
            "tid": tid,
            "oid": 900_000 + tid,  # unknown to the OMS
            "fee": "0.01",
            "feeToken": "USDC",
        }
    )


def test_nearest_open_candidate_wins_among_several(tmp_path: Path) -> None:
    clock = Clock()
    oms = LiveOms(tmp_path / "o.db", client_ids=HYPERLIQUID_CLIENT_IDS, match_ttl_ms=60_000, clock_ms=clock)
    far_before = _sent(oms, clock, T - 20_000, 1)
    near_after = _sent(oms, clock, T + 3_000, 2)
    nearest_but_full = _sent(oms, clock, T - 500, 3)
    near_before = _sent(oms, clock, T - 2_000, 4)
    other_side = _sent(oms, clock, T - 100, 5, side="SELL")
    out_of_ttl = _sent(oms, clock, T - 61_000, 6)
    with oms.tx() as db:  # sent in full but not yet settled: must not take more fills
        db.execute(
            "UPDATE oms_intents SET status='PARTIAL', filled_size=requested_size WHERE intent_id=?",
            (nearest_but_full,),
        )
    r = oms.ingest_fill(_fill(T, 1))
    assert r.matched_via == "time"
    assert r.intent_id == near_before, {
        "far_before": far_before,
        "near_after": near_after,
        "nearest_but_full": nearest_but_full,
        "near_before": near_before,
        "other_side": other_side,
        "out_of_ttl": out_of_ttl,
        "got": r.intent_id,
    }
    # The same fill time 2.6 s later is nearer to the intent sent after it.
    r2 = oms.ingest_fill(_fill(T + 1_000, 2))
    assert r2.intent_id == near_after
    oms.close()


def test_no_candidate_within_ttl_leaves_the_fill_unmatched(tmp_path: Path) -> None:
    clock = Clock()
    oms = LiveOms(tmp_path / "o.db", client_ids=HYPERLIQUID_CLIENT_IDS, match_ttl_ms=60_000, clock_ms=clock)
    _sent(oms, clock, T - 61_000, 1)
    r = oms.ingest_fill(_fill(T, 1))
    assert r.new and r.intent_id is None
    assert len(oms.unmatched_fills()) == 1
    oms.close()
