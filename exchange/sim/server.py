"""The aiohttp application: wires the market, engine, REST, WebSocket, faults and persistence together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from . import exchange_api, info_api, jsonbody
from .book import BookParams
from .clock import Clock, wall_ms
from .data import (
    DAY_MS,
    INTERVAL_MS,
    load_feather_bars,
    load_feather_funding,
    load_sqlite_bars,
    load_sqlite_funding,
    meta_for,
)
from .faults import FaultConfig, Faults
from .info_api import InfoError
from .market import Asset, Market
from .matching import Engine
from .nonces import NonceTracker
from .persistence import StateStore
from .ratelimit import RateLimiter, exchange_weight, info_extra_weight, info_weight

log = logging.getLogger("exchange.sim")

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
    """One simulated venue. All methods run on the event loop thread."""

    def __init__(self, cfg: SimConfig) -> None:
        from .ws_api import WsHub

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
        self.hub = WsHub(self, cfg.ws_idle_timeout_s)
        self._ticker: asyncio.Task[None] | None = None
        self.requests = 0
        self.sync()

    def _reshift(self, offset: int) -> None:
        delta = offset - self.offset
        if delta == 0:
            return
        for a in self.market.assets:
            a.bars.t = [t + delta for t in a.bars.t]
            a.funding.t = [t + delta for t in a.funding.t]
        self.offset = offset

    # ---- time and state ---------------------------------------------------------------------
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
            self.hub.publish_events(events)
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
        self.hub.publish_market()

    def advance(self, ms: int) -> int:
        """Stepped clock: move sim time forward and process everything in between."""
        self.clock.advance(ms)
        self.tick()
        return self.engine.t

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.tick_ms / 1000.0)
            try:
                self.tick()
            except Exception:  # keep the venue alive; the error is logged
                log.exception("tick failed")

    # ---- HTTP -------------------------------------------------------------------------------
    def _ip(self, request: web.Request) -> str:
        return request.remote or "?"

    def _pre(self, request: web.Request, weight: int) -> web.Response | None:
        fault = self.faults.http_fault()
        if fault == 500:
            return web.Response(status=500, text="Internal Server Error")
        if fault == 429 or not self.limiter.allow(self._ip(request), weight, wall_ms()):
            return web.json_response(None, status=429)
        return None

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return jsonbody.loads(raw)
        except ValueError as exc:
            raise InfoError(f"{info_api.DESERIALIZE_ERROR}: {exc}") from exc

    async def info(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await self._body(request)
            req_type = body.get("type") if isinstance(body, dict) else None
            early = self._pre(request, info_weight(str(req_type)))
            if early is not None:
                return early
            self.sync()
            result = info_api.handle(self, body)
        except InfoError as exc:
            return web.Response(status=422, text=str(exc), content_type="text/plain")
        self.limiter.charge(self._ip(request), info_extra_weight(str(req_type), result), wall_ms())
        return web.json_response(result, dumps=_dumps)

    async def exchange(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await self._body(request)
            action = body.get("action") if isinstance(body, dict) else None
            early = self._pre(request, exchange_weight(action))
            if early is not None:
                return early
            self.sync()
            result = exchange_api.handle(self, body, wall_ms())
        except InfoError as exc:
            return web.Response(status=422, text=str(exc), content_type="text/plain")
        if self.clock.stepped:
            self.tick()  # no clock ticks here: the action is the tick (resting orders change the book)
        else:
            self.flush()  # the next clock tick pushes the market data
        return web.json_response(result, dumps=_dumps)

    # ---- admin (only with --enable-admin) ---------------------------------------------------
    async def admin(self, request: web.Request) -> web.StreamResponse:
        op = request.match_info["op"]
        try:
            body = jsonbody.loads(await request.read()) if request.can_read_body else {}
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be an object"}, status=400)
        try:
            out = await self.admin_op(op, body)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(out, dumps=_dumps)

    async def admin_op(self, op: str, body: dict[str, Any]) -> Any:
        if op == "deposit":
            acct = self.engine.deposit(str(body["user"]), Decimal(str(body["usd"])))
            self.flush()
            return {"user": acct.address, "balance": str(acct.balance)}
        if op == "advance":
            if not self.clock.stepped and not body.get("force"):
                raise ValueError("advance needs a stepped clock (or force=true)")
            return {"time": self.advance(int(body["ms"]))}
        if op == "time":
            return {"time": self.engine.t, "wall": wall_ms(), "offset": self.offset}
        if op == "faults":
            if "seed" in body:
                self.faults.reseed(int(body.pop("seed")))
            self.faults.config.update(body)
            self.tick()
            return {"faults": self.faults.config.__dict__}
        if op == "disconnect":
            return {"closed": await self.hub.disconnect_all()}
        raise KeyError(f"unknown admin op {op}")

    # ---- app --------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/info", self.info)
        app.router.add_post("/exchange", self.exchange)
        app.router.add_get("/ws", self.hub.handler)
        if self.cfg.enable_admin:
            app.router.add_post("/admin/{op}", self.admin)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        if not self.clock.stepped:
            self._ticker = asyncio.create_task(self._tick_loop())

    async def _on_shutdown(self, _app: web.Application) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.hub.disconnect_all()
        if self.store is not None:
            self.store.flush(self.engine, self.nonces)
            self.store.set_kv("time", {"offset": self.offset, "t": self.engine.t})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
