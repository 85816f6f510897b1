"""The ai-quant version, read from the repository's VERSION file (the single source of truth)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def read_version() -> str:
    return (REPO_ROOT / "VERSION").read_text().strip()


__version__ = read_version()
