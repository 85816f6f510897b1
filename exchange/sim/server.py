"""The aiohttp application: composes the venue's state with the REST and WebSocket handlers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from decimal import Decimal
from typing import Any

from aiohttp import web

from . import exchange_api, info_api, jsonbody
from .clock import wall_ms
from .config import SimConfig
from .ratelimit import exchange_weight, info_extra_weight, info_weight
from .state import Venue
from .validation import DESERIALIZE_ERROR, InfoError
from .ws_api import WsHub

log = logging.getLogger("exchange.sim")


class VenueApp:
    """One local exchange: the venue's state, its WebSocket hub and the HTTP routes over them."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.venue = Venue(cfg)
        self.hub = WsHub(self.venue, cfg.ws_idle_timeout_s)
        self.venue.publisher = self.hub
        self._ticker: asyncio.Task[None] | None = None
        self.requests = 0

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.tick_ms / 1000.0)
            try:
                self.venue.tick()
            except Exception:  # keep the venue alive; the error is logged
                log.exception("tick failed")

    # ---- HTTP -------------------------------------------------------------------------------
    def _ip(self, request: web.Request) -> str:
        return request.remote or "?"

    def _pre(self, request: web.Request, weight: int) -> web.Response | None:
        fault = self.venue.faults.http_fault()
        if fault == 500:
            return web.Response(status=500, text="Internal Server Error")
        if fault == 429 or not self.venue.limiter.allow(self._ip(request), weight, wall_ms()):
            return web.json_response(None, status=429)
        return None

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return jsonbody.loads(raw)
        except ValueError as exc:
            raise InfoError(f"{DESERIALIZE_ERROR}: {exc}") from exc

    async def info(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await self._body(request)
            req_type = body.get("type") if isinstance(body, dict) else None
            early = self._pre(request, info_weight(str(req_type)))
            if early is not None:
                return early
            self.venue.sync()
            result = info_api.handle(self.venue, body)
        except InfoError as exc:
            return web.Response(status=422, text=str(exc), content_type="text/plain")
        self.venue.limiter.charge(self._ip(request), info_extra_weight(str(req_type), result), wall_ms())
        return web.json_response(result, dumps=_dumps)

    async def exchange(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await self._body(request)
            action = body.get("action") if isinstance(body, dict) else None
            early = self._pre(request, exchange_weight(action))
            if early is not None:
                return early
            self.venue.sync()
            result = exchange_api.handle(self.venue, body, wall_ms())
        except InfoError as exc:
            return web.Response(status=422, text=str(exc), content_type="text/plain")
        if self.venue.clock.stepped:
            self.venue.tick()  # no clock ticks here: the action is the tick (resting orders change the book)
        else:
            self.venue.flush()  # the next clock tick pushes the market data
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
            acct = self.venue.engine.deposit(str(body["user"]), Decimal(str(body["usd"])))
            self.venue.flush()
            return {"user": acct.address, "balance": str(acct.balance)}
        if op == "advance":
            if not self.venue.clock.stepped and not body.get("force"):
                raise ValueError("advance needs a stepped clock (or force=true)")
            return {"time": self.venue.advance(int(body["ms"]))}
        if op == "time":
            return {"time": self.venue.engine.t, "wall": wall_ms(), "offset": self.venue.offset}
        if op == "faults":
            if "seed" in body:
                self.venue.faults.reseed(int(body.pop("seed")))
            self.venue.faults.config.update(body)
            self.venue.tick()
            return {"faults": self.venue.faults.config.__dict__}
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
        if not self.venue.clock.stepped:
            self._ticker = asyncio.create_task(self._tick_loop())

    async def _on_shutdown(self, _app: web.Application) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.hub.disconnect_all()
        self.venue.save()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
