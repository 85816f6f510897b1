"""Serving the monitor app: bind before anything else (so a taken port is one line, not a
traceback), a deadline on every connection's first request head (slow-header clients), and a
graceful stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger("monitor")

#: Seconds a new connection has to deliver its request line and headers.
HEADER_TIMEOUT_S = 10.0
#: Seconds an idle kept-alive connection stays open; aiohttp closes it when its next request head
#: has not arrived by then, which bounds slow headers after the first request.
KEEPALIVE_S = 15.0
SHUTDOWN_TIMEOUT_S = 5.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises ``OSError`` (e.g. the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


class HeaderDeadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed when the first request head (request line and
    headers, up to the blank line) has not fully arrived within ``timeout_s``.

    aiohttp has no header-read timeout of its own: a client that trickles header bytes held its
    socket (and a file descriptor) for as long as it liked."""

    def __init__(self, inner: asyncio.Protocol, timeout_s: float, on_expire: Callable[[], None]) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self._on_expire = on_expire
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._tail = b""
        self._head_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire)
        self._inner.connection_made(transport)

    def _expire(self) -> None:
        self._timer = None
        if not self._head_done and self._transport is not None:
            self._on_expire()
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._head_done:
            seen = self._tail + data
            if b"\n\r\n" in seen or b"\n\n" in seen:  # the blank line (CRLF, or bare LF) ends the head
                self._head_done = True
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            else:
                self._tail = seen[-2:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


async def serve(
    app: web.Application,
    sock: socket.socket,
    *,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    keepalive_s: float = KEEPALIVE_S,
    shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
) -> None:
    """Serve ``app`` on the bound ``sock`` until SIGINT or SIGTERM."""
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=keepalive_s, shutdown_timeout=shutdown_timeout_s
    )
    await runner.setup()
    handler = runner.server
    assert handler is not None  # set by setup()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    expired = 0

    def on_expire() -> None:
        nonlocal expired
        expired += 1
        if expired in (1, 10, 100) or expired % 1000 == 0:  # a flood must not flood the log
            log.warning(
                "closed %d connection(s) that sent no complete request head within %.0f s",
                expired,
                header_timeout_s,
            )

    server = await loop.create_server(
        lambda: HeaderDeadline(handler(), header_timeout_s, on_expire), sock=sock
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await runner.cleanup()
