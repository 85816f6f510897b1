"""User channels over the official SDK's WebSocket manager (thin).

``UserFillStream`` subscribes to ``userFills`` for one address and queues every fill it sees,
snapshot batches included. It does not deduplicate: the OMS does (UNIQUE(fill_hash, fill_tid)),
which also covers duplicated pushes and the snapshot that follows a reconnect. The SDK does not
reconnect (protocol notes §12.8), so :meth:`UserFillStream.ensure` starts a fresh connection when
the old one has died; anything missed in between is adopted by the reconciler's
``userFillsByTime`` pass. (The Rust sidecar carries market data; user channels stay here until the
sidecar serves them.)
"""

from __future__ import annotations

import logging
import queue
from typing import Any

from hyperliquid.info import Info

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

    def drain(self, limit: int = 10_000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(limit):
            try:
                out.append(self.fills.get_nowait())
            except queue.Empty:
                break
        return out

    def stop(self) -> None:
        if self._info is not None and self._info.ws_manager is not None:
            try:
                self._info.disconnect_websocket()
            except Exception:  # already closed
                log.debug("websocket already closed")
        self._info = None
