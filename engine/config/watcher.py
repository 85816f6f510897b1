"""Hot reload: notice a changed config file cheaply (stat only), re-validate every symbol and
keep the last good config when the new file is invalid."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from engine.config.errors import ConfigError
from engine.config.layout import ConfigDocument
from engine.config.loader import LoadedConfig, read_config, resolve, resolve_all
from engine.config.modes import RunMode, StrategyMode, canonical_strategy_mode, parse_run_mode
from engine.config.yaml_file import FileStamp, stamp

#: Merged keys the daemon reads once at start; a change is reported as needing a restart.
RESTART_KEYS: Final = ("engine.interval", "engine.entry_interval", "engine.exit_interval")

ReloadStatus = Literal["unchanged", "reloaded", "same_content", "invalid"]


@dataclass(frozen=True)
class ReloadEvent:
    """What one `poll()` found.

    - unchanged: the file's stamp did not change (nothing was read)
    - same_content: the file was rewritten but every merged config is identical
    - reloaded: new configs are in effect; `changed_keys` lists what differs
    - invalid: the new file was refused; `error` says why and the last good config stays
    """

    status: ReloadStatus
    error: ConfigError | None = None
    changed_keys: tuple[str, ...] = ()
    changed_symbols: tuple[str, ...] = ()
    restart_required: tuple[str, ...] = ()
    config_id: str | None = None


@dataclass
class _Generation:
    doc: ConfigDocument
    base: LoadedConfig
    by_symbol: dict[str, LoadedConfig] = field(default_factory=dict)


def _unexpected(path: Path, exc: Exception) -> ConfigError:
    """A failure the loader has no message for, as one line that names it (no traceback)."""
    return ConfigError.single(path, "", f"cannot load the file: {type(exc).__name__}: {exc}")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def _diff(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    a, b = _flatten(old), _flatten(new)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


class ConfigWatcher:
    """Owns the daemon's view of the config file for one run mode and strategy mode.

    The constructor loads and validates the file (raising ConfigError when it is invalid: a
    daemon must not start on a bad config). `poll()` re-reads only when the file's mtime, size or
    inode changed. Symbols without overrides get the base config."""

    def __init__(
        self,
        path: Path | str,
        *,
        mode: RunMode | str = "paper",
        strategy_mode: str | None = None,
        live_max_open_positions: int | None = None,
        check: Callable[[Path, Iterable[LoadedConfig]], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._check = check  # a caller's own refusals (raises ConfigError), on start and on every reload
        self.mode: RunMode = parse_run_mode(mode)
        self.strategy_mode: StrategyMode | None = (
            None if strategy_mode is None else canonical_strategy_mode(strategy_mode)
        )
        self._live_max = live_max_open_positions
        self._stamp: FileStamp | None = None
        self.last_error: ConfigError | None = None
        self._gen = self._load()

    def _load(self) -> _Generation:
        doc = read_config(self.path, self.mode)
        resolved = resolve_all(doc, self.mode, [self.strategy_mode], live_max_open_positions=self._live_max)
        base = resolved[(None, self.strategy_mode)]
        by_symbol = {sym: cfg for (sym, _), cfg in resolved.items() if sym is not None}
        if self._check is not None:
            self._check(self.path, resolved.values())
        self._stamp = doc.stamp
        return _Generation(doc, base, by_symbol)

    @property
    def document(self) -> ConfigDocument:
        return self._gen.doc

    def get(self, symbol: str | None = None) -> LoadedConfig:
        """The current config for `symbol` (None or a symbol without overrides: the base)."""
        if symbol is None:
            return self._gen.base
        found = self._gen.by_symbol.get(symbol)
        if found is None:
            found = resolve(
                self._gen.doc, symbol, self.mode, self.strategy_mode, live_max_open_positions=self._live_max
            )
            self._gen.by_symbol[symbol] = found
        return found

    def poll(self) -> ReloadEvent:
        """Check the file; reload when it changed. Never raises: whatever goes wrong with a new
        file (a ConfigError, or anything the checks did not foresee) is an ``invalid`` event."""
        current = stamp(self.path)
        if current == self._stamp:  # also None == None: still missing after a reported failure
            return ReloadEvent("unchanged", config_id=self._gen.base.config_id)
        old = self._gen
        try:
            new = self._load()
        except Exception as exc:  # any failure on a new file keeps the last good config
            # Remember the stamp we failed on so an unchanged bad file is reported once.
            self._stamp = current
            err = exc if isinstance(exc, ConfigError) else _unexpected(self.path, exc)
            self.last_error = err
            return ReloadEvent("invalid", error=err, config_id=old.base.config_id)
        self.last_error = None
        self._gen = new
        changed = _diff(old.base.merged, new.base.merged)
        changed_symbols: set[str] = set()
        for sym in old.by_symbol.keys() | new.by_symbol.keys():
            before = old.by_symbol.get(sym) or old.base
            after = new.by_symbol.get(sym) or new.base
            if before.config_id != after.config_id:
                changed_symbols.add(sym)
                changed |= _diff(before.merged, after.merged)
        if not changed:
            return ReloadEvent("same_content", config_id=new.base.config_id)
        restart = tuple(k for k in RESTART_KEYS if k in changed)
        return ReloadEvent(
            "reloaded",
            changed_keys=tuple(sorted(changed)),
            changed_symbols=tuple(sorted(changed_symbols)),
            restart_required=restart,
            config_id=new.base.config_id,
        )
