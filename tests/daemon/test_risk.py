"""RiskManager: fail closed, token buckets, kill switches, drawdown and daily loss."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.risk import (
    AccountView,
    KillState,
    OrderRequest,
    RiskLimits,
    RiskManager,
    TokenBucket,
    parse_kill_word,
)
from exchange.model import Order

DAY = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(limits: RiskLimits | None = None, **kw: object) -> tuple[RiskManager, list[tuple[str, str]], Clock]:
    alerts: list[tuple[str, str]] = []
    clock = Clock()
    rm = RiskManager(
        limits or RiskLimits(),
        alert=lambda k, m: alerts.append((k, m)),
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )
    return rm, alerts, clock


ACC = AccountView(equity=10_000.0)


def entry(sym: str = "BTC", notional: float = 100.0, margin: float = 10.0) -> OrderRequest:
    return OrderRequest(sym, "entry", notional, margin)


def test_exception_inside_a_check_blocks_and_alerts() -> None:
    rm, alerts, _ = make()

    class Boom(AccountView):
        @property
        def open_symbols(self) -> frozenset[str]:  # type: ignore[override]
            raise RuntimeError("broken account view")

    bad = Boom.__new__(Boom)
    object.__setattr__(bad, "equity", 10_000.0)
    rm.limits = RiskLimits(max_open_positions=3)
    d = rm.check(entry(), bad)
    assert not d.allowed and d.reason.startswith("risk_check_error")
    assert any(k == "risk_error" for k, _ in alerts)
    # An unknown order kind is an internal error too: blocked.
    d2 = rm.check(OrderRequest("BTC", "bogus"), ACC)  # type: ignore[arg-type]
    assert not d2.allowed


def test_token_bucket_refills_over_time() -> None:
    b = TokenBucket(60, now=0.0)  # 1 per second, burst 60
    assert all(b.take(0.0) for _ in range(60))
    assert not b.take(0.0)
    assert b.take(1.0)
    assert not b.take(1.0)
    assert TokenBucket(0).take(0.0)  # disabled


def test_entry_buckets_global_and_per_symbol() -> None:
    rm, _, clock = make(RiskLimits(entries_per_min=10, entries_per_symbol_per_min=2))
    assert rm.check(entry("BTC"), ACC)
    assert rm.check(entry("BTC"), ACC)
    assert rm.check(entry("BTC"), ACC).reason == "rate_limit_symbol_entries"
    for sym in "ABCDEFGH":
        assert rm.check(entry(sym), ACC), sym
    assert rm.check(entry("ZZZ"), ACC).reason == "rate_limit_entries"
    clock.t += 60
    assert rm.check(entry("BTC"), ACC)


def test_exit_and_cancel_buckets() -> None:
    rm, _, _ = make(RiskLimits(exits_per_min=2, cancels_per_min=1))
    assert rm.check(OrderRequest("BTC", "exit"), ACC)
    assert rm.check(OrderRequest("BTC", "exit"), ACC)
    assert rm.check(OrderRequest("BTC", "exit"), ACC).reason == "rate_limit_exits"
    assert rm.check(OrderRequest("BTC", "cancel"), ACC)
    assert rm.check(OrderRequest("BTC", "cancel"), ACC).reason == "rate_limit_cancels"


def test_position_and_notional_caps() -> None:
    lim = RiskLimits(
        max_open_positions=2,
        max_notional_per_order_usd=500,
        max_total_notional_usd=1000,
        max_total_margin_pct=0.5,
    )
    rm, _, _ = make(lim)
    two = AccountView(10_000.0, frozenset({"A", "B"}), 800.0, 100.0)
    assert rm.check(entry("C"), two).reason == "max_open_positions"
    assert rm.check(entry("A", 100), two)  # an add to an open symbol is not a new position
    assert rm.check(entry("A", 600), two).reason == "max_notional_per_order"
    assert rm.check(entry("A", 300), two).reason == "max_total_notional"
    heavy = AccountView(10_000.0, frozenset(), 0.0, 4_990.0)
    assert rm.check(entry("X", 100, 20), heavy).reason == "max_total_margin"
    assert not rm.check(entry("X"), AccountView(0.0))


def test_an_order_is_checked_as_an_exit_or_an_entry_of_its_notional_and_margin() -> None:
    """The loop asks about the Order itself: reduce-only is an exit (allowed under close_only),
    anything else an entry whose margin is notional / leverage, a leverage under 1 counting as 1."""
    rm, _, _ = make(RiskLimits(max_total_margin_pct=0.5))
    acc = AccountView(1_000.0, frozenset(), 0.0, 450.0)  # 50 USD of margin left

    def order(notional: str, leverage: str, reduce_only: bool = False) -> Order:
        return Order("BTC", "open", "long", Decimal("0.01"), 1, notional_usd=Decimal(notional),
                     leverage=Decimal(leverage), reduce_only=reduce_only)  # fmt: skip

    assert rm.check_order(order("200", "5"), acc)  # 40 USD of margin
    assert rm.check_order(order("200", "3"), acc).reason == "max_total_margin"  # 66.7 USD
    assert rm.check_order(order("40", "0.5"), acc)  # leverage 0.5 counts as 1: 40 USD
    assert rm.check_order(order("60", "0.5"), acc).reason == "max_total_margin"
    rm.set_env_kill(KillState.CLOSE_ONLY)
    assert rm.check_order(order("10", "5"), acc).reason == "close_only"
    assert rm.check_order(order("60", "0.5", reduce_only=True), acc)  # an exit


def test_slippage_guard_pauses_entries_not_exits() -> None:
    rm, _, _ = make(RiskLimits(slippage_guard_bps=10, slippage_window=5, slippage_min_fills=3))
    for bps in (2, 3):
        rm.record_slippage(bps)
    assert rm.check(entry(), ACC)  # too few fills yet
    for bps in (20, 25, 30):
        rm.record_slippage(bps)
    assert rm.slippage_median_bps() == 20
    assert rm.check(entry(), ACC).reason == "slippage_guard"
    assert rm.check(OrderRequest("BTC", "exit"), ACC)


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("close_only", KillState.CLOSE_ONLY),
        ("CLOSE\n", KillState.CLOSE_ONLY),
        ("halt_all", KillState.HALT_ALL),
        ("stop", KillState.HALT_ALL),
        ("clear", KillState.OFF),
        ("resume", KillState.OFF),
        ("off", KillState.OFF),
        ("", KillState.OFF),
        ("banana", None),
    ],
)
def test_kill_words(word: str, state: KillState | None) -> None:
    assert parse_kill_word(word) is state


def test_kill_file_engages_and_releases_within_one_poll(tmp_path: Path) -> None:
    f = tmp_path / "kill"
    rm, alerts, _ = make(kill_file=f)
    assert rm.poll_kill_file().state is KillState.OFF
    f.write_text("close_only\n")
    rm.poll_kill_file()
    assert rm.check(entry(), ACC).reason == "close_only"
    assert rm.check(OrderRequest("BTC", "exit"), ACC)
    f.write_text("halt_all")
    rm.poll_kill_file()
    assert rm.check(OrderRequest("BTC", "exit"), ACC).reason == "halt_all"
    f.write_text("clear")
    rm.poll_kill_file()
    assert rm.check(entry(), ACC)
    assert sum(1 for k, _ in alerts if k == "kill_switch") == 3
    f.write_text("nonsense")
    rm.poll_kill_file()
    assert rm.status.state is KillState.OFF  # unknown word: state kept, alerted
    assert alerts[-1][0] == "kill_switch"


def test_env_kill_and_hard_kill() -> None:
    rm, alerts, _ = make(env_kill=KillState.CLOSE_ONLY)
    assert rm.status.state is KillState.CLOSE_ONLY and alerts  # alerted at start
    assert not rm.check(entry(), ACC)
    assert rm.check(OrderRequest("BTC", "exit"), ACC)
    rm.set_hard_kill(True)
    assert rm.check(OrderRequest("BTC", "exit"), ACC).reason == "hard_kill"
    assert rm.check(OrderRequest("BTC", "cancel"), ACC).reason == "hard_kill"
    assert rm.status.label() == "hard"


def test_drawdown_kill_from_high_water_mark_until_cleared(tmp_path: Path) -> None:
    f = tmp_path / "kill"
    rm, alerts, _ = make(RiskLimits(max_drawdown_pct=10), kill_file=f)
    rm.update_equity(10_000, 0)
    rm.update_equity(12_000, 1)
    rm.update_equity(11_000, 2)
    assert rm.check(entry(), ACC)
    rm.update_equity(10_700, 3)  # 10.8% below 12,000
    assert rm.status.state is KillState.CLOSE_ONLY and "drawdown" in rm.status.reason
    assert rm.check(entry(), ACC).reason == "close_only"
    rm.update_equity(12_500, 4)  # recovering does not release it
    assert rm.status.state is KillState.CLOSE_ONLY
    f.write_text("clear")
    rm.poll_kill_file()
    assert rm.status.state is KillState.OFF
    rm.poll_kill_file()  # the same clear word again releases nothing new
    assert any("drawdown" in m for _, m in alerts)


def test_daily_loss_limit_resets_at_utc_midnight() -> None:
    rm, _, _ = make(RiskLimits(daily_loss_limit_usd=500))
    day0 = 20_000 * DAY
    rm.update_equity(10_000, day0 + 1000)
    rm.update_equity(9_600, day0 + 2000)
    assert rm.status.state is KillState.OFF
    rm.update_equity(9_450, day0 + DAY - 1)
    assert rm.status.state is KillState.CLOSE_ONLY
    rm.update_equity(9_450, day0 + DAY)  # 00:00 UTC: a new day, a new start
    assert rm.status.state is KillState.OFF
    rm.update_equity(9_000, day0 + DAY + 5)
    assert rm.status.state is KillState.OFF  # 450 lost today


def test_limits_from_config(tmp_path: Path) -> None:
    from engine.config import load_config

    (tmp_path / "s.yaml").write_text("global:\n  trade: {max_open_positions: 4, max_total_margin_pct: 0.6}\n")
    lim = RiskLimits.from_config(load_config(tmp_path / "s.yaml").model, max_drawdown_pct=5)
    assert (lim.max_open_positions, lim.max_total_margin_pct, lim.max_drawdown_pct) == (4, 0.6, 5)


def test_order_allowed_is_the_one_rule_for_daemon_and_operator() -> None:
    from engine.risk import KillStatus, order_allowed

    off, co, halt = KillStatus(), KillStatus(KillState.CLOSE_ONLY), KillStatus(KillState.HALT_ALL)
    hard = KillStatus(KillState.OFF, hard=True)
    rows = {
        # (kill, reduces_risk, operator): allowed
        ("off", False, False): True, ("off", True, False): True, ("off", False, True): True, ("off", True, True): True,
        ("co", False, False): False, ("co", True, False): True, ("co", False, True): False, ("co", True, True): True,
        # halt_all: the daemon sends nothing; only the operator's reduce-only close goes out
        ("halt", False, False): False, ("halt", True, False): False, ("halt", False, True): False, ("halt", True, True): True,
        ("hard", False, False): False, ("hard", True, False): False, ("hard", False, True): False, ("hard", True, True): False,
    }  # fmt: skip
    kills = {"off": off, "co": co, "halt": halt, "hard": hard}
    for (name, reduces, operator), want in rows.items():
        kill = kills[name]
        got = order_allowed(kill, reduces_risk=reduces, operator=operator)
        assert got.allowed is want, (kill, reduces, operator, got)
        if not want:
            assert got.reason == ("hard_kill" if kill.hard else kill.state.value)
    # The risk manager asks the same rule for the daemon's orders.
    rm, _, _ = make()
    for word, entry_ok, exit_ok in (("close_only", False, True), ("halt_all", False, False)):
        rm.set_env_kill(KillState(word))
        assert rm.check(entry(), ACC).allowed is entry_ok
        assert rm.check(OrderRequest("BTC", "exit"), ACC).allowed is exit_ok
        assert rm.check(OrderRequest("BTC", "cancel"), ACC).allowed is exit_ok
