"""Monitor settings: from the `AI_QUANT_*` environment (engine/env.py) and command-line flags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from engine.env import Env, HostPort, Secret

Mode = Literal["paper", "live"]
MODES: tuple[Mode, ...] = ("paper", "live")
INTERVAL_RE = re.compile(r"^[1-9][0-9]{0,2}[mhdwM]$")
SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,39}$")


class BindRefused(ValueError):
    """A non-loopback bind without a token."""


@dataclass(frozen=True)
class Settings:
    bind: HostPort
    token: Secret | None
    dbs: dict[str, Path]
    oms_db: Path
    candles_dir: Path
    sidecar_sock: Path
    default_mode: Mode
    default_interval: str
    stale_s: float = 90.0
    keepalive_s: float = 15.0
    sse_retry_ms: int = 3000
    mids_stale_s: float = 15.0  # AI_QUANT_MIDS_STALE_S: live mids older than this are stale

    def check_bind(self) -> None:
        """Refuse to listen beyond loopback without a bearer token: the page shows balances and
        positions, which are nobody else's business."""
        if not self.bind.is_loopback and self.token is None:
            raise BindRefused(
                f"refusing to bind {self.bind} (not a loopback address) without AI_QUANT_MONITOR_TOKEN;"
                " set a token, or bind 127.0.0.1"
            )
        if self.token is not None and len(self.token.reveal()) < 16:
            raise BindRefused(
                "AI_QUANT_MONITOR_TOKEN is shorter than 16 characters; use a longer random token"
            )


def db_paths(env: Env) -> dict[str, Path]:
    """The paper and the live trading DB. ``AI_QUANT_DB_PATH`` names the DB of ``AI_QUANT_MODE``;
    the other one is the default name in ``AI_QUANT_DATA_DIR``."""
    paths = {"paper": env.data_dir / "trading_engine.db", "live": env.data_dir / "trading_engine_live.db"}
    paths["paper" if env.mode == "paper" else "live"] = env.db_path
    return paths


def config_interval(path: Path) -> str | None:
    """``global.engine.interval`` of the strategy YAML, if it is set there (read only, never validated
    here: the daemon owns the config)."""
    try:
        doc = yaml.safe_load(path.read_text())
        value = doc["global"]["engine"]["interval"]
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return None
    return str(value) if isinstance(value, str) and INTERVAL_RE.match(value) else None


def from_env(
    env: Env,
    *,
    bind: HostPort | None = None,
    paper_db: Path | None = None,
    live_db: Path | None = None,
    oms_db: Path | None = None,
    stale_s: float = 90.0,
    keepalive_s: float = 15.0,
) -> Settings:
    dbs = db_paths(env)
    if paper_db is not None:
        dbs["paper"] = paper_db
    if live_db is not None:
        dbs["live"] = live_db
    # The live daemon keeps its OMS in oms_<mode>.db beside its trading DB (python -m daemon --oms-db).
    oms_name = f"oms_{env.mode}.db" if env.mode in ("live", "dry_live") else "oms_live.db"
    return Settings(
        bind=bind or env.monitor_bind,
        token=env.monitor_token,
        dbs=dbs,
        oms_db=oms_db or dbs["live"].parent / oms_name,
        candles_dir=env.candles_dir,
        sidecar_sock=env.ws_sidecar_sock,
        default_mode="paper" if env.mode == "paper" else "live",
        default_interval=config_interval(env.strategy_yaml) or "1h",
        stale_s=stale_s,
        keepalive_s=keepalive_s,
        mids_stale_s=env.mids_stale_s,
    )


__all__ = ["INTERVAL_RE", "MODES", "SYMBOL_RE", "BindRefused", "Mode", "Settings", "db_paths", "from_env"]
