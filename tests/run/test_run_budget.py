"""`make run` (tools/run_main.py) fits in the venue's real REST budget (issue #22 item 8).

The bundled local exchange runs with the real limit (1200 weight a minute per IP, protocol
reference §9) and logs what each IP spent every minute. The whole set-up (sidecar backfill and
bar re-reads, paper daemon) on its default x60 clock must stay within half of it, so a second
daemon and a few tools still fit, and no request may be answered 429.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.daemon_harness import ROOT, free_port
from tests.run.run_main_proc import run_main
from tests.shared_data import HL_FUTURES

SPENT = re.compile(
    r"REST weight in the last minute: 127\.0\.0\.1 spent (\d+)/1200, (\d+) requests answered 429"
)


@pytest.mark.slow
def test_make_run_spends_at_most_half_the_venues_budget(tmp_path: Path) -> None:
    if not HL_FUTURES.exists():
        pytest.skip(f"real data not found under {HL_FUTURES}")
    if not (ROOT / "target" / "release" / "ai-quant-sidecar").exists():
        pytest.skip("the sidecar is not built: the set-up to measure is incomplete")
    run = tmp_path / "run"
    log = run / "logs" / "exchange.log"
    minutes: list[tuple[int, int]] = []
    deadline = time.monotonic() + 240
    with run_main("--port", str(free_port()), "--run-dir", str(run)) as proc:
        while time.monotonic() < deadline and proc.poll() is None and len(minutes) < 2:
            time.sleep(2)
            text = log.read_text() if log.exists() else ""
            minutes = [(int(w), int(n)) for w, n in SPENT.findall(text)]
        assert len(minutes) >= 2, (log.read_text() if log.exists() else "")[-3000:]
    print(f"make run, weight per minute (start-up minute first): {minutes}")
    assert all(refused == 0 for _, refused in minutes), minutes
    assert all(spent <= 600 for spent, _ in minutes), minutes
    assert "data=sidecar" in (run / "logs" / "daemon.log").read_text()  # candles came from the sidecar


def _flag(argv: list[str], name: str, default: int) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else default


def test_sidecar_unit_backfills_within_its_share_of_the_budget() -> None:
    """ai-quant-sidecar.service: its backfill's worst minute (every request a full chunk, one per
    --backfill-spacing-ms) stays within half the venue's budget, and a closed bar is re-read at
    most every 20 s per pair (the sidecar's defaults: 1500-bar chunks every 0.5 s, up to 5400 a
    minute, and one re-read per bar)."""
    from exchange.venue_limits import BUDGET_PER_MIN, info_extra_weight, info_weight

    unit = (ROOT / "systemd" / "ai-quant-sidecar.service").read_text()
    argv = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart=")).split()
    chunk = _flag(argv, "--backfill-chunk", 1500)
    spacing_ms = _flag(argv, "--backfill-spacing-ms", 500)
    worst = info_weight("candleSnapshot") + info_extra_weight("candleSnapshot", [0] * chunk)
    per_min = worst * 60_000 / spacing_ms
    assert per_min <= BUDGET_PER_MIN / 2, (chunk, spacing_ms, per_min)
    assert chunk == 5000  # the fewest requests (20 weight each) for a backfill
    assert _flag(argv, "--reconcile-delay-ms", 1500) >= 20_000
