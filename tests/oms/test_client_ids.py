"""The cloid format behind the venue seam (exchange/hl_cloid.py, exchange.venue.ClientOrderIds).

Every cloid must stay byte-identical to the ones the OMS made before the format moved out of
engine/: an OMS file keeps its cloids across versions, and a restart recognises an order sent before
a crash by the cloid the same intent gives again. Pinned three ways: vectors from the definition
(``0x`` + b"aiq_" + the first 12 bytes of sha256(intent id)) over the FIPS 180-2 sha256 test
vectors, the definition recomputed independently over many ids, and an OMS file written by main's
code before the move (tests/oms/golden/oms_before_cloid_seam.sql) that a restarted OMS dedupes against.
"""

from __future__ import annotations

import hashlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from engine.oms import IntentStatus, LiveOms, dedupe_key, intent_id_for
from exchange.hl_cloid import CLOID_PREFIX, HYPERLIQUID_CLIENT_IDS, HyperliquidClientIds
from exchange.model import Order
from exchange.venue import ClientOrderIds

GOLDEN = Path(__file__).parent / "golden" / "oms_before_cloid_seam.sql"
T0 = 1_700_000_000_000


def spec_cloid(intent_id: str, prefix: bytes = b"aiq_") -> str:
    """The definition, computed through the hex digest (not the code's byte slicing)."""
    return "0x" + prefix.hex() + hashlib.sha256(intent_id.encode()).hexdigest()[: 2 * (16 - len(prefix))]


def test_fixed_vectors_from_the_definition() -> None:
    # sha256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ... and sha256("") = e3b0c442 98fc1c14
    # 9afbf4c8 996fb924 ... (FIPS 180-2 / well known); "aiq_" is 61 69 71 5f.
    ids = HYPERLIQUID_CLIENT_IDS
    assert ids.for_intent("abc") == "0x6169715fba7816bf8f01cfea414140de"
    assert ids.for_intent("") == "0x6169715fe3b0c44298fc1c149afbf4c8"
    assert HyperliquidClientIds(b"").for_intent("abc") == "0xba7816bf8f01cfea414140de5dae2223"
    assert HyperliquidClientIds(b"x" * 15).for_intent("abc") == "0x" + "78" * 15 + "ba"
    # a kernel decision end to end: dedupe key -> intent id -> cloid, as main made it
    iid = intent_id_for(dedupe_key("open", "eth", "buy", T0))
    assert iid == hashlib.sha256(b"OPEN:ETH:BUY:1700000000000").hexdigest()[:32]
    assert iid == "e50c8411280a38b3801518447f7370ef"
    assert ids.for_intent(iid) == "0x6169715fc276b133a45beb19cff79253"


def test_same_bytes_as_the_definition_over_many_ids() -> None:
    for n in range(500):
        iid = intent_id_for(dedupe_key("OPEN" if n % 2 else "CLOSE", f"S{n % 7}", "BUY", T0 + n * 60_000))
        c = HYPERLIQUID_CLIENT_IDS.for_intent(iid)
        assert c == spec_cloid(iid) and len(c) == 34 and c == c.lower()
    assert CLOID_PREFIX == b"aiq_"


def test_ours_by_prefix_and_prefix_length_checked() -> None:
    ids = HYPERLIQUID_CLIENT_IDS
    c = ids.for_intent("abc")
    assert ids.is_ours(c) and ids.is_ours(c.upper().replace("0X", "0x"))
    assert not ids.is_ours("0x" + "00" * 16) and not ids.is_ours(None) and not ids.is_ours("")
    assert not HyperliquidClientIds(b"bot_").is_ours(c)
    with pytest.raises(ValueError, match="shorter than 16 bytes"):
        HyperliquidClientIds(b"x" * 16)


class TickIds:
    """Another venue's format: the OMS stores whatever its ``client_ids`` gives, knowing none."""

    def for_intent(self, intent_id: str) -> str:
        return "t-" + intent_id[:8]

    def is_ours(self, cloid: str | None) -> bool:
        return bool(cloid) and str(cloid).startswith("t-")


def test_the_oms_asks_the_venue_for_the_cloid(tmp_path: Path) -> None:
    other: ClientOrderIds = TickIds()
    oms = LiveOms(tmp_path / "o.db", client_ids=other)
    try:
        intent, new = oms.create_intent(Order("ETH", "open", "long", Decimal("0.1"), T0))
        assert new and intent.cloid == "t-" + intent.intent_id[:8]
        assert oms.client_ids.is_ours(intent.cloid)
    finally:
        oms.close()
    hl = LiveOms(tmp_path / "hl.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        intent, _ = hl.create_intent(Order("ETH", "open", "long", Decimal("0.1"), T0))
        assert intent.cloid == "0x6169715fc276b133a45beb19cff79253"  # as main made it
    finally:
        hl.close()


def test_a_restart_on_an_oms_file_written_before_the_move_dedupes(tmp_path: Path) -> None:
    path = tmp_path / "oms_live.db"
    conn = sqlite3.connect(path)
    conn.executescript(GOLDEN.read_text())
    conn.close()
    oms = LiveOms(path, client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        before = {i.intent_id: i for i in oms.intents()}
        assert len(before) == 3
        # the same three decisions again: each maps to its stored intent, nothing new is created
        again = [
            Order("ETH", "open", "long", Decimal("0.05"), T0, reason_code="t"),
            Order("BTC", "open", "short", Decimal("0.001"), T0 + 300_000, reason_code="t"),
            Order("SOL", "close", "long", Decimal("2"), T0 + 600_000, reason_code="t"),
        ]
        for order in again:
            intent, new = oms.create_intent(order)
            assert not new and intent == before[intent.intent_id]
            # the stored cloid is the one the venue format gives the intent today, and is ours
            assert intent.cloid == HYPERLIQUID_CLIENT_IDS.for_intent(intent.intent_id)
            assert HYPERLIQUID_CLIENT_IDS.is_ours(intent.cloid)
            assert oms.intent_by_cloid(intent.cloid) == intent
        assert len(oms.intents()) == 3
        eth = oms.intent_by_cloid("0x6169715fc276b133a45beb19cff79253")
        assert eth is not None and eth.status is IntentStatus.FILLED and eth.filled_size == Decimal("0.05")
        # a new decision on the old file gets a fresh intent and cloid beside the old ones
        fresh, new = oms.create_intent(Order("ETH", "close", "short", Decimal("0.05"), T0 + 900_000))
        assert new and fresh.cloid == spec_cloid(fresh.intent_id)
    finally:
        oms.close()
