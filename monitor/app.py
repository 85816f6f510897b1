"""The monitor's aiohttp application: a read-only JSON API, an SSE mids stream, Prometheus metrics
and one static page.

Nothing here writes: every route is GET (HEAD), any other method is answered 405 before routing,
and every DB is opened ``mode=ro``. DB reads run in worker threads so a slow disk never stalls the
SSE streams.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.version import __version__
from exchange.sidecar import read_candles
from monitor import readers
from monitor.db import DbUnavailable, ReadOnlyDB
from monitor.metrics import render_metrics
from monitor.mids import MidsHub, Version
from monitor.reports import add_routes as add_report_routes
from monitor.settings import INTERVAL_RE, MODES, SYMBOL_RE, Settings
from monitor.state import MonitorState

log = logging.getLogger("monitor")
STATIC = Path(__file__).resolve().parent / "static"
ALLOWED_METHODS = ("GET", "HEAD")
TOKEN_COOKIE = "aiq_monitor_token"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SETTINGS = web.AppKey("settings", Settings)


STATE = web.AppKey("state", MonitorState)


class BadRequest(web.HTTPBadRequest):
    def __init__(self, msg: str) -> None:
        super().__init__(text=json.dumps({"error": msg}), content_type="application/json")


# ---- middlewares -------------------------------------------------------------------------------


@web.middleware
async def read_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """405 for every method but GET/HEAD, on every path, before routing or auth."""
    if request.method not in ALLOWED_METHODS:
        return web.json_response(
            {"error": f"{request.method} not allowed: the monitor is read-only"},
            status=405,
            headers={"Allow": ", ".join(ALLOWED_METHODS)},
        )
    return await handler(request)


def _presented_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.cookies.get(TOKEN_COOKIE)


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With AI_QUANT_MONITOR_TOKEN set, data routes need ``Authorization: Bearer`` (or the cookie the
    page sets for EventSource, which cannot send headers). The static page itself holds no data."""
    settings = request.app[SETTINGS]
    protected = request.path.startswith("/api/") or request.path == "/metrics"
    if settings.token is not None and protected:
        given = _presented_token(request)
        want = settings.token.reveal().encode()
        if given is None or not hmac.compare_digest(given.encode(), want):
            return web.json_response(
                {"error": "missing or wrong bearer token (AI_QUANT_MONITOR_TOKEN)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="ai-quant monitor"'},
            )
    return await handler(request)


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    request.app[STATE].requests += 1
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        resp = web.json_response({"error": "internal error; see the monitor log"}, status=500)
    if not resp.prepared:
        for k, v in SECURITY_HEADERS.items():  # a report page brings its own (inline-script) CSP
            resp.headers.setdefault(k, v)
        if request.path.startswith("/api/") or request.path == "/metrics":
            resp.headers.setdefault("Cache-Control", "no-store")
    return resp


# ---- query parameters --------------------------------------------------------------------------


def q_mode(request: web.Request) -> str:
    mode = request.query.get("mode") or request.app[SETTINGS].default_mode
    if mode not in MODES:
        raise BadRequest(f"mode must be paper or live, got {mode[:20]!r}")
    return mode


def q_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw[:20]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def q_symbol(request: web.Request, required: bool = False) -> str | None:
    sym = request.query.get("symbol") or None
    if sym is None:
        if required:
            raise BadRequest("symbol is required")
        return None
    if not SYMBOL_RE.match(sym):
        raise BadRequest(f"symbol {sym[:20]!r} is not a symbol name")
    return sym


def q_symbols(request: web.Request) -> set[str] | None:
    raw = request.query.get("symbols")
    if not raw:
        return None
    syms = {s.strip() for s in raw.split(",") if s.strip()}
    bad = [s for s in syms if not SYMBOL_RE.match(s)]
    if bad:
        raise BadRequest(f"symbols: {bad[0][:20]!r} is not a symbol name")
    return syms


def q_word(request: web.Request, name: str) -> str | None:
    v = request.query.get(name) or None
    if v is not None and not v.replace("_", "").isalnum():
        raise BadRequest(f"{name} must be a word, got {v[:20]!r}")
    return v


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- snapshot ----------------------------------------------------------------------------------


def candle_intervals(candles_dir: Path) -> list[str]:
    found = [p.stem.removeprefix("candles_") for p in candles_dir.glob("candles_*.db")]
    return sorted((i for i in found if INTERVAL_RE.match(i)), key=_interval_ms)


def _interval_ms(iv: str) -> int:
    unit = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "M": 2_592_000_000}[iv[-1]]
    return int(iv[:-1]) * unit


