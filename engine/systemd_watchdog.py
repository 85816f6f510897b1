"""sd_notify for systemd (``Type=notify``, ``WatchdogSec``): READY, WATCHDOG, STATUS, STOPPING.

Without ``NOTIFY_SOCKET`` (not under systemd) every call is a no-op. Messages go straight to the
datagram socket (abstract ``@`` names included), so no library is needed; a send error is
swallowed: a monitoring hiccup must never stop trading.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.address = addr or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        own = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and own else None
        self.ready_sent = False
        self._last_ping = 0.0
        self.sent: list[str] = []  # what was sent (tests and STATUS checks)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(self.address)
                s.sendall(message.encode())
        except OSError:
            return False
        self.sent.append(message)
        return True

    def ready(self, status: str = "") -> None:
        if not self.ready_sent:
            self.ready_sent = self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        """A WATCHDOG ping (call each loop)."""
        self._last_ping = time.monotonic()
        self.notify("WATCHDOG=1")

    def status(self, line: str) -> None:
        self.notify("STATUS=" + line.replace("\n", " ")[:500])

    def stopping(self) -> None:
        self.notify("STOPPING=1")


__all__ = ["Notifier"]
