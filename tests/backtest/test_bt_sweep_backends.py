"""`ai-quant-bt sweep --backend cpu|host-cuda|gpu` on real data, on a machine with no GPU.

host-cuda (the C++ decision core compiled for this CPU, through the same batching as the GPU)
writes the CPU sweep's rows field for field; --gpu without a driver is one line and exit 2;
--allow-cpu-fallback runs the CPU sweep and says so.
"""

from __future__ import annotations

import ctypes.util
import json
import subprocess
from pathlib import Path

import pytest
from bt_helpers import BIN, HL, hl_frames, hl_funding, write_candles_db, write_funding_db

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(not HL.exists(), reason=f"real data not found at {HL} (set AI_QUANT_SHARED_DATA)"),
]

NO_DRIVER = ctypes.util.find_library("cuda") is None

CFG = """
global:
  indicators: {ema_fast_window: 8, ema_slow_window: 15, adx_window: 10, bb_window: 15}
  thresholds: {entry: {min_adx: 15.0}}
  filters: {enable_ranging_filter: false, enable_anomaly_filter: false}
  trade: {entry_min_confidence: low, enable_pyramiding: true}
  engine: {interval: 5m}
"""

# Decision parameters and one indicator window (so indicator series are shared by some combos).
SPEC = """
axes:
  - {path: indicators.ema_fast_window, values: [8, 12]}
  - {path: trade.sl_atr_mult, values: [1.0, 2.5]}
  - {path: trade.tp_atr_mult, values: [2.0, 5.0]}
  - {path: trade.leverage, values: [1, 5]}
  - {path: trade.enable_partial_tp, values: [0, 1]}
  - {path: thresholds.entry.macd_hist_entry_mode, values: [0, 2]}
"""

