"""Alerting against a local HTTP server on 127.0.0.1 that records every request."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from engine.alerting import Alerter, Redactor, parse_targets
from engine.risk import RiskManager

TG_TOKEN = "123456789:AAHsecretsecretsecretsecretXYZ"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.status = 200
        self.statuses: list[int] = []  # answered first, one a request, before ``status``
        self.delay = 0.0
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.json()))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else self.status
        return web.json_response({"ok": status == 200}, status=status)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> None:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[Recorder]:
    r = Recorder()
    r.start()
    yield r
    r.stop()


def targets(server: Recorder) -> list[str]:
    return [f"discord:{server.base}/api/webhooks/42/hooksecretvalue", f"telegram:{TG_TOKEN}/@ops_chat"]


def test_discord_and_telegram_delivery(server: Recorder) -> None:
    a = Alerter(targets(server), telegram_api_base=server.base, label="paper").start()
    assert a.send("kill_switch", "close_only engaged")
    assert a.flush(10)
    a.close()
    paths = sorted(p for p, _ in server.requests)
    assert paths == sorted(["/api/webhooks/42/hooksecretvalue", f"/bot{TG_TOKEN}/sendMessage"])
    bodies = {p: b for p, b in server.requests}
    assert bodies["/api/webhooks/42/hooksecretvalue"]["content"] == "[paper] kill_switch: close_only engaged"
    tg = bodies[f"/bot{TG_TOKEN}/sendMessage"]
    assert tg == {"chat_id": "@ops_chat", "text": "[paper] kill_switch: close_only engaged"}
    assert a.stats.sent == 2


def test_rate_limited_per_kind(server: Recorder) -> None:
    now = [0.0]
    a = Alerter(targets(server)[:1], min_interval_s=60, clock=lambda: now[0]).start()
    assert a.send("order_error", "one")
    assert not a.send("order_error", "two")  # same kind within 60 s
    assert a.send("kill_switch", "other kind")
    now[0] = 61
    assert a.send("order_error", "three")
    a.flush(10)
    a.close()
    assert [b["content"].split(": ", 1)[1] for _, b in server.requests] == ["one", "other kind", "three"]
    assert a.stats.rate_limited == 1


@pytest.mark.parametrize(
    ("answers", "requests", "sent"),
    [([503, 200], 2, 1), ([429, 200], 2, 1), ([502, 503], 2, 0), ([400], 1, 0)],
)
def test_a_failed_delivery_is_tried_once_more_unless_refused(
    server: Recorder, answers: list[int], requests: int, sent: int
) -> None:
    # engine/alerting.py DELIVERY_RETRY (exchange/retry.py): one more try after 5xx or 429, none after 4xx.
    server.statuses = list(answers)
    server.status = 599  # anything beyond the scripted answers is a failure the test would count
    a = Alerter(targets(server)[:1]).start()
    assert a.send("kill_switch", "close_only engaged")
    assert a.flush(10)
    a.close()
    assert len(server.requests) == requests
    assert (a.stats.sent, a.stats.failed) == (sent, 1 - sent)


def test_send_never_blocks_on_a_slow_server(server: Recorder) -> None:
    server.delay = 5.0
    a = Alerter(targets(server)[:1], min_interval_s=0, max_queue=4, timeout_s=10).start()
    t0 = time.perf_counter()
    for i in range(20):
        a.send(f"k{i}", "x")
    # One blocking send would take the server's 5 s; queuing 20 takes microseconds. The bound sits
    # far from both, so a loaded box cannot decide it.
    assert time.perf_counter() - t0 < 2.5
    assert a.stats.dropped > 0  # bounded queue: extra messages are dropped and counted
    a.close(timeout_s=0.1)


def test_secrets_are_redacted_in_messages_and_logs(
    server: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    server.status = 403
    caplog.set_level(logging.DEBUG)
    a = Alerter(targets(server), telegram_api_base=server.base, min_interval_s=0).start()
    a.send("order_error", f"oops token {TG_TOKEN} and hook {server.base}/api/webhooks/42/hooksecretvalue")
    a.flush(10)
    a.close()
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp"))
    text = ours + repr(a.targets) + "".join(str(b) for _, b in server.requests)
    assert TG_TOKEN not in text and "hooksecretvalue" not in text
    assert "refused: HTTP 403" in caplog.text
    assert a.stats.failed == 2


def test_dry_run_prints(server: Recorder) -> None:
    out = io.StringIO()
    a = Alerter(targets(server), dry_run=True, out=out).start()
    a.send("test", "hello")
    a.flush(5)
    a.close()
    assert "ALERT (dry run) [ai-quant] test: hello" in out.getvalue()
    assert server.requests == []


def test_no_targets_is_silent_and_bad_targets_are_ignored() -> None:
    assert not Alerter([]).send("x", "y")
    assert parse_targets(["discord:#alerts", "telegram:@ops", "sms:123"]) == []
    assert Redactor(["telegram:abcdef123/@chat"])("abcdef123 said") == "*** said"


def test_risk_manager_alerts_through_the_alerter(server: Recorder) -> None:
    a = Alerter(targets(server)[:1]).start()
    rm = RiskManager(alert=a)
    rm.set_hard_kill(True)
    a.flush(10)
    a.close()
    assert any("kill switch off -> hard" in b["content"] for _, b in server.requests)


def test_journal_line_follows_the_rate_limit_and_counts_suppressed_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing scheduleCancel alerted every loop: 10 sends in 25 s are one journal line, and the
    next line of that kind (after the interval) says how many repeats it stood for. Alerts off or
    on, the journal follows the alert's own per-kind limit."""
    now = [0.0]
    caplog.set_level(logging.INFO, logger="engine.alerting")
    a = Alerter([], min_interval_s=60, clock=lambda: now[0])  # no targets: journal only
    for i in range(10):
        now[0] = i * 2.5
        a.send("dead_man_switch", "scheduleCancel failed: ConnectionError")
    a.send("kill_switch", "other kind")  # another kind has its own limit
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.alerting"]
    assert lines == [
        "alert [ai-quant] dead_man_switch: scheduleCancel failed: ConnectionError",
        "alert [ai-quant] kill_switch: other kind",
    ]
    now[0] = 61.0
    a.send("dead_man_switch", "scheduleCancel failed: ConnectionError")
    a.send("dead_man_switch", "scheduleCancel failed: ConnectionError")  # suppressed, reported at close
    a.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.alerting"][2:]
    assert lines == [
        "alert [ai-quant] dead_man_switch: scheduleCancel failed: ConnectionError (9 repeats suppressed)",
        "alert [ai-quant] dead_man_switch: 1 repeat suppressed since the last line",
    ]
    assert a.stats.rate_limited == 10
