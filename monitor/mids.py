"""Live mids: one long-poll on the sidecar's ``wait_mids``, fanned out to every SSE client.

A single background task asks the sidecar for the next mids update and publishes it; each SSE
client waits for a newer version than the one it sent last. A slow client therefore skips to the
newest mids instead of queueing old ones, and 50 browsers cost the sidecar one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from exchange.sidecar import AsyncSidecarClient, SidecarError, SidecarTimeout, SidecarUnavailable

log = logging.getLogger("monitor.mids")

#: Sparkline memory per symbol: one point a second at most, for ten minutes.
HISTORY_S = 600
HISTORY_STEP_MS = 1000
#: What an SSE client has seen: (mids_seq, connected, error).
Version = tuple[int, bool, str]


@dataclass
class MidsState:
    mids: dict[str, float] = field(default_factory=dict)
    seq: int = 0  # the sidecar's mids_seq
    recv_ms: int = 0  # our wall clock when the update arrived
    mids_age_s: float | None = None
    connected: bool = False
    error: str = ""
    updates: int = 0


class MidsHub:
    def __init__(self, sock: Path, *, poll_timeout_ms: int = 20_000, retry_s: float = 2.0) -> None:
        self.sock = sock
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_s = retry_s
        self.state = MidsState()
        self.history: dict[str, deque[tuple[int, float]]] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.subscribers = 0
        self.closed = False

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mids-hub")

    async def close_streams(self) -> None:
        """Release every waiting SSE stream (server shutdown)."""
        self.closed = True
        async with self._changed:
            self._changed.notify_all()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        client = AsyncSidecarClient(self.sock, timeout=3.0, connect_timeout=2.0, client_id="ai-quant-monitor")
        try:
            while True:
                try:
                    m = await client.wait_mids(self.state.seq, timeout_ms=self.poll_timeout_ms)
                except (SidecarUnavailable, SidecarTimeout, SidecarError, OSError) as exc:
                    await self._publish_error(f"sidecar at {self.sock}: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(self.retry_s)
                    continue
                if m.mids_seq < self.state.seq:  # the sidecar restarted: its sequence starts over
                    self.state.seq = 0
                if m.timed_out and m.mids_seq <= self.state.seq and self.state.connected:
                    continue
                await self._publish(m.mids, m.mids_seq, m.mids_age_s)
        finally:
            await client.close()

    # ---- publishing ---------------------------------------------------------------------------
    async def _publish(self, mids: dict[str, float], seq: int, age: float | None) -> None:
        now = int(time.time() * 1000)
        s = self.state
        s.mids, s.seq, s.recv_ms, s.mids_age_s = dict(mids), seq, now, age
        s.connected, s.error = True, ""
        s.updates += 1
        for sym, px in mids.items():
            h = self.history.setdefault(sym, deque())
            if h and now - h[-1][0] < HISTORY_STEP_MS:
                h[-1] = (h[-1][0], px)
            else:
                h.append((now, px))
            while h and now - h[0][0] > HISTORY_S * 1000:
                h.popleft()
        async with self._changed:
            self._changed.notify_all()

    async def _publish_error(self, error: str) -> None:
        if self.state.connected or self.state.error != error:
            log.warning("mids unavailable: %s", error)
        self.state.connected, self.state.error = False, error
        async with self._changed:
            self._changed.notify_all()

    async def wait_newer(self, version: Version, timeout: float) -> bool:
        """Wait until the state differs from ``version``; False on timeout."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.closed or self.version() != version), timeout=timeout
                )
            except TimeoutError:
                return False
        return True

    def version(self) -> Version:
        return (self.state.seq, self.state.connected, self.state.error)

    # ---- reads --------------------------------------------------------------------------------
    def age_s(self) -> float | None:
        """Seconds since the newest mid arrived (the sidecar's own age added)."""
        if not self.state.recv_ms:
            return None
        return (time.time() * 1000 - self.state.recv_ms) / 1000 + (self.state.mids_age_s or 0.0)

    def payload(self, symbols: set[str] | None = None) -> dict[str, object]:
        s = self.state
        mids = s.mids if not symbols else {k: v for k, v in s.mids.items() if k in symbols}
        return {
            "seq": s.seq,
            "ts_ms": s.recv_ms,
            "mids": mids,
            "age_s": self.age_s(),
            "connected": s.connected,
            "error": s.error,
        }

    def sparkline(self, symbols: set[str] | None = None) -> dict[str, list[list[float]]]:
        return {
            sym: [[t, p] for t, p in h] for sym, h in self.history.items() if not symbols or sym in symbols
        }


__all__ = ["HISTORY_S", "MidsHub", "MidsState"]
