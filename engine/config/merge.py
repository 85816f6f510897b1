"""Deep merge of overlays over the defaults, remembering where every value came from."""

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Location = tuple[str, ...]
KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Origin:
    """Where a merged value was set: a place in the file, or a named non-file layer."""

    location: Location | None  # None: not from the file
    layer_index: int
    layer_name: str

    def describe(self) -> str:
        return ".".join(self.location) if self.location is not None else self.layer_name


@dataclass
class MergeResult:
    merged: dict[str, Any]
    origins: dict[KeyPath, Origin] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)

    def origin_of(self, path: tuple[str | int, ...]) -> Origin | None:
        """Origin of the value at `path` (or of the nearest replaced ancestor, e.g. a list)."""
        keys = tuple(str(p) for p in path)
        for end in range(len(keys), 0, -1):
            found = self.origins.get(keys[:end])
            if found is not None:
                return found
        return None


def deep_merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: mappings merge key by key, everything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_layer(
    result: MergeResult, overlay: Mapping[str, Any], name: str, location: Location | None
) -> None:
    """Merge `overlay` into `result` in place and record the origin of each value it sets."""
    index = len(result.layers)
    result.layers.append(name)

    def walk(target: dict[str, Any], values: Mapping[str, Any], path: KeyPath) -> None:
        for key, value in values.items():
            here = (*path, key)
            if isinstance(value, Mapping) and isinstance(target.get(key), dict):
                walk(target[key], value, here)
            else:
                target[key] = copy.deepcopy(value)
                where = None if location is None else (*location, *here)
                result.origins[here] = Origin(where, index, name)

    walk(result.merged, overlay, ())
