"""In-process venue for tests and tools: runs the aiohttp server on 127.0.0.1 in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from .config import SimConfig
from .server import VenueApp
from .state import Venue

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimServer:
    """``with SimServer(cfg) as sim: Info(sim.base_url, skip_ws=True)``.

    The stepped-clock test API: :meth:`advance`, :meth:`deposit`, :meth:`set_faults`,
    :meth:`disconnect_all` and :meth:`call` (run any function on the venue's loop).
    """

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = cfg or SimConfig(clock_mode="stepped")
        self.cfg.host = "127.0.0.1"
        if not self.cfg.port or self.cfg.port == 3001:
            self.cfg.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.app: VenueApp | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="exchange-sim", daemon=True)

    @property
    def venue(self) -> Venue | None:
        """The venue's state (the app's), once started."""
        return self.app.venue if self.app is not None else None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.cfg.port}/ws"

    def start(self) -> SimServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=120)
        return self

    async def _start(self) -> None:
        self.app = VenueApp(self.cfg)
        self._runner = web.AppRunner(self.app.make_app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.cfg.port)
        await site.start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=30)
            self._runner = None
        if self.venue is not None and self.venue.store is not None:
            store = self.venue.store
            self.run(store.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test API ---------------------------------------------------------------------------
    def run(self, fn: Callable[[], T], timeout: float = 60) -> T:
        """Run ``fn()`` on the venue's loop thread and return its result."""

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout=timeout)

    def call(self, fn: Callable[[Venue], T], timeout: float = 60) -> T:
        venue = self.venue
        assert venue is not None
        return self.run(lambda: fn(venue), timeout)

    def advance(self, ms: int) -> int:
        return self.call(lambda v: v.advance(ms))

    def now(self) -> int:
        return self.call(lambda v: v.engine.t)

    def deposit(self, user: str, usd: float | str | Decimal) -> None:
        def go(v: Venue) -> None:
            v.engine.deposit(user, Decimal(str(usd)))
            v.flush()

        self.call(go)

    def set_faults(self, **changes: Any) -> None:
        def go(v: Venue) -> None:
            if "seed" in changes:
                v.faults.reseed(int(changes.pop("seed")))
            v.faults.config.update(changes)
            v.tick()

        self.call(go)

    def disconnect_all(self) -> int:
        app = self.app
        assert app is not None
        return asyncio.run_coroutine_threadsafe(app.hub.disconnect_all(), self.loop).result(timeout=30)
