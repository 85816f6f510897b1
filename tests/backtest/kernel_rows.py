"""A bt_runtime fill as the comparable row the replay-parity tests collect (one definition for
test_bt_replay_parity.py and test_bt_subbars.py; bt_helpers.py is kept byte-stable because its
bytes are in the golden report's fingerprint)."""

from __future__ import annotations

from typing import Any


def fill_row(f: Any) -> tuple[Any, ...]:
    return (
        f.timestamp_ms,
        f.symbol,
        f.kind,
        f.side,
        f.quantity,
        f.price,
        f.fee_usd,
        f.pnl_usd,
        f.reason_code,
    )
