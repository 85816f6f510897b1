"""The one error type of the config loader: a file, a key path and a problem."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One problem at a dotted key path inside the file ("" when it concerns the whole file)."""

    key_path: str
    message: str

    def render(self, source: str) -> str:
        if self.key_path:
            return f"{source}: {self.key_path}: {self.message}"
        return f"{source}: {self.message}"


class ConfigError(ValueError):
    """A config file cannot be used. `str(err)` names the file, the key path and the problem,
    one line per problem, in file order."""

    def __init__(self, source: Path | str, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.source = str(source)
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(p.render(self.source) for p in self.problems))

    @classmethod
    def single(cls, source: Path | str, key_path: str, message: str) -> "ConfigError":
        return cls(source, [Problem(key_path, message)])
