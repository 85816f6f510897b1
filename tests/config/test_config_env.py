"""engine.env: every AI_QUANT_* variable parsed, defaulted, and refused with a clear error."""

import re
from pathlib import Path

import pytest

from engine.env import (
    ENV_VARS,
    LIVE_CONFIRM_PHRASE,
    EnvError,
    HostPort,
    check_secrets_file,
    describe_unknown,
    read_env,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cr3t-token-value-1234"


def _error(env: dict[str, str]) -> str:
    with pytest.raises(EnvError) as info:
        read_env(env)
    return str(info.value)


def test_defaults() -> None:
    env = read_env({})
    assert env.mode == "paper"
    assert env.strategy_yaml == Path("config/strategy_overrides.yaml")
    assert env.strategy_mode is None
    assert env.symbols is None
    assert env.top_n == 50
    assert env.kill_switch is None
    assert env.kill_switch_file is None
    assert env.hard_kill_switch is False
    assert env.live_enable is False and env.live_confirmed is False
    assert env.data_dir == Path("run")
    assert env.candles_dir == Path("run/candles_dbs")
    assert env.db_path == Path("run/trading_engine.db")
    assert env.lock_path == Path("run/ai_quant_paper.lock")
    from engine.env import default_sidecar_socket

    assert env.ws_sidecar_sock == default_sidecar_socket()
    assert env.ws_sidecar_sock.name.startswith("ai-quant-ws")
    assert env.exchange_url == "http://127.0.0.1:3001"
    assert env.secrets_path == Path("~/.config/ai-quant/secrets.json").expanduser()
    assert env.paper_balance == 10_000.0
    assert env.promoted_role is None
    assert env.log_level == "INFO"
    assert env.alert_targets == ()
    assert env.alert_dry_run is False
    assert env.monitor_bind == HostPort("127.0.0.1", 61010)
    assert env.monitor_bind.is_loopback
    assert env.monitor_token is None
    assert env.kernel_mode == "kernel_only"
    assert env.live_max_open_positions == 1
    assert env.shared_data_dir is None and env.bt_binary is None
    assert env.unknown_vars == ()


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_QUANT_TOP_N", "7")
    assert read_env().top_n == 7


def test_every_variable_parsed() -> None:
    env = read_env(
        {
            "AI_QUANT_MODE": "live",
            "AI_QUANT_STRATEGY_YAML": "/etc/aiq/strategy.yaml",
            "AI_QUANT_STRATEGY_MODE": "safe",
            "AI_QUANT_SYMBOLS": " BTC, ETH ,kPEPE,, ",
            "AI_QUANT_TOP_N": "200",
            "AI_QUANT_KILL_SWITCH": "close",
            "AI_QUANT_KILL_SWITCH_FILE": "/run/aiq/kill",
            "AI_QUANT_HARD_KILL_SWITCH": "0",
            "AI_QUANT_LIVE_ENABLE": "1",
            "AI_QUANT_LIVE_CONFIRM": LIVE_CONFIRM_PHRASE,
            "AI_QUANT_DATA_DIR": "/var/lib/aiq",
            "AI_QUANT_CANDLES_DIR": "/data/candles",
            "AI_QUANT_DB_PATH": "/var/lib/aiq/x.db",
            "AI_QUANT_LOCK_PATH": "/run/aiq/lock",
            "AI_QUANT_WS_SIDECAR_SOCK": "/run/aiq/ws.sock",
            "AI_QUANT_EXCHANGE_URL": "https://api.hyperliquid.xyz/",
            "AI_QUANT_SECRETS_PATH": "/etc/aiq/secrets.json",
            "AI_QUANT_PAPER_BALANCE": "2500.5",
            "AI_QUANT_PROMOTED_ROLE": "Fallback",
            "AI_QUANT_LOG_LEVEL": "debug",
            "AI_QUANT_ALERT_TARGETS": "discord:#alerts, telegram:@ops",
            "AI_QUANT_ALERT_DRY_RUN": "yes",
            "AI_QUANT_MONITOR_BIND": "[::1]:8080",
            "AI_QUANT_MONITOR_TOKEN": TOKEN,
            "AI_QUANT_KERNEL_MODE": "shadow",
            "AI_QUANT_LIVE_MAX_OPEN_POSITIONS": "3",
            "AI_QUANT_SHARED_DATA": "~/data",
            "AI_QUANT_BT": "target/debug/ai-quant-bt",
        }
    )
    assert env.mode == "live"
    assert env.strategy_yaml == Path("/etc/aiq/strategy.yaml")
    assert env.strategy_mode == "conservative"
    assert env.symbols == ("BTC", "ETH", "kPEPE")
    assert env.top_n == 200
    assert env.kill_switch == "close_only"
    assert env.kill_switch_file == Path("/run/aiq/kill")
    assert env.live_enable and env.live_confirmed and not env.hard_kill_switch
    assert env.live_gate_problems() == []
    env.require_live_gates()
    assert env.data_dir == Path("/var/lib/aiq")
    assert env.candles_dir == Path("/data/candles")
    assert env.db_path == Path("/var/lib/aiq/x.db")
    assert env.lock_path == Path("/run/aiq/lock")
    assert env.ws_sidecar_sock == Path("/run/aiq/ws.sock")
    assert env.exchange_url == "https://api.hyperliquid.xyz"
    assert env.secrets_path == Path("/etc/aiq/secrets.json")
    assert env.paper_balance == 2500.5
    assert env.promoted_role == "fallback"
    assert env.log_level == "DEBUG"
    assert [t.reveal() for t in env.alert_targets] == ["discord:#alerts", "telegram:@ops"]
    assert env.alert_dry_run is True
    assert env.monitor_bind == HostPort("::1", 8080) and env.monitor_bind.is_loopback
    assert str(env.monitor_bind) == "[::1]:8080"
    assert env.monitor_token is not None and env.monitor_token.reveal() == TOKEN
    assert env.kernel_mode == "shadow"
    assert env.live_max_open_positions == 3
    assert env.shared_data_dir == Path("~/data").expanduser()
    assert env.bt_binary == Path("target/debug/ai-quant-bt")


def test_paths_derive_from_data_dir_and_mode() -> None:
    env = read_env({"AI_QUANT_DATA_DIR": "/srv/aiq", "AI_QUANT_MODE": "dry_live"})
    assert env.candles_dir == Path("/srv/aiq/candles_dbs")
    assert env.db_path == Path("/srv/aiq/trading_engine_live.db")
    assert env.lock_path == Path("/srv/aiq/ai_quant_dry_live.lock")
    assert read_env({"AI_QUANT_MODE": "live"}).db_path == Path("run/trading_engine_live.db")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", "close_only"),
        ("true", "close_only"),
        ("close", "close_only"),
        ("close_only", "close_only"),
        ("CLOSE", "close_only"),
        ("halt", "halt_all"),
        ("2", "halt_all"),
        ("stop", "halt_all"),
        ("full", "halt_all"),
        ("halt_all", "halt_all"),
        ("0", None),
        ("off", None),
        ("", None),
    ],
)
def test_kill_switch_words(raw: str, expected: str | None) -> None:
    assert read_env({"AI_QUANT_KILL_SWITCH": raw}).kill_switch == expected


