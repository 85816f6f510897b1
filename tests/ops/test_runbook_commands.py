"""Every command docs/runbook.md names exists and answers --help with exit status 0.

- Commands in fenced code blocks: `tools/NAME.py` must exist and answer `--help`; so must
  `python -m MODULE` and `ai-quant-bt SUBCOMMAND` (skipped when the binary is not built).
- A `tools/NAME.py` named in prose must exist, unless its paragraph says it is planned.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.ops_helpers import REPO

RUNBOOK = REPO / "docs" / "runbook.md"
TOOL = re.compile(r"\btools/([A-Za-z0-9_]+\.py)\b")
MODULE = re.compile(r"python(?:3)? -m ([A-Za-z_][A-Za-z0-9_.]*)")
BT = re.compile(r"\bai-quant-bt ([a-z][a-z-]*)\b")


def _split(text: str) -> tuple[list[str], list[str]]:
    """(code block lines, prose paragraphs)."""
    code: list[str] = []
    prose: list[str] = []
    para: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            code.append(line)
        elif line.strip():
            para.append(line)
        else:
            prose.append(" ".join(para))
            para = []
    prose.append(" ".join(para))
    assert not in_code, "unterminated code block in the runbook"
    return code, [p for p in prose if p]


CODE, PROSE = _split(RUNBOOK.read_text())
CODE_TOOLS = sorted({m for line in CODE for m in TOOL.findall(line)})
CODE_MODULES = sorted({m for line in CODE for m in MODULE.findall(line)})
CODE_BT = sorted({m for line in CODE for m in BT.findall(line)})


def _help(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=False)


def test_runbook_names_the_core_commands() -> None:
    for tool in ("install_systemd.py", "validate_config.py", "verify_candles.py"):
        assert tool in CODE_TOOLS
    assert "exchange.sim" in CODE_MODULES
    assert "replay" in CODE_BT


@pytest.mark.parametrize("tool", CODE_TOOLS)
def test_tool_in_a_command_answers_help(tool: str) -> None:
    path = REPO / "tools" / tool
    assert path.is_file(), f"docs/runbook.md runs tools/{tool}, which does not exist"
    proc = _help([sys.executable, str(path), "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()


@pytest.mark.parametrize("module", CODE_MODULES)
def test_module_in_a_command_answers_help(module: str) -> None:
    proc = _help([sys.executable, "-m", module, "--help"])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("sub", CODE_BT)
def test_backtester_subcommand_answers_help(sub: str) -> None:
    exe = Path(os.environ.get("AI_QUANT_BT") or REPO / "target" / "release" / "ai-quant-bt")
    if not exe.is_file():
        pytest.skip(f"{exe} not built (make build)")
    proc = _help([str(exe), sub, "--help"])
    assert proc.returncode == 0, proc.stderr


def test_tools_named_in_prose_exist_or_are_marked_planned() -> None:
    missing = []
    for para in PROSE:
        for tool in TOOL.findall(para):
            if not (REPO / "tools" / tool).is_file() and "planned" not in para:
                missing.append(f"tools/{tool}: {para[:80]}...")
    assert missing == [], "\n".join(missing)


def test_the_checker_sees_code_and_prose() -> None:
    code, prose = _split("a tools/x.py\n\n```sh\ntools/y.py --flag\n```\nb planned tools/z.py\n")
    assert [m for line in code for m in TOOL.findall(line)] == ["y.py"]
    assert prose == ["a tools/x.py", "b planned tools/z.py"]
