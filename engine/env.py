"""The one typed reader of every `AI_QUANT_*` environment variable.

`read_env()` parses them all into a frozen `Env` or raises `EnvError` naming the variable and the
problem. Secret values (the monitor token, alert targets, the live confirmation phrase) never
appear in an error message or in `repr(Env)`. docs/configuration.md documents each variable; a
test holds that table and `ENV_VARS` equal.
"""

import difflib
import ipaddress
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from engine.config.modes import (
    DEFAULT_LIVE_MAX_OPEN_POSITIONS,
    RUN_MODES,
    RunMode,
    StrategyMode,
    canonical_strategy_mode,
)

KillSwitch = Literal["close_only", "halt_all"]
KernelMode = Literal["kernel_only", "shadow"]
PromotedRole = Literal["primary", "fallback", "conservative"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

KILL_SWITCHES: Final[tuple[KillSwitch, ...]] = get_args(KillSwitch)
KERNEL_MODES: Final[tuple[KernelMode, ...]] = get_args(KernelMode)
PROMOTED_ROLES: Final[tuple[PromotedRole, ...]] = get_args(PromotedRole)
LOG_LEVELS: Final[tuple[LogLevel, ...]] = get_args(LogLevel)

LIVE_CONFIRM_PHRASE: Final = "I_UNDERSTAND_THIS_CAN_LOSE_MONEY"
PREFIX: Final = "AI_QUANT_"

#: The daemon's risk limits (engine.risk.RiskLimits field -> variable); 0 or unset: off. The
#: daemon's --max-drawdown-pct etc. flags take precedence.
RISK_VARS: Final = (
    "AI_QUANT_MAX_DRAWDOWN_PCT",
    "AI_QUANT_DAILY_LOSS_LIMIT_USD",
    "AI_QUANT_MAX_NOTIONAL_PER_ORDER_USD",
    "AI_QUANT_MAX_TOTAL_NOTIONAL_USD",
    "AI_QUANT_SLIPPAGE_GUARD_BPS",
)

#: Every variable `read_env` understands.
ENV_VARS: Final = (
    "AI_QUANT_MODE",
    "AI_QUANT_STRATEGY_YAML",
    "AI_QUANT_STRATEGY_MODE",
    "AI_QUANT_SYMBOLS",
    "AI_QUANT_TOP_N",
    "AI_QUANT_KILL_SWITCH",
    "AI_QUANT_KILL_SWITCH_FILE",
    "AI_QUANT_HARD_KILL_SWITCH",
    "AI_QUANT_LIVE_ENABLE",
    "AI_QUANT_LIVE_CONFIRM",
    "AI_QUANT_PRIVATE_KEY",
    "AI_QUANT_DATA_DIR",
    "AI_QUANT_CANDLES_DIR",
    "AI_QUANT_DB_PATH",
    "AI_QUANT_LOCK_PATH",
    "AI_QUANT_WS_SIDECAR_SOCK",
    "AI_QUANT_EXCHANGE_URL",
    "AI_QUANT_SECRETS_PATH",
    "AI_QUANT_PAPER_BALANCE",
    "AI_QUANT_PROMOTED_ROLE",
    "AI_QUANT_LOG_LEVEL",
    "AI_QUANT_ALERT_TARGETS",
    "AI_QUANT_ALERT_DRY_RUN",
    "AI_QUANT_MONITOR_BIND",
    "AI_QUANT_MONITOR_TOKEN",
    "AI_QUANT_KERNEL_MODE",
    "AI_QUANT_LIVE_MAX_OPEN_POSITIONS",
    "AI_QUANT_MIDS_STALE_S",
    "AI_QUANT_MID_EXITS",
    *RISK_VARS,
    # read by the Rust sidecar binary (ws_sidecar/src/config.rs), listed so they are not "unknown"
    "AI_QUANT_SIDECAR_SYMBOLS",
    "AI_QUANT_SIDECAR_INTERVALS",
    "AI_QUANT_SIDECAR_USER",
    "AI_QUANT_CANDLE_PRUNE_DISABLE_INTERVALS",
    "AI_QUANT_WS_CLIENT_TTL_SECS",
    # development and tests only
    "AI_QUANT_SHARED_DATA",
    "AI_QUANT_BT",
)
SECRET_VARS: Final = frozenset(
    {"AI_QUANT_MONITOR_TOKEN", "AI_QUANT_ALERT_TARGETS", "AI_QUANT_LIVE_CONFIRM", "AI_QUANT_PRIVATE_KEY"}
)

DEFAULT_DATA_DIR: Final = Path("run")
DEFAULT_STRATEGY_YAML: Final = Path("config/strategy_overrides.yaml")
DEFAULT_EXCHANGE_URL: Final = "http://127.0.0.1:3001"
DEFAULT_SECRETS_PATH: Final = "~/.config/ai-quant/secrets.json"
DEFAULT_PAPER_BALANCE: Final = 10_000.0
DEFAULT_TOP_N: Final = 50
TOP_N_RANGE: Final = (1, 200)
DEFAULT_MONITOR_BIND: Final = "127.0.0.1:61010"
#: Mids older than this are stale: the daemon reads REST allMids instead, the monitor warns.
DEFAULT_MIDS_STALE_S: Final = 15.0
#: sun_path of a Unix socket holds 108 bytes including the terminating NUL.
MAX_UNIX_SOCKET_PATH: Final = 107

_KILL_SWITCH_WORDS: Final[dict[str, KillSwitch | None]] = {
    "": None,
    "0": None,
    "false": None,
    "off": None,
    "no": None,
    "1": "close_only",
    "true": "close_only",
    "close": "close_only",
    "close_only": "close_only",
    "2": "halt_all",
    "halt": "halt_all",
    "stop": "halt_all",
    "full": "halt_all",
    "halt_all": "halt_all",
}
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})
_SYMBOL_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]*$")

