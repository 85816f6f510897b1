"""Print every dependency named in pyproject.toml (runtime and dev), one per line."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps.extend(extra)
    print("\n".join(deps))


if __name__ == "__main__":
    main()
