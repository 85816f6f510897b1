"""Tests written against the mutants that survived the risk manager's suite (docs/mutation.md).

Every block must say *blocked*, not only carry a reason: a decision whose reason is ``hard_kill``
but whose ``allowed`` is True would send the order.
"""

from __future__ import annotations

import math

import pytest

from engine.risk import AccountView, KillState, OrderRequest, RiskDecision, RiskLimits, RiskManager

DAY = 86_400_000
ACC = AccountView(equity=10_000.0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(limits: RiskLimits | None = None, **kw: object) -> RiskManager:
    return RiskManager(limits or RiskLimits(), alert=lambda k, m: None, clock=Clock(), **kw)  # type: ignore[arg-type]


def blocked(d: RiskDecision, reason: str) -> bool:
    return d.allowed is False and not d and d.reason == reason


def test_every_kill_and_rate_block_is_a_block() -> None:
    rm = make(RiskLimits(exits_per_min=1, cancels_per_min=1, entries_per_min=1, entries_per_symbol_per_min=5))
    assert rm.check(OrderRequest("BTC", "exit"), ACC).allowed is True
    assert blocked(rm.check(OrderRequest("BTC", "exit"), ACC), "rate_limit_exits")
    assert rm.check(OrderRequest("BTC", "cancel"), ACC).allowed is True
    assert blocked(rm.check(OrderRequest("BTC", "cancel"), ACC), "rate_limit_cancels")
    assert rm.check(OrderRequest("BTC", "entry", 10.0, 1.0), ACC).allowed is True
    assert blocked(rm.check(OrderRequest("ETH", "entry", 10.0, 1.0), ACC), "rate_limit_entries")
    per_symbol = make(RiskLimits(entries_per_min=10, entries_per_symbol_per_min=1))
    assert per_symbol.check(OrderRequest("BTC", "entry", 10.0, 1.0), ACC)
    assert blocked(
        per_symbol.check(OrderRequest("BTC", "entry", 10.0, 1.0), ACC), "rate_limit_symbol_entries"
    )
    halted = make(env_kill=KillState.HALT_ALL)
    for kind in ("entry", "exit", "cancel"):
        assert blocked(halted.check(OrderRequest("BTC", kind, 10.0, 1.0), ACC), "halt_all")  # type: ignore[arg-type]
    hard = make(hard_kill=True)
    for kind in ("entry", "exit", "cancel"):
        assert blocked(hard.check(OrderRequest("BTC", kind, 10.0, 1.0), ACC), "hard_kill")  # type: ignore[arg-type]


def test_internal_error_is_a_block_naming_the_exception() -> None:
    rm = make()
    d = rm.check(OrderRequest("BTC", "bogus"), ACC)  # type: ignore[arg-type]
    assert blocked(d, "risk_check_error:ValueError")


@pytest.mark.parametrize("equity", [0.0, -1.0, math.nan, math.inf])
def test_no_equity_blocks_entries(equity: float) -> None:
    assert blocked(make().check(OrderRequest("BTC", "entry", 10.0, 1.0), AccountView(equity)), "no_equity")


def test_blocked_counts_count_each_reason_once_per_block() -> None:
    rm = make(hard_kill=True)
    for _ in range(3):
        rm.check(OrderRequest("BTC", "exit"), ACC)
    rm.check(OrderRequest("BTC", "bogus"), ACC)  # type: ignore[arg-type]
    assert rm.blocked_counts == {"hard_kill": 3, "risk_check_error": 1}
    assert make().blocked_counts == {}


def test_a_drawdown_kill_survives_the_utc_day_roll() -> None:
    rm = make(RiskLimits(max_drawdown_pct=10, daily_loss_limit_usd=10_000))
    day0 = 20_000 * DAY
    rm.update_equity(1000.0, day0)
    rm.update_equity(850.0, day0 + 1)
    assert rm.status.state is KillState.CLOSE_ONLY and rm.status.reason.startswith("drawdown")
    rm.update_equity(850.0, day0 + DAY)  # a new UTC day releases a daily-loss kill, not this one
    assert rm.status.state is KillState.CLOSE_ONLY and rm.status.reason.startswith("drawdown")


def test_a_daily_loss_kill_is_released_by_the_day_roll_with_its_reason() -> None:
    rm = make(RiskLimits(daily_loss_limit_usd=100))
    day0 = 20_000 * DAY
    rm.update_equity(1000.0, day0)
    rm.update_equity(899.0, day0 + 1)
    assert rm.status.reason.startswith("daily loss")
    rm.update_equity(899.0, day0 + DAY)
    assert rm.status.state is KillState.OFF and rm.status.reason == ""


def test_fractional_limits_are_enforced() -> None:
    dd = make(RiskLimits(max_drawdown_pct=0.5))
    dd.update_equity(1000.0, 0)
    dd.update_equity(994.0, 1)  # 0.6 %
    assert dd.status.state is KillState.CLOSE_ONLY
    loss = make(RiskLimits(daily_loss_limit_usd=0.5))
    loss.update_equity(1000.0, 0)
    loss.update_equity(999.25, 1)
    assert loss.status.state is KillState.CLOSE_ONLY
    cap = make(RiskLimits(max_notional_per_order_usd=0.5, max_total_notional_usd=0.75))
    assert blocked(cap.check(OrderRequest("BTC", "entry", 0.6, 0.1), ACC), "max_notional_per_order")
    assert blocked(
        cap.check(OrderRequest("BTC", "entry", 0.5, 0.1), AccountView(10_000.0, frozenset(), 0.5)),
        "max_total_notional",
    )
    one = make(RiskLimits(max_open_positions=1))
    assert blocked(
        one.check(OrderRequest("BTC", "entry", 1.0, 0.1), AccountView(10_000.0, frozenset({"ETH"}))),
        "max_open_positions",
    )


def test_a_disabled_slippage_guard_never_blocks() -> None:
    rm = make(RiskLimits(slippage_guard_bps=0, slippage_window=5, slippage_min_fills=1))
    for _ in range(5):
        rm.record_slippage(500.0)
    assert rm.check(OrderRequest("BTC", "entry", 10.0, 1.0), ACC).allowed is True


def test_a_sub_one_bps_guard_is_enforced() -> None:
    rm = make(RiskLimits(slippage_guard_bps=0.5, slippage_window=5, slippage_min_fills=1))
    rm.record_slippage(0.75)
    assert blocked(rm.check(OrderRequest("BTC", "entry", 10.0, 1.0), ACC), "slippage_guard")
