"""Every command block of docs/runbook.md, run as written, in order, on a test machine.

Each ```sh block is split into command lines. A line is either run here or excluded by its first
word (system commands, checked through the units elsewhere) or by an explicit entry below; a
command that is neither fails the test, so a new runbook command must be run or excluded with a
reason. The run is an operator's session in a sandbox:

* a copy of the checkout (the Python packages, tools, config and unit templates; ``.venv`` and
  ``target`` linked), so tools that write next to themselves never touch this checkout;
* ``HOME`` is a temp dir: ``~/.local/share/ai-quant`` is ``$DATA`` and ``~/.config/ai-quant``
  ``$ENV``, as for a user instance; ``$DATA``, ``$ENV`` and ``$REG`` are set to them;
* the local exchange (``python -m exchange.sim``, real candles) on a free loopback port, with
  ``$DATA/candles_dbs`` imported from the same files;
* after the install, the operator's edits of step 3 (below: ``operator_edits``): the env files
  point at that exchange, live.env opens the live gates for a throwaway key funded only there.

Every block starts from the shell the "Environment for the commands below" block leaves (blocks
before it from a bare one); within a block, ``set``/``export``/``.`` carry over, as in a shell.
Commands that run until stopped are given their bounded form (``BRIEF``): started, checked alive
for a few seconds, then stopped with SIGTERM and expected to exit cleanly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ops.conftest import DATA, LIVE_GATES, SYMBOLS, WALLET_KEYS, Venue, free_port
from tests.ops.ops_helpers import REPO

pytestmark = pytest.mark.slow
RUNBOOK = REPO / "docs" / "runbook.md"

#: First words of commands that are not run here, and why.
SYSTEM_COMMANDS = {
    "sudo": "needs root (system-instance set-up)",
    "systemctl": "drives the installed units: systemd-analyze verify in tests/ops/test_systemd_units.py",
    "journalctl": "reads those units' journal",
    "systemd-analyze": "tests/ops/test_systemd_units.py runs it on the rendered units",
    "make": "the build itself: this test runs the venv and binaries it made",
    "git": "changes this checkout (git pull)",
}
#: Runnable commands not run here (matched by substring), and why.
NOT_RUN = {
    "tools/download_binance.py": "downloads from Binance (no network here): tests/data/test_binance_download.py",
    "tools/factory_run.py --profile daily": "the daily factory run (a sweep: far too long here); "
    "tests/factory/test_factory_smoke.py runs the pipeline",
    "tools/deploy_sweep.py": "needs that run's report (DAY/run_ID): tests/factory/test_deploy_tools.py",
    "tools/paper_deploy.py": "needs a config in that run's registry: tests/factory/test_deploy_tools.py",
    "tools/promote_to_live.py": "needs a config in that run's registry: tests/factory/test_deploy_tools.py",
}
#: Commands that run until stopped (matched by substring), run briefly (``run_brief``), and why.
BRIEF = {
    "-m daemon --max-loops 20": "20 loops of engine.loop_target_s (60 s in the example): 20 min",
    "-m monitor": "serves until stopped",
    "-m exchange.sim": "serves until stopped",
}


def _only_funding_gaps(rc: int | None, out: str) -> bool:
    found = re.findall(r"^\s+([a-z_]+) \[", out, re.M)
    return rc == 1 and bool(found) and set(found) == {"funding_gap"}


#: Outcomes other than exit 0 that the runbook itself gives for the situation of this run:
#: (substring of the command, check of (rc, output), why). The funding history of
#: ../shared/data is 8-hourly until mid-2023, which verify_candles reports as funding_gap.
EXPECTED: tuple[tuple[str, Callable[[int | None, str], bool], str], ...] = (
    ("tools/rollback_to_last_good.py", lambda rc, out: rc == 2 and "no last good copy" in out,
     "nothing was deployed here: the runbook says it refuses (exit 2) without a last good copy"),
    ("tools/verify_candles.py", lambda rc, out: rc == 0 or _only_funding_gaps(rc, out),
     "the real funding history has gaps (exit 1, funding_gap findings only); any other finding fails"),
)  # fmt: skip
ALIVE_S = 8.0
TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    section: str
    line: int  # of the opening fence
    text: str

    def commands(self) -> list[str]:
        out: list[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            if line and not line.startswith("#"):
                out.append(line)
        return out


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    section, start = "", 0
    body: list[str] | None = None  # inside a fence
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if body is None and line.startswith("#"):
            section = line.lstrip("#").strip()
        if body is None and s.startswith("```"):
            start, body = (i if s == "```sh" else -i), []  # start < 0: not a shell block, dropped
            continue
        if body is not None and s.startswith("```"):
            if start > 0:
                found.append(Block(section, start, "\n".join(body)))
            body = None
            continue
        if body is not None:
            body.append(line)
    assert body is None, "unterminated code block in the runbook"
    return found


def classify(cmd: str) -> tuple[str, str]:
    """("run" | "brief" | "skip" | "unknown", reason)."""
    first = cmd.split()[0]
    if first in SYSTEM_COMMANDS:
        return "skip", SYSTEM_COMMANDS[first]
    for key, why in NOT_RUN.items():
        if key in cmd:
            return "skip", why
    for key, why in BRIEF.items():
        if key in cmd:
            return "brief", why
    if first in (".venv/bin/python", "target/release/ai-quant-bt", "cp", "echo", "set", "export"):
        return "run", ""
    return "unknown", ""


BLOCKS = blocks(RUNBOOK.read_text())


def test_every_command_is_run_or_excluded_with_a_reason() -> None:
    unknown = [
        f"{b.section} (line {b.line}): {c}"
        for b in BLOCKS
        for c in b.commands()
        if classify(c)[0] == "unknown"
    ]
    assert unknown == [], "runbook commands this test neither runs nor excludes:\n" + "\n".join(unknown)
    assert len(BLOCKS) > 20 and sum(classify(c)[0] == "run" for b in BLOCKS for c in b.commands()) > 30


def test_the_parser_joins_continuations_and_drops_comments() -> None:
    got = blocks("# A\n\n```sh\na \\\n  --b\n# note\n\nc  # x\n```\n```\nnot sh\n```\n")
    assert [(b.section, b.line, b.commands()) for b in got] == [("A", 3, ["a --b", "c  # x"])]


def test_the_runbook_has_a_quick_rehearsal() -> None:
    """The daemon rehearsal takes loops x loop period; with the example config's 60 s loop,
    ``--max-loops 20`` is 20 minutes. The runbook must also give one that ends in about a minute."""
    import yaml

    example = yaml.safe_load((REPO / "config" / "strategy_overrides.example.yaml").read_text())
    loop_s = float(example["global"]["engine"]["loop_target_s"])
    quick = []
    for b in BLOCKS:
        for c in b.commands():
            m = re.search(r"-m daemon .*--max-loops (\d+)", c)
            if m:
                period = re.search(r"--loop-s (\S+)", c)
                quick.append(int(m.group(1)) * (float(period.group(1)) if period else loop_s))
    assert quick and min(quick) <= 60, f"daemon rehearsals in the runbook take {quick} s"
    assert "20 minutes" in RUNBOOK.read_text()  # and it says how long the long one takes


# ---- the run ------------------------------------------------------------------------------------

SANDBOX_DIRS = ("engine", "strategy", "exchange", "live", "daemon", "monitor", "tools", "config", "systemd")
# kernel/aiq-config/intervals.txt (the one interval list) and kernel/aiq-candles/candles.sql (the one
# candle table): data files the Python packages read at import.
SANDBOX_FILES = (
    "pyproject.toml",
    "VERSION",
    "kernel/aiq-config/intervals.txt",
    "kernel/aiq-candles/candles.sql",
)


def sandbox(root: Path) -> Path:
    """A checkout copy the runbook's relative paths resolve in (config/strategy_overrides.yaml,
    state.json, ...), without the operator's own config."""
    co = root / "checkout"
    for d in SANDBOX_DIRS:
        shutil.copytree(
            REPO / d, co / d,
            ignore=shutil.ignore_patterns("__pycache__", "strategy_overrides.yaml", "*.last_good", "*.rolled_back"),
        )  # fmt: skip
    for f in SANDBOX_FILES:
        if (REPO / f).exists():
            (co / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / f, co / f)
    for link in (".venv", "target"):
        (co / link).symlink_to((REPO / link).resolve())
    return co


