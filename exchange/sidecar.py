"""Client of the Rust WS sidecar (``ai-quant-sidecar``) over its Unix socket.

The protocol is newline-delimited JSON: a request ``{"id", "method", "params"}`` gets one response
``{"id", "ok", "result" | "error"}``. See ``docs/sidecar.md``.

One client, :class:`SidecarClient` (blocking), puts a timeout on every read, reconnects on the next
call after the sidecar restarted, and returns typed dataclasses; :class:`AsyncSidecarClient` is its
thin asyncio face (each call on a worker thread). Candles are not sent over the socket: :func:`read_candles` reads the candle DB that the
sidecar writes, read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypedDict, TypeVar, Unpack

from exchange.candle_db import CandleReader

__all__ = [
    "AsyncSidecarClient",
    "Bbo",
    "Candle",
    "CandleTimes",
    "CandlesReady",
    "Drained",
    "Health",
    "Mids",
    "SidecarClient",
    "SidecarError",
    "SidecarTimeout",
    "SidecarUnavailable",
    "default_socket_path",
    "read_candles",
]

T = TypeVar("T")
P = ParamSpec("P")

MAX_LINE = 1 << 20
#: Extra read time a long-poll gets on top of its own ``timeout_ms``.
LONG_POLL_SLACK_S = 5.0


class SidecarError(RuntimeError):
    """The sidecar answered ``ok: false``."""


class SidecarUnavailable(ConnectionError):
    """No sidecar is listening, or the connection broke."""


class SidecarTimeout(TimeoutError):
    """The sidecar did not answer in time."""


def default_socket_path() -> Path:
    """``$AI_QUANT_WS_SIDECAR_SOCK``, else ``$XDG_RUNTIME_DIR/ai-quant-ws.sock``, else the temp dir
    (the same rule as the sidecar)."""
    env = os.environ.get("AI_QUANT_WS_SIDECAR_SOCK")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "ai-quant-ws.sock"
    return Path(tempfile.gettempdir()) / f"ai-quant-ws-{os.getuid()}.sock"


# ---- typed results ---------------------------------------------------------------------------


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


#: How a field of a typed result is read from the sidecar's JSON, by its annotation: a missing or
#: null number is 0, a missing string "", an optional field stays None.
_READ: dict[str, Callable[[Any], Any]] = {
    "bool": bool,
    "int": lambda v: int(v or 0),
    "float": lambda v: float(v or 0.0),
    "str": lambda v: str(v or ""),
    "int | None": _opt_int,
    "float | None": _opt_float,
    "str | None": lambda v: v,
}


def _read_fields(cls: type, d: dict[str, Any], **given: Any) -> dict[str, Any]:
    """The constructor arguments of dataclass ``cls`` from ``d``, each read by its annotation;
    ``given`` supplies the fields read some other way."""
    return {
        f.name: given[f.name] if f.name in given else _READ[str(f.type)](d.get(f.name)) for f in fields(cls)
    }


@dataclass(frozen=True)
class Bbo:
    symbol: str
    bid: float | None
    ask: float | None
    bid_sz: float | None
    ask_sz: float | None
    time: int
    age_s: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Bbo:
        return cls(**_read_fields(cls, d, symbol=str(d["symbol"])))

    @property
    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class Mids:
    mids: dict[str, float]
    mids_seq: int
    mids_age_s: float | None
    bbo: dict[str, Bbo]
    bbo_seq: int
    timed_out: bool
    #: Wall-clock ns at which the sidecar read the newest allMids / bbo frame, and "now" when it answered.
    mids_recv_ns: int = 0
    bbo_recv_ns: int = 0
    now_ns: int = 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Mids:
        mids = {str(k): float(v) for k, v in (d.get("mids") or {}).items()}
        bbo = {str(k): Bbo.from_json(v) for k, v in (d.get("bbo") or {}).items()}
        return cls(**_read_fields(cls, d, mids=mids, bbo=bbo))


@dataclass(frozen=True)
class Health:
    ok: bool
    connected: bool
    stale: bool
    ws_connect_attempt: int
    connects: int
    disconnects: int
    stale_reconnects: int
    last_error: str | None
    last_close: str | None
    mids_age_s: float | None
    bbo_age_s: float | None
    candle_age_s: float | None
    last_data_age_s: float | None
    incoming_drops: int
    uptime_s: float
    version: str
    #: What the sidecar serves: the venue's HTTP base URL, the user (or None) and the candle
    #: directory it writes (absolute); None from a sidecar too old to say.
    venue: str | None = None
    user: str | None = None
    candles_dir: str | None = None
    #: The newest venue timestamp the sidecar saw in a frame (ms), and the age beyond which the
    #: sidecar calls its stream (and its mids) stale.
    venue_time_ms: int | None = None
    stale_after_s: float | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Health:
        return cls(**_read_fields(cls, d, raw=d))


@dataclass(frozen=True)
class CandlesReady:
    ready: bool
    not_ready: list[str]


@dataclass(frozen=True)
class CandleTimes:
    """Open time ``t`` and last millisecond ``t_close`` of a bar (``None`` when there is none)."""

    t: int | None
    t_close: int | None


@dataclass(frozen=True)
class Drained:
    items: list[dict[str, Any]]
    remaining: int
    dropped: int


@dataclass(frozen=True)
class Candle:
    t: int
    t_close: int
    o: float
    h: float
    low: float
    c: float
    v: float
    n: int


# ---- request building and response parsing (shared by both clients) -----------------------


def _encode(req_id: int, method: str, params: dict[str, Any]) -> bytes:
    return (
        json.dumps({"id": req_id, "method": method, "params": params}, separators=(",", ":")) + "\n"
    ).encode()


def _decode(line: bytes, req_id: int) -> Any:
    try:
        resp = json.loads(line)
    except ValueError as exc:
        raise SidecarUnavailable(f"sidecar sent invalid JSON: {line[:200]!r}") from exc
    if not isinstance(resp, dict):
        raise SidecarUnavailable(f"sidecar sent a non-object: {line[:200]!r}")
    if resp.get("id") != req_id:
        raise SidecarUnavailable(f"response id {resp.get('id')!r} does not match request id {req_id}")
    if not resp.get("ok"):
        raise SidecarError(str(resp.get("error")))
    return resp.get("result")


def _syms(symbols: list[str] | tuple[str, ...] | None) -> list[str] | None:
    return None if symbols is None else [str(s) for s in symbols]


def _read_timeout(method: str, params: dict[str, Any], timeout: float) -> float:
    if method == "wait_mids":
        return float(params.get("timeout_ms", 25_000)) / 1000.0 + LONG_POLL_SLACK_S
    return timeout


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# ---- blocking client ---------------------------------------------------------------------------


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`SidecarClient`, which :class:`AsyncSidecarClient` passes on."""

    timeout: float
    connect_timeout: float
    client_id: str | None


