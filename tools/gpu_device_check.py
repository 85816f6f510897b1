"""The CUDA sweep's device check: parity and speed of `ai-quant-bt sweep --gpu` on a lent GPU.

Two steps, so the GPU machine (no Rust, no NVRTC, at most 64 MiB carried) needs one command:

    # here (this repository, its venv and the release binary):
    python tools/gpu_device_check.py bundle --out target/gpu-bundle.tgz
    # on the GPU machine (Python 3 standard library only):
    mkdir -p /tmp/aiq && tar xzf target/gpu-bundle.tgz -C /tmp/aiq && \\
        python3 /tmp/aiq/gpu_device_check.py run --bundle /tmp/aiq --out "$OUT/gpu_device_check.json"

The bundle holds the stripped binary, the kernel as PTX (compute_90) and an sm_90 cubin (both
built and audited here with NVRTC: tools/gpu_kernel_check.py), a candle DB of the 10 Hyperliquid
5m coins with their funding, a Mei Alpha v1 config, and this script.

`run` writes one JSON: the device; parity of >= 300 random combos, GPU rows against the host
build of the same core (every row field, exactly); f64 bar-combos/s of Mei Alpha v1 over the 10
coins at 1k, 10k and 100k combos of a decision-parameter grid (indicators shared); the CPU
sweep's figure on this machine's cores for the same work. It keeps to `--budget-s` (default 330 s):
a size whose estimated time does not fit is skipped and says so. `--backend host-cuda --dry-run`
runs every step on the CPU with small sizes (what CI checks).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

COINS = ["BNB", "BTC", "DOGE", "ENA", "ETH", "HYPE", "SOL", "SUI", "XRP", "kPEPE"]
BIN_NAME = "ai-quant-bt"
PTX_NAME = "aiq_sweep.compute_90.ptx"
CUBIN_NAME = "aiq_sweep.sm_90.cubin"
MAX_BUNDLE_BYTES = 60 << 20

CONFIG = """\
global:
  strategy: mei_alpha_v1
  engine: {interval: 5m}
  trade: {enable_pyramiding: true}
