"""The paper daemon under a NOTIFY_SOCKET the test listens on, as systemd would (Type=notify,
WatchdogSec): READY once, WATCHDOG every loop with STATUS, STOPPING on SIGTERM, and no WATCHDOG
while the loop hangs.

The hang is real and needs no fault hook in the engine: the venue process is frozen (SIGSTOP), so
the daemon's loop blocks inside its HTTP call to the venue while the daemon process itself keeps
running. Unfrozen (SIGCONT), the pings come back. The daemon gets its own venue for this.
"""

from __future__ import annotations

import itertools
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.ops.conftest import Daemon, Venue, base_env

pytestmark = pytest.mark.slow


def recv_all(srv: socket.socket, seconds: float) -> list[tuple[float, str]]:
    """Every datagram that arrives within ``seconds`` (with its arrival time)."""
    out: list[tuple[float, str]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        srv.settimeout(left)
        try:
            out.append((time.monotonic(), srv.recv(8192).decode()))
        except TimeoutError:
            break
    return out


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_watchdog_pings_per_loop_stop_while_the_loop_hangs_and_resume(tmp_path: Path) -> None:
    venue = Venue(tmp_path)
    path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(path))
    d = Daemon(base_env(tmp_path, venue.url, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="5000000"))
    try:
        with d.start():
            srv.settimeout(90)
            first = srv.recv(8192).decode()  # start-up, warm-up and the first loop
            assert first.startswith("READY=1\nSTATUS=engine ok.") and "loops=1 " in first
            got = recv_all(srv, 4.0)
            pings = [t for t, m in got if m == "WATCHDOG=1"]
            statuses = [m for _, m in got if m.startswith("STATUS=engine ok.")]
            assert len(pings) >= 5, got  # loop_target_s 0.4: about 10 in 4 s
            assert max(b - a for a, b in itertools.pairwise(pings)) < 2.0
            assert len(statuses) >= len(pings) - 1 and not any(m.startswith("READY") for _, m in got)
            loops = [int(m.split("loops=")[1].split()[0]) for m in statuses]
            assert loops == sorted(loops) and loops[-1] > loops[0]  # one STATUS per loop, counting up

            # Hang the loop: freeze the venue; the daemon's request to it blocks.
            venue.proc.send_signal(signal.SIGSTOP)
            recv_all(srv, 1.0)  # a loop already past its venue calls may still ping once
            hung = recv_all(srv, 5.5)  # longer than WATCHDOG_USEC: systemd would kill and restart it here
            assert [m for _, m in hung if m == "WATCHDOG=1"] == [], hung
            assert d.alive() and proc_state(d.proc.pid) != "T"  # type: ignore[union-attr]  # running, not stopped

            venue.proc.send_signal(signal.SIGCONT)
            back = recv_all(srv, 15.0)
            assert [m for _, m in back if m == "WATCHDOG=1"], "pings did not resume after the venue came back"

            assert d.stop() == 0
            tail = recv_all(srv, 3.0)
            assert "STOPPING=1" in [m for _, m in back + tail]
    finally:
        srv.close()
        venue.stop()
