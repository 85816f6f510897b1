"""The skip guard fails a strict run on an unlisted skip and lets the allowlisted GPU tests skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = """
import pytest

def test_runs():
    assert True

@pytest.mark.gpu
def test_needs_gpu():
    pytest.skip("no CUDA device")

def test_needs_chromium():
    pytest.skip("chromium not found at /usr/bin/chromium")
"""

MODULE_SKIP = """
import pytest
pytest.importorskip("a_module_that_is_not_installed_anywhere")

def test_hidden():
    assert True
"""


def _run(tmp: Path, source: str, strict: bool, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "AI_QUANT_STRICT_SKIPS")}
    env["PYTHONPATH"] = str(ROOT)
    if strict:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.skip_guard",
            "-p",
            "no:cacheprovider",
            "test_sample.py",
            *extra,
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_strict_run_fails_on_unlisted_skip_and_names_it(tmp_path: Path) -> None:
    r = _run(tmp_path, SUITE, strict=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "skip guard: 1 skip(s) not on the allowlist" in r.stdout
    assert "test_sample.py::test_needs_chromium: chromium not found at /usr/bin/chromium" in r.stdout
    assert "test_needs_gpu" not in r.stdout.split("skip guard:")[1]


def test_strict_run_fails_on_module_level_skip(tmp_path: Path) -> None:
    r = _run(tmp_path, MODULE_SKIP, strict=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "a_module_that_is_not_installed_anywhere" in r.stdout.split("skip guard:")[1]


def test_allowlisted_skip_passes_in_strict_run(tmp_path: Path) -> None:
    r = _run(tmp_path, SUITE.replace('pytest.skip("chromium', 'print("chromium'), strict=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout or "2 passed" in r.stdout
    assert "skip guard" not in r.stdout


def test_developer_run_only_reports_skips(tmp_path: Path) -> None:
    r = _run(tmp_path, SUITE, strict=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skip guard" not in r.stdout


def test_the_guard_holds_under_xdist(tmp_path: Path) -> None:
    # `make test` runs on xdist workers: the controller collects nothing, so the allowlist must come
    # from the reports (a gpu-marked skip passes, an unlisted one still fails the run).
    allowed = SUITE.replace('pytest.skip("chromium', 'print("chromium')
    r = _run(tmp_path, allowed, True, "-n", "2", "-p", "xdist")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skip guard" not in r.stdout
    r = _run(tmp_path, SUITE, True, "-n", "2", "-p", "xdist")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "test_sample.py::test_needs_chromium" in r.stdout.split("skip guard:")[1]
    assert "test_needs_gpu" not in r.stdout.split("skip guard:")[1]