T = TypeVar("T", bound=str)
V = TypeVar("V")


class EnvError(ValueError):
    """A bad `AI_QUANT_*` value; the message names the variable (never a secret's value)."""

    def __init__(self, var: str, problem: str) -> None:
        self.var = var
        self.problem = problem
        super().__init__(f"{var}: {problem}")


@dataclass(frozen=True)
class Secret:
    """A value kept out of logs: `str()` and `repr()` print `***`; `reveal()` returns it."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Env:
    """Every `AI_QUANT_*` setting, parsed. Paths are as given (relative ones are relative to the
    working directory); `~` is expanded."""

    mode: RunMode
    strategy_yaml: Path
    strategy_mode: StrategyMode | None
    symbols: tuple[str, ...] | None
    top_n: int
    kill_switch: KillSwitch | None
    kill_switch_file: Path | None
    hard_kill_switch: bool
    live_enable: bool
    live_confirmed: bool
    data_dir: Path
    candles_dir: Path
    db_path: Path
    lock_path: Path
    ws_sidecar_sock: Path
    exchange_url: str
    secrets_path: Path
    paper_balance: float
    promoted_role: PromotedRole | None
    log_level: LogLevel
    alert_targets: tuple[Secret, ...]
    alert_dry_run: bool
    monitor_bind: HostPort
    monitor_token: Secret | None
    kernel_mode: KernelMode
    live_max_open_positions: int
    #: Seconds after which a mid is stale (the daemon does not use it, the monitor warns).
    mids_stale_s: float
    #: Sub-bar mode: also run the exits on the live mid between sub-bar closes (not replayable).
    mid_exits: bool
    #: Risk limits from RISK_VARS, keyed by RiskLimits field (only the ones set and > 0).
    risk_limits: dict[str, float]
    #: Tests and benchmarks: the shared market-data folder, and the backtester binary to test.
    shared_data_dir: Path | None
    bt_binary: Path | None
    #: `AI_QUANT_*` names in the environment that no part of the system reads (likely typos).
    unknown_vars: tuple[str, ...] = ()

    @property
    def is_live_like(self) -> bool:
        """live or dry_live: the `live` config section applies and the config file is checked."""
        return self.mode in ("live", "dry_live")

    def live_gate_problems(self) -> list[str]:
        """Why live order placement is not armed (empty when it is). Only `live` sends orders."""
        problems = []
        if self.mode != "live":
            problems.append(f"AI_QUANT_MODE is {self.mode}, not live")
        if not self.live_enable:
            problems.append("AI_QUANT_LIVE_ENABLE is not 1")
        if not self.live_confirmed:
            problems.append(f"AI_QUANT_LIVE_CONFIRM is not {LIVE_CONFIRM_PHRASE}")
        if self.hard_kill_switch:
            problems.append("AI_QUANT_HARD_KILL_SWITCH is set")
        return problems

    def require_live_gates(self) -> None:
        """Raise EnvError unless every live gate is open."""
        problems = self.live_gate_problems()
        if problems:
            raise EnvError("AI_QUANT_LIVE_ENABLE", "live trading is not armed: " + "; ".join(problems))


def _choice(var: str, raw: str, choices: tuple[T, ...], *, fold: bool = True) -> T:
    value = raw.strip().lower() if fold else raw.strip()
    for choice in choices:
        if value == (choice.lower() if fold else choice):
            return choice
    raise EnvError(var, f"expected one of {', '.join(choices)}, got {raw!r}")


def _live_enable(var: str, raw: str) -> bool:
    """The live gate is armed by exactly ``1`` (as engine/live_gates.py checks); 0 or empty disarms it.
    Anything else is refused rather than guessed, so a typo can never arm live trading."""
    value = raw.strip()
    if value == "1":
        return True
    if value in ("", "0"):
        return False
    raise EnvError(var, f"expected exactly 1 (armed) or 0, got {raw!r}")


def _bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EnvError(var, f"expected 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def _int(var: str, raw: str, lo: int, hi: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise EnvError(var, f"expected a whole number, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise EnvError(var, f"must be {bound}, got {value}")
    return value


def _path(var: str, raw: str) -> Path:
    value = raw.strip()
    if not value:
        raise EnvError(var, "is set but empty; unset it to use the default")
    if "\x00" in value:
        raise EnvError(var, "contains a NUL byte")
    return Path(value).expanduser()


def _kill_switch(var: str, raw: str) -> KillSwitch | None:
    value = raw.strip().lower()
    if value in _KILL_SWITCH_WORDS:
        return _KILL_SWITCH_WORDS[value]
    raise EnvError(
        var,
        f"expected close_only (or 1/true/close), halt_all (or halt/2/stop/full) or 0/off, got {raw!r}",
    )


def _symbols(var: str, raw: str) -> tuple[str, ...] | None:
    items = [s.strip() for s in raw.split(",") if s.strip()]
    if not items:
        return None
    seen: set[str] = set()
    for sym in items:
        if not _SYMBOL_RE.match(sym):
            raise EnvError(var, f"{sym!r} is not a symbol name (letters, digits and : . _ - only)")
        if sym in seen:
            raise EnvError(var, f"{sym!r} is listed twice")
        seen.add(sym)
    return tuple(items)


def _url(var: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnvError(var, f"expected an http:// or https:// URL with a host, got {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise EnvError(var, f"bad port in {raw!r}") from None
    return value


def _host_port(var: str, raw: str) -> HostPort:
    value = raw.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", value)
    if not match:
        raise EnvError(var, f"expected HOST:PORT (or [IPv6]:PORT), got {raw!r}")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise EnvError(var, f"port must be between 1 and 65535, got {port}")
    return HostPort(host, port)


def _float(var: str, raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise EnvError(var, f"expected a number, got {raw!r}") from None


def _float_non_negative(var: str, raw: str) -> float:
    value = _float(var, raw)
    if not (value >= 0 and value != float("inf")):
        raise EnvError(var, f"must be a finite number >= 0 (0: off), got {raw.strip()}")
    return value


def _float_positive(var: str, raw: str) -> float:
    value = _float(var, raw)
    if not (value > 0 and value != float("inf")):
        raise EnvError(var, f"must be a finite number > 0, got {raw.strip()}")
    return value


def _strategy_mode(var: str, raw: str) -> StrategyMode:
    try:
        return canonical_strategy_mode(raw)
    except ValueError as exc:
        raise EnvError(var, str(exc)) from None


def _token(var: str, raw: str) -> Secret:
    return Secret(raw.strip())


def _alert_targets(var: str, raw: str) -> tuple[Secret, ...]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for n, item in enumerate(items, start=1):
        channel, sep, target = item.partition(":")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_-]*", channel) or not target.strip():
            # The value may embed a token: name its position, never its text.
            raise EnvError(var, f"target {n} is not CHANNEL:TARGET (e.g. discord:#alerts,telegram:@ops)")
    return tuple(Secret(item) for item in items)


def _unknown(environ: Mapping[str, str]) -> tuple[str, ...]:
    known = set(ENV_VARS)
    return tuple(sorted(k for k in environ if k.startswith(PREFIX) and k not in known))


def _closest(name: str) -> str:
    # Compare without the shared prefix, which would make every name look alike.
    suffixes = [var.removeprefix(PREFIX) for var in ENV_VARS]
    close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.7)
    return f" (did you mean {PREFIX}{close[0]}?)" if close else ""


def describe_unknown(name: str) -> str:
    """A warning line for an unknown `AI_QUANT_*` variable, with the closest known name."""
    return f"{name}: not an ai-quant variable, ignored{_closest(name)}"


def default_sidecar_socket(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/ai-quant-ws.sock``, else a per-user file in the temp dir: the rule the
    sidecar binary and ``exchange/sidecar.py`` also follow, so all three agree unconfigured."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "ai-quant-ws.sock"
    return Path(tempfile.gettempdir()) / f"ai-quant-ws-{os.getuid()}.sock"


def read_env(environ: Mapping[str, str] | None = None, *, strict: bool = False) -> Env:
    """Parse every `AI_QUANT_*` variable of `environ` (default: os.environ).

    Unset and empty mean "default" except where noted in docs/configuration.md. With `strict`, an
    unknown `AI_QUANT_*` name is an error instead of a warning in `Env.unknown_vars`."""
    env = os.environ if environ is None else environ

    def get(var: str) -> str | None:
        value = env.get(var)
        return None if value is None or value.strip() == "" else value

    def opt(var: str, parse: Callable[[str, str], V], default: V) -> V:
        raw = get(var)
        return default if raw is None else parse(var, raw)

    def path(var: str, default: Path) -> Path:
        return opt(var, _path, default)

    unknown = _unknown(env)
    if strict and unknown:
        raise EnvError(unknown[0], f"not an ai-quant variable{_closest(unknown[0])}")

    mode: RunMode = opt("AI_QUANT_MODE", lambda var, raw: _choice(var, raw, RUN_MODES), "paper")
    data_dir = path("AI_QUANT_DATA_DIR", DEFAULT_DATA_DIR)
    db_name = "trading_engine.db" if mode == "paper" else "trading_engine_live.db"
    sock = path("AI_QUANT_WS_SIDECAR_SOCK", default_sidecar_socket(env))
    if len(os.fsencode(sock.absolute())) > MAX_UNIX_SOCKET_PATH:
        raise EnvError(
            "AI_QUANT_WS_SIDECAR_SOCK",
            f"socket path {sock.absolute()} is longer than {MAX_UNIX_SOCKET_PATH} bytes (a Unix socket limit)",
        )
    confirm = get("AI_QUANT_LIVE_CONFIRM")
    if confirm is not None and confirm != LIVE_CONFIRM_PHRASE:
        raise EnvError("AI_QUANT_LIVE_CONFIRM", f"is set but is not exactly {LIVE_CONFIRM_PHRASE}")

    return Env(
        mode=mode,
        strategy_yaml=path("AI_QUANT_STRATEGY_YAML", DEFAULT_STRATEGY_YAML),
        strategy_mode=opt("AI_QUANT_STRATEGY_MODE", _strategy_mode, None),
        symbols=opt("AI_QUANT_SYMBOLS", _symbols, None),
        top_n=opt("AI_QUANT_TOP_N", lambda var, raw: _int(var, raw, *TOP_N_RANGE), DEFAULT_TOP_N),
        kill_switch=opt("AI_QUANT_KILL_SWITCH", _kill_switch, None),
        kill_switch_file=opt("AI_QUANT_KILL_SWITCH_FILE", _path, None),
        hard_kill_switch=opt("AI_QUANT_HARD_KILL_SWITCH", _bool, False),
        live_enable=opt("AI_QUANT_LIVE_ENABLE", _live_enable, False),
        live_confirmed=confirm == LIVE_CONFIRM_PHRASE,
        data_dir=data_dir,
        candles_dir=path("AI_QUANT_CANDLES_DIR", data_dir / "candles_dbs"),
        db_path=path("AI_QUANT_DB_PATH", data_dir / db_name),
        lock_path=path("AI_QUANT_LOCK_PATH", data_dir / f"ai_quant_{mode}.lock"),
        ws_sidecar_sock=sock,
        exchange_url=opt("AI_QUANT_EXCHANGE_URL", _url, DEFAULT_EXCHANGE_URL),
        secrets_path=path("AI_QUANT_SECRETS_PATH", Path(DEFAULT_SECRETS_PATH).expanduser()),
        paper_balance=opt("AI_QUANT_PAPER_BALANCE", _float_positive, DEFAULT_PAPER_BALANCE),
        promoted_role=opt("AI_QUANT_PROMOTED_ROLE", lambda var, raw: _choice(var, raw, PROMOTED_ROLES), None),
        log_level=opt("AI_QUANT_LOG_LEVEL", lambda var, raw: _choice(var, raw, LOG_LEVELS), "INFO"),
        alert_targets=opt("AI_QUANT_ALERT_TARGETS", _alert_targets, ()),
        alert_dry_run=opt("AI_QUANT_ALERT_DRY_RUN", _bool, False),
        monitor_bind=_host_port(
            "AI_QUANT_MONITOR_BIND", get("AI_QUANT_MONITOR_BIND") or DEFAULT_MONITOR_BIND
        ),
        monitor_token=opt("AI_QUANT_MONITOR_TOKEN", _token, None),
        kernel_mode=opt(
            "AI_QUANT_KERNEL_MODE", lambda var, raw: _choice(var, raw, KERNEL_MODES), "kernel_only"
        ),
        live_max_open_positions=opt(
            "AI_QUANT_LIVE_MAX_OPEN_POSITIONS",
            lambda var, raw: _int(var, raw, 1),
            DEFAULT_LIVE_MAX_OPEN_POSITIONS,
        ),
        mids_stale_s=opt("AI_QUANT_MIDS_STALE_S", _float_positive, DEFAULT_MIDS_STALE_S),
        mid_exits=opt("AI_QUANT_MID_EXITS", _bool, False),
        risk_limits={
            var.removeprefix(PREFIX).lower(): v
            for var in RISK_VARS
            if (v := opt(var, _float_non_negative, 0.0)) > 0
        },
        shared_data_dir=opt("AI_QUANT_SHARED_DATA", _path, None),
        bt_binary=opt("AI_QUANT_BT", _path, None),
        unknown_vars=unknown,
    )


def check_secrets_file(path: Path) -> None:
    """Raise EnvError unless `path` is a regular file (not a symlink) readable only by its owner
    (mode 0600 or stricter)."""
    var = "AI_QUANT_SECRETS_PATH"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise EnvError(var, f"secrets file {path} does not exist") from None
    except OSError as exc:
        raise EnvError(var, f"cannot stat secrets file {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise EnvError(var, f"secrets file {path} is a symlink; point at the real file")
    if not stat.S_ISREG(st.st_mode):
        raise EnvError(var, f"secrets file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise EnvError(
            var, f"secrets file {path} has mode {stat.S_IMODE(st.st_mode):04o}; run: chmod 600 {path}"
        )
