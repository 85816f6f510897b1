"""The sidecar speaks TLS (https/wss) for the real venue, and verifies certificates.

No real venue is reachable here, so a local `openssl s_server` with a self-signed certificate
stands in: the sidecar must attempt TLS on both the WebSocket and the REST backfill and refuse
the untrusted certificate (a sidecar that silently accepted it would be trivially MITM-able).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "ai-quant-sidecar"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tls_is_used_and_untrusted_certificates_are_refused(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: build it with `make bins`")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(tmp_path / "cert.pem"),
         "-key", str(tmp_path / "key.pem"), "-quiet", "-www"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        proc = subprocess.Popen(
            [str(BINARY), "--exchange-url", f"https://127.0.0.1:{port}", "--sock", str(tmp_path / "s.sock"),
             "--candles-dir", str(tmp_path / "candles"), "--symbols", "BTC", "--intervals", "1m"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(4)
        proc.terminate()
        log, _ = proc.communicate(timeout=15)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert f"wss://127.0.0.1:{port}/ws" in log and "invalid peer certificate" in log, log[-2000:]
    assert "TLS handshake: invalid peer certificate" in log, "the REST backfill must use TLS too"
