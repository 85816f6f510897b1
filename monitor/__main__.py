"""``python -m monitor``: serve the read-only web monitor (see docs/monitor.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.env import EnvError, _host_port, describe_unknown, read_env
from monitor.app import make_app
from monitor.server import HEADER_TIMEOUT_S, bind_socket, serve
from monitor.settings import BindRefused, from_env

EXIT_USAGE = 2
EXIT_BIND = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitor", description="ai-quant read-only web monitor")
    p.add_argument("--bind", help="HOST:PORT (default AI_QUANT_MONITOR_BIND, else 127.0.0.1:61010)")
    p.add_argument(
        "--paper-db", type=Path, help="paper trading DB (default $AI_QUANT_DATA_DIR/trading_engine.db)"
    )
    p.add_argument(
        "--live-db", type=Path, help="live trading DB (default $AI_QUANT_DATA_DIR/trading_engine_live.db)"
    )
    p.add_argument(
        "--stale-s", type=float, default=90.0, help="heartbeat age that counts as stale (default 90)"
    )
    p.add_argument(
        "--oms-db",
        type=Path,
        help="live OMS DB (default oms_live.db beside the live DB, as python -m daemon)",
    )
    p.add_argument("--keepalive-s", type=float, default=15.0, help="SSE keepalive period (default 15)")
    p.add_argument(
        "--header-timeout-s",
        type=float,
        default=HEADER_TIMEOUT_S,
        help=f"close a connection whose request headers have not arrived by then (default {HEADER_TIMEOUT_S:g})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        env = read_env()
        bind = _host_port("--bind", args.bind) if args.bind else None
    except EnvError as exc:
        print(f"ai-quant monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=env.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in env.unknown_vars:
        logging.warning(describe_unknown(name))
    if args.stale_s <= 0 or args.keepalive_s <= 0 or args.header_timeout_s <= 0:
        print(
            "ai-quant monitor: --stale-s, --keepalive-s and --header-timeout-s must be > 0", file=sys.stderr
        )
        return EXIT_USAGE
    settings = from_env(
        env, bind=bind, paper_db=args.paper_db, live_db=args.live_db, oms_db=args.oms_db, stale_s=args.stale_s,
        keepalive_s=args.keepalive_s,
    )  # fmt: skip
    try:
        settings.check_bind()
    except BindRefused as exc:
        print(f"ai-quant monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = bind_socket(settings.bind.host, settings.bind.port)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"ai-quant monitor: cannot listen on {settings.bind}: {why}", file=sys.stderr)
        return EXIT_BIND
    logging.info(
        "monitor on http://%s (paper DB %s, live DB %s, sidecar %s, token %s)",
        settings.bind, settings.dbs["paper"], settings.dbs["live"], settings.sidecar_sock,
        "required" if settings.token else "off",
    )  # fmt: skip
    asyncio.run(serve(make_app(settings), sock, header_timeout_s=args.header_timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
