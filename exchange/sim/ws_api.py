"""``GET /ws``: subscriptions, pushes, ping/pong, idle close (protocol section 7)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiohttp import WSMsgType, web

from . import jsonbody
from .data import INTERVAL_MS
from .info_api import all_mids, asset_ctx, l2_book
from .matching import NULL_ADDRESS, ZERO_HASH, Event
from .numfmt import fmt, to_decimal
from .state import Venue
from .validation import ADDRESS_RE, book_params_ok

log = logging.getLogger("exchange.sim")

COIN_SUBS = {"l2Book", "trades", "bbo", "candle", "activeAssetCtx"}
USER_SUBS = {"userFills", "orderUpdates", "userEvents", "userFundings", "userNonFundingLedgerUpdates"}
MARKET_SUBS = {"allMids", "l2Book", "bbo", "candle", "activeAssetCtx"}

# The venue's WebSocket limits (protocol section 7.5) count per IP. Here they count per connection:
# every local client (daemon, sidecar, tests) shares 127.0.0.1, and one misbehaving client must not
# lock the others out.
MAX_SUBSCRIPTIONS = 1000
MAX_MESSAGES_PER_MINUTE = 2000
# Frames queued for a client that does not read; past this the connection is dropped.
MAX_QUEUED_FRAMES = 10_000
ERR_TOO_MANY_SUBS = f"Too many subscriptions: at most {MAX_SUBSCRIPTIONS} per connection"
ERR_TOO_MANY_MSGS = f"Too many messages: at most {MAX_MESSAGES_PER_MINUTE} per minute per connection"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass
class MessageBudget:
    """Token bucket: ``per_minute`` messages a minute, bursts up to ``per_minute``."""

    per_minute: int
    tokens: float = field(init=False)
    last: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.per_minute)

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.per_minute), self.tokens + (now - self.last) * self.per_minute / 60.0)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    peer: str = "?"
    transport: asyncio.Transport | None = None
    subs: dict[str, dict[str, Any]] = field(default_factory=dict)  # canonical key -> normalised subscription
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    sent: int = 0
    budget: MessageBudget = field(default_factory=lambda: MessageBudget(MAX_MESSAGES_PER_MINUTE))
    dropped: bool = False  # the client stopped reading; the connection is being dropped


def normalise(sub: Any, venue: Venue) -> dict[str, Any] | str:
    """The subscription as the venue echoes it, or an error text."""
    bad = f"Invalid subscription {_dumps(sub)}"
    if not isinstance(sub, dict) or not isinstance(sub.get("type"), str):
        return bad
    t = sub["type"]
    if t == "allMids":
        out: dict[str, Any] = {"type": "allMids"}
        if sub.get("dex"):
            return bad
        return out
    if t in COIN_SUBS:
        coin = sub.get("coin")
        if not isinstance(coin, str) or coin not in venue.market.by_name:
            return bad
        out = {"type": t, "coin": coin}
        if t == "candle":
            if not isinstance(sub.get("interval"), str) or sub["interval"] not in INTERVAL_MS:
                return bad
            out["interval"] = sub["interval"]
        if t == "l2Book":
            if not book_params_ok(sub.get("nSigFigs"), sub.get("mantissa")):
                return bad
            for k in ("nSigFigs", "mantissa"):
                if sub.get(k) is not None:
                    out[k] = sub[k]
        return out
    if t in USER_SUBS:
        user = sub.get("user")
        if not isinstance(user, str) or not ADDRESS_RE.match(user):
            return bad
        out = {"type": t, "user": user.lower()}
        if t == "userFills":
            out["aggregateByTime"] = bool(sub.get("aggregateByTime", False))
        return out
    return bad


def sub_key(sub: dict[str, Any]) -> str:
    return _dumps({k: sub[k] for k in sorted(sub) if k != "aggregateByTime"})


class WsHub:
    def __init__(self, venue: Venue, idle_timeout_s: float = 60.0) -> None:
        self.venue = venue
        self.idle_timeout_s = idle_timeout_s
        self.conns: set[Conn] = set()
        # Indexes kept by subscribe/unsubscribe/disconnect, so a push costs one build per distinct
        # subscription, however many connections share it.
        self.subscribers: dict[str, set[Conn]] = {}  # canonical key -> connections subscribed
        self.sub_of: dict[str, dict[str, Any]] = {}  # canonical key -> normalised subscription
        self.last: dict[str, str] = {}  # per market-data key, the last payload pushed
        self.candle_open: dict[str, int] = {}
        self.last_trade: dict[str, tuple[Decimal, int]] = {}
        self.frames_sent = 0

    # ---- connection lifecycle ---------------------------------------------------------------
    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws, peer=request.remote or "?", transport=request.transport)
        self.conns.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        close_code = 1000
        try:
            while not conn.dropped:
                try:
                    msg = await ws.receive(timeout=self.idle_timeout_s)
                except TimeoutError:
                    break  # no client message for idle_timeout_s
                if msg.type == WSMsgType.TEXT:
                    if not conn.budget.take(time.monotonic()):
                        log.warning(
                            "ws %s: over %d messages a minute, closed", conn.peer, MAX_MESSAGES_PER_MINUTE
                        )
                        self._send_now(conn, {"channel": "error", "data": ERR_TOO_MANY_MSGS})
                        close_code = 1008  # policy violation
                        break
                    self._on_text(conn, msg.data)
                    # Messages already buffered are returned without suspending; yield so one busy
                    # client cannot hold the loop (and /info, and the other sockets) between them.
                    await asyncio.sleep(0)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            self._drop_conn(conn)
            conn.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=2.0)  # a client that does not read gets no more
            await self._close(conn, 1008 if conn.dropped else close_code)
        return ws

    async def _close(self, conn: Conn, code: int, message: bytes = b"") -> None:
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message), timeout=2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort(conn)  # the client does not read: the close frame cannot go out

    @staticmethod
    def _abort(conn: Conn) -> None:
        if conn.transport is not None:
            conn.transport.abort()

    def _drop_conn(self, conn: Conn) -> None:
        self.conns.discard(conn)
        for key in list(conn.subs):
            self._unindex(conn, key)
        conn.subs.clear()

    def _index(self, conn: Conn, key: str, sub: dict[str, Any]) -> None:
        conn.subs[key] = sub
        self.subscribers.setdefault(key, set()).add(conn)
        self.sub_of.setdefault(key, sub)

    def _unindex(self, conn: Conn, key: str) -> None:
        conn.subs.pop(key, None)
        subs = self.subscribers.get(key)
        if subs is None:
            return
        subs.discard(conn)
        if not subs:
            # Nobody left: forget the channel's state, so distinct keys cannot pile up.
            del self.subscribers[key]
            self.sub_of.pop(key, None)
            self.last.pop(key, None)
            self.candle_open.pop(key, None)

    async def _writer(self, conn: Conn) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return
            conn.sent += 1
            self.frames_sent += 1

    async def disconnect_all(self) -> int:
        conns = list(self.conns)
        for c in conns:
            await self._close(c, 1012, b"server disconnect")
        return len(conns)

    # ---- sending ----------------------------------------------------------------------------
    def _send_now(self, conn: Conn, payload: dict[str, Any]) -> None:
        self._enqueue(conn, _dumps(payload))

    def _enqueue(self, conn: Conn, text: str) -> None:
        if conn.dropped:
            return
        if conn.queue.qsize() >= MAX_QUEUED_FRAMES:
            # The client stopped reading: drop it rather than queue without bound.
            log.warning("ws %s: %d frames unread, connection dropped", conn.peer, MAX_QUEUED_FRAMES)
            conn.dropped = True
            while not conn.queue.empty():
                conn.queue.get_nowait()
            conn.queue.put_nowait(None)
            self._drop_conn(conn)
            self._abort(conn)  # its handler sees the socket closed and finishes
            return
        conn.queue.put_nowait(text)

    def send(self, conn: Conn, payload: dict[str, Any], delay_s: float = 0.0) -> None:
        """Queue a data frame, through the WS faults (drop, delay)."""
        faults = self.venue.faults
        if faults.drop_frame():
            return
        delay_s += faults.frame_delay_s()
        if delay_s > 0:
            asyncio.get_running_loop().call_later(delay_s, self._send_if_open, conn, payload)
        else:
            self._send_now(conn, payload)

    def _send_if_open(self, conn: Conn, payload: dict[str, Any]) -> None:
        if conn in self.conns:
            self._send_now(conn, payload)

    # ---- client messages --------------------------------------------------------------------
    def _on_text(self, conn: Conn, text: str) -> None:
        try:
            msg = jsonbody.loads(text)
        except ValueError:
            self._send_now(conn, {"channel": "error", "data": f"Invalid message: {text[:200]}"})
            return
        if not isinstance(msg, dict):
            self._send_now(conn, {"channel": "error", "data": f"Invalid message: {text[:200]}"})
            return
        method = msg.get("method")
        if method == "ping":
            self._send_now(conn, {"channel": "pong"})
            return
        if method not in ("subscribe", "unsubscribe"):
            self._send_now(conn, {"channel": "error", "data": f"Unknown method: {text[:200]}"})
            return
        self.venue.sync()
        sub = normalise(msg.get("subscription"), self.venue)
        if isinstance(sub, str):
            self._send_now(conn, {"channel": "error", "data": sub})
            return
        key = sub_key(sub)
        if method == "subscribe":
            if key in conn.subs:
                self._send_now(conn, {"channel": "error", "data": "Already subscribed"})
                return
            if len(conn.subs) >= MAX_SUBSCRIPTIONS:
                self._send_now(conn, {"channel": "error", "data": ERR_TOO_MANY_SUBS})
                return
            self._index(conn, key, sub)
            if sub["type"] == "candle":
                # The candle open now: the first tick past it pushes that candle closed, even when
                # the subscription is new (the snapshot below is still the open candle).
                iv = INTERVAL_MS[sub["interval"]]
                self.candle_open.setdefault(key, self.venue.engine.t // iv * iv)
            self._send_now(
                conn,
                {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}},
            )
            self._initial(conn, sub)
        else:
            if key not in conn.subs:
                raw = _dumps(msg.get("subscription"))
                self._send_now(conn, {"channel": "error", "data": f"Already unsubscribed: {raw}"})
                return
            self._unindex(conn, key)
            self._send_now(
                conn,
                {"channel": "subscriptionResponse", "data": {"method": "unsubscribe", "subscription": sub}},
            )

    def _initial(self, conn: Conn, sub: dict[str, Any]) -> None:
        """Snapshot sent right after the ack."""
        v = self.venue
        e = v.engine
        t = sub["type"]
        if t == "allMids":
            self.send(conn, {"channel": "allMids", "data": {"mids": all_mids(v)}})
        elif t == "l2Book":
            book = l2_book(v, sub["coin"], sub.get("nSigFigs"), sub.get("mantissa"))
            self.send(conn, {"channel": "l2Book", "data": book})
        elif t == "bbo":
            self.send(conn, {"channel": "bbo", "data": self._bbo(sub["coin"])})
        elif t == "candle":
            cd = self._candle(sub["coin"], sub["interval"])
            if cd is not None:
                self.send(conn, {"channel": "candle", "data": cd})
        elif t == "userFills":
            fills = list(e.fills.get(sub["user"], [])[-2000:])
            self.send(
                conn,
                {"channel": "userFills", "data": {"isSnapshot": True, "user": sub["user"], "fills": fills}},
            )
        elif t == "userFundings":
            rows = [
                {
                    **{k: f["delta"][k] for k in ("coin", "usdc", "szi", "fundingRate", "nSamples")},
                    "time": f["time"],
                }
                for f in e.fundings.get(sub["user"], [])[-500:]
            ]
            self.send(
                conn,
                {
                    "channel": "userFundings",
                    "data": {"isSnapshot": True, "user": sub["user"], "fundings": rows},
                },
            )
        elif t == "activeAssetCtx":
            self.send(
                conn,
                {
                    "channel": "activeAssetCtx",
                    "data": {"coin": sub["coin"], "ctx": asset_ctx(v, sub["coin"])},
                },
            )

    # ---- market data ------------------------------------------------------------------------
    def _bbo(self, coin: str) -> dict[str, Any]:
        bid, ask = self.venue.engine.bbo(coin)

        def lv(x: Any) -> Any:
            return None if x is None else {"px": fmt(x.px), "sz": fmt(x.sz), "n": x.n}

        return {"coin": coin, "time": self.venue.engine.t, "bbo": [lv(bid), lv(ask)]}

    def _candle(self, coin: str, interval: str) -> dict[str, object] | None:
        iv = INTERVAL_MS[interval]
        now = self.venue.engine.t
        return self.venue.market.candle(coin, interval, now // iv * iv, now)

    def _subscribers(self, key: str) -> list[Conn]:
        return list(self.subscribers.get(key, ()))

    def publish_market(self) -> None:
        """Push market-data channels whose content changed since the last push (once per tick)."""
        if not self.conns:
            return
        wanted = {key: sub for key, sub in self.sub_of.items() if sub["type"] in MARKET_SUBS}
        if self.venue.faults.config.freeze_mids:
            return
        self._market_trades()
        for key, sub in wanted.items():
            t = sub["type"]
            if t == "allMids":
                data: Any = {"mids": all_mids(self.venue)}
                compare = _dumps(data)
            elif t == "l2Book":
                data = l2_book(self.venue, sub["coin"], sub.get("nSigFigs"), sub.get("mantissa"))
                compare = _dumps(data["levels"])
            elif t == "bbo":
                data = self._bbo(sub["coin"])
                compare = _dumps(data["bbo"])
            elif t == "activeAssetCtx":
                data = {"coin": sub["coin"], "ctx": asset_ctx(self.venue, sub["coin"])}
                compare = _dumps(data["ctx"])
            else:
                iv = INTERVAL_MS[sub["interval"]]
                now = self.venue.engine.t
                t_open = now // iv * iv
                prev_open = self.candle_open.get(key)
                if prev_open is not None and prev_open < t_open:
                    closed = self.venue.market.candle(
                        sub["coin"], sub["interval"], prev_open, prev_open + iv - 1
                    )
                    if closed is not None:
                        self._fan(key, {"channel": "candle", "data": closed})
                self.candle_open[key] = t_open
                data = self._candle(sub["coin"], sub["interval"])
                if data is None:
                    continue
                compare = _dumps(data)
            if self.last.get(key) == compare:
                continue
            self.last[key] = compare
            self._fan(key, {"channel": t, "data": data})

    def _market_trades(self) -> None:
        """Replay volume as anonymous trades on ``trades`` subscriptions when the price moves."""
        coins = {sub["coin"] for sub in self.sub_of.values() if sub["type"] == "trades"}
        e = self.venue.engine
        for coin in coins:
            px = e.oracle(coin)
            last = self.last_trade.get(coin)
            self.last_trade[coin] = (px, e.t)
            if last is None or last[0] == px or last[1] >= e.t:
                continue
            bar = self.venue.market.ohlcv(coin, last[1], e.t)
            sz_dec = self.venue.market.by_name[coin].sz_decimals
            lot = Decimal(1).scaleb(-sz_dec)
            sz = max(lot, to_decimal(bar.v if bar else 0.0).quantize(lot, ROUND_DOWN))
            trade = {
                "coin": coin,
                "side": "B" if px > last[0] else "A",
                "px": fmt(px),
                "sz": fmt(sz),
                "hash": ZERO_HASH,
                "time": e.t,
                "tid": e.new_tid(),
                "users": [NULL_ADDRESS, NULL_ADDRESS],
            }
            self._fan(sub_key({"type": "trades", "coin": coin}), {"channel": "trades", "data": [trade]})

    def _fan(self, key: str, payload: dict[str, Any]) -> None:
        text = None
        for c in self._subscribers(key):
            faults = self.venue.faults
            if faults.drop_frame():
                continue
            delay = faults.frame_delay_s()
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self._send_if_open, c, payload)
                continue
            if text is None:
                text = _dumps(payload)
            self._enqueue(c, text)

    # ---- engine events ----------------------------------------------------------------------
    def publish_events(self, events: list[Event]) -> None:
        if not self.conns or not events:
            return
        delay = self.venue.faults.config.fill_delay_ms / 1000.0
        for ev in events:
            if ev.kind == "trades":
                self._fan(sub_key({"type": "trades", "coin": ev.key}), {"channel": "trades", "data": ev.data})
                continue
            user = ev.key
            for key, sub in list(self.sub_of.items()):
                if sub.get("user") != user:
                    continue
                payload = self._user_payload(sub["type"], user, ev)
                if payload is None:
                    continue
                for c in self._subscribers(key):
                    self.send(c, payload, delay)
                    if ev.kind == "fills" and self.venue.faults.duplicate_fill():
                        self.send(c, payload, delay)

    def _user_payload(self, sub_type: str, user: str, ev: Event) -> dict[str, Any] | None:
        if sub_type == "userFills" and ev.kind == "fills":
            return {"channel": "userFills", "data": {"user": user, "fills": ev.data}}
        if sub_type == "orderUpdates" and ev.kind == "orderUpdates":
            return {"channel": "orderUpdates", "data": ev.data}
        if sub_type == "userFundings" and ev.kind == "funding":
            return {"channel": "userFundings", "data": {"user": user, "fundings": [ev.data]}}
        if sub_type == "userEvents":
            if ev.kind == "fills":
                return {"channel": "user", "data": {"fills": ev.data}}
            if ev.kind == "funding":
                d = {k: ev.data[k] for k in ("time", "coin", "usdc", "szi", "fundingRate")}
                return {"channel": "user", "data": {"funding": d}}
            if ev.kind == "liquidation":
                return {"channel": "user", "data": {"liquidation": ev.data}}
            if ev.kind == "nonUserCancel":
                return {"channel": "user", "data": {"nonUserCancel": ev.data}}
        return None
