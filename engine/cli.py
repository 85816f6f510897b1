"""`ai-quant` command: version and entry into the daemon."""

import argparse
import sys

from engine.version import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ai-quant", description="ai-quant trading system")
    parser.add_argument("--version", action="version", version=f"ai-quant {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
