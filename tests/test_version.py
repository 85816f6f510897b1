"""VERSION is the single source of truth for every version string in the repository."""

import subprocess
import sys
import tomllib
from pathlib import Path

import bt_runtime

ROOT = Path(__file__).resolve().parents[1]
VERSION = (ROOT / "VERSION").read_text().strip()


def _cargo_versions() -> dict[str, str]:
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    versions = {"Cargo.toml [workspace.package]": workspace["workspace"]["package"]["version"]}
    for manifest in ROOT.glob("**/Cargo.toml"):
        if "target" in manifest.parts or manifest.parent == ROOT:
            continue
        pkg = tomllib.loads(manifest.read_text()).get("package", {})
        version = pkg.get("version")
        if isinstance(version, dict):  # version.workspace = true
            assert version == {"workspace": True}, manifest
            continue
        if version is not None:
            versions[str(manifest.relative_to(ROOT))] = version
    return versions


def test_version_file_is_semver() -> None:
    parts = VERSION.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts), VERSION


def test_every_cargo_manifest_matches_version() -> None:
    for name, version in _cargo_versions().items():
        assert version == VERSION, f"{name} has version {version}, VERSION says {VERSION}"


def test_pyproject_takes_version_from_cargo() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    if "version" in project:
        assert project["version"] == VERSION
    else:
        assert "version" in project["dynamic"]


def test_extension_reports_version() -> None:
    assert bt_runtime.__version__ == VERSION


def test_cli_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == f"ai-quant {VERSION}"


def test_rust_binaries_print_version() -> None:
    import pytest

    for name in ("ai-quant-bt", "ai-quant-sidecar"):
        binary = ROOT / "target" / "release" / name
        if not binary.exists():
            pytest.fail(f"{binary} missing: `make test` builds it first (make bins)")
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
        )
        assert out.stdout.strip() == f"{name} {VERSION}", out.stdout


def test_interval_table_comes_from_the_kernel() -> None:
    table = bt_runtime.intervals()
    assert table["5m"] == 300_000 and table["1h"] == 3_600_000
