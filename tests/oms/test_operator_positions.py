"""The operator's coins in the OMS file (engine.operator_positions): durable, shared, fail closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.oms import LiveOms
from engine.operator_positions import KEY, OperatorMarkError, mark, operator_symbols, release
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS


def test_marks_are_shared_through_the_file_and_survive_reopening(tmp_path: Path) -> None:
    db = tmp_path / "oms_live.db"
    # two processes' connections to one file
    tool, daemon = (LiveOms(db, client_ids=HYPERLIQUID_CLIENT_IDS) for _ in range(2))
    try:
        assert operator_symbols(daemon) == {}
        assert mark(tool, "ETH", "op-1", 1_000) is True
        assert mark(tool, "ETH", "op-2", 2_000) is False  # already the operator's: first mark kept
        assert operator_symbols(daemon) == {"ETH": {"id": "op-1", "since_ms": 1_000}}
    finally:
        tool.close()
        daemon.close()
    again = LiveOms(db, client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        assert set(operator_symbols(again)) == {"ETH"}
        assert release(again, "ETH") is True and release(again, "ETH") is False
        assert operator_symbols(again) == {}
    finally:
        again.close()


def test_a_damaged_mark_is_an_error_never_an_empty_set(tmp_path: Path) -> None:
    oms = LiveOms(tmp_path / "oms_live.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        oms.set_kv(KEY, "[not json")
        # Reading it as "no operator coins" would hand them to the kernel: refuse instead.
        with pytest.raises(OperatorMarkError, match="operator_positions"):
            operator_symbols(oms)
        with pytest.raises(OperatorMarkError):
            mark(oms, "BTC", "x", 1)
        assert oms.get_kv(KEY) == "[not json"  # not overwritten
    finally:
        oms.close()
