"""Shared helpers for the operations tests: load tools/install_systemd.py, build a fake install."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"


def load_installer() -> ModuleType:
    """tools/ is not a package: import install_systemd.py from its path (once)."""
    name = "aiq_install_systemd"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOLS / "install_systemd.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def fake_install_dir(root: Path) -> Path:
    """A minimal install tree whose ExecStart executables exist (stubs), for systemd-analyze."""
    install = root / "install"
    for rel in (".venv/bin/python", "target/release/ai-quant-sidecar"):
        exe = install / rel
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    return install


def install_args(root: Path, scope: str, install: Path, *extra: str) -> list[str]:
    return [
        f"--{scope}",
        "--install-dir",
        str(install),
        "--data-dir",
        str(root / "data"),
        "--env-dir",
        str(root / "env"),
        "--unit-dir",
        str(root / "units"),
        *extra,
    ]


def systemd_analyze() -> str | None:
    return shutil.which("systemd-analyze")


def run_verify(units: list[Path], *, user: bool, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze [--user] verify` with a private runtime dir (a user manager needs one)."""
    exe = systemd_analyze()
    assert exe is not None
    cmd = [exe, *(["--user"] if user else []), "verify", *map(str, units)]
    env = dict(os.environ)
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    env["SYSTEMD_LOG_COLOR"] = "0"
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as ordered (key, value) lists (keys repeat, e.g. Environment=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"key outside a section: {line}"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(sections: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in sections.get(section, []) if k == key]


def one(sections: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    found = values(sections, section, key)
    assert len(found) == 1, f"[{section}] {key}= appears {len(found)} times"
    return found[0]
