"""``python -m monitor`` under hostile clients: an over-long static name, a taken port, hundreds of
slow-header connections. Each gets a clear answer (404, one line, a closed connection) and the
monitor keeps serving a well-behaved client meanwhile. No paper run needed: the monitor serves
missing DBs (its health route says so)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.monitor.conftest import ROOT, free_port, wait_http

HEADER_TIMEOUT_S = 2.0
SLOW_CLIENTS = 400


@dataclass
class Mon:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    env.update(
        AI_QUANT_MODE="paper",
        AI_QUANT_DATA_DIR=str(tmp / "no-data"),
        AI_QUANT_CANDLES_DIR=str(tmp / "no-candles"),
        AI_QUANT_WS_SIDECAR_SOCK=str(tmp / "no-sidecar.sock"),
    )
    return env


@pytest.fixture
def mon(tmp_path: Path) -> Iterator[Mon]:
    port = free_port()
    log = tmp_path / "monitor.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--bind", f"127.0.0.1:{port}", "--keepalive-s", "0.5",
             "--header-timeout-s", str(HEADER_TIMEOUT_S)],
            cwd=ROOT, env=_env(tmp_path), stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    m = Mon(proc, f"http://127.0.0.1:{port}", port, log)
    try:
        wait_http(m.url + "/api/health", 30)
        yield m
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert proc.returncode == 0, log.read_text()[-3000:]  # SIGTERM: a clean exit
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_overlong_static_name_is_404_not_500(mon: Mon) -> None:
    for name in ("a" * 300, "a" * 5000, "..%2f..%2fengine%2fenv.py", "%00", "app.js%00.css"):
        status, body = _get(f"{mon.url}/static/{name}")
        assert status == 404, (name[:20], status, body[:200])
    assert _get(f"{mon.url}/static/../monitor/settings.py")[0] == 404
    assert _get(f"{mon.url}/static/app.js")[0] == 200
    status, body = _get(f"{mon.url}/static/{'a' * 300}")
    assert json.loads(body) == {"error": "no such file"}


def test_port_in_use_is_one_line(mon: Mon, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "monitor", "--bind", f"127.0.0.1:{mon.port}"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"ai-quant monitor: cannot listen on 127.0.0.1:{mon.port}: Address already in use"
    ]
    assert _get(mon.url + "/api/health")[0] == 200  # the running one is untouched


def _open_slow(port: int, n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: {i}\r\n".encode())  # no blank line
        s.setblocking(False)
        socks.append(s)
    return socks


def _wait_closed(socks: list[socket.socket], deadline: float) -> list[socket.socket]:
    """Sockets the server has not closed by ``deadline`` (a closed one reads EOF or a reset)."""
    open_ = {s.fileno(): s for s in socks}
    while open_ and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_.values()), [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                open_.pop(s.fileno())
    return list(open_.values())


def test_slow_header_clients_are_closed_and_others_served(mon: Mon) -> None:
    t0 = time.monotonic()
    slow = _open_slow(mon.port, SLOW_CLIENTS)
    try:
        # A trickler that keeps sending header bytes gets no more time than a silent one.
        trickler = socket.create_connection(("127.0.0.1", mon.port), timeout=5)
        trickler.sendall(b"GET /api/health HTTP/1.1\r\n")
        # An SSE client that sent its headers keeps its stream past the header deadline.
        sse = urllib.request.urlopen(mon.url + "/api/mids/stream", timeout=10)
        sse_opened = time.monotonic()
        # While they hang, a well-behaved client is answered promptly.
        t_req = time.monotonic()
        status, body = _get(mon.url + "/api/health")
        assert status == 200 and json.loads(body)["ok"] is True
        assert time.monotonic() - t_req < 5
        trickled_until_closed = False
        for i in range(int(HEADER_TIMEOUT_S * 10) + 40):  # bounded: ~HEADER_TIMEOUT_S + 4 s
            try:
                trickler.sendall(f"X-{i}: y\r\n".encode())
            except OSError:
                trickled_until_closed = True
                break
            time.sleep(0.1)
        assert trickled_until_closed, "a client trickling headers was never closed"
        left = _wait_closed(slow, t0 + HEADER_TIMEOUT_S + 20)
        elapsed = time.monotonic() - t0
        assert not left, (
            f"{len(left)} of {SLOW_CLIENTS} slow-header connections still open after {elapsed:.1f} s"
        )
        # The stream outlives the deadline and still delivers (keepalive comments every 0.5 s).
        while time.monotonic() < sse_opened + HEADER_TIMEOUT_S + 1:
            assert sse.readline(), "the SSE stream was closed"
        sse.close()
        assert _get(mon.url + "/api/health")[0] == 200
    finally:
        for s in slow:
            s.close()
    log = mon.log.read_text()
    assert "sent no complete request head within 2 s" in log
