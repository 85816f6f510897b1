"""The venue's state: market, clock, matching engine, nonces, faults, rate limits, persistence.

The request handlers (info_api, exchange_api, user_actions, ws_api) read and change it; server.py
composes it with them into the aiohttp application. What changed is pushed through a
:class:`Publisher` (the WebSocket hub), so this module knows no handler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from .book import BookParams
from .clock import Clock, wall_ms
from .config import WARMUP_BARS, SimConfig
from .data import (
    DAY_MS,
    INTERVAL_MS,
    load_feather_bars,
    load_feather_funding,
    load_sqlite_bars,
    load_sqlite_funding,
    meta_for,
)
from .faults import Faults
from .market import Asset, Market
from .matching import Engine, Event
from .nonces import NonceTracker
from .persistence import StateStore
from .ratelimit import RateLimiter

log = logging.getLogger("exchange.sim")


class Publisher(Protocol):
    """Where the venue pushes what changed (ws_api.WsHub)."""

    def publish_events(self, events: list[Event]) -> None: ...

    def publish_market(self) -> None: ...


class _NoSubscribers:
    """The publisher until server.py attaches the hub: nobody is connected yet."""

    def publish_events(self, events: list[Event]) -> None:
        pass

    def publish_market(self) -> None:
        pass


def build_market(cfg: SimConfig) -> tuple[Market, int, int]:
    """Load the assets; returns (market with shifted times, time offset, sim start)."""
    loaded = []
    for sym in cfg.symbols:
        if cfg.candles_db is not None:
            bars = load_sqlite_bars(cfg.candles_db, sym, cfg.interval)
        else:
            bars = load_feather_bars(cfg.data_dir, sym, cfg.interval)
        if len(bars) == 0:
            raise SystemExit(f"no {cfg.interval} candles for {sym}")
        funding_db = cfg.funding_db
        if funding_db is None and cfg.candles_db is not None:
            sibling = cfg.candles_db.parent / "funding_rates.db"
            funding_db = sibling if sibling.exists() else None
        if funding_db is not None:
            funding = load_sqlite_funding(funding_db, sym)
        else:
            funding = load_feather_funding(cfg.funding_dir or cfg.data_dir, sym)
        loaded.append((sym, bars, funding))
    iv = INTERVAL_MS[cfg.interval]
    first = max(b.t[0] for _, b, _ in loaded)
    last = min(b.t[-1] for _, b, _ in loaded) + iv
    replay = cfg.start if cfg.start is not None else min(first + WARMUP_BARS * iv, last - iv)
    if cfg.time_shift:
        sim_start = cfg.sim_start if cfg.sim_start is not None else wall_ms()
        # Whole days keep candle boundaries and funding hours aligned; the replay position keeps the
        # wall clock's time of day.
        offset = (sim_start - replay) // DAY_MS * DAY_MS
        if sim_start - offset - replay >= DAY_MS:
            offset += DAY_MS
    else:
        offset = 0
        sim_start = cfg.sim_start if cfg.sim_start is not None else replay
    assets = []
    for i, (sym, bars, funding) in enumerate(loaded):
        bars.t = [t + offset for t in bars.t]
        funding.t = [t + offset for t in funding.t]
        sz_dec, max_lev = meta_for(sym, bars.c[0])
        assets.append(Asset(sym, i, sz_dec, max_lev, bars, funding))
    return Market(assets), offset, sim_start


class Venue:
    """One simulated venue's state. All methods run on the event loop thread."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.store = StateStore(cfg.state_db) if cfg.state_db else None
        saved_offset = self.store.get_kv("time") if self.store else None
        self.market, self.offset, sim_start = build_market(cfg)
        if saved_offset is not None:
            # Keep the data alignment of the first run so stored orders and fills stay consistent.
            self._reshift(int(saved_offset["offset"]))
            sim_start = max(sim_start, int(saved_offset["t"]))
        self.clock = Clock(start_ms=sim_start, speed=cfg.speed, mode=cfg.clock_mode)
        book = BookParams(
            spread_bps=cfg.spread_bps,
            level_step_bps=cfg.level_step_bps,
            levels=cfg.levels,
            level_notional=cfg.level_notional,
            seed=cfg.seed,
        )
        self.engine = Engine(self.market, sim_start, book, cfg.seed)
        self.nonces = NonceTracker()
        self.faults = Faults(cfg.faults, cfg.seed)
        self.limiter = RateLimiter(cfg.rate_limit)
        self.signature_sources = ["b", "a"] if cfg.accept_mainnet_signatures else ["b"]
        if self.store is not None:
            restored = self.store.load(self.engine, self.nonces)
            if restored:
                log.info("restored state from %s", cfg.state_db)
            self.store.set_kv("time", {"offset": self.offset, "t": self.engine.t})
        for addr, usd in cfg.deposits.items():
            if addr.lower() not in self.engine.accounts or self.store is None:
                self.engine.deposit(addr, usd)
        self.publisher: Publisher = _NoSubscribers()
        self.sync()

    def _reshift(self, offset: int) -> None:
        delta = offset - self.offset
        if delta == 0:
            return
        for a in self.market.assets:
            a.bars.t = [t + delta for t in a.bars.t]
            a.funding.t = [t + delta for t in a.funding.t]
        self.offset = offset

    def sync(self) -> None:
        """Bring the engine up to the clock, push user events, persist what changed.

        Market data is not pushed here: requests call this, and a market push costs one book per
        subscribed channel. :meth:`tick` pushes it, once per clock tick.
        """
        frozen = self.faults.config.freeze_mids
        if frozen and self.engine.frozen is None:
            self.engine.freeze(True)
        elif not frozen and self.engine.frozen is not None:
            self.engine.freeze(False)
        self.engine.advance_to(self.clock.now_ms())
        self.flush()

    def flush(self) -> None:
        events, self.engine.events = self.engine.events, []
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # constructed outside the loop: nobody to push to yet
            pass
        else:
            self.publisher.publish_events(events)
        if self.store is not None:
            self.store.flush(self.engine, self.nonces)
        else:
            self.engine.new_fills.clear()
            self.engine.new_fundings.clear()
            self.engine.dirty_accounts.clear()
            self.engine.dirty_orders.clear()

    def tick(self) -> None:
        """One market tick: sync, then push the market-data channels that changed."""
        self.sync()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.publisher.publish_market()

    def advance(self, ms: int) -> int:
        """Stepped clock: move sim time forward and process everything in between."""
        self.clock.advance(ms)
        self.tick()
        return self.engine.t

    def save(self) -> None:
        """Persist everything and the time alignment (at shutdown; a no-op without a state file)."""
        if self.store is not None:
            self.store.flush(self.engine, self.nonces)
            self.store.set_kv("time", {"offset": self.offset, "t": self.engine.t})
