"""The hand-written stub kernel/bt-runtime/stubs/bt_runtime.pyi (what mypy checks the daemon against)
matches the built module: every function, class and parameter, with its defaults (mypy's stubtest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "kernel" / "bt-runtime" / "stubs"


def test_stub_matches_the_built_module() -> None:
    cmd = [sys.executable, "-m", "mypy.stubtest", "bt_runtime", "--ignore-disjoint-bases"]
    cmd += ["--allowlist", str(STUBS / "stubtest-allowlist.txt")]
    env = {**os.environ, "MYPYPATH": str(STUBS)}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
