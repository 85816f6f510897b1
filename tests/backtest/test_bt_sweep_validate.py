"""Sweep grid validation on each combo's merged config (issue #17, item 5).

A value can be valid or not depending on other axes (`ema_fast_window < ema_slow_window`): the
grid is checked combo by combo, never one axis against the base config. Invalid combos are
counted and the first few named; the sweep refuses before running (and before touching its
output) unless `--skip-invalid`, which leaves them out of the JSONL and says so.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, hl_frames, run_bt, write_candles_db

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

# The base config's slow window is 50: a fast window of 51 is invalid against the base alone.
CFG = """
global:
  indicators: {ema_fast_window: 20, ema_slow_window: 50}
  engine: {interval: 5m}
"""
ALL_VALID = """
axes:
  - {path: indicators.ema_slow_window, values: [60, 100]}
  - {path: indicators.ema_fast_window, values: [5, 51]}
"""
# (slow 40, fast 45) is invalid: combo 1 of 4.
ONE_INVALID = """
axes:
  - {path: indicators.ema_slow_window, values: [40, 100]}
  - {path: indicators.ema_fast_window, values: [30, 45]}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bt_validate")
    write_candles_db(d / "candles_5m.db", hl_frames(["BTC", "ETH"], "5m", n=3000), "5m")
    (d / "cfg.yaml").write_text(CFG)
    (d / "valid.yaml").write_text(ALL_VALID)
    (d / "invalid.yaml").write_text(ONE_INVALID)
    return {"dir": d, "db": d / "candles_5m.db", "cfg": d / "cfg.yaml"}


def _sweep(data: dict[str, Path], spec: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_bt(
        "sweep", "--config", data["cfg"], "--candles-db", data["db"], "--sweep-spec", data["dir"] / spec,
        "--output", out, "--no-progress", "--threads", "2", *extra, check=False,
    )  # fmt: skip


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_grid_valid_per_combo_runs_although_an_axis_value_is_invalid_against_the_base(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "v.jsonl"
    res = _sweep(data, "valid.yaml", out, "--verify-overrides")
    assert res.returncode == 0, res.stderr
    assert "overrides OK: 2 axes, 4 combos" in res.stdout
    res = _sweep(data, "valid.yaml", out)
    assert res.returncode == 0, res.stderr
    rows = _rows(out)
    assert [r["combo"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["overrides"] == {"indicators.ema_fast_window": 51.0, "indicators.ema_slow_window": 60.0}


def test_invalid_combos_are_counted_named_and_refused_before_running(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "i.jsonl"
    named = "combo 1 (indicators.ema_slow_window=40, indicators.ema_fast_window=45)"
    res = _sweep(data, "invalid.yaml", out, "--verify-overrides")
    assert res.returncode == 2 and "1 of 4 combos have an invalid merged config" in res.stderr
    assert named in res.stderr and "ema_fast_window" in res.stderr
    res = _sweep(data, "invalid.yaml", out)
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1, res.stderr
    assert "1 of 4 combos have an invalid merged config" in res.stderr and named in res.stderr
    assert "--skip-invalid" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()  # refused before running: nothing written


def test_skip_invalid_leaves_them_out_and_resumes_across_the_gap(
    data: dict[str, Path], tmp_path: Path
) -> None:
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    res = _sweep(data, "invalid.yaml", full, "--skip-invalid")
    assert res.returncode == 0, res.stderr
    assert "skipping invalid combos: 1 of 4" in res.stderr
    rows = _rows(full)
    assert [r["combo"] for r in rows] == [0, 2, 3]
    assert len({r["config_id"] for r in rows}) == 3
    top = json.loads((tmp_path / "full.jsonl.top.json").read_text())
    assert top["combos"] == 4 and top["skipped_invalid"] == 1 and len(top["rows"]) == 3
    # Stop after combo 1 (the invalid one), then resume: the same bytes as one run.
    assert _sweep(data, "invalid.yaml", part, "--skip-invalid", "--limit", "2").returncode == 0
    assert [r["combo"] for r in _rows(part)] == [0]
    res = _sweep(data, "invalid.yaml", part, "--skip-invalid", "--resume")
    assert res.returncode == 0, res.stderr
    assert part.read_bytes() == full.read_bytes()