def feathers() -> list[str]:
    return [str(DATA / f"{s}_USDC_USDC-5m-futures.feather") for s in SYMBOLS.split(",")] + [
        str(DATA / f"{s}_USDC_USDC-1h-funding_rate.feather") for s in SYMBOLS.split(",")
    ]


def set_vars(path: Path, **values: str) -> None:
    """An operator's edit of an env file: each KEY=VALUE replaced or added."""
    lines = [ln for ln in path.read_text().splitlines() if ln.split("=", 1)[0].lstrip("# ") not in values]
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def operator_edits(home: Path, url: str) -> None:
    """Step 3 of the install: the env files point at the local exchange; live.env runs live with a
    throwaway key funded only there (the live gates of the runbook's Emergency stop section)."""
    env = home / ".config" / "ai-quant"
    key = env / "secrets.json"
    key.write_text(json.dumps({"secret_key": WALLET_KEYS[3]}))
    key.chmod(0o600)
    for name in ("paper.env", "live.env", "sidecar.env"):
        set_vars(env / name, AI_QUANT_EXCHANGE_URL=url)
    set_vars(env / "paper.env", AI_QUANT_SYMBOLS=SYMBOLS)
    set_vars(env / "live.env", AI_QUANT_SYMBOLS=SYMBOLS, AI_QUANT_MODE="live",
             AI_QUANT_LIVE_ENABLE=LIVE_GATES["AI_QUANT_LIVE_ENABLE"])  # fmt: skip
    set_vars(env / "secrets.env", AI_QUANT_LIVE_CONFIRM=LIVE_GATES["AI_QUANT_LIVE_CONFIRM"])


