"""ai-quant-bt on a candle DB with impossible values: one line naming the table, symbol, bar time,
field and value (main replied about a kernel snapshot for another bar)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, hl_frames, run_bt, write_candles_db

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

CFG = "global:\n  engine: {interval: 1h}\n"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bt_hostile")
    m5 = hl_frames(["BTC", "ETH"], "5m", n=600 * 12)
    h1 = {
        sym: df[(df["t"] >= m5[sym]["t"].min()) & (df["t"] <= m5[sym]["t"].max())]
        for sym, df in hl_frames(["BTC", "ETH"], "1h").items()
    }
    assert all(len(df) > 400 for df in h1.values())
    write_candles_db(d / "candles_1h.db", h1, "1h")
    write_candles_db(d / "candles_5m.db", m5, "5m")
    (d / "cfg.yaml").write_text(CFG)
    return {"dir": d, "cfg": d / "cfg.yaml"}


def _corrupt(src: Path, dst: Path, sql: str) -> tuple[Path, int]:
    dst.write_bytes(src.read_bytes())
    con = sqlite3.connect(dst)
    (t,) = con.execute("SELECT t FROM candles WHERE symbol = 'BTC' ORDER BY t LIMIT 1 OFFSET 300").fetchone()
    con.execute(f"UPDATE candles SET {sql} WHERE symbol = 'BTC' AND t = ?", (t,))
    con.commit()
    con.close()
    return dst, int(t)


def _iso(t_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("o = -o, h = -l, l = -h, c = -c, v = -1", "field o = -"),  # the DB: all negative
        ("v = -1", "field v = -1 (volume must be >= 0)"),
        ("l = 0", "field l = 0 (prices must be > 0)"),
        ("h = l / 2", "is below l = "),
    ],
    ids=["negative-prices", "negative-volume", "zero-low", "high-below-low"],
)
def test_replay_names_table_symbol_time_field_value(
    clean: dict[str, Path], tmp_path: Path, sql: str, problem: str
) -> None:
    db, t = _corrupt(clean["dir"] / "candles_1h.db", tmp_path / "candles_1h.db", sql)
    res = run_bt(
        "replay", "--config", clean["cfg"], "--candles-db", db, "--output", tmp_path / "r.json", check=False
    )
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    prefix = f"error: {db}: corrupt row in table candles: BTC 1h t={t} ({_iso(t)}): "
    assert lines[0].startswith(prefix), lines[0]
    assert problem in lines[0]
    assert "snapshot" not in res.stderr


def test_negative_prices_message_is_exact(clean: dict[str, Path], tmp_path: Path) -> None:
    db, t = _corrupt(clean["dir"] / "candles_1h.db", tmp_path / "candles_1h.db", "o = -5, v = -1")
    res = run_bt("replay", "--config", clean["cfg"], "--candles-db", db, check=False)
    assert res.stderr.strip() == (
        f"error: {db}: corrupt row in table candles: BTC 1h t={t} ({_iso(t)}): field o = -5 (prices must be > 0)"
    )


def test_sub_bar_db_is_checked_too(clean: dict[str, Path], tmp_path: Path) -> None:
    sub, t = _corrupt(clean["dir"] / "candles_5m.db", tmp_path / "candles_5m.db", "v = -1")
    res = run_bt(
        "replay",
        "--config",
        clean["cfg"],
        "--candles-db",
        clean["dir"] / "candles_1h.db",
        "--exit-interval",
        "5m",
        "--exit-candles-db",
        sub,
        check=False,
    )
    assert res.returncode != 0
    assert res.stderr.strip() == (
        f"error: --exit-candles-db: {sub}: corrupt row in table candles: BTC 5m t={t} ({_iso(t)}): "
        "field v = -1 (volume must be >= 0)"
    )


def test_clean_db_still_replays(clean: dict[str, Path], tmp_path: Path) -> None:
    res = run_bt(
        "replay",
        "--config",
        clean["cfg"],
        "--candles-db",
        clean["dir"] / "candles_1h.db",
        "--exit-interval",
        "5m",
        "--exit-candles-db",
        clean["dir"] / "candles_5m.db",
        "--output",
        tmp_path / "r.json",
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "r.json").stat().st_size > 0
