"""Reading a config file: existence, live-mode file safety, UTF-8, YAML syntax, duplicate keys."""

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.config.errors import ConfigError


@dataclass(frozen=True)
class FileStamp:
    """What `ConfigWatcher` compares to notice a changed file without reading it."""

    mtime_ns: int
    size: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileStamp":
        return cls(st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


def stamp(path: Path) -> FileStamp | None:
    """The file's stamp (following symlinks), or None when it cannot be stat'ed."""
    try:
        return FileStamp.of(os.stat(path))
    except OSError:
        return None


#: Limits on what a config file may be: a real one is a few KB, a few levels deep, a few hundred
#: values. Beyond them the file is refused before it is parsed (size) or built (depth, values), so a
#: hostile or runaway edit cannot exhaust the stack (RecursionError), memory or time of a daemon
#: that hot-reloads it.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32
#: Values after expanding aliases (``*ref``): a small file of nested aliases can stand for billions.
MAX_VALUES = 100_000


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _LimitError(yaml.composer.ComposerError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (PyYAML silently keeps the last), and
    a document nested deeper than `MAX_DEPTH` or holding more than `MAX_VALUES` values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values: dict[int, int] = {}  # id(node) -> values under it, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self._depth >= MAX_DEPTH:
            raise _LimitError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
            )
        if self.check_event(yaml.AliasEvent):
            target = self.anchors.get(self.peek_event().anchor)
            if target is not None and id(target) not in self._values:  # `&a [*a]`: an endless value
                raise _LimitError(
                    None, None, "an alias refers to a value that contains it", self.peek_event().start_mark
                )
        self._depth += 1
        try:
            node: yaml.Node | None = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        assert node is not None  # compose_node is only called where a node follows
        if id(node) not in self._values:  # an alias returns its anchor's node, counted already
            if isinstance(node, yaml.SequenceNode):
                children: list[yaml.Node] = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            self._values[id(node)] = 1 + sum(self._values[id(child)] for child in children)
        if self._values[id(node)] > MAX_VALUES:
            raise _LimitError(
                None, None, f"more than {MAX_VALUES} values (aliases expanded)", node.start_mark
            )
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; SafeLoader reports it below
                continue
            if first is not None:
                raise _DuplicateKeyError(
                    None, None, f"duplicate key {key!r} (first defined at line {first})", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_bytes(path: Path, *, refuse_unsafe: bool) -> tuple[bytes, FileStamp]:
    """Read the file. With `refuse_unsafe` (live and dry_live) a symlink or a group- or
    world-writable file is refused; the checks use the opened descriptor, so a swap between check
    and read cannot slip through."""
    flags = os.O_RDONLY | (os.O_NOFOLLOW if refuse_unsafe else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigError.single(
            path, "", "config file not found (defaults are never used in place of a missing file)"
        ) from None
    except IsADirectoryError:
        raise ConfigError.single(path, "", "is a directory, not a YAML file") from None
    except PermissionError:
        raise ConfigError.single(path, "", "cannot read the file: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and refuse_unsafe:
            raise ConfigError.single(
                path,
                "",
                "refusing a symlinked config file in live/dry_live mode; point AI_QUANT_STRATEGY_YAML "
                "at the real file",
            ) from None
        raise ConfigError.single(path, "", f"cannot read the file: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError.single(path, "", "is a directory, not a YAML file")
        if refuse_unsafe and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            mode = stat.S_IMODE(st.st_mode)
            raise ConfigError.single(
                path,
                "",
                f"refusing a group- or world-writable config file in live/dry_live mode "
                f"(mode {mode:04o}); run: chmod go-w {path}",
            )
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError.single(path, "", _too_big(st.st_size))
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)  # it may have grown since fstat
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError.single(path, "", _too_big(len(data)))
        return data, FileStamp.of(st)
    finally:
        os.close(fd)


def _too_big(size: int) -> str:
    return f"file is {size} bytes; a config file may be at most {MAX_CONFIG_BYTES} bytes"


def parse_yaml(path: Path, data: bytes) -> Any:
    """Parse `data` as YAML; errors name the line and column (1-based)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError.single(path, "", f"not valid UTF-8 (byte offset {exc.start})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        kind = "YAML error" if isinstance(exc, _DuplicateKeyError | _LimitError) else "YAML syntax error"
        raise ConfigError.single(path, "", f"{kind}{where}: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError.single(path, "", f"YAML syntax error: {exc}") from None


def read_yaml_file(path: Path, *, refuse_unsafe: bool) -> tuple[Any, FileStamp]:
    """The parsed YAML document of `path` and the stamp of the file that was read."""
    data, file_stamp = _read_bytes(path, refuse_unsafe=refuse_unsafe)
    return parse_yaml(path, data), file_stamp
