"""User fill streams: from the Rust sidecar where it serves this account, else over the official
SDK's WebSocket manager (thin).

``UserFillStream`` subscribes to ``userFills`` for one address and queues every fill it sees,
snapshot batches included. It does not deduplicate: the OMS does (UNIQUE(fill_hash, fill_tid)),
which also covers duplicated pushes and the snapshot that follows a reconnect. The SDK does not
reconnect (protocol notes §12.8), so :meth:`UserFillStream.ensure` starts a fresh connection when
the old one has died; anything missed in between is adopted by the reconciler's
``userFillsByTime`` pass.

``SidecarUserFills`` has the same interface over the sidecar's ``drain_user_fills``: the sidecar
holds the one venue WebSocket, resubscribes after a reconnect and drops pushes it has seen by
(hash, tid). It serves one user; a sidecar already serving another address is refused at
:meth:`SidecarUserFills.start` (the caller falls back to the SDK stream).
"""

from __future__ import annotations

import logging
import queue
import time
from pathlib import Path
from typing import Any

from hyperliquid.info import Info

from exchange.hl_fills import parse_pushed
from exchange.model import Fill
from exchange.venue import FillStream

log = logging.getLogger(__name__)

_EMPTY_META: Any = {"universe": []}
_EMPTY_SPOT: Any = {"universe": [], "tokens": []}


class UserFillStream:
    def __init__(self, base_url: str, address: str, *, max_queue: int = 100_000) -> None:
        self.base_url = base_url
        self.address = address.lower()
        self.fills: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self.connects = 0
        self._info: Info | None = None

    def _on_msg(self, msg: Any) -> None:
        data = msg.get("data") if isinstance(msg, dict) else None
        if not isinstance(data, dict):
            return
        for f in data.get("fills") or []:
            try:
                self.fills.put_nowait(dict(f))
            except queue.Full:  # the reconciler's poll adopts anything dropped here
                log.warning("user fill queue full; relying on userFillsByTime")
                return

    def start(self) -> None:
        self._info = Info(self.base_url, skip_ws=False, meta=_EMPTY_META, spot_meta=_EMPTY_SPOT)
        self._info.subscribe({"type": "userFills", "user": self.address}, self._on_msg)
        self.connects += 1

    def alive(self) -> bool:
        mgr = self._info.ws_manager if self._info is not None else None
        return mgr is not None and mgr.is_alive() and bool(getattr(mgr.ws, "sock", None))

    def ensure(self) -> bool:
        """Reconnect if the connection died. True if a new connection was started."""
        if self.alive():
            return False
        self.stop()
        self.start()
        return True

    def drain(self, limit: int = 10_000) -> list[Fill]:
        out: list[dict[str, Any]] = []
        for _ in range(limit):
            try:
                out.append(self.fills.get_nowait())
            except queue.Empty:
                break
        return parse_pushed(out)

    def stop(self) -> None:
        if self._info is not None and self._info.ws_manager is not None:
            try:
                self._info.disconnect_websocket()
            except Exception:  # already closed
                log.debug("websocket already closed")
        self._info = None


class SidecarUserFills:
    """userFills through the Rust sidecar's Unix socket (``ensure_started(user=...)``, then
    ``drain_user_fills``). Registration is renewed within the sidecar's client TTL."""

    RENEW_S = 30.0
    CLIENT_ID = "ai-quant-user-fills"

    def __init__(self, sock: Path | str, address: str, venue: str | None = None) -> None:
        self.sock = Path(sock)
        self.address = address.lower()
        self.venue = venue  # when given, a sidecar streaming another venue is refused
        self.connects = 0
        self.dropped = 0  # the sidecar's queue overflowed this many fills (the poll adopts them)
        self._client: Any = None
        self._renewed = 0.0

    def start(self) -> None:
        from exchange.sidecar import SidecarClient, SidecarError
        from exchange.venue_url import same_venue

        client = SidecarClient(self.sock, client_id=self.CLIENT_ID)
        try:
            r = client.ensure_started([], user=self.address)
        except (SidecarError, OSError):
            client.close()
            raise
        if str(r.get("user") or "").lower() != self.address:
            client.close()
            raise RuntimeError(f"the sidecar at {self.sock} does not serve user fills for {self.address}")
        served = r.get("venue")
        if self.venue is not None and not (served and same_venue(str(served), self.venue)):
            client.close()
            raise RuntimeError(f"the sidecar at {self.sock} serves venue {served or '?'}, not {self.venue}")
        self._client = client
        self._renewed = time.monotonic()
        self.connects += 1

    def ensure(self) -> bool:
        """Renew the registration; reconnect when the sidecar went away. True if reconnected."""
        if self._client is not None and time.monotonic() - self._renewed < self.RENEW_S:
            return False
        if self._client is not None:
            try:
                self._client.ensure_started([], user=self.address)
                self._renewed = time.monotonic()
                return False
            except Exception:  # sidecar restarted or gone: reconnect below
                log.warning("sidecar user fill registration failed; reconnecting")
        self.stop()
        try:
            self.start()
        except Exception as exc:  # the reconciler's userFillsByTime pass still adopts every fill
            log.warning("sidecar user fills unavailable: %s", exc)
            return False
        return True

    def drain(self, limit: int = 10_000) -> list[Fill]:
        if self._client is None:
            return []
        out: list[dict[str, Any]] = []
        try:
            while len(out) < limit:
                d = self._client.drain_user_fills(max_items=min(500, limit - len(out)))
                out.extend(dict(f) for f in d.items)
                if d.dropped > self.dropped:
                    log.warning(
                        "sidecar dropped %d user fills; relying on userFillsByTime", d.dropped - self.dropped
                    )
                    self.dropped = d.dropped
                if d.remaining == 0 or not d.items:
                    break
        except Exception as exc:  # keep what was drained; the next tick reconnects
            log.warning("sidecar user fill drain failed: %s", exc)
            self.stop()
        return parse_pushed(out)

    def stop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                log.debug("sidecar client already closed")
        self._client = None


def open_user_fills(sock: Path | None, address: str, base_url: str) -> FillStream | None:
    """The sidecar's user fills where it serves this account (``sock``), else the SDK's own
    WebSocket; None if neither starts (the reconciler's userFillsByTime pass still adopts every fill)."""
    if sock is not None and sock.exists():
        side = SidecarUserFills(sock, address, base_url)
        try:
            side.start()
            log.info("user fills from the sidecar at %s", sock)
            return side
        except Exception as exc:
            log.warning("sidecar user fills unavailable (%s); using the SDK stream", exc)
    sdk = UserFillStream(base_url, address)
    try:
        sdk.start()
        return sdk
    except Exception as exc:
        log.warning("user fill stream unavailable: %s", type(exc).__name__)
        return None
