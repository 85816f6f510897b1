"""``python -m exchange.sim``: run the local Hyperliquid-compatible exchange."""

from __future__ import annotations

import argparse
import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path

from aiohttp import web

from exchange.timestamps import parse_time

from .config import DEFAULT_DATA_DIR, SimConfig
from .data import INTERVAL_MS
from .faults import FaultConfig
from .server import VenueApp


def _parse_deposit(text: str) -> tuple[str, Decimal]:
    addr, _, usd = text.partition("=")
    if not addr.startswith("0x") or len(addr) != 42:
        raise argparse.ArgumentTypeError(f"bad address in --deposit {text!r}")
    try:
        return addr.lower(), Decimal(usd)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"bad amount in --deposit {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exchange.sim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3001)
    p.add_argument("--symbols", default="BTC,ETH,SOL", help="comma-separated coins")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="freqtrade Feather directory")
    p.add_argument(
        "--candles-db", type=Path, default=None, help="SQLite DB with a candles table (instead of Feather)"
    )
    p.add_argument(
        "--funding-dir", type=Path, default=None, help="funding-rate Feathers (default: --data-dir)"
    )
    p.add_argument(
        "--funding-db",
        type=Path,
        default=None,
        help="SQLite funding_rates table (default: funding_rates.db next to --candles-db, else Feathers)",
    )
    p.add_argument("--interval", default="5m", choices=sorted(INTERVAL_MS, key=INTERVAL_MS.__getitem__))
    p.add_argument("--speed", type=float, default=1.0, help="sim ms per wall ms (x N replay)")
    p.add_argument("--stepped", action="store_true", help="clock moves only through POST /admin/advance")
    p.add_argument(
        "--start", type=parse_time, default=None, help="replay position (ISO date or ms) in data time"
    )
    p.add_argument("--no-time-shift", action="store_true", help="keep the data's original timestamps")
    p.add_argument("--seed", type=int, default=0, help="seed for book jitter, hashes and faults")
    p.add_argument("--state-db", type=Path, default=None, help="SQLite file that keeps state across restarts")
    p.add_argument("--deposit", type=_parse_deposit, action="append", default=[], metavar="ADDRESS=USD")
    p.add_argument(
        "--enable-admin", action="store_true", help="serve POST /admin/* (deposit, advance, faults)"
    )
    p.add_argument("--spread-bps", type=Decimal, default=Decimal("1"))
    p.add_argument("--level-step-bps", type=Decimal, default=Decimal("1"))
    p.add_argument("--levels", type=int, default=20)
    p.add_argument(
        "--level-notional", type=Decimal, default=Decimal("25000"), help="USD at the first book level"
    )
    p.add_argument("--rate-limit", type=int, default=1200, help="REST weight per minute per IP (0 = off)")
    p.add_argument("--ws-idle-timeout", type=float, default=60.0)
    p.add_argument("--tick-ms", type=int, default=100)
    p.add_argument(
        "--accept-mainnet-signatures", action="store_true", help="also accept phantom agent source 'a'"
    )
    f = p.add_argument_group("fault injection (all reproducible from --seed)")
    f.add_argument("--ws-drop-rate", type=float, default=0.0)
    f.add_argument("--ws-delay-rate", type=float, default=0.0)
    f.add_argument("--ws-delay-ms", type=int, default=0)
    f.add_argument("--duplicate-fill-rate", type=float, default=0.0)
    f.add_argument("--fill-delay-ms", type=int, default=0)
    f.add_argument("--http-5xx-rate", type=float, default=0.0)
    f.add_argument("--http-429-rate", type=float, default=0.0)
    f.add_argument("--freeze-mids", action="store_true")
    f.add_argument("--reject-orders", default=None, metavar="ERROR")
    f.add_argument("--reject-rate", type=float, default=1.0)
    p.add_argument("--log-level", default="INFO")
    return p


def config_from_args(a: argparse.Namespace) -> SimConfig:
    return SimConfig(
        host=a.host,
        port=a.port,
        symbols=[s.strip() for s in a.symbols.split(",") if s.strip()],
        data_dir=a.data_dir,
        candles_db=a.candles_db,
        funding_dir=a.funding_dir,
        funding_db=a.funding_db,
        interval=a.interval,
        speed=a.speed,
        clock_mode="stepped" if a.stepped else "realtime",
        start=a.start,
        time_shift=not a.no_time_shift,
        seed=a.seed,
        state_db=a.state_db,
        deposits=dict(a.deposit),
        enable_admin=a.enable_admin,
        spread_bps=a.spread_bps,
        level_step_bps=a.level_step_bps,
        levels=a.levels,
        level_notional=a.level_notional,
        rate_limit=a.rate_limit,
        ws_idle_timeout_s=a.ws_idle_timeout,
        tick_ms=a.tick_ms,
        accept_mainnet_signatures=a.accept_mainnet_signatures,
        faults=FaultConfig(
            ws_drop_rate=a.ws_drop_rate,
            ws_delay_rate=a.ws_delay_rate,
            ws_delay_ms=a.ws_delay_ms,
            duplicate_fill_rate=a.duplicate_fill_rate,
            fill_delay_ms=a.fill_delay_ms,
            http_5xx_rate=a.http_5xx_rate,
            http_429_rate=a.http_429_rate,
            freeze_mids=a.freeze_mids,
            reject_orders=a.reject_orders,
            reject_rate=a.reject_rate,
        ),
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = config_from_args(args)
    app = VenueApp(cfg)
    log = logging.getLogger("exchange.sim")
    log.info(
        "local exchange on http://%s:%d (ws /ws), symbols %s, %s clock x%s, sim time %d",
        cfg.host,
        cfg.port,
        ",".join(cfg.symbols),
        cfg.clock_mode,
        cfg.speed,
        app.venue.engine.t,
    )
    web.run_app(app.make_app(), host=cfg.host, port=cfg.port, print=None)


if __name__ == "__main__":
    main()
