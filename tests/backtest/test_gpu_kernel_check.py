"""The GPU sweep kernel's compile check, with no GPU (NVRTC from the pinned pip wheel).

The binary's `gpu-compile` builds the kernel (the text it embeds) to PTX and to an sm_90 cubin and
tools/gpu_kernel_check.py audits both; negative controls prove each audit can fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from bt_helpers import BIN

from tools.gpu_kernel_check import (
    PINNED_WHEEL,
    audit_ptx,
    audit_ptxas_log,
    audit_sources,
    check_binary,
    compile_source,
    kernel_sources,
    nvrtc_lib_path,
)

LIB = nvrtc_lib_path()

pytestmark = [
    pytest.mark.skipif(not BIN.exists(), reason=f"build the binary first: {BIN} is missing"),
    pytest.mark.skipif(LIB is None, reason=f"NVRTC not installed: pip install {PINNED_WHEEL}"),
]

AXPY = (
    'extern "C" __global__ void k(double* x, double a, double b) { x[threadIdx.x] = x[threadIdx.x] * a + b; }'
)
EXP = 'extern "C" __global__ void k(double* x) { x[threadIdx.x] = exp(x[threadIdx.x]); }'
# 48 live doubles per thread: fits in registers normally, spills under --maxrregcount=32.
PRESSURE = r"""
extern "C" __global__ void k(const double* x, double* y, int n) {
    double a[48];
    #pragma unroll
    for (int j = 0; j < 48; j++) a[j] = x[threadIdx.x + j * n];
    double s = 0.0;
    for (int r = 0; r < n; r++) {
        #pragma unroll
        for (int j = 0; j < 48; j++) { a[j] = a[j] * a[(j + 7) % 48] + s; s = s + a[j]; }
    }
    #pragma unroll
    for (int j = 0; j < 48; j++) y[threadIdx.x + j * n] = a[j];
}
"""


def _lib() -> Path:
    assert LIB is not None
    return LIB


def test_the_binary_builds_a_clean_kernel_for_sm90(tmp_path: Path) -> None:
    rep = check_binary(BIN, _lib(), tmp_path)
    assert rep.findings == []
    # Something was really compiled and reported on: the kernel, its registers, both images.
    assert rep.registers and all(0 < r <= 255 for r in rep.registers)
    assert rep.ptx_bytes > 0 and rep.cubin_bytes > 0
    ptx = (tmp_path / "k.ptx").read_text()
    assert ".target sm_90" in ptx and ".entry aiq_sweep" in ptx
    assert (tmp_path / "k.cubin").read_bytes()[:4] == b"\x7fELF"
    # The cubin is what the NVRTC wheel compiled from the sources in the repository.
    assert {"aiq_core.h", "sweep.cu"} <= set(kernel_sources())


def test_fma_is_detected_without_fmad_false_and_absent_with_it() -> None:
    contracted = compile_source(_lib(), AXPY, ["-arch=compute_90"]).image.decode()
    assert any("fma.*.f64" in f for f in audit_ptx(contracted))
    exact = compile_source(_lib(), AXPY, ["-arch=compute_90", "--fmad=false"]).image.decode()
    assert audit_ptx(exact) == []
    assert "mul.rn.f64" in exact and "add.rn.f64" in exact


def test_libdevice_transcendentals_are_detected_even_with_fmad_false() -> None:
    ptx = compile_source(_lib(), EXP, ["-arch=compute_90", "--fmad=false"]).image.decode()
    found = audit_ptx(ptx)
    assert any("fma" in f for f in found), found
    assert audit_sources({"x.cu": EXP}) and "calls exp()" in audit_sources({"x.cu": EXP})[0]
    # Comments and names that merely contain a function name are not calls.
    assert audit_sources({"x.h": "// exp(x) is banned\ndouble ema_log(double x);\n"}) == []


def test_unrounded_f64_ops_and_approx_instructions_are_detected() -> None:
    assert audit_ptx("\tmul.f64 \t%fd4, %fd3, %fd1;\n")
    assert audit_ptx("\trcp.approx.ftz.f64 \t%fd4, %fd3;\n")
    assert audit_ptx("\tcall.uni (retval0), __nv_exp, (param0);\n")


def test_register_spills_are_detected() -> None:
    opts = ["-arch=sm_90", "--fmad=false", "--ptxas-options=-v"]
    spilled = compile_source(_lib(), PRESSURE, [*opts, "--maxrregcount=32"]).log
    assert any("register spill" in f for f in audit_ptxas_log(spilled)), spilled
    assert audit_ptxas_log(compile_source(_lib(), PRESSURE, opts).log) == []
    # A log that reports nothing does not pass.
    assert audit_ptxas_log("") != []


def test_gpu_compile_errors_are_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AIQ_NVRTC_LIB", "LD_LIBRARY_PATH")}
    out = tmp_path / "k.ptx"
    for extra, needle in (
        (["--nvrtc-lib", str(tmp_path / "nope.so")], "nope.so: cannot load NVRTC"),
        ([], "NVRTC not found"),
        (["--arch", "sm9"], "expected compute_XY"),
    ):
        res = subprocess.run(
            [str(BIN), "gpu-compile", "--out", str(out), *extra], capture_output=True, text=True, env=env
        )
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], res.stderr
        assert "panicked" not in res.stderr
    assert not out.exists()
