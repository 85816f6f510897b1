#!/usr/bin/env python3
"""Validate a strategy config file and print the merged config for one symbol and mode.

    python tools/validate_config.py config/strategy_overrides.yaml --symbol BTC --mode live
    python tools/validate_config.py PATH --strategy-mode m1 --json
    python tools/validate_config.py --defaults

Every symbol with overrides and every strategy mode in the file is validated for the given run
mode, so one bad block anywhere fails the check. Exit status: 0 valid, 2 invalid (the problems
are printed on stderr, one per line: file: key.path: problem).
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is not a package

import yaml

from engine.config import (
    RUN_MODES,
    STRATEGY_MODE_ALIASES,
    STRATEGY_MODES,
    ConfigError,
    kernel_defaults,
    read_config,
    resolve,
    resolve_all,
)

EXIT_INVALID = 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="validate_config.py",
        description="Validate an ai-quant strategy config and print the merged config and its config_id.",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, help="the YAML file (e.g. config/strategy_overrides.yaml)"
    )
    parser.add_argument("--symbol", help="apply symbols.<SYM> overrides for this symbol (case-sensitive)")
    parser.add_argument(
        "--mode", choices=RUN_MODES, default="paper", help="run mode (AI_QUANT_MODE); default paper"
    )
    parser.add_argument(
        "--strategy-mode",
        choices=[*STRATEGY_MODES, *STRATEGY_MODE_ALIASES],
        help="strategy mode (AI_QUANT_STRATEGY_MODE); aliases accepted",
    )
    parser.add_argument(
        "--live-max-open-positions",
        type=_positive_int,
        default=os.environ.get("AI_QUANT_LIVE_MAX_OPEN_POSITIONS") or None,
        help="live/dry_live limit when the file sets no max_open_positions "
        "(default: $AI_QUANT_LIVE_MAX_OPEN_POSITIONS, else 1)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    parser.add_argument("--defaults", action="store_true", help="print the kernel defaults and exit")
    return parser


def _emit(payload: dict[str, Any], config: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps({**payload, "config": config}, indent=2, sort_keys=True)
    header = "".join(f"# {key}: {value}\n" for key, value in payload.items())
    return header + yaml.safe_dump(config, sort_keys=True, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.defaults:
        print(_emit({"source": "kernel defaults (kernel/aiq-config)"}, kernel_defaults(), args.json), end="")
        return 0
    if args.path is None:
        parser.error("PATH is required (or use --defaults)")
    try:
        doc = read_config(args.path, args.mode)
        resolve_all(doc, args.mode, live_max_open_positions=args.live_max_open_positions)
        loaded = resolve(
            doc,
            args.symbol,
            args.mode,
            args.strategy_mode,
            live_max_open_positions=args.live_max_open_positions,
        )
    except ConfigError as exc:
        print(f"invalid config:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    payload = {
        "source": str(loaded.source),
        "symbol": loaded.symbol,
        "mode": loaded.mode,
        "strategy_mode": loaded.strategy_mode,
        "layers": list(loaded.layers) if args.json else " <- ".join(loaded.layers),
        "config_id": loaded.config_id,
    }
    print(_emit(payload, loaded.merged, args.json), end="" if not args.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