"""

# The speed grid: decision parameters only (indicator series are shared by every combo);
# 10^5 combos, first axis slowest; --limit takes the first 1k / 10k.
SPEED_AXES: list[tuple[str, list[float]]] = [
    ("trade.sl_atr_mult", [1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5]),
    ("thresholds.entry.min_adx", [12, 14, 16, 18, 20, 22, 24, 26, 28, 30]),
    ("trade.tp_atr_mult", [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0]),
    ("trade.trailing_start_atr", [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0]),
    ("trade.leverage", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
]

# Parity: random values (seeded) on these axes, 3 each, plus two indicator windows: 486 combos.
PARITY_RANGES = [
    ("trade.sl_atr_mult", 0.8, 4.0),
    ("trade.tp_atr_mult", 1.5, 8.0),
    ("trade.trailing_start_atr", 0.3, 4.0),
    ("thresholds.entry.min_adx", 8.0, 30.0),
    ("trade.leverage", 1.0, 10.0),
]
PARITY_INDICATOR: tuple[str, list[float]] = ("indicators.ema_fast_window", [8, 12])

STATS = re.compile(r"sweep: (\d+) combos run .*? in ([0-9.]+) s; ([0-9.]+) M bar-combos/s")
CORE_LINE = re.compile(
    r"^(?:gpu \(.*\)|host-cuda): (\d+) launches, (\d+) combos; upload ([0-9.]+) s, launches ([0-9.]+) s$",
    re.M,
)
GPU_LINE = re.compile(r"^gpu: (.+?) \(compute ([0-9.]+)\), kernel (.+)$", re.M)


def spec_yaml(axes: list[tuple[str, list[float]]]) -> str:
    lines = ["axes:"]
    lines += [f"  - {{path: {p}, values: [{', '.join(repr(v) for v in vals)}]}}" for p, vals in axes]
    return "\n".join(lines) + "\n"


# ---- bundle (runs here) ---------------------------------------------------------------------------


def make_bundle(
    out: Path, root: Path, nvrtc_lib: Path | None, coins: list[str] = COINS, bars: int | None = None
) -> dict[str, Any]:
    sys.path.insert(0, str(root / "tools"))
    sys.path.insert(0, str(root / "tests" / "backtest"))
    from bt_helpers import HL, hl_frames, hl_funding, write_candles_db, write_funding_db
    from gpu_kernel_check import check_binary, nvrtc_lib_path

    binary = root / "target" / "release" / BIN_NAME
    lib = nvrtc_lib or nvrtc_lib_path()
    if not binary.is_file():
        raise SystemExit(f"error: {binary}: build it first (cargo build --release -p aiq-backtest)")
    if lib is None:
        raise SystemExit("error: libnvrtc.so.12 not found: pip install nvidia-cuda-nvrtc-cu12==12.9.86")
    with tempfile.TemporaryDirectory() as d:
        stage = Path(d)
        rep = check_binary(binary, lib, stage)
        if rep.findings:
            raise SystemExit("error: the kernel fails its audit: " + "; ".join(rep.findings))
        shutil.move(stage / "k.ptx", stage / PTX_NAME)
        shutil.move(stage / "k.cubin", stage / CUBIN_NAME)
        (stage / "k.log").unlink()
        subprocess.run(["strip", "-o", str(stage / BIN_NAME), str(binary)], check=True)
        write_candles_db(stage / "candles_5m.db", hl_frames(coins, "5m", n=bars), "5m")
        funded = [c for c in coins if (HL / f"{c}_USDC_USDC-1h-funding_rate.feather").exists()]
        write_funding_db(stage / "funding.db", hl_funding(funded))
        (stage / "config.yaml").write_text(CONFIG)
        shutil.copy(Path(__file__), stage / "gpu_device_check.py")
        manifest = {
            "coins": coins,
            "bars": bars,
            "funding_coins": funded,
            "kernel_registers": rep.registers,
            "git": subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip(),
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w:gz") as tar:
            for p in sorted(stage.iterdir()):
                tar.add(p, arcname=p.name)
    size = out.stat().st_size
    if size > MAX_BUNDLE_BYTES:
        raise SystemExit(
            f"error: {out} is {size >> 20} MiB, over the {MAX_BUNDLE_BYTES >> 20} MiB a device run carries"
        )
    manifest["bytes"] = size
    return manifest


# ---- run (on the GPU machine; standard library only) ----------------------------------------------


class Runner:
    def __init__(self, bundle: Path, work: Path, threads: int) -> None:
        self.bundle = bundle
        self.work = work
        self.threads = threads
        self.bin = bundle / BIN_NAME

    def sweep(self, name: str, spec: str, backend: list[str], limit: int | None = None) -> dict[str, Any]:
        (self.work / f"{name}.yaml").write_text(spec)
        out = self.work / f"{name}.jsonl"
        args = [
            str(self.bin), "sweep", "--config", str(self.bundle / "config.yaml"),
            "--candles-db", str(self.bundle / "candles_5m.db"), "--funding-db", str(self.bundle / "funding.db"),
            "--sweep-spec", str(self.work / f"{name}.yaml"), "--output", str(out), "--no-progress",
            "--threads", str(self.threads), "--top-k", "10", *backend,
        ]  # fmt: skip
        if limit is not None:
            args += ["--limit", str(limit)]
        t0 = time.monotonic()
        res = subprocess.run(args, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if res.returncode != 0:
            raise RuntimeError(
                f"{name}: {' '.join(backend)}: exit {res.returncode}: {res.stderr.strip()[-2000:]}"
            )
        m = STATS.search(res.stderr)
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        bars = rows[0]["bars"] if rows else 0
        g = GPU_LINE.search(res.stderr)
        c = CORE_LINE.search(res.stderr)
        core = None
        if c:
            launches_s = float(c.group(4))
            core = {
                "launches": int(c.group(1)),
                "upload_s": float(c.group(3)),
                "launch_s": launches_s,
                # The decision core alone (no config building, indicators or I/O around it).
                "kernel_bar_combos_per_s": round(bars * len(rows) / launches_s) if launches_s > 0 else None,
            }
        return {
            "name": name,
            "backend": " ".join(backend),
            "combos": len(rows),
            "bars_per_combo": bars,
            "wall_s": round(wall, 3),
            "sweep_s": float(m.group(2)) if m else None,
            "bar_combos_per_s": round(float(m.group(3)) * 1e6) if m else None,
            "gpu": {"name": g.group(1), "compute": g.group(2), "kernel": g.group(3)} if g else None,
            "core": core,
            "rows": rows,
        }


def compare_rows(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Every field of every row, exactly; the worst relative error of final_equity besides."""
    mismatched: list[dict[str, Any]] = []
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        diff = sorted(k for k in x if x[k] != y.get(k))
        fx, fy = x["final_equity"], y["final_equity"]
        worst = max(worst, abs(fx - fy) / max(abs(fx), 1e-300))
        if diff and len(mismatched) < 5:
            mismatched.append({"combo": x["combo"], "fields": {k: [x[k], y.get(k)] for k in diff}})
    bad = sum(1 for x, y in zip(a, b, strict=True) if x != y)
    return {
        "combos": len(a),
        "fields": sorted(a[0]) if a else [],
        "mismatched_rows": bad,
        "first_mismatches": mismatched,
        "max_rel_err_final_equity": worst,
        "trades": sum(r["total_trades"] for r in a),
        "ok": bad == 0 and len(a) == len(b),
    }


