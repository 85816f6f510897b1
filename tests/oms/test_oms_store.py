"""LiveOms: durability settings, dedupe, the status machine, fill dedupe and matching."""

from __future__ import annotations

import sqlite3
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.oms import (
    IllegalTransition,
    IntentStatus,
    LiveOms,
    OmsStore,
    dedupe_key,
    intent_id_for,
)
from engine.oms_model import KnownOrders
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.hl_fills import parse_fill
from exchange.model import Fill, Order

D = Decimal


def req(**kw: Any) -> Order:
    base: dict[str, Any] = dict(
        symbol="ETH", kind="open", side="long", quantity=D("0.5"), decision_ts_ms=1000
    )
    base.update(kw)
    return Order(**base)


def fill(**kw: Any) -> Fill:
    f: dict[str, Any] = {
        "coin": "ETH",
        "px": "2000.5",
        "sz": "0.5",
        "side": "B",
        "time": 1000,
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": "0xabc",
        "oid": 77,
        "crossed": True,
        "fee": "0.45",
        "tid": 1,
        "feeToken": "USDC",
    }
    f.update(kw)
    return parse_fill(f)


def test_file_mode_wal_and_full_sync(tmp_path: Path) -> None:
    oms = LiveOms(tmp_path / "x" / "live.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    assert stat.S_IMODE((tmp_path / "x" / "live.db").stat().st_mode) == 0o600
    assert oms.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oms.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    oms.close()


def test_cloid_is_deterministic_prefixed_16_bytes() -> None:
    ids = HYPERLIQUID_CLIENT_IDS
    c = ids.for_intent("abc")
    assert c == ids.for_intent("abc") and c != ids.for_intent("abd")
    assert len(c) == 34 and c.startswith("0x" + b"aiq_".hex())
    assert ids.is_ours(c) and not ids.is_ours("0x" + "00" * 16)


def test_intent_dedupe_per_decision(oms: LiveOms) -> None:
    a, created = oms.create_intent(req())
    assert created and a.status is IntentStatus.NEW
    assert a.intent_id == intent_id_for(dedupe_key("OPEN", "ETH", "BUY", 1000))
    b, created2 = oms.create_intent(req(quantity=D("9")))
    assert not created2 and b.intent_id == a.intent_id and b.size == D("0.5")
    c, created3 = oms.create_intent(req(decision_ts_ms=2000))
    assert created3 and c.cloid != a.cloid


def test_status_machine_rejects_illegal_moves(oms: LiveOms) -> None:
    a, _ = oms.create_intent(req())
    oms.set_status(a.intent_id, IntentStatus.WOULD)
    with pytest.raises(IllegalTransition):
        oms.set_status(a.intent_id, IntentStatus.SENT)
    b, _ = oms.create_intent(req(decision_ts_ms=5))
    oms.set_status(b.intent_id, IntentStatus.REJECTED, "x")
    with pytest.raises(IllegalTransition):
        oms.set_status(b.intent_id, IntentStatus.FILLED)


def test_ack_then_fills_settle_and_duplicates_are_ignored(oms: LiveOms) -> None:
    a, _ = oms.create_intent(req())
    oms.record_ack(a.intent_id, oid=77, order_type="IOC", venue_status="filled", total_sz=D("0.5"), done=True)
    assert oms.intent(a.intent_id).status is IntentStatus.SENT  # type: ignore[union-attr]
    r1 = oms.ingest_fill(fill(sz="0.2", tid=1))
    assert r1.new and r1.intent_id == a.intent_id and r1.matched_via == "oid"
    assert oms.intent(a.intent_id).status is IntentStatus.PARTIAL  # type: ignore[union-attr]
    assert not oms.ingest_fill(fill(sz="0.2", tid=1)).new  # duplicate push
    r2 = oms.ingest_fill(fill(sz="0.3", tid=2, oid=None))
    assert r2.matched_via == "hash"  # sibling fill with the same hash
    got = oms.intent(a.intent_id)
    assert got is not None and got.status is IntentStatus.FILLED and got.filled_size == D("0.5")
    assert oms.positions() == {"ETH": D("0.5")}


def test_match_by_cloid_then_time(oms: LiveOms) -> None:
    a, _ = oms.create_intent(req())
    r = oms.ingest_fill(fill(oid=999, hash="0x1", cloid=a.cloid))
    assert r.intent_id == a.intent_id and r.matched_via == "cloid"
    b, _ = oms.create_intent(req(symbol="SOL", decision_ts_ms=3))
    oms.note_send_attempt(b.intent_id)
    sent = oms.intent(b.intent_id)
    assert sent is not None and sent.sent_ts_ms is not None
    r2 = oms.ingest_fill(fill(coin="SOL", oid=555, hash="0x2", tid=9, time=sent.sent_ts_ms + 50))
    assert r2.intent_id == b.intent_id and r2.matched_via == "time"


def test_unmatched_fill_is_kept_retried_and_alerted_once(tmp_path: Path) -> None:
    alerts: list[tuple[str, str]] = []
    oms = LiveOms(
        tmp_path / "u.db", client_ids=HYPERLIQUID_CLIENT_IDS, alert=lambda k, m: alerts.append((k, m))
    )
    r = oms.ingest_fill(fill(coin="BTC", oid=4242, hash="0x9", tid=5))
    assert r.new and r.intent_id is None
    assert oms.retry_unmatched(alert_after_attempts=3) == (0, 0)
    assert oms.retry_unmatched(alert_after_attempts=3) == (0, 1)
    assert oms.retry_unmatched(alert_after_attempts=3) == (0, 0)
    assert len(alerts) == 1 and alerts[0][0] == "unmatched_fill"
    assert len(oms.unmatched_fills()) == 1  # never dropped
    assert oms.positions() == {"BTC": D("0.5")}
    # The intent shows up later (e.g. resolved by cloid): the retry adopts the fill.
    a, _ = oms.create_intent(req(symbol="BTC"))
    oms.record_ack(
        a.intent_id, oid=4242, order_type="IOC", venue_status="filled", total_sz=D("0.5"), done=True
    )
    assert oms.retry_unmatched() == (1, 0)
    assert oms.intent(a.intent_id).status is IntentStatus.FILLED  # type: ignore[union-attr]
    assert oms.events("UNMATCHED_FILL")
    oms.close()


def test_kernel_state_and_applied_fills_commit_together(oms: LiveOms) -> None:
    oms.ingest_fill(fill())
    pending = oms.fills_for_kernel()
    assert len(pending) == 1
    oms.commit_kernel_state('{"k":1}', [pending[0][0]])
    assert oms.fills_for_kernel() == [] and oms.get_kv("kernel_state") == '{"k":1}'


def test_order_ids_and_positions_of_the_oms_own_orders(oms: LiveOms) -> None:
    a, _ = oms.create_intent(req())
    b, _ = oms.create_intent(req(symbol="BTC", decision_ts_ms=2000))
    oms.record_ack(a.intent_id, oid=77, order_type="Ioc", venue_status="filled", total_sz=D("0.5"), done=True)
    assert oms.known_orders() == KnownOrders(cloids=frozenset({a.cloid, b.cloid}), oids=frozenset({77}))
    assert oms.ingest_fill(fill()).intent_id == a.intent_id
    foreign = oms.ingest_fill(fill(coin="SOL", side="A", sz="3", oid=999, hash="0xf", tid=9))
    assert foreign.intent_id is None
    assert oms.intent_positions() == {"ETH": D("0.5")}
    assert oms.positions() == {"ETH": D("0.5"), "SOL": D("-3")}
    assert oms.fill_count() == 2 and oms.fill_keys() == {("0xabc", 1), ("0xf", 9)}


def test_update_kv_reads_changes_and_writes_in_one_go(oms: LiveOms) -> None:
    assert oms.update_kv("k", lambda old: None) is False and oms.get_kv("k") is None
    assert oms.update_kv("k", lambda old: f"{old}+1") is True and oms.get_kv("k") == "None+1"
    assert oms.update_kv("k", lambda old: old + "+1" if old else None) is True
    assert oms.get_kv("k") == "None+1+1"

    def boom(old: str | None) -> str | None:
        raise ValueError("damaged")

    with pytest.raises(ValueError, match="damaged"):
        oms.update_kv("k", boom)
    assert oms.get_kv("k") == "None+1+1"  # rolled back, the connection still usable
    oms.set_kv("k", "x")
    assert oms.get_kv("k") == "x"


def test_read_only_store_beside_a_writer_creates_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "oms_live.db"
    assert OmsStore.open_read_only(path) is None and not path.exists()
    path.touch()
    assert OmsStore.open_read_only(path) is None and path.read_bytes() == b""  # no tables: not an OMS
    writer = LiveOms(path, client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        intent, _ = writer.create_intent(req())
        writer.set_kv("kernel_state", "{}")
        reader = OmsStore.open_read_only(path)
        assert reader is not None
        try:
            assert reader.intent(intent.intent_id) == intent and reader.get_kv("kernel_state") == "{}"
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader.set_kv("kernel_state", "changed")
            writer.set_kv("later", "1")  # the writer carries on; the reader sees it
            assert reader.get_kv("later") == "1"
        finally:
            reader.close()
    finally:
        writer.close()
    after = OmsStore.open_read_only(path)  # after the writer has gone too
    assert after is not None and after.get_kv("later") == "1"
    after.close()
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all, and long enough to be read as a header" * 4)
    with pytest.raises(sqlite3.DatabaseError):
        OmsStore.open_read_only(tmp_path / "junk.db")
