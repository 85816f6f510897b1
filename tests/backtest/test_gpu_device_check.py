"""tools/gpu_device_check.py starts and measures on a CPU: a small bundle is built (binary, audited
kernels, real HL data) and `run --backend host-cuda --dry-run` goes through every step the GPU run
takes (parity, throughput sizes, the CPU figure) and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from bt_helpers import BIN, HL

from tools.gpu_kernel_check import PINNED_WHEEL, nvrtc_lib_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu_device_check.py"

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
    pytest.mark.skipif(nvrtc_lib_path() is None, reason=f"NVRTC not installed: pip install {PINNED_WHEEL}"),
]


def test_bundle_and_dry_run_on_the_host_core(tmp_path: Path) -> None:
    tgz = tmp_path / "bundle.tgz"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "bundle", "--out", str(tgz), "--coins", "BTC,ETH,SOL", "--bars", "2500"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    with tarfile.open(tgz) as t:
        names = set(t.getnames())
        t.extractall(tmp_path / "b", filter="data")
    assert {"ai-quant-bt", "aiq_sweep.compute_90.ptx", "aiq_sweep.sm_90.cubin", "candles_5m.db"} <= names
    assert {"funding.db", "config.yaml", "gpu_device_check.py", "manifest.json"} <= names
    out = tmp_path / "check.json"
    # The bundle's own copy of the script, as the GPU machine runs it.
    res = subprocess.run(
        [sys.executable, str(tmp_path / "b" / "gpu_device_check.py"), "run", "--bundle", str(tmp_path / "b"),
         "--out", str(out), "--backend", "host-cuda", "--dry-run", "--threads", "2"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    r = json.loads(out.read_text())
    assert "error" not in r, r
    assert r["parity"]["ok"] and r["parity"]["combos"] == 40 and r["parity"]["mismatched_rows"] == 0
    assert r["parity"]["trades"] > 0 and "final_equity" in r["parity"]["fields"]
    assert r["parity_vs_cpu_sweep"]["ok"] and r["parity_vs_cpu_sweep"]["combos"] == 40
    sizes = [t["combos"] for t in r["throughput"]]
    assert sizes == [20, 60] and all(t["bar_combos_per_s"] > 0 for t in r["throughput"])
    # Where the time went: the core's own launches, parsed from the binary's stats line.
    assert all(t["core"]["launches"] >= 1 and t["core"]["launch_s"] >= 0 for t in r["throughput"])
    assert r["cpu"][0]["combos"] == 20 and r["cpu_bar_combos_per_s"] > 0
    assert r["bars_per_combo"] > 0 and set(r["goals"]) == {"bar_combos_per_s_1e9", "speedup_100x"}
