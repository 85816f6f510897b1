#!/usr/bin/env python3
"""Render the ai-quant systemd unit templates (``systemd/``) for a user or a system instance.

Units are (re)written on every run. The environment files (``systemd/env/*.env.example``) are
written only when they are missing, so an operator's edits survive a reinstall. The secrets file
(``secrets.env``) is created with mode 0600 and never overwritten; an existing one that its group
or others can read or write stops the install. The paper daemon's strategy YAML, which
``paper.env`` names (``config/strategy_overrides.yaml`` in the install dir), is copied from
``config/strategy_overrides.example.yaml`` when it is missing, and never overwritten either.

Nothing is started: the tool prints the ``systemctl`` commands to run next.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = REPO / "systemd"

#: Env files rendered from ``systemd/env/<name>.example`` (written only when missing).
ENV_FILES = ("paper.env", "live.env", "sidecar.env", "monitor.env")
SECRETS_FILE = "secrets.env"
#: The paper daemon's strategy YAML (``AI_QUANT_STRATEGY_YAML`` in paper.env, relative to the
#: units' working directory), started from the example when missing.
STRATEGY_YAML = Path("config/strategy_overrides.yaml")
STRATEGY_EXAMPLE = REPO / "config" / "strategy_overrides.example.yaml"
PLACEHOLDER = re.compile(r"@[A-Z_]+@")
#: Characters allowed in rendered paths: no whitespace, quotes, ``%`` (systemd specifiers),
#: ``$`` (variable expansion) or backslashes.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")
SAFE_USER = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
#: The longest path a Unix socket address can hold (sun_path minus the NUL).
MAX_SOCK_BYTES = 107
LOOSE_BITS = stat.S_IRWXG | stat.S_IRWXO


class InstallError(Exception):
    """A problem that stops the install; the message says what to do."""


@dataclass(frozen=True)
class Settings:
    """Everything a template placeholder can stand for."""

    scope: str  # "user" or "system"
    install_dir: Path
    data_dir: Path
    env_dir: Path
    unit_dir: Path
    python: Path
    user: str

    def placeholders(self) -> dict[str, str]:
        return {
            "@INSTALL_DIR@": str(self.install_dir),
            "@DATA_DIR@": str(self.data_dir),
            "@ENV_DIR@": str(self.env_dir),
            "@PYTHON@": str(self.python),
            "@USER@": self.user,
            "@WANTED_BY@": "default.target" if self.scope == "user" else "multi-user.target",
        }


@dataclass(frozen=True)
class Planned:
    """One file the install would write."""

    path: Path
    text: str
    mode: int
    kind: str  # "unit", "env", "secrets" or "config"


def render(template: str, settings: Settings) -> str:
    """Fill in the placeholders. A user instance has no ``User=`` (its manager cannot switch users)."""
    values = settings.placeholders()
    out: list[str] = []
    for line in template.splitlines(keepends=True):
        if settings.scope == "user" and "@USER@" in line:
            continue
        for key, value in values.items():
            line = line.replace(key, value)
        out.append(line)
    text = "".join(out)
    left = sorted(set(PLACEHOLDER.findall(text)))
    if left:
        raise InstallError(f"unknown placeholder(s) in a template: {', '.join(left)}")
    return text


def unit_templates(template_dir: Path = TEMPLATE_DIR) -> list[Path]:
    """Every unit template, sorted by name."""
    found = sorted(p for p in template_dir.iterdir() if p.suffix in (".service", ".timer"))
    if not found:
        raise InstallError(f"no unit templates in {template_dir}")
    return found


def plan(settings: Settings, template_dir: Path = TEMPLATE_DIR) -> list[Planned]:
    """The files to write, rendered; nothing is touched."""
    files = [
        Planned(settings.unit_dir / t.name, render(t.read_text(), settings), 0o644, "unit")
        for t in unit_templates(template_dir)
    ]
    for name in ENV_FILES:
        src = template_dir / "env" / f"{name}.example"
        files.append(Planned(settings.env_dir / name, render(src.read_text(), settings), 0o640, "env"))
    src = template_dir / "env" / f"{SECRETS_FILE}.example"
    files.append(
        Planned(settings.env_dir / SECRETS_FILE, render(src.read_text(), settings), 0o600, "secrets")
    )
    files.append(Planned(settings.install_dir / STRATEGY_YAML, STRATEGY_EXAMPLE.read_text(), 0o644, "config"))
    return files


def check_paths(settings: Settings) -> list[str]:
    """Refuse paths systemd would misread; return warnings about things that are missing."""
    for name, path in (
        ("--install-dir", settings.install_dir),
        ("--data-dir", settings.data_dir),
        ("--env-dir", settings.env_dir),
        ("--unit-dir", settings.unit_dir),
        ("--python", settings.python),
    ):
        if not SAFE_PATH.match(str(path)):
            raise InstallError(
                f"{name} {path}: use an absolute path of letters, digits and ._/+- only "
                "(no spaces, quotes, % or $)"
            )
    if settings.scope == "system":
        if not SAFE_USER.match(settings.user):
            raise InstallError(f"--run-as {settings.user!r} is not a valid user name")
        try:
            pwd.getpwnam(settings.user)
        except KeyError:
            raise InstallError(
                f"--run-as {settings.user}: no such user; create it first "
                f"(useradd --system --create-home {settings.user})"
            ) from None
    sock = settings.data_dir / "ws_sidecar.sock"
    if len(os.fsencode(sock)) > MAX_SOCK_BYTES:
        raise InstallError(
            f"the sidecar socket {sock} is longer than {MAX_SOCK_BYTES} bytes; choose a shorter --data-dir"
        )
    warnings = []
    for exe in (settings.python, settings.install_dir / "target/release/ai-quant-sidecar"):
        if not os.access(exe, os.X_OK):
            warnings.append(f"{exe} is not an executable file yet (build it with `make build`)")
    return warnings


def check_secrets(path: Path) -> bool:
    """True when ``path`` exists and is safe to keep; raise when it is loose or not a plain file."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise InstallError(f"{path} is not a regular file; replace it with one (mode 0600)")
    if st.st_mode & LOOSE_BITS:
        raise InstallError(
            f"{path} has mode {stat.S_IMODE(st.st_mode):04o}; run: chmod 600 {path} (then install again)"
        )
    return True