@pytest.mark.parametrize(
    ("alias", "mode"),
    [("m1", "primary"), ("M2", "fallback"), ("m3", "conservative"), ("pause", "flat"), ("halt", "flat")],
)
def test_strategy_mode_aliases(alias: str, mode: str) -> None:
    assert read_env({"AI_QUANT_STRATEGY_MODE": alias}).strategy_mode == mode


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AI_QUANT_MODE": "prod"}, "AI_QUANT_MODE: expected one of paper, dry_live, live, got 'prod'"),
        (
            {"AI_QUANT_STRATEGY_MODE": "turbo"},
            "AI_QUANT_STRATEGY_MODE: unknown strategy mode 'turbo' (expected one of primary, fallback, "
            "conservative, flat; aliases m1->primary, m2->fallback, m3->conservative, safe->conservative, "
            "halt->flat, pause->flat)",
        ),
        ({"AI_QUANT_TOP_N": "abc"}, "AI_QUANT_TOP_N: expected a whole number, got 'abc'"),
        ({"AI_QUANT_TOP_N": "0"}, "AI_QUANT_TOP_N: must be between 1 and 200, got 0"),
        ({"AI_QUANT_TOP_N": "201"}, "AI_QUANT_TOP_N: must be between 1 and 200, got 201"),
        (
            {"AI_QUANT_KILL_SWITCH": "maybe"},
            "AI_QUANT_KILL_SWITCH: expected close_only (or 1/true/close), halt_all (or halt/2/stop/full) "
            "or 0/off, got 'maybe'",
        ),
        (
            {"AI_QUANT_HARD_KILL_SWITCH": "yes please"},
            "AI_QUANT_HARD_KILL_SWITCH: expected 1 or 0 (true/false, yes/no, on/off), got 'yes please'",
        ),
        ({"AI_QUANT_SYMBOLS": "BTC,ETH,BTC"}, "AI_QUANT_SYMBOLS: 'BTC' is listed twice"),
        (
            {"AI_QUANT_SYMBOLS": "BTC,E TH"},
            "AI_QUANT_SYMBOLS: 'E TH' is not a symbol name (letters, digits and : . _ - only)",
        ),
        (
            {"AI_QUANT_EXCHANGE_URL": "api.hyperliquid.xyz"},
            "AI_QUANT_EXCHANGE_URL: expected an http:// or https:// URL with a host, got 'api.hyperliquid.xyz'",
        ),
        (
            {"AI_QUANT_EXCHANGE_URL": "http://127.0.0.1:99999"},
            "AI_QUANT_EXCHANGE_URL: bad port in 'http://127.0.0.1:99999'",
        ),
        ({"AI_QUANT_PAPER_BALANCE": "-5"}, "AI_QUANT_PAPER_BALANCE: must be a finite number > 0, got -5"),
        ({"AI_QUANT_PAPER_BALANCE": "nan"}, "AI_QUANT_PAPER_BALANCE: must be a finite number > 0, got nan"),
        ({"AI_QUANT_PAPER_BALANCE": "10k"}, "AI_QUANT_PAPER_BALANCE: expected a number, got '10k'"),
        (
            {"AI_QUANT_PROMOTED_ROLE": "flat"},
            "AI_QUANT_PROMOTED_ROLE: expected one of primary, fallback, conservative, got 'flat'",
        ),
        (
            {"AI_QUANT_LOG_LEVEL": "verbose"},
            "AI_QUANT_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'",
        ),
        (
            {"AI_QUANT_MONITOR_BIND": "61010"},
            "AI_QUANT_MONITOR_BIND: expected HOST:PORT (or [IPv6]:PORT), got '61010'",
        ),
        (
            {"AI_QUANT_MONITOR_BIND": "0.0.0.0:0"},
            "AI_QUANT_MONITOR_BIND: port must be between 1 and 65535, got 0",
        ),
        (
            {"AI_QUANT_KERNEL_MODE": "python"},
            "AI_QUANT_KERNEL_MODE: expected one of kernel_only, shadow, got 'python'",
        ),
        ({"AI_QUANT_LIVE_MAX_OPEN_POSITIONS": "0"}, "AI_QUANT_LIVE_MAX_OPEN_POSITIONS: must be >= 1, got 0"),
        (
            {"AI_QUANT_MAX_DRAWDOWN_PCT": "-5"},
            "AI_QUANT_MAX_DRAWDOWN_PCT: must be a finite number >= 0 (0: off), got -5",
        ),
        (
            {"AI_QUANT_DAILY_LOSS_LIMIT_USD": "lots"},
            "AI_QUANT_DAILY_LOSS_LIMIT_USD: expected a number, got 'lots'",
        ),
        (
            {"AI_QUANT_WS_SIDECAR_SOCK": "/tmp/" + "s" * 120 + ".sock"},
            "AI_QUANT_WS_SIDECAR_SOCK: socket path /tmp/" + "s" * 120 + ".sock is longer than 107 bytes "
            "(a Unix socket limit)",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    assert _error(env) == message


def test_secrets_never_appear_in_errors_or_repr() -> None:
    wrong = "I_UNDERSTAND_maybe-" + TOKEN
    message = _error({"AI_QUANT_LIVE_CONFIRM": wrong})
    assert message == f"AI_QUANT_LIVE_CONFIRM: is set but is not exactly {LIVE_CONFIRM_PHRASE}"
    assert TOKEN not in message
    bad_targets = f"discord:#ok,{TOKEN}"
    assert _error({"AI_QUANT_ALERT_TARGETS": bad_targets}) == (
        "AI_QUANT_ALERT_TARGETS: target 2 is not CHANNEL:TARGET (e.g. discord:#alerts,telegram:@ops)"
    )
    env = read_env({"AI_QUANT_MONITOR_TOKEN": TOKEN, "AI_QUANT_ALERT_TARGETS": "discord:" + TOKEN})
    text = repr(env) + str(env) + str(env.monitor_token) + repr(env.alert_targets)
    assert TOKEN not in text
    assert "monitor_token=Secret('***')" in repr(env)


def test_live_gates_closed_by_default() -> None:
    env = read_env({"AI_QUANT_MODE": "live", "AI_QUANT_HARD_KILL_SWITCH": "1"})
    assert env.live_gate_problems() == [
        "AI_QUANT_LIVE_ENABLE is not 1",
        f"AI_QUANT_LIVE_CONFIRM is not {LIVE_CONFIRM_PHRASE}",
        "AI_QUANT_HARD_KILL_SWITCH is set",
    ]
    with pytest.raises(EnvError, match="live trading is not armed: AI_QUANT_LIVE_ENABLE is not 1;"):
        env.require_live_gates()
    assert read_env({}).live_gate_problems()[0] == "AI_QUANT_MODE is paper, not live"


def test_unknown_variables_are_reported_and_strict_refuses_them() -> None:
    env = read_env({"AI_QUANT_KILLSWITCH": "1", "AI_QUANT_MODE": "paper", "PATH": "/bin"})
    assert env.unknown_vars == ("AI_QUANT_KILLSWITCH",)
    assert describe_unknown("AI_QUANT_KILLSWITCH") == (
        "AI_QUANT_KILLSWITCH: not an ai-quant variable, ignored (did you mean AI_QUANT_KILL_SWITCH?)"
    )
    assert _strict_error({"AI_QUANT_KILLSWITCH": "1"}) == (
        "AI_QUANT_KILLSWITCH: not an ai-quant variable (did you mean AI_QUANT_KILL_SWITCH?)"
    )
    assert _strict_error({"AI_QUANT_ZZZ": "1"}) == "AI_QUANT_ZZZ: not an ai-quant variable"


def _strict_error(env: dict[str, str]) -> str:
    with pytest.raises(EnvError) as info:
        read_env(env, strict=True)
    return str(info.value)


def test_empty_values_mean_default() -> None:
    env = read_env({var: "" for var in ENV_VARS})
    assert env == read_env({})


def test_secrets_file_permissions(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    with pytest.raises(EnvError, match=rf"AI_QUANT_SECRETS_PATH: secrets file {secrets} does not exist"):
        check_secrets_file(secrets)
    secrets.write_text("{}")
    secrets.chmod(0o644)
    with pytest.raises(EnvError) as info:
        check_secrets_file(secrets)
    assert (
        str(info.value)
        == f"AI_QUANT_SECRETS_PATH: secrets file {secrets} has mode 0644; run: chmod 600 {secrets}"
    )
    secrets.chmod(0o600)
    check_secrets_file(secrets)
    link = tmp_path / "link.json"
    link.symlink_to(secrets)
    with pytest.raises(EnvError, match="is a symlink; point at the real file"):
        check_secrets_file(link)


def test_docs_table_documents_exactly_the_variables_env_reads() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = re.findall(r"^\| `(AI_QUANT_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE)
    assert len(documented) == len(set(documented)), "a variable is documented twice"
    assert set(documented) == set(ENV_VARS)


def test_no_other_module_of_mine_reads_ai_quant_variables_directly() -> None:
    # engine/config is pure: it takes values as arguments; only engine/env.py reads the environment.
    for path in (ROOT / "engine" / "config").glob("*.py"):
        assert "os.environ" not in path.read_text() and "getenv" not in path.read_text(), path


def test_live_enable_is_armed_only_by_exactly_1() -> None:
    from engine.env import EnvError, read_env

    assert read_env({"AI_QUANT_LIVE_ENABLE": "1"}).live_enable is True
    assert read_env({"AI_QUANT_LIVE_ENABLE": "0"}).live_enable is False
    for typo in ("true", "yes", "on", "11", "1x"):
        with pytest.raises(EnvError, match="AI_QUANT_LIVE_ENABLE"):
            read_env({"AI_QUANT_LIVE_ENABLE": typo})


def test_private_key_is_a_known_secret_variable() -> None:
    from engine.env import SECRET_VARS, read_env

    key = "0x" + "ab" * 32
    env = read_env({"AI_QUANT_PRIVATE_KEY": key}, strict=True)
    assert "AI_QUANT_PRIVATE_KEY" in SECRET_VARS
    assert key not in repr(env)


def test_risk_limits_map_onto_the_risk_manager_fields(tmp_path: Path) -> None:
    from dataclasses import fields

    from engine.config import load_config
    from engine.env import RISK_VARS
    from engine.risk import RiskLimits

    env = read_env(
        {"AI_QUANT_MAX_DRAWDOWN_PCT": "15", "AI_QUANT_MAX_NOTIONAL_PER_ORDER_USD": "2000",
         "AI_QUANT_SLIPPAGE_GUARD_BPS": "0"}
    )  # fmt: skip
    assert env.risk_limits == {"max_drawdown_pct": 15.0, "max_notional_per_order_usd": 2000.0}  # 0 is off
    names = {f.name for f in fields(RiskLimits)}
    assert {v.removeprefix("AI_QUANT_").lower() for v in RISK_VARS} <= names
    (tmp_path / "s.yaml").write_text("global: {}\n")
    lim = RiskLimits.from_config(load_config(tmp_path / "s.yaml").model, **env.risk_limits)
    assert (lim.max_drawdown_pct, lim.max_notional_per_order_usd, lim.slippage_guard_bps) == (
        15.0,
        2000.0,
        0.0,
    )
    assert read_env({}).risk_limits == {}


def test_the_daemon_runs_the_env_limits_and_its_flags_win() -> None:
    from daemon.main import build_parser, risk_overrides

    env = read_env({"AI_QUANT_MAX_DRAWDOWN_PCT": "15", "AI_QUANT_DAILY_LOSS_LIMIT_USD": "500"})
    assert risk_overrides(env.risk_limits, build_parser().parse_args([])) == {
        "max_drawdown_pct": 15.0, "daily_loss_limit_usd": 500.0,
    }  # fmt: skip
    args = build_parser().parse_args(["--max-drawdown-pct", "8", "--max-notional-per-order-usd", "100"])
    assert risk_overrides(env.risk_limits, args) == {
        "max_drawdown_pct": 8.0, "daily_loss_limit_usd": 500.0, "max_notional_per_order_usd": 100.0,
    }  # fmt: skip


def test_mid_exits_is_off_unless_asked() -> None:
    """AI_QUANT_MID_EXITS (sub-bar modes: exits on the live mid between sub-bar closes)."""
    assert read_env({}).mid_exits is False
    assert read_env({"AI_QUANT_MID_EXITS": "1"}).mid_exits is True
    assert read_env({"AI_QUANT_MID_EXITS": "off"}).mid_exits is False
    assert _error({"AI_QUANT_MID_EXITS": "sometimes"}).startswith("AI_QUANT_MID_EXITS: ")
