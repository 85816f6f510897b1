"""`ai-quant` command: version and entry into the daemon (`ai-quant run [daemon flags]`)."""

import argparse
import sys

from engine.version import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("run", "daemon"):
        from daemon.main import main as daemon_main

        return daemon_main(args[1:])
    parser = argparse.ArgumentParser(
        prog="ai-quant",
        description="ai-quant trading system. `ai-quant run` starts the daemon (mode from AI_QUANT_MODE;"
        " `ai-quant run --help` lists its flags).",
    )
    parser.add_argument("--version", action="version", version=f"ai-quant {__version__}")
    parser.add_argument("command", nargs="?", choices=["run", "daemon"], help="run: start the trading daemon")
    parser.parse_args(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
