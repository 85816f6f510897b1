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


# ---- every command is exercised, every operation and alert is covered ---------------------------

TESTS = REPO / "tests"
KNOWN_COMMANDS = {
    ".venv/bin/python": "tools and modules: --help above, and a test that runs each tool",
    "target/release/ai-quant-bt": "the backtester: tests/backtest and the replays in tests/ops",
    "sudo": "system instance set-up (useradd, install, loginctl)",
    "systemctl": "the units: systemd-analyze verify in tests/ops/test_systemd_units.py",
    "journalctl": "reads the journal of those units",
    "systemd-analyze": "run by tests/ops/test_systemd_units.py",
    "make": "the build (CI runs it)",
    "git": "git pull in an upgrade",
    "cp": "copies a strategy config before validating it",
    "echo": "kill-file words, checked below against engine.risk",
    "set": "loads an env file into the shell",
    "export": "sets AI_QUANT_DATA_DIR as the units do",
}
ALERT = re.compile(r"alert\(\s*\"([a-z_]+)\"", re.S)


def _test_sources() -> dict[Path, str]:
    return {
        p: p.read_text()
        for p in TESTS.rglob("*.py")
        if p.name != "test_runbook_commands.py" and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize("tool", CODE_TOOLS)
def test_tool_in_a_command_is_run_by_a_test(tool: str) -> None:
    quoted = f'"{tool.removesuffix(".py")}"'  # tests/factory call tool("deploy_sweep", ...)
    users = [p.relative_to(REPO) for p, text in _test_sources().items() if tool in text or quoted in text]
    assert users, f"docs/runbook.md runs tools/{tool} but no test under tests/ runs it"


def test_every_command_line_starts_with_a_checked_command() -> None:
    unknown = []
    for line in CODE:
        words = line.strip().split()
        if not words or words[0].startswith("--") or words[0].startswith("#"):
            continue  # continuation lines of a multi-line command
        if words[0] not in KNOWN_COMMANDS:
            unknown.append(line.strip())
    assert unknown == [], "commands the runbook tests do not know how to check:\n" + "\n".join(unknown)


def test_kill_file_words_in_the_runbook_are_accepted_by_the_daemon() -> None:
    from engine.risk import parse_kill_word

    words = [line.split()[1] for line in CODE if line.strip().startswith("echo ") and "kill_switch" in line]
    assert {"close_only", "halt_all", "clear"} <= set(words)
    for w in words:
        assert parse_kill_word(w) is not None, w


def test_runbook_covers_every_operation() -> None:
    text = RUNBOOK.read_text()
    headings = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
    for needed in ("Install", "Start, stop, restart", "Watchdog", "Emergency stop", "Flatten positions",
                   "Manual orders", "Rollback", "Data checks", "Export state", "Pruning", "Upgrade",
                   "Recovery after a crash", "Alerts", "Live wallet", "Pre-flight check"):  # fmt: skip
        assert any(h.startswith(needed) for h in headings), f"no runbook section {needed!r}"
    for tool in ("flat_now.py", "manual_trade.py", "export_state.py", "reality_check.py", "prune_runtime.py",
                 "partition_candles_db.py", "preflight.py"):  # fmt: skip
        assert tool in CODE_TOOLS, f"the runbook gives no command for tools/{tool}"


def test_every_alert_kind_in_the_code_has_a_runbook_entry() -> None:
    kinds: set[str] = set()
    for pkg in ("engine", "live", "strategy", "exchange", "daemon"):
        for p in (REPO / pkg).rglob("*.py"):
            kinds |= set(ALERT.findall(p.read_text()))
    assert {"kill_switch", "loop_error", "config_rejected"} <= kinds  # the scan finds them
    section = RUNBOOK.read_text().split("## Alerts", 1)[1]
    rows = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    assert sorted(kinds - rows) == [], "alert kinds raised in the code without a runbook entry"
