"""The venue-error classifier, the weight table against the protocol reference, the back-off, the
venue clock rate and the candle hub's pause after a 429 (issue #22 items 5, 8, 9).

The classifier sees real ``requests`` failures: a closed loopback port and HTTPS spoken to a
plain-HTTP loopback server."""

from __future__ import annotations

import http.server
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hyperliquid.utils.error import ClientError, ServerError
from test_market_data_core import STEP, FakeInfo

from engine.market_data import MarketDataHub
from exchange.hl_market_data import HyperliquidMarketData
from exchange.sim.ratelimit import RateLimiter
from exchange.venue_clock import VenueClock
from exchange.venue_errors import Failure, classify, diagnose, venue_problem
from exchange.venue_limits import (
    BUDGET_PER_MIN,
    LIGHT_INFO,
    PER_20_ITEMS,
    WeightMeter,
    backoff_s,
    exchange_weight,
    info_extra_weight,
    info_weight,
)
from tests.daemon_harness import free_port

PROTOCOL = Path(__file__).resolve().parents[3] / "shared" / "docs" / "hyperliquid-protocol.md"


@pytest.fixture
def plain_http() -> Iterator[str]:
    srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _fail(url: str) -> BaseException:
    try:
        requests.post(url + "/info", json={"type": "meta"}, timeout=5)
    except requests.RequestException as exc:
        return exc
    raise AssertionError("no failure")


