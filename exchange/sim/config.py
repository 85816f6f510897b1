"""The local exchange's settings: one :class:`SimConfig` per venue (``python -m exchange.sim`` flags, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from .faults import FaultConfig

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "hyperliquid" / "futures"
WARMUP_BARS = 5000


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 3001
    symbols: list[str] = field(default_factory=lambda: ["BTC", "ETH", "SOL"])
    data_dir: Path = DEFAULT_DATA_DIR
    candles_db: Path | None = None
    funding_dir: Path | None = None  # funding feathers when candles come from SQLite (defaults to data_dir)
    funding_db: Path | None = None  # SQLite funding_rates table; default: funding_rates.db next to candles_db
    interval: str = "5m"
    speed: float = 1.0
    clock_mode: str = "realtime"  # or "stepped"
    start: int | None = None  # replay position (data ms) at clock start; default: 5000 bars into the data
    sim_start: int | None = None  # sim time at clock start; default: wall clock now (shift mode)
    time_shift: bool = True  # shift the data so replay time lines up with the wall clock (whole days)
    seed: int = 0
    state_db: Path | None = None
    deposits: dict[str, Decimal] = field(default_factory=dict)
    enable_admin: bool = False
    spread_bps: Decimal = Decimal("1")
    level_step_bps: Decimal = Decimal("1")
    levels: int = 20
    level_notional: Decimal = Decimal("25000")
    rate_limit: int = 1200
    ws_idle_timeout_s: float = 60.0
    tick_ms: int = 100
    accept_mainnet_signatures: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
