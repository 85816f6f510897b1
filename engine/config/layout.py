"""The file layout: top-level sections, the two forms of `live` and `modes.<name>`, and every key
checked against the schema before merging (so errors name the place in the file)."""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from engine.config.errors import ConfigError, Problem
from engine.config.modes import STRATEGY_MODE_ALIASES, STRATEGY_MODES, StrategyMode
from engine.config.schema import GLOBAL_ONLY_KEYS, key_tree
from engine.config.yaml_file import FileStamp

TOP_LEVEL_SECTIONS: Final = ("global", "symbols", "live", "modes")
LAYER_FORM_KEYS: Final = ("global", "symbols")

Location = tuple[str, ...]


@dataclass(frozen=True)
class Overlay:
    """Partial strategy config found at `location` in the file (e.g. ("symbols", "BTC"))."""

    location: Location
    values: dict[str, Any]


@dataclass(frozen=True)
class Layer:
    """`global` plus per-symbol overlays: the top level, `live`, or one `modes.<name>`."""

    global_: Overlay | None = None
    symbols: dict[str, Overlay] = field(default_factory=dict)

    def overlays_for(self, symbol: str | None) -> list[Overlay]:
        found = [self.global_] if self.global_ is not None else []
        if symbol is not None and symbol in self.symbols:
            found.append(self.symbols[symbol])
        return found


@dataclass(frozen=True)
class ConfigDocument:
    """A parsed config file whose layout and keys are known to be valid (values are checked
    once merged)."""

    source: Path
    raw: dict[str, Any]
    stamp: FileStamp | None
    base: Layer
    live: Layer | None
    modes: dict[StrategyMode, Layer]

    def symbols(self) -> list[str]:
        return list_symbols(self.raw)


def dotted(location: Location) -> str:
    return ".".join(location)


