"""Small pieces every operator tool uses: exit codes, errors, the kill file, the backtester path."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

EXIT_OK = 0
EXIT_FAILED = 1  # the tool ran but the job did not finish (e.g. a position still open)
EXIT_USAGE = 2  # bad input: the message names the problem
EXIT_LOCKED = 3  # a daemon holds the lock the tool needs


class OpsError(Exception):
    """A problem the operator can fix; ``main`` prints it and exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def fail(prog: str, exc: OpsError) -> int:
    print(f"{prog}: {exc}", file=sys.stderr)
    return exc.code


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


KILL_WORDS = ("close_only", "halt_all", "clear")


def engage_kill_file(path: Path | None, word: str = "close_only") -> str:
    """Write ``word`` into the kill file the daemon polls every loop; returns what it held before.

    ``halt_all`` is left in place when ``close_only`` is asked for."""
    if word not in KILL_WORDS:
        raise OpsError(f"kill word {word!r} is not one of {', '.join(KILL_WORDS)}")
    if path is None:
        raise OpsError(
            "no kill file: set AI_QUANT_KILL_SWITCH_FILE (the env files set it) or pass --kill-file"
        )
    before = path.read_text().strip() if path.is_file() else ""
    if before == "halt_all" and word == "close_only":
        return before  # never weaken: halt_all already blocks entries (and the daemon's exits)
    write_atomic(path, word + "\n")
    return before


def bt_binary(explicit: Path | None = None) -> Path:
    """``ai-quant-bt``: --bt, else AI_QUANT_BT, else target/release/ai-quant-bt."""
    exe = explicit or Path(os.environ.get("AI_QUANT_BT") or REPO / "target" / "release" / "ai-quant-bt")
    if not exe.is_file():
        raise OpsError(f"backtester {exe} not found: run `make build` or pass --bt / AI_QUANT_BT")
    return exe