class SidecarClient:
    """Blocking client. Not thread-safe: give each thread its own (long-polls hold the connection).

    ``timeout`` bounds every read (a ``wait_mids`` read gets its own ``timeout_ms`` plus slack);
    ``connect_timeout`` bounds connecting. After a broken connection the next call reconnects; a
    request that could not be sent is retried once on a fresh connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        client_id: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_socket_path()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.client_id = client_id or f"py-{os.getpid()}-{id(self):x}"
        self._sock: socket.socket | None = None
        self._buf = b""
        self._ids = itertools.count(1)
        self._aborted = False  # set by abort() from another thread, cleared by resume()

    # -- connection --
    def connect(self) -> None:
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.connect_timeout)
        try:
            s.connect(str(self.path))
        except OSError as exc:
            s.close()
            raise SidecarUnavailable(f"cannot connect to sidecar at {self.path}: {exc}") from exc
        self._sock = s
        self._buf = b""

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf = b""

    def abort(self) -> None:
        """From another thread: make the call in progress fail at once with SidecarUnavailable (a
        long-poll blocked in ``recv`` included) and every call after it until :meth:`resume`."""
        self._aborted = True
        s = self._sock
        if s is not None:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def resume(self) -> None:
        """Undo :meth:`abort` (once no call is in progress)."""
        self._aborted = False

    def _check_aborted(self) -> None:
        if self._aborted:
            raise SidecarUnavailable("sidecar call aborted")

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _readline(self, deadline: float) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buf:
            self._check_aborted()
            left = deadline - time.monotonic()
            if left <= 0:
                raise SidecarTimeout("sidecar did not answer in time")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as exc:
                raise SidecarTimeout("sidecar did not answer in time") from exc
            if not chunk:
                raise SidecarUnavailable("sidecar closed the connection")
            self._buf += chunk
            if len(self._buf) > 64 * MAX_LINE:
                raise SidecarUnavailable("response too large")
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Send one request and return its ``result``; raises SidecarError on ``ok: false``."""
        params = params or {}
        req_id = next(self._ids)
        data = _encode(req_id, method, params)
        for attempt in (0, 1):
            self._check_aborted()
            if self._sock is None:
                self.connect()
            assert self._sock is not None
            try:
                self._sock.settimeout(self.timeout)
                self._sock.sendall(data)
                break
            except OSError as exc:
                self.close()
                if attempt == 1:
                    raise SidecarUnavailable(f"send to sidecar failed: {exc}") from exc
        deadline = time.monotonic() + (
            timeout if timeout is not None else _read_timeout(method, params, self.timeout)
        )
        try:
            line = self._readline(deadline)
        except (SidecarTimeout, SidecarUnavailable, OSError) as exc:
            self.close()  # the response may still arrive later: never reuse this connection
            if isinstance(exc, OSError) and not isinstance(exc, SidecarUnavailable | SidecarTimeout):
                raise SidecarUnavailable(str(exc)) from exc
            raise
        return _decode(line, req_id)

    # -- methods --
    def ensure_started(
        self,
        symbols: list[str],
        interval: str = "1h",
        *,
        candle_limit: int | None = None,
        user: str | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Register (or refresh) this client's symbols at one interval. The sidecar keeps one
        interval per client id: a second interval needs its own ``client_id``."""
        params = _drop_none(
            {
                "client_id": client_id or self.client_id,
                "symbols": _syms(symbols),
                "interval": interval,
                "candle_limit": candle_limit,
                "user": user,
            }
        )
        return dict(self.call("ensure_started", params))

    def health(self, symbols: list[str] | None = None, interval: str = "1h") -> Health:
        return Health.from_json(
            self.call("health", _drop_none({"symbols": _syms(symbols), "interval": interval}))
        )

    def ws_stats(self) -> dict[str, Any]:
        return dict(self.call("ws_stats"))

    def restart(self) -> None:
        self.call("restart")

    def get_mids(self, symbols: list[str] | None = None, max_age_s: float | None = None) -> Mids:
        return Mids.from_json(
            self.call("get_mids", _drop_none({"symbols": _syms(symbols), "max_age_s": max_age_s}))
        )

    def wait_mids(
        self,
        after_seq: int,
        *,
        symbols: list[str] | None = None,
        after_bbo_seq: int | None = None,
        max_age_s: float | None = None,
        timeout_ms: int = 25_000,
    ) -> Mids:
        params = _drop_none(
            {
                "symbols": _syms(symbols),
                "after_seq": after_seq,
                "after_bbo_seq": after_bbo_seq,
                "max_age_s": max_age_s,
                "timeout_ms": timeout_ms,
            }
        )
        return Mids.from_json(self.call("wait_mids", params))

    def get_mid(self, symbol: str, max_age_s: float | None = None) -> float | None:
        r = self.call("get_mid", _drop_none({"symbol": symbol, "max_age_s": max_age_s}))
        return None if r is None else float(r["mid"])

    def get_bbo(self, symbol: str, max_age_s: float | None = None) -> Bbo | None:
        r = self.call("get_bbo", _drop_none({"symbol": symbol, "max_age_s": max_age_s}))
        return None if r is None else Bbo.from_json(r)

    def candles_ready(self, symbols: list[str], interval: str = "1h") -> CandlesReady:
        r = self.call("candles_ready", {"symbols": _syms(symbols), "interval": interval})
        return CandlesReady(ready=bool(r["ready"]), not_ready=[str(s) for s in r["not_ready"]])

    def get_latest_candle_times(self, symbol: str, interval: str = "1h") -> CandleTimes:
        r = self.call("get_latest_candle_times", {"symbol": symbol, "interval": interval})
        return CandleTimes(_opt_int(r.get("t")), _opt_int(r.get("t_close")))

    def get_last_closed_candle_times(
        self, symbol: str, interval: str = "1h", grace_ms: int = 0
    ) -> CandleTimes:
        r = self.call(
            "get_last_closed_candle_times", {"symbol": symbol, "interval": interval, "grace_ms": grace_ms}
        )
        return CandleTimes(_opt_int(r.get("t")), _opt_int(r.get("t_close")))

    def _drain(self, method: str, max_items: int) -> Drained:
        r = self.call(method, {"max_items": max_items})
        return Drained(items=list(r["items"]), remaining=int(r["remaining"]), dropped=int(r["dropped"]))

    def drain_user_fills(self, max_items: int = 500) -> Drained:
        return self._drain("drain_user_fills", max_items)

    def drain_order_updates(self, max_items: int = 500) -> Drained:
        return self._drain("drain_order_updates", max_items)

    def drain_user_fundings(self, max_items: int = 500) -> Drained:
        return self._drain("drain_user_fundings", max_items)

    def drain_user_ledger_updates(self, max_items: int = 500) -> Drained:
        return self._drain("drain_user_ledger_updates", max_items)


# ---- asyncio client ----------------------------------------------------------------------------


def _on_worker(
    fn: Callable[Concatenate[SidecarClient, P], T],
) -> Callable[Concatenate[AsyncSidecarClient, P], Coroutine[Any, Any, T]]:
    """``fn`` as a coroutine method of :class:`AsyncSidecarClient`, run by its ``_run``."""

    @functools.wraps(fn)
    async def method(self: AsyncSidecarClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(fn, self.client, *args, **kwargs)

    return method


class AsyncSidecarClient:
    """The asyncio face of :class:`SidecarClient`: the same methods as coroutines, each run on a
    worker thread. Calls on one client are serialised by a lock (use separate clients for
    concurrent long-polls). A cancelled call, or :meth:`close`, aborts the call in progress: the
    worker's socket is shut down, so a long-poll does not hold the thread for its ``timeout_ms``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, **options: Unpack[ClientOptions]) -> None:
        options["client_id"] = options.get("client_id") or f"py-async-{os.getpid()}-{id(self):x}"
        self.client = SidecarClient(path, **options)
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self.client.path

    @property
    def client_id(self) -> str:
        return self.client.client_id

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._lock:
            fut = asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                self.client.abort()  # wake the worker, and wait for it: the client is not thread-safe
                with contextlib.suppress(Exception):
                    await fut
                self.client.close()
                self.client.resume()
                raise

    async def close(self) -> None:
        self.client.abort()  # a call in progress ends now; then the lock is free
        async with self._lock:
            self.client.close()
            self.client.resume()

    async def __aenter__(self) -> AsyncSidecarClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Each a coroutine with the signature and docstring of the SidecarClient method it runs.
    connect = _on_worker(SidecarClient.connect)
    call = _on_worker(SidecarClient.call)
    ensure_started = _on_worker(SidecarClient.ensure_started)
    health = _on_worker(SidecarClient.health)
    ws_stats = _on_worker(SidecarClient.ws_stats)
    get_mids = _on_worker(SidecarClient.get_mids)
    wait_mids = _on_worker(SidecarClient.wait_mids)
    get_bbo = _on_worker(SidecarClient.get_bbo)
    candles_ready = _on_worker(SidecarClient.candles_ready)
    get_latest_candle_times = _on_worker(SidecarClient.get_latest_candle_times)
    get_last_closed_candle_times = _on_worker(SidecarClient.get_last_closed_candle_times)
    drain_user_fills = _on_worker(SidecarClient.drain_user_fills)
    drain_order_updates = _on_worker(SidecarClient.drain_order_updates)
    drain_user_fundings = _on_worker(SidecarClient.drain_user_fundings)


# ---- candle DB (read-only) ---------------------------------------------------------------------


def read_candles(
    candles_dir: str | os.PathLike[str], symbol: str, interval: str, limit: int = 500
) -> list[Candle]:
    """The newest ``limit`` bars of ``symbol`` from ``candles_{interval}.db``, oldest first.

    Opens the DB read-only (``mode=ro``); returns ``[]`` when the file does not exist yet.
    """
    path = Path(candles_dir) / f"candles_{interval}.db"
    if not path.exists():
        return []
    with CandleReader(path) as db:
        rows = db.newest(symbol, interval, limit)
    return [
        Candle(int(t), int(tc), float(o), float(h), float(lo), float(c), float(v), int(n))
        for t, tc, o, h, lo, c, v, n in rows
    ]