def _write(path: Path, text: str, mode: int, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # not subject to the umask
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _prepare_dirs(settings: Settings) -> None:
    settings.unit_dir.mkdir(parents=True, exist_ok=True)
    if not settings.env_dir.exists():
        settings.env_dir.mkdir(parents=True)
        settings.env_dir.chmod(0o700)  # only systemd (or the user's manager) reads these files
    if not settings.data_dir.exists():
        settings.data_dir.mkdir(parents=True)
        settings.data_dir.chmod(0o750)
        if settings.scope == "system" and os.getuid() == 0:
            entry = pwd.getpwnam(settings.user)
            os.chown(settings.data_dir, entry.pw_uid, entry.pw_gid)


def _own_like_parent(path: Path) -> None:
    """A file root writes into the checkout belongs to the checkout's owner, who edits it."""
    if os.getuid() == 0:
        st = path.parent.stat()
        os.chown(path, st.st_uid, st.st_gid)


def apply(files: Sequence[Planned], settings: Settings, *, dry_run: bool) -> list[str]:
    """Write (or, with ``dry_run``, describe) the planned files; return one line per file."""
    report: list[str] = []
    secrets = [f for f in files if f.kind == "secrets"]
    for f in secrets:  # fail before writing anything
        check_secrets(f.path)
    verb = "would write" if dry_run else "wrote"
    if not dry_run:
        _prepare_dirs(settings)
    for f in files:
        exists = f.path.exists() or f.path.is_symlink()
        if f.kind in ("env", "secrets", "config") and exists:
            report.append(f"kept {f.path} (exists; never overwritten)")
            continue
        if not dry_run:
            if f.kind == "config":
                f.path.parent.mkdir(parents=True, exist_ok=True)
            _write(f.path, f.text, f.mode, exclusive=f.kind in ("secrets", "config"))
            if f.kind == "config":
                _own_like_parent(f.path)
        origin = f" from {STRATEGY_EXAMPLE.name}" if f.kind == "config" else ""
        report.append(f"{verb} {f.path} (mode {f.mode:04o}{origin})")
    return report


def settings_user_name() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def next_steps(settings: Settings) -> str:
    ctl = "systemctl --user" if settings.scope == "user" else "sudo systemctl"
    lines = [
        "next:",
        f"  edit {settings.env_dir}/*.env (and {settings.env_dir}/{SECRETS_FILE}, mode 0600)",
        f"  {ctl} daemon-reload",
        f"  {ctl} enable --now ai-quant-sidecar.service ai-quant-paper.service ai-quant-monitor.service",
        f"  {ctl} enable --now ai-quant-factory.timer ai-quant-prune.timer ai-quant-ramp.timer",
    ]
    if settings.scope == "user":
        lines.append(f"  sudo loginctl enable-linger {settings_user_name()}   # keep running after logout")
    return "\n".join(lines)


def settings_from_args(args: argparse.Namespace) -> Settings:
    scope = "user" if args.user else "system"
    home = Path.home()
    install_dir = Path(args.install_dir or REPO).absolute()
    if scope == "user":
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local/share")
        defaults = (data / "ai-quant", config / "ai-quant", config / "systemd/user")
    else:
        defaults = (Path("/var/lib/ai-quant"), Path("/etc/ai-quant"), Path("/etc/systemd/system"))
    return Settings(
        scope=scope,
        install_dir=install_dir,
        data_dir=Path(args.data_dir or defaults[0]).absolute(),
        env_dir=Path(args.env_dir or defaults[1]).absolute(),
        unit_dir=Path(args.unit_dir or defaults[2]).absolute(),
        python=Path(args.python or install_dir / ".venv/bin/python").absolute(),
        user=args.run_as or settings_user_name(),
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="install_systemd.py",
        description="Render the ai-quant systemd units and environment files for a user or system instance.",
    )
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--user", action="store_true", help="per-user instance (systemctl --user)")
    scope.add_argument("--system", action="store_true", help="system instance (needs root to write)")
    p.add_argument("--install-dir", help="repository checkout the units run from (default: this one)")
    p.add_argument(
        "--data-dir", help="AI_QUANT_DATA_DIR (default ~/.local/share/ai-quant or /var/lib/ai-quant)"
    )
    p.add_argument("--env-dir", help="where the env files go (default ~/.config/ai-quant or /etc/ai-quant)")
    p.add_argument(
        "--unit-dir", help="where the units go (default ~/.config/systemd/user or /etc/systemd/system)"
    )
    p.add_argument("--python", help="interpreter (default INSTALL_DIR/.venv/bin/python)")
    p.add_argument("--run-as", help="User= of system units (default: the current user)")
    p.add_argument("--dry-run", action="store_true", help="print what would be written; write nothing")
    p.add_argument("--show", action="store_true", help="with --dry-run, also print each file's content")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        warnings = check_paths(settings)
        files = plan(settings)
        report = apply(files, settings, dry_run=args.dry_run)
    except (InstallError, OSError) as exc:
        print(f"install_systemd.py: error: {exc}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for line in report:
        print(line)
    if args.dry_run and args.show:
        for f in files:
            print(f"\n# ---- {f.path} ----\n{f.text}", end="")
    if not args.dry_run:
        print(next_steps(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
