#!/usr/bin/env python3
"""Export paper or live positions and the kernel state to a versioned JSON for replays.

    python tools/export_state.py --mode paper --output state.json
    python tools/export_state.py --mode live --output state.json
    target/release/ai-quant-bt replay --config CONFIG --candles-db DIR --init-state state.json

Paper: the kernel state committed with the daemon's last loop (``kv.kernel_state`` in the trading
DB, ``AI_QUANT_DB_PATH``), checked against ``position_state``; ``kernel_state_paper.json`` in the
data dir is compared and a difference is noted (the DB is the committed truth). Reading is safe
while the daemon runs (WAL readers see the last commit).

Live: the positions the venue reports for the account (``--address``, default the wallet of the
secrets file), with the OMS's kernel state when it agrees, else a kernel state rebuilt from them.

The output (``format: ai-quant-state``, ``version: 1``) is written atomically with mode 0600.
``--dry-run`` prints the summary without writing. Exit status: 0 written, 1 the sources disagree or
the venue cannot be read, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import EXIT_OK, OpsError, doc_parser, fail, write_atomic

PROG = "export_state.py"


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(PROG, __doc__)
    p.add_argument("--mode", choices=("paper", "live"), required=True)
    p.add_argument("--output", type=Path, help="JSON file to write ('-' for stdout)")
    p.add_argument(
        "--db",
        type=Path,
        help="trading DB (paper, default AI_QUANT_DB_PATH) or OMS DB (live, default oms_live.db beside it)",
    )
    p.add_argument(
        "--state-file", type=Path, help="paper kernel state file (default $DATA/kernel_state_paper.json)"
    )
    p.add_argument("--url", help="venue URL for --mode live (default AI_QUANT_EXCHANGE_URL)")
    p.add_argument("--address", help="account address for --mode live (default: the secrets file's wallet)")
    p.add_argument("--config", type=Path, help="strategy YAML used to rebuild a live kernel state")
    p.add_argument("--dry-run", action="store_true", help="print what would be exported, write nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    from engine.env import EnvError, read_env

    a = build_parser().parse_args(argv)
    try:
        if a.output is None and not a.dry_run:
            raise OpsError("--output is required (or --dry-run)")
        try:
            import os

            env = read_env({**os.environ, "AI_QUANT_MODE": a.mode})
        except EnvError as exc:
            raise OpsError(str(exc)) from None
        from ops.live import default_oms_db
        from ops.state import export_live, export_paper

        if a.mode == "paper":
            exp = export_paper(a.db or env.db_path, a.state_file or env.data_dir / "kernel_state_paper.json")
        else:
            address = a.address
            if not address:
                from engine.secrets import SecretError, load_wallet_secrets, wallet_from

                try:
                    sec = load_wallet_secrets()
                except SecretError as exc:
                    raise OpsError(f"{exc} (or pass --address)") from None
                address = sec.account_address or wallet_from(sec.key).address
            exp = export_live((a.url or env.exchange_url).rstrip("/"), address.lower(), a.db or default_oms_db(env),
                              a.config or env.strategy_yaml if (a.config or env.strategy_yaml.is_file()) else None)  # fmt: skip
        summary = {
            "mode": exp.mode,
            "cash": exp.state.get("cash_usd"),
            "positions": [f"{p.side} {p.size:g} {p.symbol} @ {p.entry_price:g}" for p in exp.positions],
            "notes": exp.notes,
        }
        if a.dry_run:
            print(json.dumps({"dry_run": True, **summary}, indent=2))
            return EXIT_OK
        text = exp.to_json()
        if str(a.output) == "-":
            sys.stdout.write(text)
        else:
            write_atomic(a.output, text, mode=0o600)
            print(json.dumps({"written": str(a.output), **summary}, indent=2))
    except OpsError as exc:
        return fail(PROG, exc)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