def substitute(cmd: str) -> str:
    """Placeholders the runbook leaves to the operator, and fixed ports a shared machine may use."""
    if "tools/import_candles.py" in cmd:
        cmd = re.sub(r"\bPATH$", " ".join(feathers()), cmd)
    if "-m exchange.sim" in cmd:
        cmd += f" --port {free_port()}"  # its default, 3001, may be taken on a shared machine
    return cmd.replace("127.0.0.1:61010", f"127.0.0.1:{free_port()}")


def shell(cmd: str, env: dict[str, str], cwd: Path, state: Path) -> subprocess.Popen[str]:
    script = f"{cmd}\n__rc=$?\nenv -0 > {state}\nexit $__rc\n"
    return subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip


def read_state(state: Path) -> dict[str, str]:
    out = {}
    for item in state.read_bytes().decode().split("\0"):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
    return out


def run_brief(cmd: str, env: dict[str, str], cwd: Path, state: Path) -> tuple[int | None, str]:
    """Started, alive for ALIVE_S, then SIGTERM: a clean stop is exit 0 (the daemon finishes its
    loop), or -SIGTERM for a server that leaves SIGTERM's default action."""
    proc = shell("exec " + cmd, env, cwd, state)
    deadline = time.monotonic() + ALIVE_S
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    if proc.poll() is not None:
        return proc.returncode, f"exited after less than {ALIVE_S} s\n" + (
            proc.stdout.read() if proc.stdout else ""
        )
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        return None, "did not stop within 90 s of SIGTERM\n" + out
    clean = (0,) if "-m daemon" in cmd else (0, -signal.SIGTERM)
    return (0 if proc.returncode in clean else proc.returncode), out


def run_one(cmd: str, env: dict[str, str], cwd: Path, state: Path) -> tuple[int | None, str]:
    proc = shell(cmd, env, cwd, state)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        return None, f"timed out after {TIMEOUT_S} s\n" + out
    return proc.returncode, out


def test_every_runbook_block_runs_as_written(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not DATA.exists():
        pytest.skip(f"real data not found under {DATA}")
    if not (REPO / "target" / "release" / "ai-quant-bt").is_file():
        pytest.skip("target/release/ai-quant-bt not built (make build)")
    co = sandbox(tmp_path)
    # A short HOME: the sidecar's socket path under it must fit in 107 bytes (AF_UNIX), also under
    # pytest-xdist's longer temp paths.
    home = Path(tempfile.mkdtemp(prefix="aiq-rb-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    data = home / ".local" / "share" / "ai-quant"
    # The operator's candles, as the sidecar keeps them (5m, and 1h: the example config's interval).
    r = subprocess.run([str(co / ".venv/bin/python"), "tools/import_candles.py", "--db-dir", str(data / "candles_dbs"),
                        "--quiet", "--aggregate", "1h", *feathers()], cwd=co, capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    venue = Venue(tmp_path)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AI_QUANT_", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "PYTHONPATH"))}  # fmt: skip
    base.update(HOME=str(home), DATA=str(data), ENV=str(home / ".config" / "ai-quant"),
                REG=str(data / "artifacts" / "registry" / "registry.sqlite"))  # fmt: skip
    state = tmp_path / "shell.env"
    failures: list[str] = []
    ran: list[str] = []
    edited = False
    try:
        for b in BLOCKS:
            env = dict(base)
            for cmd in b.commands():
                kind, _why = classify(cmd)
                if kind == "skip":
                    continue
                assert kind != "unknown", cmd
                real = substitute(cmd)
                t0 = time.monotonic()
                rc, out = (run_brief if kind == "brief" else run_one)(real, env, co, state)
                took = time.monotonic() - t0
                if state.exists():
                    env = read_state(state)
                    state.unlink()
                ok = next((check for key, check, _ in EXPECTED if key in cmd), lambda rc, _out: rc == 0)
                ran.append(f"{took:6.1f}s rc={rc} {cmd[:110]}")
                if not ok(rc, out):
                    failures.append(f"## {b.section} (docs/runbook.md line {b.line})\n```sh\n{b.text}\n```\n"
                                    f"$ {real}\nexit {rc} after {took:.1f} s\n{out[-3000:]}")  # fmt: skip
                if (
                    "tools/install_systemd.py --user" in cmd
                    and "--dry-run" not in cmd
                    and not edited
                    and rc == 0
                ):
                    operator_edits(home, venue.url)
                    edited = True
            if b.section.startswith("Environment for the commands below"):
                base = env
    finally:
        venue.stop()
    print("\n".join(ran))
    assert failures == [], f"{len(failures)} runbook command(s) fail as written:\n\n" + "\n\n".join(failures)
    assert edited, "the runbook never installs the env files (tools/install_systemd.py --user)"
