"""exchange/retry.py: the one retry policy (waits, bounded tries, what is raised), and the executor's
reads under it against the local exchange."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from engine.oms import IntentStatus, LiveOms
from exchange.executor import HyperliquidExecutor
from exchange.model import Order
from exchange.retry import Backoff
from exchange.sim.harness import SimServer
from exchange.venue import QueryError
from strategy.broker_adapter import BrokerAdapter


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


def test_waits_double_from_first_up_to_max() -> None:
    p = Backoff(retries=6, first_s=0.05, max_s=1.0)
    assert [p.wait_s(k) for k in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert Backoff(retries=2, first_s=0.25).wait_s(3) == 2.0  # no cap unless one is given


@pytest.mark.parametrize("bad", [dict(retries=-1, first_s=1.0), dict(retries=1, first_s=1.0, max_s=0.5)])
def test_a_policy_that_cannot_be_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        Backoff(**bad)  # type: ignore[arg-type]


def test_retries_what_is_retryable_then_returns() -> None:
    slept: list[float] = []
    answers: list[object] = [Transient("a"), Transient("b"), "ok"]

    def fn() -> str:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return str(a)

    p = Backoff(retries=3, first_s=0.05, max_s=1.0)
    assert p.call(fn, retryable=lambda e: isinstance(e, Transient), sleep=slept.append) == "ok"
    assert slept == [0.05, 0.1] and answers == []


def test_gives_up_after_the_retries_with_the_last_exception() -> None:
    slept: list[float] = []
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise Transient(f"try {len(calls)}")

    with pytest.raises(Transient, match="try 3"):
        Backoff(retries=2, first_s=0.1).call(
            fn, retryable=lambda e: isinstance(e, Transient), sleep=slept.append
        )
    assert len(calls) == 3 and slept == [0.1, 0.2]


def test_what_is_not_retryable_is_raised_at_once() -> None:
    slept: list[float] = []
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise Fatal("no")

    with pytest.raises(Fatal):
        Backoff(retries=5, first_s=0.1).call(
            fn, retryable=lambda e: isinstance(e, Transient), sleep=slept.append
        )
    assert calls == [1] and slept == []


# ---- the executor's reads use it, against the local exchange ---------------------------------


def _sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(("fault", "status"), [("http_5xx_rate", 500), ("http_429_rate", 429)])
def test_an_executor_read_is_retried_by_the_query_policy_then_named(
    sim: SimServer, executor: HyperliquidExecutor, monkeypatch: pytest.MonkeyPatch, fault: str, status: int
) -> None:
    slept = _sleeps(monkeypatch)
    try:
        sim.set_faults(seed=3, **{fault: 1.0})
        with pytest.raises(QueryError) as err:
            executor.mid("ETH")
    finally:
        sim.set_faults(**{fault: 0.0})
    assert slept == [0.05, 0.1, 0.2]  # three retries, doubling (HyperliquidExecutor query_retries=3)
    assert err.value.status_code == status
    assert executor.mid("ETH") > 0  # the venue answers again: so does the executor


def test_an_executor_read_that_fails_then_answers_returns_the_answer(
    sim: SimServer, executor: HyperliquidExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[object] = [requests.ConnectionError("reset"), {"ETH": "2000.5"}]

    def all_mids() -> object:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    slept = _sleeps(monkeypatch)
    monkeypatch.setattr(executor.info, "all_mids", all_mids)
    assert executor.mid("ETH") == Decimal("2000.5") and slept == [0.05]


def test_the_broker_adapter_waits_between_tries_not_after_the_last(
    sim: SimServer, executor: HyperliquidExecutor, oms: LiveOms
) -> None:
    slept: list[float] = []
    ad = BrokerAdapter(
        oms, executor, live=True, min_gap_s=0, retries=2, retry_delay_s=0.01, sleep=slept.append
    )
    try:
        sim.set_faults(seed=1, http_5xx_rate=1.0)  # the price query fails every time: never sent
        out = ad.submit(Order("ETH", "open", "long", Decimal("0.1"), 31))
    finally:
        sim.set_faults(http_5xx_rate=0.0)
    assert out.status is IntentStatus.REJECTED and "not sent" in (oms.intent(out.intent_id).last_error or "")
    assert slept == [0.01, 0.02]  # after tries 1 and 2; the third failure rejects at once