def fallback_mids(settings: Settings, symbols: list[str], w: readers.Warnings) -> dict[str, float]:
    """The last candle close per symbol, for unrealised PnL while the sidecar is down."""
    out: dict[str, float] = {}
    ivs = [settings.default_interval, *candle_intervals(settings.candles_dir)]
    for sym in symbols:
        for iv in ivs:
            try:
                bars = read_candles(settings.candles_dir, sym, iv, 1)
            except Exception:
                continue
            if bars:
                out[sym] = bars[-1].c
                break
    if symbols and out:
        w.add("unrealised PnL uses the last candle close (no live mids)")
    return out


def sidecar_status(hub: MidsHub, mids_stale_s: float) -> dict[str, Any]:
    """Connected, the age of the newest mids, and whether they are stale (older than
    ``mids_stale_s``; a connected sidecar whose venue went quiet still holds its last mids)."""
    age = hub.age_s()
    stale = hub.state.connected and age is not None and age > mids_stale_s
    return {"connected": hub.state.connected, "mids_age_s": age, "stale": stale, "error": hub.state.error}


def build_snapshot(state: MonitorState, mode: str) -> dict[str, Any]:
    s = state.settings
    now = now_ms()
    w = readers.Warnings()
    hub = state.mids
    sidecar = sidecar_status(hub, s.mids_stale_s)
    if not hub.state.connected:
        w.add(f"WS sidecar down: live mids unavailable ({hub.state.error or 'not connected yet'})")
    elif sidecar["stale"]:
        w.add(
            f"live mids are stale ({sidecar['mids_age_s']:.0f} s old; stale after {s.mids_stale_s:.0f} s,"
            " AI_QUANT_MIDS_STALE_S): is the venue reachable?"
        )
    snap: dict[str, Any] = {
        "now_ts_ms": now,
        "mode": mode,
        "monitor_version": __version__,
        "db": {"path": str(state.dbs[mode].path), "ok": False, "error": ""},
        "heartbeat": {"present": False, "age_s": None, "stale": True, "fields": {}},
        "kill": {"state": "unknown", "reason": "", "events": []},
        "balances": {"cash": None, "equity": None, "unrealized_pnl": None, "margin_used": None},
        "open_positions": [],
        **{p.key: p.empty() for p in readers.PANELS},
        "drawdown": {"current_pct": None, "max_pct": None, "peak_equity": None},
        "config_id": "",
        "version": "",
        "symbols": [],
        "sidecar": sidecar,
        "candle_intervals": candle_intervals(s.candles_dir),
        "default_interval": s.default_interval,
        "stale_after_s": s.stale_s,
        "warnings": w.items,
    }
    db = state.dbs[mode]
    try:
        with db.session():
            _fill_snapshot(snap, state, db, now, w)
    except DbUnavailable as exc:
        w.add(str(exc))
        snap["db"]["error"] = str(exc)
    return snap