def describe(value: Any) -> str:
    """A short, type-naming description of a YAML value for error messages."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _leaf_index(tree: Mapping[str, Any], prefix: Location = ()) -> dict[str, list[str]]:
    """Every key name in the schema -> the dotted paths where it lives."""
    index: dict[str, list[str]] = {}
    for name, sub in tree.items():
        index.setdefault(name, []).append(dotted((*prefix, name)))
        if isinstance(sub, Mapping):
            for leaf, paths in _leaf_index(sub, (*prefix, name)).items():
                index.setdefault(leaf, []).extend(paths)
    return index


_TREE: Final = key_tree()
_INDEX: Final = _leaf_index(_TREE)


def _unknown_key(key: str, choices: list[str], section: Location) -> str:
    elsewhere = [p for p in _INDEX.get(key, []) if p != dotted((*section, key))]
    if elsewhere:
        return f"unknown key {key!r} here (it belongs at {' or '.join(elsewhere)})"
    return f"unknown key {key!r}{_suggest(key, choices)}"


class _Checker:
    """Walks the document, collecting every problem in file order."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, location: Location, message: str) -> None:
        self.problems.append(Problem(dotted(location), message))

    def mapping(self, value: Any, location: Location, what: str) -> dict[Any, Any] | None:
        """`value` as a mapping (null counts as empty); None after recording a problem."""
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
        self.add(location, f"expected a mapping of {what}, got {describe(value)}")
        return None

    def string_keys(self, values: dict[Any, Any], location: Location, what: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(key, str):
                out[key] = value
            else:
                hint = (
                    " (YAML reads yes/no/on/off/true/false as booleans; quote it)"
                    if isinstance(key, bool)
                    else ""
                )
                self.add(location, f"{what} {key!r} is not a string{hint}")
        return out

    def overlay(self, value: Any, location: Location, *, per_symbol: bool) -> Overlay | None:
        checked = self.section(value, location, _TREE, (), per_symbol=per_symbol)
        return None if checked is None else Overlay(location, checked)

    def section(
        self, value: Any, location: Location, tree: Mapping[str, Any], section: Location, *, per_symbol: bool
    ) -> dict[str, Any] | None:
        what = f"{dotted(section)} settings" if section else "strategy settings"
        values = self.mapping(value, location, what)
        if values is None:
            return None
        out: dict[str, Any] = {}
        for key, sub in self.string_keys(values, location, "key").items():
            here = (*location, key)
            if key not in tree:
                self.add(here, _unknown_key(key, list(tree), section))
            elif per_symbol and not section and key in GLOBAL_ONLY_KEYS:
                self.add(here, f"{key!r} applies to the whole daemon; set it under global, not per symbol")
            elif isinstance(tree[key], Mapping):
                checked = self.section(sub, here, tree[key], (*section, key), per_symbol=per_symbol)
                if checked is not None:
                    out[key] = checked
            else:
                out[key] = sub
        return out

    def symbols(self, value: Any, location: Location) -> dict[str, Overlay]:
        values = self.mapping(value, location, "symbol overrides")
        out: dict[str, Overlay] = {}
        for sym, sub in self.string_keys(values or {}, location, "symbol").items():
            overlay = self.overlay(sub, (*location, sym), per_symbol=True)
            if overlay is not None:
                out[sym] = overlay
        return out

    def layer(self, value: Any, location: Location) -> Layer:
        """`{global: ..., symbols: ...}` or the shorthand `{trade: ..., ...}` (all global)."""
        values = self.mapping(value, location, "settings")
        if not values:
            return Layer()
        keys = [k for k in values if isinstance(k, str)]
        if any(k in LAYER_FORM_KEYS for k in keys):
            extra = [k for k in keys if k not in LAYER_FORM_KEYS]
            for key in extra:
                if key in _TREE:
                    self.add(
                        (*location, key),
                        "mixes the {global, symbols} form with shorthand keys; move this under "
                        f"{dotted(location)}.global",
                    )
                else:
                    self.add((*location, key), f"unknown key {key!r}{_suggest(key, list(LAYER_FORM_KEYS))}")
            global_ = self.overlay(values.get("global"), (*location, "global"), per_symbol=False)
            syms = self.symbols(values.get("symbols"), (*location, "symbols"))
            return Layer(global_, syms)
        shorthand = self.overlay(values, location, per_symbol=False)
        return Layer(shorthand, {})

    def modes(self, value: Any) -> dict[StrategyMode, Layer]:
        values = self.mapping(value, ("modes",), "strategy modes")
        out: dict[StrategyMode, Layer] = {}
        for name, sub in self.string_keys(values or {}, ("modes",), "mode name").items():
            mode = next((m for m in STRATEGY_MODES if m == name), None)
            if mode is not None:
                out[mode] = self.layer(sub, ("modes", name))
            elif name.lower() in STRATEGY_MODE_ALIASES:
                canonical = STRATEGY_MODE_ALIASES[name.lower()]
                self.add(
                    ("modes", name),
                    f"{name!r} is an alias of {canonical!r}; name the section {canonical!r} "
                    "(aliases are for AI_QUANT_STRATEGY_MODE)",
                )
            else:
                self.add(
                    ("modes", name),
                    f"unknown strategy mode {name!r}{_suggest(name, list(STRATEGY_MODES))}; "
                    f"expected one of {', '.join(STRATEGY_MODES)}",
                )
        return out


def check_document(source: Path, raw: Any, stamp: FileStamp | None = None) -> ConfigDocument:
    """Check the layout and every key of a parsed file; raises ConfigError with all problems."""
    sections = ", ".join(TOP_LEVEL_SECTIONS)
    if raw is None:
        raise ConfigError.single(
            source,
            "",
            f"the file is empty; expected a mapping with sections {sections} (write {{}} for defaults)",
        )
    if not isinstance(raw, Mapping):
        raise ConfigError.single(
            source, "", f"the top level must be a mapping with sections {sections}; got {describe(raw)}"
        )
    checker = _Checker()
    top = checker.string_keys(dict(raw), (), "top-level key")
    base_global: Overlay | None = None
    base_symbols: dict[str, Overlay] = {}
    live: Layer | None = None
    modes: dict[StrategyMode, Layer] = {}
    for key, value in top.items():  # file order, so problems come out in file order
        if key == "global":
            base_global = checker.overlay(value, ("global",), per_symbol=False)
        elif key == "symbols":
            base_symbols = checker.symbols(value, ("symbols",))
        elif key == "live":
            live = checker.layer(value, ("live",))
        elif key == "modes":
            modes = checker.modes(value)
        else:
            hint = (
                "; strategy keys go under global: or symbols.<SYM>:"
                if key in _TREE
                else _suggest(key, list(TOP_LEVEL_SECTIONS))
            )
            checker.add((key,), f"unknown top-level section {key!r}{hint} (expected {sections})")
    base = Layer(base_global, base_symbols)
    if checker.problems:
        raise ConfigError(source, checker.problems)
    return ConfigDocument(source, dict(raw), stamp, base, live, modes)


def list_symbols(raw: Mapping[str, Any]) -> list[str]:
    """Sorted symbols that have overrides anywhere in a parsed file: `symbols`, `live.symbols`
    or `modes.<name>.symbols`. Symbol names are case-sensitive (Hyperliquid has `kPEPE`)."""
    found: set[str] = set()

    def collect(section: Any) -> None:
        if isinstance(section, Mapping):
            found.update(k for k in section if isinstance(k, str))

    collect(raw.get("symbols"))
    live = raw.get("live")
    if isinstance(live, Mapping):
        collect(live.get("symbols"))
    modes = raw.get("modes")
    if isinstance(modes, Mapping):
        for layer in modes.values():
            if isinstance(layer, Mapping):
                collect(layer.get("symbols"))
    return sorted(found)
