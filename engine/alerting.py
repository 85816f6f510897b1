"""Alerts to Telegram (Bot API) and Discord (webhooks) from a background queue.

``Alerter.send(kind, message)`` never blocks the trading loop: it applies the per-kind rate limit,
redacts secrets and puts the message on a bounded queue; a daemon thread with its own asyncio loop
and aiohttp session delivers it. A full queue drops the message and counts it.

Targets come from ``AI_QUANT_ALERT_TARGETS`` (secret), comma separated ``CHANNEL:TARGET``:

* ``discord:<webhook URL>`` — POST ``{"content": ...}`` to the webhook;
* ``telegram:<bot token>/<chat id>`` — POST ``{"chat_id", "text"}`` to
  ``<telegram_api_base>/bot<token>/sendMessage``.

Targets of another form are reported once (by position, never by text) and ignored. With
``AI_QUANT_ALERT_DRY_RUN=1`` messages are printed instead of sent. The journal line (``alert ...``)
follows the same per-kind rate limit; the next line of a kind counts the repeats suppressed.
Tokens, webhook URLs and chat ids never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp

from exchange.retry import Backoff

log = logging.getLogger("engine.alerting")

TELEGRAM_API_BASE = "https://api.telegram.org"
DEFAULT_TIMEOUT_S = 6.0
# A webhook that fails (no answer, 5xx, 429) gets one more try half a second later; then it is counted failed.
DELIVERY_RETRY = Backoff(retries=1, first_s=0.5)
#: Patterns that look like credentials even when not among the configured targets.
_TOKEN_PATTERNS = (
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{20,}\b"),  # telegram bot token
    re.compile(r"https?://[^\s]*/api/webhooks/[^\s]+"),  # discord webhook
    re.compile(r"\b0x[0-9a-fA-F]{64}\b"),  # a private key
)


@dataclass(frozen=True)
class Target:
    channel: str  # "discord" | "telegram"
    url: str = field(repr=False)
    chat_id: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"Target({self.channel}, ***)"


def parse_targets(items: Iterable[str], telegram_api_base: str = TELEGRAM_API_BASE) -> list[Target]:
    out: list[Target] = []
    for n, item in enumerate(items, start=1):
        channel, _, rest = item.strip().partition(":")
        channel = channel.lower()
        if channel == "discord" and rest.startswith(("http://", "https://")):
            out.append(Target("discord", rest))
        elif channel == "telegram" and "/" in rest:
            token, _, chat = rest.rpartition("/")
            if token and chat:
                out.append(
                    Target("telegram", f"{telegram_api_base.rstrip('/')}/bot{token}/sendMessage", chat)
                )
                continue
            log.warning("alert target %d: telegram needs <bot token>/<chat id>; ignored", n)
        else:
            log.warning("alert target %d (%s) is not a webhook or bot target; ignored", n, channel or "?")
    return out


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        parts: set[str] = set()
        for s in secrets:
            s = s.strip()
            if not s:
                continue
            parts.add(s)
            _, _, rest = s.partition(":")
            if rest:
                parts.add(rest)
                for piece in re.split(r"[/@]", rest):
                    if len(piece) >= 6:
                        parts.add(piece)
        self._secrets = sorted(parts, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        for pat in _TOKEN_PATTERNS:
            text = pat.sub("***", text)
        return text


@dataclass
class AlertStats:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    rate_limited: int = 0


def _repeats(n: int) -> str:
    return f"{n} repeat" + ("" if n == 1 else "s")


class Alerter:
    """Background alert sender. ``send`` is thread-safe and never blocks."""

    def __init__(
        self,
        targets: Iterable[str] = (),
        *,
        dry_run: bool = False,
        label: str = "ai-quant",
        min_interval_s: float = 60.0,
        per_kind_interval_s: dict[str, float] | None = None,
        telegram_api_base: str = TELEGRAM_API_BASE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_queue: int = 256,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        raw = list(targets)
        self.redact = Redactor(raw)
        self.targets = parse_targets(raw, telegram_api_base)
        self.dry_run = dry_run
        self.label = label
        self.min_interval_s = min_interval_s
        self.per_kind = dict(per_kind_interval_s or {})
        self.timeout_s = min(30.0, max(1.0, timeout_s))
        self.stats = AlertStats()
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}  # repeats within the rate limit, per kind
        self._q: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=max_queue)
        self._out = out
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    @property
    def enabled(self) -> bool:
        return self.dry_run or bool(self.targets)

    def start(self) -> Alerter:
        if self._thread is None and self.enabled:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()
        return self

    def __call__(self, kind: str, message: str) -> None:
        self.send(kind, message)

    def send(self, kind: str, message: str) -> bool:
        """Queue one alert. False when rate-limited, dropped or alerts are off.

        The per-kind rate limit applies to the journal line too (alerts on or off): a repeat
        within the interval is counted, and the next line of that kind says how many were
        suppressed."""
        now = self._clock()
        with self._lock:
            gap = self.per_kind.get(kind, self.min_interval_s)
            last = self._last.get(kind)
            if last is not None and now - last < gap:
                self.stats.rate_limited += 1
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            repeats = self._suppressed.pop(kind, 0)
        text = self.redact(f"[{self.label}] {kind}: {message}")
        log.info("alert %s%s", text, f" ({_repeats(repeats)} suppressed)" if repeats else "")
        if not self.enabled:
            return False
        with self._lock:
            try:
                self._q.put_nowait((kind, text))
            except queue.Full:
                self.stats.dropped += 1
                return False
            self.stats.queued += 1
            self._idle.clear()
        if self._thread is None:
            self.start()
        return True

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the queue is empty (bounded). True when everything was handled."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._q.empty() and self._idle.is_set():
                    return True
            time.sleep(0.02)
        return False

    def close(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            pending, self._suppressed = self._suppressed, {}
        for kind, n in sorted(pending.items()):
            log.info("alert [%s] %s: %s suppressed since the last line", self.label, kind, _repeats(n))
        self.flush(timeout_s)
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._q.put_nowait(None)
            self._thread.join(timeout=timeout_s)
            self._thread = None

    # ---- worker --------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._worker())

    async def _worker(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                item = await asyncio.get_running_loop().run_in_executor(None, self._q.get)
                if item is None:
                    return
                _kind, text = item
                try:
                    if self.dry_run:
                        print(f"ALERT (dry run) {text}", file=self._out or sys.stdout, flush=True)
                        with self._lock:
                            self.stats.sent += 1
                    else:
                        for target in self.targets:
                            ok = await self._deliver(session, target, text)
                            with self._lock:
                                if ok:
                                    self.stats.sent += 1
                                else:
                                    self.stats.failed += 1
                finally:
                    with self._lock:
                        if self._q.empty():
                            self._idle.set()

    async def _deliver(self, session: aiohttp.ClientSession, target: Target, text: str) -> bool:
        if target.channel == "discord":
            payload: dict[str, str] = {"content": text[:1900]}
        else:
            payload = {"chat_id": target.chat_id, "text": text[:4000]}
        for attempt in range(DELIVERY_RETRY.retries + 1):
            try:
                async with session.post(target.url, json=payload) as resp:
                    if resp.status < 300:
                        return True
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("alert to %s failed: %s", target.channel, type(exc).__name__)
                status = 0
            if status and status < 500 and status != 429:
                log.warning("alert to %s refused: HTTP %d", target.channel, status)
                return False
            if attempt < DELIVERY_RETRY.retries:
                await asyncio.sleep(DELIVERY_RETRY.wait_s(attempt))
        log.warning("alert to %s failed after retry (HTTP %s)", target.channel, status or "-")
        return False


__all__ = ["AlertStats", "Alerter", "Redactor", "Target", "parse_targets"]
