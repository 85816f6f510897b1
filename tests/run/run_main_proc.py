"""``make run``'s job (tools/run_main.py) as a process for the tests: started in its own session,
read line by line without blocking, always stopped with SIGTERM (its process group killed if it does
not exit in 30 s, and the test fails)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.daemon_harness import ROOT


@contextmanager
def run_main(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """``python tools/run_main.py ARGS``, stdout and stderr on one pipe, stopped on leaving."""
    proc = subprocess.Popen(
        [sys.executable, "tools/run_main.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


def read_until(
    proc: subprocess.Popen[str], timeout: float, *, line_done: Callable[[str], bool] = lambda _line: False,
    quiet_done: Callable[[], bool] = lambda: False,
) -> str:  # fmt: skip
    """The job's output until a line makes ``line_done`` true, ``quiet_done`` is true while the job
    prints nothing, the job exits, or ``timeout`` s pass."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        chunk = proc.stdout.readline()
        if chunk:
            lines.append(chunk)
            if line_done(chunk):
                break
        elif quiet_done():
            break
        else:
            time.sleep(0.2)
    return "".join(lines)