def _fill_snapshot(
    snap: dict[str, Any], state: MonitorState, db: ReadOnlyDB, now: int, w: readers.Warnings
) -> None:
    s, hub = state.settings, state.mids
    hb = readers.heartbeat(db, now, s.stale_s)
    snap["db"]["ok"] = True
    snap["heartbeat"] = hb
    fields = hb["fields"]
    if not hb["present"]:
        w.add("no daemon heartbeat in the DB yet: has the daemon run a loop?")
    elif hb["stale"]:
        age = hb["age_s"]
        w.add(
            f"daemon heartbeat is stale ({age:.0f} s old; stale after {s.stale_s:.0f} s): is the daemon running?"
        )
    if hb["present"] and not hb["parsed"]:
        w.add("the newest heartbeat line could not be parsed")
    down_since = fields.get("venue_down_since", "-")
    if down_since not in ("", "-"):
        w.add(f"venue unreachable since {down_since} (the daemon's heartbeat): it retries every loop")
    snap["config_id"] = fields.get("config_id", "")
    snap["version"] = fields.get("version", "")
    kill = fields.get("kill") or "unknown"
    snap["kill"] = {
        "state": kill,
        "reason": "" if fields.get("kill_reason") in (None, "-") else fields["kill_reason"],
        "events": readers.kill_events(db, w),
    }
    symbols = readers.watchlist(db)
    snap["symbols"] = symbols
    mids = dict(hub.state.mids)
    pos_syms = [str(r["symbol"]) for r in db.query("SELECT symbol FROM position_state")]
    missing = [p for p in pos_syms if p not in mids]
    if missing:
        mids.update(fallback_mids(s, missing, w))
    positions = readers.positions(db, mids, w)
    snap["open_positions"] = positions
    upnl = sum(p["unrealized_pnl"] or 0.0 for p in positions)
    live = readers.live_account(db, w)
    owned = set(live["operator"]) if live is not None else set()
    for p in positions:  # the operator's coins (manual_trade.py): the daemon sends nothing for them
        p["owner"] = "operator" if p["symbol"] in owned else "strategy"
    if live is not None:  # the venue's account value already includes unrealised PnL
        equity: float | None = live["account_value"]
        cash = live["account_value"] - upnl
    else:
        cash = readers.cash_balance(db, w)
        equity = cash + upnl if cash is not None else readers.hb_float(hb, "equity")
    snap["balances"] = {
        "cash": cash,
        "equity": equity,
        "unrealized_pnl": upnl,
        "margin_used": sum(p["margin_used"] or 0.0 for p in positions),
    }
    curve = state.curves[snap["mode"]]
    curve.update(db)
    snap["drawdown"] = {
        "current_pct": curve.drawdown_pct(equity),
        "max_pct": curve.max_drawdown_pct if curve.peak is not None else None,
        "peak_equity": curve.peak,
    }
    for panel in readers.PANELS:
        snap[panel.key] = panel.read(db, w)


# ---- handlers ----------------------------------------------------------------------------------


def _state(request: web.Request) -> MonitorState:
    return request.app[STATE]


async def _db_call(request: web.Request, fn: Callable[[readers.Warnings], Any], key: str) -> web.Response:
    """Run ``fn`` on the mode's DB in a worker thread; a missing or locked DB is a warning, not an error."""
    w = readers.Warnings()

    def run() -> Any:
        try:
            return fn(w)
        except DbUnavailable as exc:
            w.add(str(exc))
            return None

    value = await asyncio.to_thread(run)
    return web.json_response({"mode": q_mode(request), key: value, "warnings": w.items})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


#: The files under /static/, by name: only these are served (a lookup, never a path built from the
#: request, so no name reaches the file system: a 300-character one answered 500 via ENAMETOOLONG).
STATIC_FILES: dict[str, Path] = {p.name: p for p in STATIC.iterdir() if p.is_file()}


async def static_file(request: web.Request) -> web.FileResponse:
    path = STATIC_FILES.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such file"}), content_type="application/json")
    return web.FileResponse(path)


async def health(request: web.Request) -> web.Response:
    state = _state(request)

    def run() -> dict[str, Any]:
        dbs = {m: vars(db.status()) for m, db in state.dbs.items()}
        dbs["oms"] = vars(state.oms_db.status())
        return {"ok": True, "now_ts_ms": now_ms(), "version": __version__, "dbs": dbs}

    out = await asyncio.to_thread(run)
    out["sidecar"] = sidecar_status(state.mids, state.settings.mids_stale_s)
    out["sse_clients"] = state.mids.subscribers
    return web.json_response(out)


