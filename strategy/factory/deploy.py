"""Paper deploy: turn sweep overrides into a strategy YAML and write it atomically (temp file in
the same directory, fsync, rename), so the daemon's ``engine.config`` watcher only ever sees a
complete file and hot-reloads it. The live ramp changes only ``trade.size_multiplier``."""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Sweep specs carry enums by index (docs/backtester.md); YAML takes their names.
ENUM_PATHS: dict[str, tuple[str, ...]] = {
    "strategy": ("mei_alpha_v1", "ema_cross"),
    "trade.entry_min_confidence": ("low", "medium", "high"),
    "thresholds.entry.macd_hist_entry_mode": ("accel", "sign", "none"),
}


def _leaf_value(path: str, value: float, base_leaf: Any) -> Any:
    if path in ENUM_PATHS:
        return ENUM_PATHS[path][int(value)]
    if isinstance(base_leaf, bool) or path.rsplit(".", 1)[-1].startswith("enable_"):
        return bool(value)
    if isinstance(base_leaf, int) or (float(value).is_integer() and path.endswith(("_window", "_count"))):
        return int(value)
    return float(value)


def _get(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def overrides_to_doc(
    base_doc: Mapping[str, Any], overrides: Mapping[str, float], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Apply flat sweep overrides (``trade.sl_atr_mult: 2.0``) to the ``global`` section of a
    strategy YAML document. Types follow the defaults (int stays int, bool stays bool)."""
    doc = copy.deepcopy(dict(base_doc))
    glob = doc.setdefault("global", {})
    for path, value in sorted(overrides.items()):
        parts = path.split(".")
        node = glob
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        leaf = _get(defaults or {}, path)
        node[parts[-1]] = _leaf_value(path, value, leaf)
    return doc


def write_yaml_atomic(path: Path, doc: Mapping[str, Any], header: str = "") -> None:
    write_text_atomic(path, header + yaml.safe_dump(dict(doc), sort_keys=True, default_flow_style=False))


def write_text_atomic(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, mode 0644 (never group/world-writable), rename,
    fsync the directory: a reader sees the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(str(path.parent), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def set_size_multiplier(path: Path, multiplier: float) -> dict[str, Any]:
    """Rewrite ``global.trade.size_multiplier`` (the ramp's only knob) atomically."""
    doc = yaml.safe_load(path.read_text()) or {}
    doc.setdefault("global", {}).setdefault("trade", {})["size_multiplier"] = float(multiplier)
    write_yaml_atomic(path, doc)
    return dict(doc)


def paper_deploy(
    target: Path,
    base_doc: Mapping[str, Any],
    overrides: Mapping[str, float],
    config_id: str,
    run_id: str,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The factory's own paper deploy: validated like the tools' deploys, last good copy kept."""
    doc = overrides_to_doc(base_doc, overrides, defaults)
    header = f"# deployed by the strategy factory: run {run_id}, config_id {config_id}\n"
    deploy_text(target, render(doc, header), "paper")
    return doc


# --------------------------------------------------------------------------- daemon deployment


class DeployRefused(RuntimeError):
    """A deployment the tools will not make; the message says why."""


@dataclass(frozen=True)
class Deployed:
    target: Path
    engine_config_id: str  # the id the daemon reports for the new file (engine.config)
    sha256: str
    last_good: Path | None  # where the previous good file was kept (None: there was none)
    dry_run: bool
    text: str


def last_good_path(target: Path) -> Path:
    return target.with_name(target.name + ".last_good")


def validate_text(text: str, mode: str, name: str = "strategy_overrides.yaml") -> str:
    """Validate a YAML text exactly as the daemon's hot reload does (every symbol overlay and the
    run mode through engine.config); return its base config id or raise DeployRefused."""
    from engine.config import ConfigWatcher
    from engine.config.errors import ConfigError
    from engine.strategy_manager import refuse_unsupported

    with tempfile.TemporaryDirectory(prefix="aiq_deploy_") as d:
        p = Path(d) / name
        p.write_text(text)
        try:
            return ConfigWatcher(p, mode=mode, check=refuse_unsupported).get(None).config_id
        except ConfigError as exc:
            raise DeployRefused(f"the new config does not validate ({mode}): {exc}") from exc


def _current_is_good(target: Path, mode: str) -> bool:
    try:
        validate_text(target.read_text(), mode, target.name)
        return True
    except (DeployRefused, OSError, UnicodeDecodeError):
        return False


def deploy_text(target: Path, text: str, mode: str, *, dry_run: bool = False) -> Deployed:
    """Validate, keep the current file as ``<target>.last_good`` when it is itself valid (an invalid
    current file never replaces the older good copy), then write atomically. The daemon's
    ConfigWatcher notices the new mtime/inode and hot-reloads it."""
    if target.is_symlink():
        raise DeployRefused(f"{target} is a symlink; deploy to the real file")
    cid = validate_text(text, mode, target.name)
    digest = hashlib.sha256(text.encode()).hexdigest()
    keep: Path | None = None
    if target.exists() and _current_is_good(target, mode):
        keep = last_good_path(target)
        if not dry_run:
            write_text_atomic(keep, target.read_text())
    elif last_good_path(target).exists():
        keep = last_good_path(target)
    if not dry_run:
        write_text_atomic(target, text)
    return Deployed(target, cid, digest, keep, dry_run, text)


def render(doc: Mapping[str, Any], header: str = "") -> str:
    return header + yaml.safe_dump(dict(doc), sort_keys=True, default_flow_style=False)


def with_size_multiplier(doc: Mapping[str, Any], multiplier: float) -> dict[str, Any]:
    if not (multiplier > 0 and multiplier <= 1.0):
        raise DeployRefused(f"size multiplier {multiplier} is outside (0, 1]")
    out = copy.deepcopy(dict(doc))
    out.setdefault("global", {}).setdefault("trade", {})["size_multiplier"] = float(multiplier)
    return out
