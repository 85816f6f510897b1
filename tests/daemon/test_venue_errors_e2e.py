"""The operator's first minutes (issue #22 items 5, 6, 9): the daemon process (``python -m
daemon``) against the local exchange process, with the venue missing, on the wrong scheme,
rate limited at start and during the run, a watchlist that names nothing, a kill file with a
typo, and a venue clock that runs 300 times faster than ours.

Every failure is one line naming the URL and what failed; no traceback; rc 2 for configuration
errors (the URL's scheme, the watchlist), rc 1 for a venue that is not there. Faults are switched
through the venue's ``/admin/faults`` (``--enable-admin``), so each wait is on an event.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_daemon_live import ADDR, DEPOSIT_USD, LiveDaemon

from exchange.venue_limits import backoff_s
from tests.daemon_harness import Daemon, free_port, real_data_venue, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def admin_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    deposits = [a for addr in ADDR.values() for a in ("--deposit", f"{addr}={DEPOSIT_USD}")]
    with real_data_venue(tmp_path_factory.mktemp("venue"), "--enable-admin", *deposits) as url:
        yield url


def _post(url: str, path: str, body: dict[str, object]) -> object:
    req = urllib.request.Request(
        url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _faults(url: str, **faults: float) -> None:
    _post(url, "/admin/faults", dict(faults))


def _loops_429(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if "WARNING daemon.loop: loop" in ln and "(429)" in ln]


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("mode", ["paper", "dry_live"])
def test_no_exchange_is_one_line_naming_the_url(tmp_path: Path, mode: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    d = LiveDaemon(url, tmp_path, "dry", mode="dry_live") if mode == "dry_live" else Daemon(url, tmp_path)
    r = d.run("--max-loops", "1")
    line = _one_line(r.stderr)
    assert r.returncode == 1
    assert line == (
        f"ai-quant: venue {url} (start-up: meta): connection refused: nothing listens there"
        " (is the exchange running, on this port?)"
    )


def test_https_on_a_plain_http_port_is_a_configuration_error(admin_venue: str, tmp_path: Path) -> None:
    url = admin_venue.replace("http://", "https://")
    r = Daemon(url, tmp_path).run("--max-loops", "1")
    line = _one_line(r.stderr)
    assert r.returncode == 2
    assert line.startswith(f"ai-quant: venue {url} (start-up: meta): TLS handshake failed")
    assert "use http://" in line


def test_no_valid_symbol_is_one_line_with_the_prefix_and_rc_2(admin_venue: str, tmp_path: Path) -> None:
    r = Daemon(admin_venue, tmp_path, AI_QUANT_SYMBOLS="btc").run("--max-loops", "1")
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert line == (
        "ai-quant: the watchlist is empty: AI_QUANT_SYMBOLS=btc: btc not listed by the venue"
        " (names are case-sensitive; did you mean BTC?)"
    )


@pytest.mark.parametrize("mode", ["paper", "dry_live"])
def test_429_at_start_is_waited_out_then_the_daemon_runs(admin_venue: str, tmp_path: Path, mode: str) -> None:
    d = (
        LiveDaemon(admin_venue, tmp_path, "dry", mode="dry_live")
        if mode == "dry_live"
        else Daemon(admin_venue, tmp_path)
    )
    _faults(admin_venue, http_429_rate=1.0)
    try:
        with d.start("--max-loops", "2"):
            wait_for(lambda: "rate limited (429): retrying in" in d.log.read_text(), 60, "the 429 line")
            _faults(admin_venue, http_429_rate=0.0)
            assert d.proc is not None
            assert d.proc.wait(60) == 0
    finally:
        _faults(admin_venue, http_429_rate=0.0)
    log = d.log.read_text()
    assert "Traceback" not in log and "ClientError" not in log
    first = f"{admin_venue} (start-up: meta): rate limited (429): retrying in {backoff_s(60, 0):.0f} s"
    assert f"WARNING daemon.main: venue {first}" in log


def test_429_during_the_run_backs_off_with_one_line_dry_live(admin_venue: str, tmp_path: Path) -> None:
    d = LiveDaemon(admin_venue, tmp_path, "dry", mode="dry_live", AI_QUANT_ALERT_DRY_RUN="1")
    try:
        with d.start():
            wait_for(lambda: d.loops() >= 3, 90, "three loops")
            _faults(admin_venue, http_429_rate=1.0)
            wait_for(lambda: len(_loops_429(d.log.read_text())) >= 2, 60, "two loops answered 429")
            _faults(admin_venue, http_429_rate=0.0)
            at = d.loops()
            wait_for(lambda: d.loops() > at + 2, 90, "loops after the 429s")
            d.alive()
            assert d.stop() == 0
    finally:
        _faults(admin_venue, http_429_rate=0.0)
    log = d.log.read_text()
    assert "Traceback" not in log and "query failed" not in log and "ClientError" not in log
    lines = _loops_429(log)
    assert all(f"venue {admin_venue}: rate limited (429): retrying in " in ln for ln in lines), lines
    waits = [int(ln.split("retrying in ")[1].split(" s")[0]) for ln in lines]
    assert len(waits) >= 2, log[-4000:]
    # doubled while the 429s last (the line rounds to whole seconds: 3.4 s then 6.8 s print 3 and 7)
    assert waits[0] >= 2 and abs(waits[1] - 2 * waits[0]) <= 1, waits


def test_kill_file_alert_names_the_unknown_word(admin_venue: str, tmp_path: Path) -> None:
    d = Daemon(admin_venue, tmp_path, AI_QUANT_ALERT_DRY_RUN="1")
    d.kill_file.write_text("clera\n")
    r = d.run("--max-loops", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert f"kill file {d.kill_file} holds an unknown word 'clera'; state kept (off)" in out, out[-3000:]
    assert "Known: close_only, halt_all, clear" in out


def test_dead_mans_switch_spans_the_same_wall_time_on_an_accelerated_venue(
    admin_venue: str, tmp_path: Path
) -> None:
    """x300: the default 60 s horizon read as venue time ran out 0.2 s after each refresh, so the
    switch fired between loops until the venue's 10-per-day limit refused it."""
    d = LiveDaemon(admin_venue, tmp_path, "live", AI_QUANT_ALERT_DRY_RUN="1")
    with d.start("--loop-s", "0.5", "--no-user-stream"):
        wait_for(lambda: d.loops() >= 20, 120, "20 loops (10 s of our clock, 50 min of the venue's)")
        d.alive()
        assert d.stop() == 0
    log = d.log.read_text()
    assert "LIVE_RECONCILED" in "".join(r[0] for r in d.q("SELECT event FROM audit_events"))
    assert "scheduleCancel failed" not in log and "Too many scheduled cancels" not in log, log[-3000:]