COINS = ["BTC", "ETH", "SOL", "DOGE"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bt_backends")
    write_candles_db(d / "candles_5m.db", hl_frames(COINS, "5m", n=3000), "5m")
    write_funding_db(d / "funding.db", hl_funding(COINS))
    (d / "cfg.yaml").write_text(CFG)
    (d / "spec.yaml").write_text(SPEC)
    return {
        "db": d / "candles_5m.db",
        "funding": d / "funding.db",
        "cfg": d / "cfg.yaml",
        "spec": d / "spec.yaml",
    }


def _sweep(data: dict[str, Path], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [
        str(BIN), "sweep", "--config", str(data["cfg"]), "--candles-db", str(data["db"]),
        "--funding-db", str(data["funding"]), "--sweep-spec", str(data["spec"]), "--output", str(out),
        "--top-k", "5", "--threads", "2", "--no-progress", *extra,
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def cpu_rows(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cpu") / "cpu.jsonl"
    res = _sweep(data, out, "-q")
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.parametrize(
    "batching",
    [[], ["--core-batch", "7", "--core-chunk", "30"]],
    ids=["default", "launches_of_7_calls_of_30"],
)
def test_host_cuda_rows_equal_cpu_rows_field_for_field(
    data: dict[str, Path], cpu_rows: Path, tmp_path: Path, batching: list[str]
) -> None:
    # The second case cuts the grid into backend calls of 30 combos and launches of 7 (uneven
    # remainders), as the GPU's memory would: result rows are placed by combo all the same.
    out = tmp_path / "host.jsonl"
    res = _sweep(data, out, "--backend", "host-cuda", "-q", *batching)
    assert res.returncode == 0, res.stderr
    cpu = [json.loads(x) for x in cpu_rows.read_text().splitlines()]
    host = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(cpu) == 64 and len(host) == len(cpu)
    for a, b in zip(cpu, host, strict=True):
        assert a == b, (a["combo"], {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)})
    # The grid trades: the comparison is not between empty rows.
    assert sum(r["total_trades"] for r in cpu) > 0
    assert any(r["total_funding"] != 0 for r in cpu)
    top_cpu = json.loads(Path(f"{cpu_rows}.top.json").read_text())
    top_host = json.loads(Path(f"{out}.top.json").read_text())
    assert top_cpu == top_host
    assert out.read_bytes() == cpu_rows.read_bytes()


@pytest.mark.parametrize("backend", ["cpu", "host-cuda"])
def test_points_spec_rows_equal_the_grid_rows_of_the_same_combos(
    data: dict[str, Path], cpu_rows: Path, tmp_path: Path, backend: str
) -> None:
    grid = [json.loads(x) for x in cpu_rows.read_text().splitlines()]
    picked = [grid[i] for i in (41, 3, 17, 3)]  # any order, repeats allowed
    paths = sorted(picked[0]["overrides"])
    spec = tmp_path / "points.yaml"
    spec.write_text(
        "axes:\n"
        + "".join(f"  - {{path: {p}}}\n" for p in paths)
        + "points:\n"
        + "".join(f"  - [{', '.join(repr(r['overrides'][p]) for p in paths)}]\n" for r in picked)
    )
    out = tmp_path / "p.jsonl"
    args = [str(BIN), "sweep", "--config", str(data["cfg"]), "--candles-db", str(data["db"]),
            "--funding-db", str(data["funding"]), "--sweep-spec", str(spec), "--output", str(out),
            "--threads", "2", "--no-progress", "-q", "--backend", backend]  # fmt: skip
    res = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["combo"] for r in rows] == [0, 1, 2, 3]
    skip = {"combo", "id", "sweep_id"}
    for got, want in zip(rows, picked, strict=True):
        assert {k: v for k, v in got.items() if k not in skip} == {
            k: v for k, v in want.items() if k not in skip
        }


@pytest.mark.skipif(not NO_DRIVER, reason="this machine has a CUDA driver: the no-GPU errors do not apply")
def test_gpu_without_a_driver_is_one_line_and_exit_2(data: dict[str, Path], tmp_path: Path) -> None:
    for flags in (["--gpu"], ["--backend", "gpu"], ["--gpu", "--gpu-kernel", str(tmp_path / "k.ptx")]):
        out = tmp_path / "gpu.jsonl"
        res = _sweep(data, out, *flags)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith("error: --backend gpu: no CUDA driver: libcuda.so.1 was not found"), lines
        assert "panicked" not in res.stderr
        assert not out.exists()


@pytest.mark.skipif(not NO_DRIVER, reason="this machine has a CUDA driver: the no-GPU errors do not apply")
def test_gpu_with_cpu_fallback_writes_the_cpu_rows(
    data: dict[str, Path], cpu_rows: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fallback.jsonl"
    res = _sweep(data, out, "--gpu", "--allow-cpu-fallback", "-q")
    assert res.returncode == 0, res.stderr
    assert (
        "no CUDA driver" in res.stderr and "--allow-cpu-fallback: running the CPU sweep instead" in res.stderr
    )
    assert out.read_bytes() == cpu_rows.read_bytes()


def test_contradictory_backend_flags_are_one_line(data: dict[str, Path], tmp_path: Path) -> None:
    res = _sweep(data, tmp_path / "x.jsonl", "--gpu", "--backend", "host-cuda")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: --gpu means --backend gpu; it contradicts the --backend given"
    ]


@pytest.mark.gpu
@pytest.mark.skipif(NO_DRIVER, reason="needs a CUDA driver and device")
def test_gpu_rows_equal_cpu_rows(data: dict[str, Path], cpu_rows: Path, tmp_path: Path) -> None:
    # The kernel both ways in: compiled here by gpu-compile (PTX, the driver finishes it), and
    # compiled at start by NVRTC from the pinned wheel.
    from tools.gpu_kernel_check import nvrtc_lib_path

    lib = nvrtc_lib_path()
    assert lib is not None, "pip install nvidia-cuda-nvrtc-cu12==12.9.86"
    ptx = tmp_path / "k.ptx"
    subprocess.run([str(BIN), "gpu-compile", "--arch", "compute_90", "--out", str(ptx), "--nvrtc-lib", str(lib)],
                   check=True, capture_output=True)  # fmt: skip
    for flags in (["--gpu-kernel", str(ptx)], ["--nvrtc-lib", str(lib)]):
        out = tmp_path / "gpu.jsonl"
        res = _sweep(data, out, "--gpu", "-q", *flags)
        assert res.returncode == 0, res.stderr
        assert out.read_bytes() == cpu_rows.read_bytes()
