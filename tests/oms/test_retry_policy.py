"""exchange/retry.py: the one retry policy (waits, bounded tries, what is raised)."""

from __future__ import annotations

import pytest

from exchange.retry import Backoff


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
