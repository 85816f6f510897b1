"""The main job started by `make run`. Grows as components land; it says what it runs."""

import sys


def main() -> int:
    print("ai-quant: make run: no runnable job has landed yet (foundation only).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