def device_info() -> dict[str, Any]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return {}
    q = "name,driver_version,memory.total,compute_cap"
    r = subprocess.run([smi, f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True)
    vals = [v.strip() for v in r.stdout.splitlines()[0].split(",")] if r.returncode == 0 and r.stdout else []
    return dict(zip(q.split(","), vals, strict=False))


def run_check(a: argparse.Namespace) -> dict[str, Any]:
    t_start = time.monotonic()
    bundle = a.bundle.resolve()
    threads = a.threads or os.cpu_count() or 1
    if a.backend == "gpu":
        kernel = bundle / (CUBIN_NAME if a.kernel == "cubin" else PTX_NAME)
        dev = ["--gpu", "--gpu-kernel", str(kernel)]
    else:
        dev = ["--backend", "host-cuda"]
    sizes = [20, 60] if a.dry_run else [1_000, 10_000, 100_000]
    cpu_sizes = [20] if a.dry_run else [1_000, 10_000]
    out: dict[str, Any] = {
        "backend": a.backend,
        "dry_run": a.dry_run,
        "threads": threads,
        "device": device_info(),
    }
    with tempfile.TemporaryDirectory() as d:
        r = Runner(bundle, Path(d), threads)
        left = lambda: a.budget_s - (time.monotonic() - t_start)  # noqa: E731

        # Parity: GPU (or the dry run's host core) against the host core, same random grid.
        rng = random.Random(a.seed)
        axes = [(p, sorted(round(rng.uniform(lo, hi), 3) for _ in range(3))) for p, lo, hi in PARITY_RANGES]
        axes = [(PARITY_INDICATOR[0], list(PARITY_INDICATOR[1])), *axes]
        axes = [(p, [float(int(v)) if p == "trade.leverage" else v for v in vals]) for p, vals in axes]
        spec = spec_yaml(axes)
        limit = 40 if a.dry_run else None
        try:
            got = r.sweep("parity_dev", spec, dev, limit)
        except RuntimeError as e:
            if a.backend != "gpu" or a.kernel != "cubin":
                raise
            # The cubin did not load or run: record why and go on with the PTX (driver JIT).
            out["cubin_error"] = str(e)
            dev = ["--gpu", "--gpu-kernel", str(bundle / PTX_NAME)]
            got = r.sweep("parity_dev", spec, dev, limit)
        ref = r.sweep("parity_host", spec, ["--backend", "host-cuda"], limit)
        out["gpu"] = got["gpu"]
        out["parity"] = {"seed": a.seed, "axes": dict(axes), **compare_rows(got["rows"], ref["rows"])}
        # And against the CPU sweep (the Rust kernel itself), the differential suite's reference.
        cpu_ref = r.sweep("parity_cpu", spec, ["--backend", "cpu"], limit)
        out["parity_vs_cpu_sweep"] = compare_rows(got["rows"], cpu_ref["rows"])

        # Throughput: the decision-parameter grid at each size, while the budget allows.
        speed_spec = spec_yaml(SPEED_AXES)
        out["throughput"] = []
        rate = None
        for n in sizes:
            est = None if rate is None else n * got_bars(out) / rate * 1.3 + 10
            if est is not None and est > left():
                out["throughput"].append(
                    {"combos": n, "skipped": f"estimated {est:.0f} s, {left():.0f} s left"}
                )
                continue
            try:
                res = r.sweep(f"speed_{n}", speed_spec, dev, n)
            except RuntimeError as e:
                out["throughput"].append({"combos": n, "error": str(e)})
                break
            res.pop("rows")
            out["throughput"].append(res)
            out["bars_per_combo"] = res["bars_per_combo"]
            if res["bar_combos_per_s"]:
                rate = res["bar_combos_per_s"]
        # The CPU sweep (the Rust kernel on every core) on the same grid.
        out["cpu"] = []
        cpu_rate = None
        for n in cpu_sizes:
            est = None if cpu_rate is None else n * got_bars(out) / cpu_rate * 1.3 + 10
            if est is not None and est > left():
                out["cpu"].append({"combos": n, "skipped": f"estimated {est:.0f} s, {left():.0f} s left"})
                continue
            try:
                res = r.sweep(f"cpu_{n}", speed_spec, ["--backend", "cpu"], n)
            except RuntimeError as e:
                out["cpu"].append({"combos": n, "error": str(e)})
                break
            res.pop("rows")
            out["cpu"].append(res)
            if res["bar_combos_per_s"]:
                cpu_rate = res["bar_combos_per_s"]
    best = max((t.get("bar_combos_per_s") or 0 for t in out["throughput"]), default=0)
    out["best_bar_combos_per_s"] = best
    out["cpu_bar_combos_per_s"] = cpu_rate
    out["speedup_vs_cpu"] = round(best / cpu_rate, 2) if cpu_rate else None
    out["goals"] = {
        "bar_combos_per_s_1e9": best >= 1e9,
        "speedup_100x": bool(cpu_rate and best >= 100 * cpu_rate),
    }
    out["elapsed_s"] = round(time.monotonic() - t_start, 1)
    return out


def got_bars(out: dict[str, Any]) -> int:
    return int(out.get("bars_per_combo") or 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CUDA sweep device check (see the module docstring)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bundle", help="build the bundle here (binary, kernels, data, this script)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--nvrtc-lib", type=Path, default=None)
    b.add_argument("--coins", default=",".join(COINS), help="comma-separated (default: the 10 HL 5m coins)")
    b.add_argument("--bars", type=int, default=None, help="first N bars per coin (default: all)")
    r = sub.add_parser("run", help="run the check from an unpacked bundle; writes one JSON")
    r.add_argument("--bundle", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--backend", choices=["gpu", "host-cuda"], default="gpu")
    r.add_argument("--kernel", choices=["cubin", "ptx"], default="cubin")
    r.add_argument("--dry-run", action="store_true", help="small sizes (for a CPU-only check that it starts)")
    r.add_argument("--budget-s", type=float, default=330.0)
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--seed", type=int, default=18)
    a = ap.parse_args(argv)
    if a.cmd == "bundle":
        root = Path(__file__).resolve().parents[1]
        m = make_bundle(a.out, root, a.nvrtc_lib, a.coins.split(","), a.bars)
        print(f"wrote {a.out} ({m['bytes'] >> 20} MiB; kernel registers {m['kernel_registers']})")
        return 0
    try:
        result = run_check(a)
    except RuntimeError as e:
        result = {"error": str(e)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("throughput", "cpu")}, indent=1))
    ok = result.get("parity", {}).get("ok") and result.get("parity_vs_cpu_sweep", {}).get("ok")
    return 1 if "error" in result or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
