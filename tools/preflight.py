#!/usr/bin/env python3
"""Pre-flight check of the live set-up: wallet, account, margin, symbols, leverage, unknown orders.

    python tools/preflight.py                  # the env's mode (dry_live or live), its OMS file
    python tools/preflight.py --symbols BTC,ETH --json

The same check the daemon runs at the start of dry_live and live (live/preflight.py): the signing
key against ``account_address`` (and whether it is an approved API wallet of it), margin, every
watchlist symbol listed with its szDecimals and max leverage, the configured leverage allowed, open
orders and positions the OMS does not know. It sends nothing and opens the OMS file read-only, so it
may run beside a daemon. The OMS side reflects the OMS as of the daemon's last reconcile (a start
adopts the fills of its own orders first).

Output: one line per listed symbol, then one line per problem (``--json``: one JSON report).
Exit status: 0 no problem, 1 a problem was found (live would refuse to trade), 2 bad input
(env, secrets file, config) or the venue cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import EXIT_FAILED, EXIT_OK, OpsError, doc_parser, fail

PROG = "preflight.py"


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(PROG, __doc__)
    p.add_argument(
        "--mode", choices=("dry_live", "live"), help="whose OMS file (default: AI_QUANT_MODE, else live)"
    )
    p.add_argument("--url", help="venue URL (default AI_QUANT_EXCHANGE_URL)")
    p.add_argument("--config", type=Path, help="strategy YAML (default AI_QUANT_STRATEGY_YAML)")
    p.add_argument(
        "--symbols", help="comma list (default AI_QUANT_SYMBOLS, else the daemon's top-N by volume)"
    )
    p.add_argument("--oms-db", type=Path, help="OMS file (default oms_<mode>.db next to the trading DB)")
    p.add_argument("--json", action="store_true", help="print one JSON report")
    return p


def run(a: argparse.Namespace) -> tuple[dict[str, Any], int]:
    from engine.config import ConfigError
    from engine.env import EnvError, read_env
    from engine.market_data import MarketDataHub
    from engine.secrets import SecretError, load_wallet_secrets, wallet_from
    from engine.strategy_manager import StrategyManager
    from exchange.executor import ExecutorError, HyperliquidExecutor, MemoryNonceStore, MonotonicNonce
    from exchange.hl_market_data import HyperliquidMarketData
    from live.preflight import check, gather_venue, read_oms, trade_sections

    try:
        env = read_env()
    except EnvError as exc:
        raise OpsError(str(exc)) from None
    mode = a.mode or (env.mode if env.mode in ("dry_live", "live") else "live")
    url = (a.url or env.exchange_url).rstrip("/")
    config = a.config or env.strategy_yaml
    try:
        strategy = StrategyManager(config, mode=mode, strategy_mode=env.strategy_mode)
    except ConfigError as exc:
        raise OpsError(f"invalid config {config}:\n{exc}") from None
    except FileNotFoundError:
        raise OpsError(f"config file {config} not found (AI_QUANT_STRATEGY_YAML or --config)") from None
    try:
        sec = load_wallet_secrets()
        wallet = wallet_from(sec.key)
    except SecretError as exc:
        raise OpsError(str(exc)) from None
    try:
        # sends nothing: the nonce store is never used
        ex = HyperliquidExecutor(
            wallet, url, MonotonicNonce(MemoryNonceStore()), account_address=sec.account_address
        )
    except ExecutorError as exc:
        raise OpsError(f"venue {url}: {exc}") from None
    except Exception as exc:  # the SDK raises requests errors on a dead venue
        raise OpsError(f"venue {url} unreachable: {type(exc).__name__}") from None
    if a.symbols:
        watchlist = [s.strip() for s in a.symbols.split(",") if s.strip()]
    elif env.symbols:
        watchlist = list(env.symbols)
    else:
        exclude = strategy.model().watchlist_exclude
        watchlist = MarketDataHub(HyperliquidMarketData(ex.info), strategy.interval, 0).top_by_volume(
            env.top_n, exclude
        )
    oms_path = a.oms_db or env.db_path.parent / f"oms_{mode}.db"
    report = check(gather_venue(ex), read_oms(oms_path), watchlist, trade_sections(strategy, watchlist))
    out = {
        "ok": report.ok,
        "mode": mode,
        "url": url,
        "signer": ex.signer,
        "account": ex.address,
        "oms": str(oms_path),
        "symbols": list(report.symbols),
        "problems": [{"kind": p.kind, "line": p.line} for p in report.problems],
    }
    return out, EXIT_OK if report.ok else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    a = build_parser().parse_args(argv)
    try:
        out, code = run(a)
    except OpsError as exc:
        return fail(PROG, exc)
    if a.json:
        print(json.dumps(out, indent=2))
        return code
    print(f"signer {out['signer']}, account {out['account']}, venue {out['url']}, OMS {out['oms']}")
    for line in out["symbols"]:
        print(f"ok: {line}")
    for p in out["problems"]:
        print(f"PROBLEM: {p['line']}")
    print("pre-flight: no problem" if out["ok"] else f"pre-flight: {len(out['problems'])} problem(s)")
    return code


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
