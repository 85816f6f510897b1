"""Every risk limit at, just below and just above its threshold (values exact in binary floats).

The rules pinned here: the drawdown and daily-loss kills trip AT the limit (>=); the notional and
margin caps allow an order that lands exactly on the cap and block one a cent over; the slippage
guard blocks only a median above its threshold; max_open_positions refuses the position that would
exceed the count.
"""

from __future__ import annotations

import pytest

from engine.risk import AccountView, KillState, OrderRequest, RiskLimits, RiskManager

DAY = 86_400_000


def rm(**limits: float) -> RiskManager:
    return RiskManager(RiskLimits(**limits), alert=lambda k, m: None, clock=lambda: 1000.0)


@pytest.mark.parametrize(("equity", "tripped"), [(900.25, False), (900.0, True), (899.75, True)])
def test_drawdown_kill_trips_at_the_limit(equity: float, tripped: bool) -> None:
    r = rm(max_drawdown_pct=10)
    r.update_equity(1000.0, 0)
    r.update_equity(equity, 1)  # (1000 - 900) / 1000 * 100 == 10.0 exactly
    assert (r.status.state is KillState.CLOSE_ONLY) is tripped
    assert (
        r.check(OrderRequest("BTC", "entry", 10.0, 1.0), AccountView(equity)).reason == "close_only"
    ) is tripped


@pytest.mark.parametrize(("equity", "tripped"), [(9500.5, False), (9500.0, True), (9499.5, True)])
def test_daily_loss_limit_trips_at_the_limit(equity: float, tripped: bool) -> None:
    r = rm(daily_loss_limit_usd=500)
    day0 = 20_000 * DAY
    r.update_equity(10_000.0, day0)
    r.update_equity(equity, day0 + 1)
    assert (r.status.state is KillState.CLOSE_ONLY) is tripped


@pytest.mark.parametrize(("notional", "allowed"), [(499.75, True), (500.0, True), (500.25, False)])
def test_notional_per_order_cap(notional: float, allowed: bool) -> None:
    d = rm(max_notional_per_order_usd=500).check(
        OrderRequest("BTC", "entry", notional, 1.0), AccountView(10_000.0)
    )
    assert bool(d) is allowed and (allowed or d.reason == "max_notional_per_order")


@pytest.mark.parametrize(("notional", "allowed"), [(199.75, True), (200.0, True), (200.25, False)])
def test_total_notional_cap(notional: float, allowed: bool) -> None:
    acc = AccountView(10_000.0, frozenset({"ETH"}), 800.0, 0.0)
    d = rm(max_total_notional_usd=1000).check(OrderRequest("BTC", "entry", notional, 1.0), acc)
    assert bool(d) is allowed and (allowed or d.reason == "max_total_notional")


@pytest.mark.parametrize(("margin", "allowed"), [(999.75, True), (1000.0, True), (1000.25, False)])
def test_total_margin_cap(margin: float, allowed: bool) -> None:
    acc = AccountView(10_000.0, frozenset({"ETH"}), 0.0, 4000.0)  # cap 0.5 * 10,000 = 5,000
    d = rm(max_total_margin_pct=0.5).check(OrderRequest("BTC", "entry", 10.0, margin), acc)
    assert bool(d) is allowed and (allowed or d.reason == "max_total_margin")


@pytest.mark.parametrize(("median", "allowed"), [(9.5, True), (10.0, True), (10.5, False)])
def test_slippage_guard_blocks_above_the_threshold(median: float, allowed: bool) -> None:
    r = rm(slippage_guard_bps=10, slippage_window=5, slippage_min_fills=3)
    for bps in (1.0, median, 50.0):
        r.record_slippage(bps)
    assert r.slippage_median_bps() == median
    d = r.check(OrderRequest("BTC", "entry", 10.0, 1.0), AccountView(10_000.0))
    assert bool(d) is allowed and (allowed or d.reason == "slippage_guard")


@pytest.mark.parametrize(("open_now", "allowed"), [(1, True), (2, False), (3, False)])
def test_max_open_positions(open_now: int, allowed: bool) -> None:
    acc = AccountView(10_000.0, frozenset(["ETH", "SOL", "DOGE"][:open_now]))
    d = rm(max_open_positions=2).check(OrderRequest("BTC", "entry", 10.0, 1.0), acc)
    assert bool(d) is allowed and (allowed or d.reason == "max_open_positions")
