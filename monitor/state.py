"""What the monitor holds while it runs: its databases, equity curves, mids hub and counters."""

from __future__ import annotations

import asyncio
import time

from monitor import readers
from monitor.db import ReadOnlyDB
from monitor.mids import MidsHub
from monitor.settings import MODES, Settings


class MonitorState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dbs: dict[str, ReadOnlyDB] = {m: ReadOnlyDB(settings.dbs[m], f"{m} trading") for m in MODES}
        self.oms_db = ReadOnlyDB(settings.oms_db, "live OMS")
        self.curves: dict[str, readers.EquityCurve] = {m: readers.EquityCurve() for m in MODES}
        self.mids = MidsHub(settings.sidecar_sock)
        self.closing = asyncio.Event()
        self.started_ms = int(time.time() * 1000)
        self.requests = 0