def test_refused_and_tls_mismatch_are_one_line_naming_the_url(plain_http: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    p = classify(_fail(url), url)
    assert (p.kind, p.config_error) == ("refused", False)
    assert p.line("start-up: meta") == (
        f"venue {url} (start-up: meta): connection refused: nothing listens there"
        " (is the exchange running, on this port?)"
    )
    url = f"https://{plain_http}"
    p = classify(_fail(url), url)
    assert (p.kind, p.config_error) == ("tls", True)
    assert "\n" not in p.line() and "use http://" in p.line()


def test_http_statuses_and_other_errors() -> None:
    url = "http://127.0.0.1:3001"
    p = classify(ClientError(429, None, "null", None, {"x": "y"}), url)
    assert p.rate_limited and p.line(retry_s=3) == f"venue {url}: rate limited (429): retrying in 3 s"
    p = classify(ClientError(422, None, "Failed to deserialize the JSON body", None, {}), url)
    assert p.line() == f"venue {url}: HTTP 422: Failed to deserialize the JSON body"
    assert classify(ServerError(502, "Bad Gateway"), url).line() == f"venue {url}: HTTP 502: Bad Gateway"
    assert venue_problem(ValueError("not a venue error"), url) is None
    assert classify(requests.exceptions.ReadTimeout("x"), url).kind == "timeout"


def test_the_weight_table_is_the_protocol_references() -> None:
    if not PROTOCOL.exists():
        pytest.skip(f"{PROTOCOL} not found")
    text = PROTOCOL.read_text()
    sec = text[text.index("## 9. Rate limits") :]
    sec = sec[: sec.index("\n## ", 5)]
    assert f"**{BUDGET_PER_MIN} per minute**" in sec
    light = re.search(r"- 2: (.+);", sec)
    assert light is not None and set(re.findall(r"`(\w+)`", light.group(1))) == LIGHT_INFO
    assert "- 60: `userRole`" in sec and info_weight("userRole") == 60
    per20 = re.search(r"per 20 returned items for (.+?), …", sec)
    assert per20 is not None and set(re.findall(r"`(\w+)`", per20.group(1))) == PER_20_ITEMS
    assert "per 60 items for `candleSnapshot`" in sec
    assert "`1 + floor(batch_length/40)`" in sec
    assert [info_weight(t) for t in ("allMids", "exchangeStatus", "meta", "candleSnapshot")] == [2, 2, 20, 20]
    assert info_extra_weight("candleSnapshot", [{}] * 5000) == 83
    assert info_extra_weight("userFills", [{}] * 2000) == 100
    assert exchange_weight({"orders": [{}] * 79}) == 2 and exchange_weight({"type": "noop"}) == 1


def test_backoff_frees_the_weight_then_doubles_up_to_the_window() -> None:
    assert backoff_s(60, 0) == 3.0  # 60 weight at 1200/min: 3 s
    assert backoff_s(20, 0) == 2.0  # never less than 2 s
    assert [backoff_s(60, n) for n in range(6)] == [3.0, 6.0, 12.0, 24.0, 48.0, 60.0]


def test_weight_meter_counts_what_the_sdk_posts() -> None:
    class Api:
        def post(self, path: str, payload: Any = None) -> Any:
            if payload["type"] == "allMids":
                raise ClientError(429, None, "null", None, {})
            return [{}] * 120

    meter = WeightMeter()
    api = meter.attach(Api())
    api.post("/info", {"type": "candleSnapshot"})
    with pytest.raises(ClientError):
        api.post("/info", {"type": "allMids"})
    assert (meter.total, meter.requests, meter.last_minute()) == (20 + 2 + 2, 2, 24)


def test_venue_clock_rate() -> None:
    now = [100.0]
    c = VenueClock(clock=lambda: now[0])
    assert c.venue_span_ms(60_000) == 60_000  # nothing read yet
    c.observe(1_000_000)
    now[0] += 0.1
    c.observe(1_030_000)
    assert c.rate() == 1.0  # too short a baseline to tell
    now[0] += 1.9
    c.observe(1_000_000 + 600_000)  # x300
    assert c.venue_span_ms(60_000) == 18_000_000
    real = VenueClock(clock=lambda: now[0])
    real.observe(5_000)
    now[0] += 2.0
    real.observe(5_000 + 2_080)  # the real venue, 80 ms of network jitter
    assert real.rate() == 1.0


class Limited(FakeInfo):
    base_url = "http://127.0.0.1:3001"

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def candles_snapshot(self, sym: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        self.asked.append(sym)
        if len(self.asked) == 1:
            raise ClientError(429, None, "null", None, {})
        return super().candles_snapshot(sym, interval, start, end)


def test_candle_hub_pauses_rest_after_a_429(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    info = Limited()
    hub = MarketDataHub(HyperliquidMarketData(info), "5m", STEP)
    now = hub.now_ms()
    clock = [1000.0]
    monkeypatch.setattr("engine.market_data.time.monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, "engine.market_data"):
        assert hub.closed_bars("BTC", None, now, 5) == []
        assert hub.closed_bars("ETH", None, now, 5) == []  # not asked: the venue said wait
    assert info.asked == ["BTC"] and hub.stats.deferred == 1
    assert caplog.messages == [f"venue {info.base_url} (candles): rate limited (429): retrying in 2 s"]
    clock[0] += 2.0
    assert len(hub.closed_bars("ETH", None, now, 5)) == 5 and info.asked == ["BTC", "ETH"]


def test_local_exchange_logs_each_minutes_weight_and_refusals(caplog: Any) -> None:
    lim = RateLimiter(100)
    with caplog.at_level(logging.INFO, "exchange.sim.ratelimit"):
        assert lim.allow("127.0.0.1", 60, 1_000)
        assert not lim.allow("127.0.0.1", 60, 2_000)
        lim.charge("127.0.0.1", 5, 3_000)
        assert lim.allow("127.0.0.1", 2, 62_000)  # a new minute: the last one is reported
    assert caplog.messages == [
        "REST weight in the last minute: 127.0.0.1 spent 65/100, 1 requests answered 429"
    ]
    assert lim.refused == 1


def test_start_up_call_waits_out_429s_and_stops_on_anything_else(caplog: Any) -> None:
    from daemon.main import VenueDown, venue_call

    url = "http://127.0.0.1:3001"
    answers: list[BaseException | str] = [ClientError(429, None, "null", None, {})] * 2 + ["meta"]
    slept: list[float] = []

    def fn() -> str:
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    with caplog.at_level(logging.WARNING, "daemon.main"):
        assert venue_call(url, "start-up: reconcile", fn, sleep=slept.append) == "meta"
    assert slept == [3.0, 6.0]
    assert caplog.messages == [
        f"venue {url} (start-up: reconcile): rate limited (429): retrying in 3 s",
        f"venue {url} (start-up: reconcile): rate limited (429): retrying in 6 s",
    ]
    answers[:] = [ClientError(429, None, "null", None, {})] * 10
    with pytest.raises(VenueDown) as down:  # waited max_wait_s in all, then gives up
        venue_call(url, "start-up: meta", fn, max_wait_s=10.0, sleep=slept.append)
    assert slept[2:] == [3.0, 6.0, 1.0] and down.value.problem.rate_limited
    answers[:] = [ServerError(502, "Bad Gateway")]
    with pytest.raises(VenueDown) as down:
        venue_call(url, "start-up: meta", fn, sleep=slept.append)
    assert str(down.value) == f"venue {url} (start-up: meta): HTTP 502: Bad Gateway" and len(slept) == 5


def test_one_classifier_for_every_venue_failure(plain_http: str) -> None:
    """engine.venue's reachability test is exchange.venue_errors' (one classifier, #24), and
    :func:`diagnose` gives each failure one meaning: the loop backs off on a 429, counts an outage
    when the venue did not answer, reports a rejection, and leaves a bug alone."""
    import engine.venue
    import exchange.venue_errors
    from exchange.executor import QueryError
    from exchange.sidecar import SidecarUnavailable

    assert engine.venue.unreachable_reason is exchange.venue_errors.unreachable_reason
    url = "http://127.0.0.1:3001"
    cases: list[tuple[BaseException, Failure | None, str | None]] = [
        (ClientError(429, None, "null", None, {}), Failure.RATE_LIMITED, None),
        (QueryError(classify(ClientError(429, None, "null", None, {}), url)), Failure.RATE_LIMITED, None),
        (ServerError(502, "Bad Gateway"), Failure.UNREACHABLE, "HTTP 502"),
        (requests.exceptions.ReadTimeout("slow"), Failure.UNREACHABLE, "ReadTimeout"),
        (_fail(f"http://127.0.0.1:{free_port()}"), Failure.UNREACHABLE, "ConnectionError"),
        (_fail(f"https://{plain_http}"), Failure.UNREACHABLE, "SSLError"),  # as the loop has it
        (ClientError(422, None, "Failed to deserialize the JSON body", None, {}), Failure.REJECTED, None),
        (requests.exceptions.InvalidURL("x"), Failure.CONFIG, None),
        (SidecarUnavailable("sidecar gone"), None, None),
        (ValueError("bug"), None, None),
    ]
    for exc, failure, reason in cases:
        d = diagnose(exc, url)
        assert (d.failure if d else None) == failure, exc
        assert (d.unreachable if d else None) == reason, exc
        if d is not None and d.problem is not None:
            assert d.line() == d.problem.line() and d.line().startswith(f"venue {url}")
    try:  # a dropped socket under an error of ours: unreachable, with no venue line of its own
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as exc:
            raise RuntimeError("reconcile failed") from exc
    except RuntimeError as wrapped:
        d = diagnose(wrapped, url)
        assert d is not None and d.failure is Failure.UNREACHABLE and d.problem is None
        assert d.line() == "venue unreachable (ConnectionRefusedError)"
