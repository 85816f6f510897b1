"""Small pieces every operator tool uses: exit codes, errors, the kill file, the backtester path."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.risk import KillState, KillStatus, order_allowed, parse_kill_word, strongest

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


def doc_parser(prog: str, doc: str | None, *, usage_paragraph: int = 1) -> argparse.ArgumentParser:
    """An operator tool's parser from its module docstring: the first line is the description, the
    paragraphs from ``usage_paragraph`` on (0 is the first) are the epilog, printed as written."""
    text = doc or ""
    return argparse.ArgumentParser(
        prog=prog,
        description=text.split("\n")[0],
        epilog=text.split("\n\n", usage_paragraph)[usage_paragraph],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


@contextmanager
def trading_db_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The daemon's trading DB opened read-only (safe while the daemon writes it); a database error
    in the block is one operator line, ``<path>: not a trading DB (<error>)``."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise OpsError(f"{path}: not a trading DB ({exc})") from None
    finally:
        conn.close()


def fail(prog: str, exc: OpsError) -> int:
    print(f"{prog}: {exc}", file=sys.stderr)
    return exc.code


def report_main(
    prog: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], tuple[dict[str, Any], int]],
    argv: Sequence[str] | None = None,
) -> int:
    """The ``main`` of an operator tool that prints a JSON report: ``run(args)`` gives the report
    and the exit status; an operator error is one line on stderr with its exit status."""
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    a = parser.parse_args(argv)
    from engine.operator_positions import OperatorMarkError

    try:
        report, code = run(a)
    except OpsError as exc:
        return fail(prog, exc)
    except OperatorMarkError as exc:
        return fail(prog, OpsError(str(exc)))
    print(json.dumps(report, indent=2, default=str))
    return code


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
    if kill_word_after(before, word) == before:
        return before  # never weaken: halt_all already blocks entries (and the daemon's exits)
    write_atomic(path, word + "\n")
    return before


def kill_word_after(before: str, word: str) -> str:
    """What the kill file holds after :func:`engage_kill_file` writes ``word`` over ``before``."""
    return before if before == "halt_all" and word == "close_only" else word


def kill_status(env: Any, kill_file: Path | None) -> KillStatus:
    """The kill state a tool obeys: the hard kill, ``AI_QUANT_KILL_SWITCH`` and the kill file (the
    words the daemon reads). An unreadable file or an unknown word counts as ``halt_all``: fail
    closed, the operator can still close. The daemon's own drawdown/daily-loss ``close_only`` lives
    in the daemon and is not seen here."""
    env_state = KillState(env.kill_switch) if env.kill_switch else KillState.OFF
    file_state, why = KillState.OFF, ""
    if kill_file is not None:
        try:
            text = kill_file.read_text(errors="replace")[:200] if kill_file.exists() else ""
            word = parse_kill_word(text)
            if word is None:
                file_state, why = KillState.HALT_ALL, f"kill file {kill_file} holds an unknown word"
            else:
                file_state, why = word, f"kill file {kill_file}"
        except OSError as exc:
            file_state, why = KillState.HALT_ALL, f"kill file {kill_file} unreadable ({type(exc).__name__})"
    state = strongest(env_state, file_state)
    reason = "" if state is KillState.OFF else (why if state is file_state else "AI_QUANT_KILL_SWITCH")
    return KillStatus(state, reason, bool(env.hard_kill_switch))


def check_kill(kill: KillStatus, *, reduces_risk: bool, what: str) -> str:
    """Ask :func:`engine.risk.order_allowed` for an operator order; refuse with one line, or return
    a note for the report when a kill switch is engaged and the order still goes out."""
    verdict = order_allowed(kill, reduces_risk=reduces_risk, operator=True)
    if not verdict.allowed:
        where = "AI_QUANT_HARD_KILL_SWITCH" if kill.hard else kill.reason
        raise OpsError(
            f"kill switch {kill.label()} ({where}): {what} adds risk, nothing recorded or sent"
            if not kill.hard
            else f"hard kill switch on ({where}): {what} refused, nothing recorded or sent"
        )
    if kill.state is KillState.OFF:
        return ""
    return (
        f"kill switch {kill.label()} ({kill.reason}): the daemon sends "
        + ("nothing" if kill.state is KillState.HALT_ALL else "no entries")
        + f"; this {what} reduces risk and is sent by the operator"
    )


def bt_binary(explicit: Path | None = None) -> Path:
    """``ai-quant-bt``: --bt, else AI_QUANT_BT, else target/release/ai-quant-bt."""
    exe = explicit or Path(os.environ.get("AI_QUANT_BT") or REPO / "target" / "release" / "ai-quant-bt")
    if not exe.is_file():
        raise OpsError(f"backtester {exe} not found: run `make build` or pass --bt / AI_QUANT_BT")
    return exe
