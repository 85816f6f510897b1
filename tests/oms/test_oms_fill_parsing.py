"""A venue fill (protocol doc: userFills) read field by field (exchange/hl_fills.py) into the venue
model's fill and on into the OMS, money as exact decimals.

The mutation run found that a fill's fee, fee token, realised PnL and direction could be read from
the wrong key (or not at all) without any OMS unit test noticing.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from engine.oms import LiveOms
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.hl_fills import parse_fill, parse_pushed

VENUE_FILL = {
    "coin": "ETH",
    "px": "2415.7",
    "sz": "0.0123",
    "side": "A",
    "time": 1_743_508_812_345,
    "startPosition": "0.05",
    "dir": "Close Long",
    "closedPnl": "-1.234567",
    "hash": "0x" + "ab" * 32,
    "oid": 987654,
    "crossed": True,
    "fee": "0.013372",
    "tid": 112233445566,
    "feeToken": "USDC",
    "cloid": "0x6169715F00000000000000000000ABCD",
    "twapId": None,
}


def test_every_field_is_read_exactly() -> None:
    f = parse_fill(VENUE_FILL)
    assert (f.symbol, f.side, f.direction) == ("ETH", "SELL", "Close Long")
    assert (f.price, f.size) == (Decimal("2415.7"), Decimal("0.0123"))
    assert (f.fee, f.fee_token, f.pnl) == (Decimal("0.013372"), "USDC", Decimal("-1.234567"))
    assert (f.fill_hash, f.fill_tid, f.oid, f.ts_ms) == (
        "0x" + "ab" * 32,
        112233445566,
        987654,
        1_743_508_812_345,
    )
    assert f.cloid == "0x6169715f00000000000000000000abcd"  # cloids compare lower-case
    assert f.signed_size == Decimal("-0.0123")
    buy = parse_fill({**VENUE_FILL, "side": "B", "feeToken": "HYPE"})
    assert buy.side == "BUY" and buy.signed_size == Decimal("0.0123") and buy.fee_token == "HYPE"


def test_missing_optional_fields_have_safe_defaults() -> None:
    bare = {k: VENUE_FILL[k] for k in ("coin", "px", "sz", "side", "time")}
    f = parse_fill(bare)
    assert (f.fee, f.fee_token, f.pnl, f.direction) == (Decimal(0), "USDC", Decimal(0), "")
    assert (f.fill_hash, f.fill_tid, f.oid, f.cloid) == ("", 0, None, None)


def test_ingest_keeps_the_money_as_the_venue_wrote_it(tmp_path: Path) -> None:
    oms = LiveOms(tmp_path / "o.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    r = oms.ingest_fill(parse_fill(VENUE_FILL))
    assert r.new and r.intent_id is None
    row = oms.db.execute(
        "SELECT symbol, side, price, size, fee_usd, fee_token, pnl_usd, fill_hash, fill_tid, order_id, cloid "
        "FROM oms_fills WHERE id=?",
        (r.fill_id,),
    ).fetchone()
    assert row == (
        "ETH", "SELL", "2415.7", "0.0123", "0.013372", "USDC", "-1.234567",
        "0x" + "ab" * 32, 112233445566, 987654, "0x6169715f00000000000000000000abcd",
    )  # fmt: skip
    assert oms.positions() == {"ETH": Decimal("-0.0123")}
    oms.close()


def test_a_malformed_push_costs_only_itself() -> None:
    """A stream batch with one push that is not a fill: that one is skipped (the poll adopts every
    real fill), the others come through typed."""
    good2 = {**VENUE_FILL, "tid": 2}
    out = parse_pushed([VENUE_FILL, {"coin": "ETH", "px": "x"}, good2])
    assert [f.fill_tid for f in out] == [112233445566, 2]


def test_a_stored_fill_reads_back_as_the_fill_that_was_written(tmp_path: Path) -> None:
    """The OMS hands fills back from its columns (no wire parsing above exchange/): every field,
    the venue's record included, comes back as it went in, matched or not."""
    oms = LiveOms(tmp_path / "o.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    sent = parse_fill(VENUE_FILL)
    oms.ingest_fill(sent)
    assert oms.unmatched_fills() == [sent]
    ((_, back, intent_id),) = oms.fills_for_kernel()
    assert back == sent and intent_id is None
    bare = parse_fill({k: VENUE_FILL[k] for k in ("coin", "px", "sz", "side", "time")} | {"tid": 5})
    oms.ingest_fill(bare)
    assert oms.unmatched_fills() == [sent, bare]
    oms.close()
