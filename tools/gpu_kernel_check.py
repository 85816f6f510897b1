"""Compile check of the GPU sweep kernel, with no GPU: NVRTC (the pinned pip wheel) compiles it
and the output is audited for what would make the GPU round differently from the host build.

    python tools/gpu_kernel_check.py [--bin target/release/ai-quant-bt] [--nvrtc-lib PATH]

The binary's own `gpu-compile` builds the kernel (the exact text and options it embeds) to PTX for
compute_90 and to an sm_90 cubin; the check fails on:
- any f64 FMA (`fma.rn.f64`): NVRTC contracted a*b+c although --fmad=false, or libdevice math
  (exp, log, pow, tanh, ... all inline FMAs) is in the kernel;
- any f64 add/sub/mul without an explicit rounding mode (`mul.f64`): ptxas may still fuse those;
- any approximate instruction (`rcp.approx`, `ex2.approx`, ...) or libdevice name (`__nv_*`,
  `__internal_*`): transcendental math;
- any register spill in ptxas's report (spills cost memory traffic per combo);
- a call to a transcendental function in the sources (named, so the fix is obvious).
Exit status 1 and one line per finding; 0 and a summary line when clean.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "kernel" / "aiq-cuda" / "cuda"
DEFAULT_BIN = ROOT / "target" / "release" / "ai-quant-bt"
PINNED_WHEEL = "nvidia-cuda-nvrtc-cu12==12.9.86"

FMA_F64 = re.compile(r"\bfma\.\w+\.f64\b")
UNROUNDED_F64 = re.compile(r"\b(?:add|sub|mul)\.f64\b")
APPROX = re.compile(r"\b\w+\.approx(?:\.\w+)*\b")
LIBDEVICE = re.compile(r"\b__(?:nv|internal)_\w+")
SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
REGISTERS = re.compile(r"Used (\d+) registers")
TRANSCENDENTAL = re.compile(
    r"\b(exp|exp2|exp10|expm1|log|log2|log10|log1p|pow|powi|sin|cos|tan|sinh|cosh|tanh|asin|acos|atan"
    r"|atan2|asinh|acosh|atanh|cbrt|erf|erfc|lgamma|tgamma|hypot|rsqrt)f?\s*\("
)
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def nvrtc_lib_path() -> Path | None:
    """libnvrtc.so.12: $AIQ_NVRTC_LIB, else the one the pinned wheel installed in this Python."""
    env = os.environ.get("AIQ_NVRTC_LIB")
    if env:
        return Path(env)
    try:
        import nvidia.cuda_nvrtc as pkg
    except ImportError:
        return None
    for base in pkg.__path__:
        lib = Path(base) / "lib" / "libnvrtc.so.12"
        if lib.is_file():
            return lib
    return None


@dataclass(frozen=True)
class Compiled:
    image: bytes
    log: str


class NvrtcError(RuntimeError):
    pass


def compile_source(
    lib_path: Path, src: str, options: list[str], headers: dict[str, str] | None = None
) -> Compiled:
    """Compile `src` with NVRTC via ctypes: PTX for -arch=compute_XY, a cubin for -arch=sm_XY."""
    lib = ctypes.CDLL(str(lib_path))
    headers = headers or {}
    prog = ctypes.c_void_p()
    texts = (ctypes.c_char_p * len(headers))(*[t.encode() for t in headers.values()])
    names = (ctypes.c_char_p * len(headers))(*[n.encode() for n in headers])
    if lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"check.cu", len(headers), texts, names):
        raise NvrtcError("nvrtcCreateProgram failed")
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        rc = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace")
        if rc:
            raise NvrtcError(f"compile failed ({rc}): {log.strip()}")
        cubin = any(o.startswith("-arch=sm_") for o in options)
        get_size, get = (
            (lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN) if cubin else (lib.nvrtcGetPTXSize, lib.nvrtcGetPTX)
        )
        get_size(prog, ctypes.byref(size))
        out = ctypes.create_string_buffer(size.value)
        get(prog, out)
        return Compiled(out.raw if cubin else out.value, log)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def audit_ptx(ptx: str) -> list[str]:
    """Findings in PTX text (empty: clean)."""
    out = []
    for name, rx, why in (
        ("fma.*.f64", FMA_F64, "fused multiply-add rounds differently from the host build"),
        ("add/sub/mul.f64 without .rn", UNROUNDED_F64, "ptxas may fuse an f64 op with no rounding mode"),
        ("*.approx", APPROX, "approximate (transcendental) math"),
        ("__nv_*/__internal_*", LIBDEVICE, "libdevice math"),
    ):
        hits = rx.findall(ptx)
        if hits:
            out.append(f"PTX: {len(hits)} x {name} (e.g. {sorted(set(hits))[0]!r}): {why}")
    return out


def audit_ptxas_log(log: str) -> list[str]:
    """Findings in ptxas's -v report (empty: clean). A report without any spill line is itself a
    finding: the check would otherwise pass on a log that says nothing."""
    spills = SPILL.findall(log)
    if not spills:
        return ["ptxas report: no 'bytes spill stores' line (was --ptxas-options=-v passed?)"]
    return [
        f"ptxas: register spill ({st} bytes stores, {ld} bytes loads)"
        for st, ld in spills
        if int(st) or int(ld)
    ]


def audit_sources(texts: dict[str, str]) -> list[str]:
    """Calls to transcendental functions in the kernel sources (comments ignored)."""
    out = []
    for name, text in texts.items():
        code = COMMENT.sub("", text)
        for m in TRANSCENDENTAL.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            out.append(f"{name}:{line}: calls {m.group(1)}(): the GPU build must use only + - * / sqrt")
    return out


def kernel_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(CUDA_DIR.glob("*")) if p.suffix in (".h", ".cu")}


@dataclass(frozen=True)
class Report:
    findings: list[str]
    registers: list[int]
    ptx_bytes: int
    cubin_bytes: int


def check_binary(bin_path: Path, lib_path: Path, workdir: Path, arch: int = 90) -> Report:
    """Build the kernel with the binary's `gpu-compile` (PTX and cubin) and audit both."""
    ptx, cubin, log = workdir / "k.ptx", workdir / "k.cubin", workdir / "k.log"
    for target, out, extra in ((f"compute_{arch}", ptx, []), (f"sm_{arch}", cubin, ["--log", str(log)])):
        res = subprocess.run(
            [
                str(bin_path),
                "gpu-compile",
                "--arch",
                target,
                "--out",
                str(out),
                "--nvrtc-lib",
                str(lib_path),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            return Report([f"gpu-compile --arch {target} failed: {res.stderr.strip()}"], [], 0, 0)
    ptx_text = ptx.read_text()
    log_text = log.read_text()
    findings = audit_sources(kernel_sources()) + audit_ptx(ptx_text) + audit_ptxas_log(log_text)
    if ".entry aiq_sweep" not in ptx_text:
        findings.append("PTX: no .entry aiq_sweep")
    regs = [int(r) for r in REGISTERS.findall(log_text)]
    return Report(findings, regs, len(ptx_text), cubin.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="ai-quant-bt (default: the release build)")
    ap.add_argument("--nvrtc-lib", type=Path, default=None, help="libnvrtc.so.12 (default: the pip wheel)")
    ap.add_argument("--arch", type=int, default=90, help="compute capability (default 90: H100/H200)")
    a = ap.parse_args(argv)
    lib = a.nvrtc_lib or nvrtc_lib_path()
    if lib is None or not lib.is_file():
        print(
            f"error: libnvrtc.so.12 not found: pip install {PINNED_WHEEL} (or pass --nvrtc-lib)",
            file=sys.stderr,
        )
        return 2
    if not a.bin.is_file():
        print(f"error: {a.bin}: no such binary (cargo build --release -p aiq-backtest)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        rep = check_binary(a.bin, lib, Path(d), a.arch)
    for f in rep.findings:
        print(f)
    if rep.findings:
        return 1
    print(
        f"GPU kernel OK for sm_{a.arch}: PTX {rep.ptx_bytes} bytes, cubin {rep.cubin_bytes} bytes, "
        f"registers {rep.registers}, no f64 FMA, no transcendental, no spill"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
