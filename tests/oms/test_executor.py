"""Executor: exact rounding, nonces, and the official SDK path against the local exchange."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.oms import LiveOms
from exchange.executor import (
    HyperliquidExecutor,
    MemoryNonceStore,
    MonotonicNonce,
    is_valid_price,
    round_price,
    round_size,
    slippage_price,
)
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.sim.harness import SimServer

D = Decimal


@pytest.mark.parametrize(
    ("px", "szd", "want"),
    [
        ("1234.56", 1, "1234.6"),
        ("0.0012345", 0, "0.001234"),  # half-even
        ("0.012345", 1, "0.01234"),
        ("123456.7", 5, "123457"),  # integers are always valid
        ("30135.04", 5, "30135"),
        ("99999.5", 0, "100000"),
        ("1.23456789", 4, "1.23"),  # 6 - szDecimals caps decimals before sig figs do
    ],
)
def test_round_price(px: str, szd: int, want: str) -> None:
    out = round_price(D(px), szd)
    assert out == D(want)
    assert is_valid_price(out, szd)


def test_round_size_is_down() -> None:
    assert round_size(D("0.123456789"), 4) == D("0.1234")
    assert round_size(D("1.9999"), 0) == D("1")
    assert round_size(D("0.00009"), 4) == D("0")


@pytest.mark.parametrize(
    ("mid", "szd", "buy", "sell"),
    [
        ("30135.0", 5, "31641", "28629"),
        ("1903.95", 4, "1999.1", "1808.8"),
        ("0.069277", 0, "0.07274", "0.065814"),
    ],
)
def test_slippage_price_rounds_inward(mid: str, szd: int, buy: str, sell: str) -> None:
    b = slippage_price(D(mid), True, D("0.05"), szd)
    s = slippage_price(D(mid), False, D("0.05"), szd)
    assert b == D(buy) and s == D(sell)
    assert b <= D(mid) * D("1.05") and s >= D(mid) * D("0.95")


def test_nonce_monotonic_within_and_across_restart(tmp_path: Path) -> None:
    frozen = [1_700_000_000_000]
    oms = LiveOms(tmp_path / "n.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    n = MonotonicNonce(oms, clock_ms=lambda: frozen[0])
    seen = [n.next() for _ in range(50)]
    assert seen == sorted(set(seen)) and len(seen) == 50
    oms.close()
    # Restart with a clock that went backwards: still above every nonce used before.
    frozen[0] -= 10_000
    oms2 = LiveOms(tmp_path / "n.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    n2 = MonotonicNonce(oms2, clock_ms=lambda: frozen[0])
    assert n2.next() == seen[-1] + 1
    oms2.close()
    mem = MonotonicNonce(MemoryNonceStore(5), clock_ms=lambda: 1)
    assert [mem.next(), mem.next()] == [6, 7]


def test_market_open_close_limit_cancel_leverage(sim: SimServer, executor: HyperliquidExecutor) -> None:
    ex = executor
    ex.update_leverage("ETH", 5)
    cloid = HYPERLIQUID_CLIENT_IDS.for_intent("exec-test-1")
    ack = ex.market_open("ETH", True, D("0.123456789"), slippage=D("0.01"), cloid=cloid)
    assert ack.status == "filled" and ack.filled_sz == D("0.1234") and ack.cloid == cloid
    pos = ex.positions()["ETH"]
    assert pos.size == D("0.1234") and pos.leverage == 5
    st = ex.order_status_by_cloid(cloid)
    assert st.known and st.status == "filled" and st.oid == ack.oid
    assert not ex.order_status_by_cloid(HYPERLIQUID_CLIENT_IDS.for_intent("never-sent")).known
    # A resting limit far below the market, then cancel it.
    mid = ex.mid("BTC")
    rest = ex.limit(
        "BTC", True, D("0.001"), mid * D("0.8"), cloid=HYPERLIQUID_CLIENT_IDS.for_intent("exec-rest")
    )
    assert rest.status == "open" and rest.oid is not None
    assert [o["oid"] for o in ex.open_orders()] == [rest.oid]
    assert ex.cancel("BTC", rest.oid)
    assert ex.open_orders() == []
    close = ex.market_close("ETH", slippage=D("0.01"))
    assert close is not None and close.status == "filled" and close.filled_sz == D("0.1234")
    assert "ETH" not in ex.positions()
    assert ex.market_close("ETH") is None
    acct = ex.account()
    assert acct.account_value > 0
    fills = ex.fills_by_time(0)
    assert len(fills) >= 2 and all(f.fill_tid > 0 and f.fill_hash for f in fills)


def test_reject_is_a_rejected_status(sim: SimServer, executor: HyperliquidExecutor) -> None:
    ack = executor.market_open("ETH", True, D("0.001"))  # about $2: under the $10 minimum
    assert ack.status == "rejected" and ack.rejected and "minimum value" in (ack.error or "")


def test_many_actions_in_one_millisecond_do_not_collide(
    sim: SimServer, executor: HyperliquidExecutor
) -> None:
    # The SDK's wall-clock nonce would repeat here; ours never does.
    for _ in range(5):
        executor.update_leverage("SOL", 3)


def test_rounding_has_one_home_in_exchange_meta() -> None:
    import exchange.executor as ex_mod
    import exchange.meta as meta_mod

    for name in ("round_price", "round_size", "is_valid_price", "price_decimals", "slippage_price"):
        assert getattr(ex_mod, name) is getattr(meta_mod, name), name
    assert ex_mod.AssetMeta is meta_mod.AssetMeta


@pytest.mark.parametrize(
    ("px", "szd", "want"),
    [
        (0.1 + 0.2, 2, "0.3"),  # a float's shortest repr, not its binary expansion
        (123456, 0, "123456"),  # an integer price is valid at any size
        ("0.000012345678", 0, "0.000012"),  # 6 - szDecimals decimals
        ("0.0123456", 2, "0.0123"),  # 4 decimals at szDecimals 2 before 5 significant figures
        ("9.99996", 0, "10.000"),  # rounding up across a power of ten keeps 5 significant figures
    ],
)
def test_meta_round_price_edges(px: float | str, szd: int, want: str) -> None:
    from exchange.meta import round_price as meta_round_price

    assert meta_round_price(px, szd) == D(want)


def test_executor_sizes_and_prices_through_meta(executor: HyperliquidExecutor) -> None:
    a = executor.asset("ETH")
    assert a.asset == a.index and a.sz_decimals == executor.meta["ETH"].sz_decimals
    # A price with too many digits and a size past szDecimals are rounded (size down) before sending.
    mid = executor.mid("ETH")
    ack = executor.limit("ETH", True, D("0.0123456789"), mid * D("0.5") + D("0.000001234"))
    assert ack.status == "open", ack
    rows = executor.open_orders()
    assert D(str(rows[0]["origSz"])) == round_size(D("0.0123456789"), a.sz_decimals)
    assert is_valid_price(D(str(rows[0]["limitPx"])), a.sz_decimals)
    assert executor.cancel("ETH", int(rows[0]["oid"]))
