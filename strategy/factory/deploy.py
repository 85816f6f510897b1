"""Paper deploy: turn sweep overrides into a strategy YAML and write it atomically (temp file in
the same directory, fsync, rename), so the daemon's ``engine.config`` watcher only ever sees a
complete file and hot-reloads it. The live ramp changes only ``trade.size_multiplier``."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Mapping
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
    path.parent.mkdir(parents=True, exist_ok=True)
    text = header + yaml.safe_dump(dict(doc), sort_keys=True, default_flow_style=False)
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
    doc = overrides_to_doc(base_doc, overrides, defaults)
    header = f"# deployed by the strategy factory: run {run_id}, config_id {config_id}\n"
    write_yaml_atomic(target, doc, header)
    return doc