async def snapshot(request: web.Request) -> web.Response:
    mode = q_mode(request)
    return web.json_response(await asyncio.to_thread(build_snapshot, _state(request), mode))


async def mids(request: web.Request) -> web.Response:
    hub = _state(request).mids
    syms = q_symbols(request)
    out = hub.payload(syms)
    if request.query.get("history") in ("1", "true"):
        out["history"] = hub.sparkline(syms)
    return web.json_response(out)


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def mids_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: ``mids`` events (id = the sidecar's mids_seq), a ``status`` event when the
    sidecar goes down or comes back, and a comment line as keepalive. ``retry`` tells EventSource how
    soon to reconnect; on reconnect it sends Last-Event-ID and gets the current mids at once if newer."""
    state = _state(request)
    hub, s = state.mids, state.settings
    syms = q_symbols(request)
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    resp.headers.update(SECURITY_HEADERS)
    await resp.prepare(request)
    if request.method == "HEAD":  # headers only; never hold a stream open for it
        return resp
    last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or ""
    sent: Version | None = None
    if last_id.isdigit() and int(last_id) == hub.state.seq and hub.state.connected:
        sent = hub.version()  # the client already has these mids
    hub.subscribers += 1
    try:
        await resp.write(f"retry: {s.sse_retry_ms}\n\n".encode())
        while not state.closing.is_set() and not hub.closed:
            if hub.version() != sent:
                sent = hub.version()
                if hub.state.connected:
                    await resp.write(_sse("mids", hub.payload(syms), hub.state.seq))
                else:
                    await resp.write(_sse("status", {"connected": False, "error": hub.state.error}))
                continue
            if not await hub.wait_newer(sent, s.keepalive_s):
                await resp.write(b": keepalive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.subscribers -= 1
    return resp


async def candles(request: web.Request) -> web.Response:
    state = _state(request)
    s = state.settings
    mode = q_mode(request)
    symbol = q_symbol(request, required=True)
    assert symbol is not None
    interval = request.query.get("interval") or s.default_interval
    if not INTERVAL_RE.match(interval):
        raise BadRequest(f"interval {interval[:10]!r} is not an interval like 5m, 1h or 1d")
    limit = q_int(request, "limit", 200, 1, 5000)

    def run() -> dict[str, Any]:
        w = readers.Warnings()
        try:
            bars = read_candles(s.candles_dir, symbol, interval, limit)
        except Exception as exc:
            bars = []
            w.add(f"candle DB for {interval} unreadable: {type(exc).__name__}: {exc}")
        if not bars and not w.items:
            w.add(f"no {interval} candles for {symbol} in {s.candles_dir}")
        marks: list[dict[str, Any]] = []
        if bars:
            try:
                lo = bars[0].t
                rows = state.dbs[mode].query(
                    "SELECT * FROM trades WHERE symbol = ? AND ts_ms >= ? AND action != 'FUNDING'"
                    " ORDER BY id DESC LIMIT 500",
                    [symbol, lo],
                )
                marks = readers.convert(rows, readers._trade, "trades", w)
            except DbUnavailable as exc:
                w.add(str(exc))
        return {
            "mode": mode,
            "symbol": symbol,
            "interval": interval,
            "candles": [[b.t, b.o, b.h, b.low, b.c, b.v] for b in bars],
            "marks": [
                {
                    "ts_ms": m["ts_ms"],
                    "price": m["price"],
                    "action": m["action"],
                    "type": m["type"],
                    "id": m["id"],
                }
                for m in marks
            ],
            "warnings": w.items,
        }

    return web.json_response(await asyncio.to_thread(run))


async def trades(request: web.Request) -> web.Response:
    db = _state(request).dbs[q_mode(request)]
    limit = q_int(request, "limit", 100, 1, 2000)
    symbol = q_symbol(request)
    return await _db_call(request, lambda w: readers.trades(db, w, limit=limit, symbol=symbol), "trades")


async def equity(request: web.Request) -> web.Response:
    state = _state(request)
    mode = q_mode(request)
    curve = state.curves[mode]

    def run(w: readers.Warnings) -> dict[str, Any]:
        curve.update(state.dbs[mode])
        return {"points": curve.series(), "peak": curve.peak, "max_drawdown_pct": curve.max_drawdown_pct}

    return await _db_call(request, run, "equity")


async def decisions(request: web.Request) -> web.Response:
    db = _state(request).dbs[q_mode(request)]
    limit = q_int(request, "limit", 100, 1, 1000)
    symbol = q_symbol(request)
    status, event_type = q_word(request, "status"), q_word(request, "event_type")
    return await _db_call(
        request,
        lambda w: readers.decisions(db, w, limit=limit, symbol=symbol, status=status, event_type=event_type),
        "decisions",
    )


async def oms(request: web.Request) -> web.Response:
    """The live OMS: the DB the live daemon names in its kv ``live_account``, else ``oms_live.db``
    beside the live trading DB. Paper mode has no OMS: the paper trader fills directly."""
    state = _state(request)
    limit = q_int(request, "limit", 50, 1, 1000)

    def run(w: readers.Warnings) -> Any:
        if q_mode(request) == "paper":
            w.add("paper mode has no OMS (the paper trader fills directly); switch to live")
            return None
        oms_db = state.oms_db
        try:  # the live daemon records where its OMS is
            acct = readers.live_account(state.dbs["live"], w)
        except DbUnavailable:
            acct = None
        if acct and acct["oms"]:
            oms_db = ReadOnlyDB(Path(acct["oms"]), "live OMS")
        if not oms_db.path.exists():
            w.add(f"live OMS DB {oms_db.path} does not exist (no live daemon has run here)")
            return None
        return readers.oms(oms_db, w, limit)

    return await _db_call(request, run, "oms")


async def metrics(request: web.Request) -> web.Response:
    state = _state(request)
    snaps = await asyncio.to_thread(lambda: {str(m): build_snapshot(state, m) for m in MODES})
    body = render_metrics(snaps, state)
    return web.Response(text=body, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"})


# ---- the app -----------------------------------------------------------------------------------


def make_app(settings: Settings, *, start_mids: bool = True) -> web.Application:
    app = web.Application(middlewares=[headers, read_only, bearer_auth])
    state = MonitorState(settings)
    app[SETTINGS] = settings
    app[STATE] = state
    routes = [
        ("/", index),
        ("/api/health", health),
        ("/api/snapshot", snapshot),
        ("/api/mids", mids),
        ("/api/mids/stream", mids_stream),
        ("/api/candles", candles),
        ("/api/trades", trades),
        ("/api/equity", equity),
        ("/api/decisions", decisions),
        ("/api/oms", oms),
        ("/metrics", metrics),
    ]
    for path, handler in routes:
        app.router.add_get(path, handler)
    add_report_routes(app, settings.dbs["paper"].parent, settings.dbs["paper"])
    app.router.add_get("/static/{name}", static_file)

    async def on_startup(app: web.Application) -> None:
        if start_mids:
            state.mids.start()

    async def on_shutdown(app: web.Application) -> None:
        state.closing.set()
        await state.mids.close_streams()

    async def on_cleanup(app: web.Application) -> None:
        await state.mids.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


#: Every GET route (the static files aside), for tests and docs.
ROUTES = (
    "/",
    "/api/health",
    "/api/snapshot",
    "/api/mids",
    "/api/mids/stream",
    "/api/candles",
    "/api/trades",
    "/api/equity",
    "/api/decisions",
    "/api/oms",
    "/metrics",
    "/api/reports",
)

__all__ = ["ROUTES", "STATE", "build_snapshot", "make_app"]
