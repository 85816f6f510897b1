"""The real sidecar says which venue, account and candle directory it serves; its mids go stale.

Issue #22 items 3 and 4: a daemon read mids from a sidecar streaming another venue, and priced from
mids 16 s old. The sidecar binary and the local exchange run as subprocesses on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hyperliquid.info import Info
from sidecar_helpers import Sidecar, Venue, wait_for

from engine.market_data import MarketDataHub, connect_sidecar
from exchange.hl_market_data import HyperliquidMarketData
from exchange.venue_url import same_venue

MIN = 60_000
SYMS = ["BTC", "ETH"]
USER = "0x" + "ab" * 20  # the account the venue fixture funds (conftest.py)


def test_sidecar_names_its_venue_user_and_candle_dir(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    sc = Sidecar(sidecar_binary, tmp_path, venue, "--symbols", "BTC,ETH", "--intervals", "1m", "--user", USER)
    try:
        with sc.client() as c:
            venue.advance(MIN)
            h = wait_for(
                lambda: (x := c.health(SYMS, "1m")).venue_time_ms and x, what="venue time from frames"
            )
            assert h.venue == venue.base_url
            assert same_venue(h.venue, f"ws://localhost:{venue.port}/ws")
            assert h.user == USER
            assert h.candles_dir == str(sc.candles_dir.resolve())
            assert h.venue_time_ms is not None and venue.now() - 2 * MIN <= h.venue_time_ms <= venue.now()
            assert h.stale_after_s == 15.0  # half of --stale-secs 30
            r = c.ensure_started(SYMS, "1m")
            assert r["venue"] == venue.base_url and r["user"] == USER
            assert r["candles_dir"] == str(sc.candles_dir.resolve())
    finally:
        assert sc.stop() == 0


def test_daemon_side_refuses_another_venue_and_names_both_candle_dirs(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    sc = Sidecar(sidecar_binary, tmp_path, venue, "--symbols", "BTC", "--intervals", "1m")
    try:
        other = "http://127.0.0.1:1"
        link = connect_sidecar(sc.sock, other, sc.candles_dir)
        assert link.client is None and link.summary.startswith("no (refused")
        assert link.warning == (
            f"WS sidecar at {sc.sock} serves venue {venue.base_url}, not this daemon's {other}: refused;"
            " mids, books and candles come from the venue's REST API"
        )
        # The same venue spelled another way is accepted; another candle dir is named, with the sidecar's.
        mine = tmp_path / "daemon_candles"
        link = connect_sidecar(sc.sock, f"http://localhost:{venue.port}/", mine)
        assert link.client is not None and link.summary.startswith("yes (") and not link.warning
        assert str(sc.candles_dir.resolve()) in link.candles_warning and str(mine) in link.candles_warning
        assert "data=rest" in link.candles_warning
        link.client.close()
        link = connect_sidecar(sc.sock, venue.base_url, sc.candles_dir)
        assert link.client is not None and not link.candles_warning
        link.client.close()
        missing = tmp_path / "none.sock"
        assert connect_sidecar(missing, venue.base_url).summary == f"no (no socket at {missing})"
    finally:
        assert sc.stop() == 0


def test_hub_does_not_price_from_stale_sidecar_mids(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    """Fresh sidecar mids are used; once older than the threshold the hub reads REST allMids."""
    sc = Sidecar(sidecar_binary, tmp_path, venue, "--symbols", "BTC,ETH", "--intervals", "1m")
    try:
        with sc.client() as c:
            info = Info(venue.base_url, skip_ws=True, timeout=10)
            hub = MarketDataHub(HyperliquidMarketData(info), "1m", MIN, sidecar=c, mids_max_age_s=1.0)

            def source() -> str:
                hub.mids(SYMS)
                return hub.stats.mids

            def fresh() -> bool:
                venue.advance(MIN)  # the venue pushes new mids (again each try: a slow poll sees fresh ones)
                return source() == "sidecar"

            wait_for(fresh, timeout=20, interval=0.05, what="fresh sidecar mids")
            # The stepped venue pushes nothing more: within a few seconds the sidecar's mids are stale.
            wait_for(lambda: source() == "rest", timeout=10, what="stale mids to be refused")
            want = {s: float(p) for s, p in venue.post("/info", {"type": "allMids"}).items() if s in SYMS}
            assert hub.mids(SYMS) == want and not hub.venue.down
    finally:
        assert sc.stop() == 0


def test_live_user_fills_refuse_a_sidecar_of_another_venue(
    sidecar_binary: Path, venue: Venue, tmp_path: Path
) -> None:
    """The live trader takes user fills from the sidecar only where it streams the trader's venue."""
    from exchange.ws import SidecarUserFills

    sc = Sidecar(sidecar_binary, tmp_path, venue)
    try:
        wrong = SidecarUserFills(sc.sock, USER, venue="http://127.0.0.1:1")
        with pytest.raises(RuntimeError, match=f"serves venue {venue.base_url}, not http://127.0.0.1:1"):
            wrong.start()
        right = SidecarUserFills(sc.sock, USER, venue=f"ws://localhost:{venue.port}/ws")
        right.start()
        assert right.connects == 1
        right.stop()
    finally:
        assert sc.stop() == 0
