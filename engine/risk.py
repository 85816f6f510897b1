"""RiskManager: the last check before any order leaves the daemon. It fails closed.

Every order (entry, exit or cancel) goes through :meth:`RiskManager.check`. Any exception inside
a check blocks the order and raises an alert: an error can never let an order through.

What a kill state allows is decided in one place, :func:`order_allowed`, which the daemon (through
``RiskManager.check``) and the operator tools (``manual_trade.py``, ``flat_now.py``) all ask:
nothing that adds risk is sent by anyone while a kill switch is engaged; under ``halt_all`` the
daemon sends nothing at all, and only the operator's own reduce-only closes (``manual_trade.py
close``, ``flat_now.py``) still go out; the hard kill blocks everything.

Checks, in order:
* hard kill (``AI_QUANT_HARD_KILL_SWITCH=1``): blocks every order, exits included;
* kill switch (``AI_QUANT_KILL_SWITCH`` or the word in ``AI_QUANT_KILL_SWITCH_FILE``, polled each
  loop): ``close_only`` blocks entries, ``halt_all`` blocks every order;
* drawdown kill from the equity high-water mark and the daily loss limit (reset 00:00 UTC):
  once tripped they engage ``close_only`` until released by the operator (kill file ``clear``)
  or, for the daily limit, the next UTC day;
* token buckets: entries globally and per symbol, exits, cancels;
* entries only: max open positions, notional per order and in total, total margin, slippage guard
  (median slippage over the last N fills above a threshold pauses entries).

The manager makes no trading decision: it only says no.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from engine.config.view import StrategyConfig
from exchange.model import Order

log = logging.getLogger("engine.risk")

DAY_MS = 86_400_000
OrderKind = Literal["entry", "exit", "cancel"]
AlertFn = Callable[[str, str], None]


class KillState(StrEnum):
    OFF = "off"
    CLOSE_ONLY = "close_only"
    HALT_ALL = "halt_all"


#: Words accepted in the kill-switch file (the env parser in engine.env accepts the same aliases).
_FILE_WORDS: dict[str, KillState] = {
    "close_only": KillState.CLOSE_ONLY,
    "close": KillState.CLOSE_ONLY,
    "1": KillState.CLOSE_ONLY,
    "true": KillState.CLOSE_ONLY,
    "halt_all": KillState.HALT_ALL,
    "halt": KillState.HALT_ALL,
    "2": KillState.HALT_ALL,
    "stop": KillState.HALT_ALL,
    "full": KillState.HALT_ALL,
    "clear": KillState.OFF,
    "resume": KillState.OFF,
    "off": KillState.OFF,
    "0": KillState.OFF,
    "": KillState.OFF,
}


#: The canonical words an operator writes (the aliases above are accepted too).
KILL_FILE_WORDS = ("close_only", "halt_all", "clear")


def parse_kill_word(text: str) -> KillState | None:
    """The kill state a kill-file holds (first word, any case); None for an unknown word."""
    words = text.strip().lower().split()
    return _FILE_WORDS.get(words[0] if words else "")


class TokenBucket:
    """``rate_per_min`` tokens per minute, bursting to ``burst`` (default: one minute's worth).
    A rate of 0 disables the bucket (always allows)."""

    def __init__(self, rate_per_min: float, burst: float | None = None, now: float | None = None) -> None:
        self.rate = max(0.0, float(rate_per_min)) / 60.0
        self.capacity = float(burst if burst is not None else rate_per_min)
        self.tokens = self.capacity
        self.t = time.monotonic() if now is None else now

    def _refill(self, now: float) -> None:
        if now > self.t:
            self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = max(self.t, now)

    def peek(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class RiskLimits:
    """0 disables a limit. Defaults follow the reference daemon's risk defaults."""

    entries_per_min: float = 30
    entries_per_symbol_per_min: float = 6
    exits_per_min: float = 120
    cancels_per_min: float = 120
    max_drawdown_pct: float = 0.0  # from the equity high-water mark
    daily_loss_limit_usd: float = 0.0
    max_open_positions: int = 0
    max_notional_per_order_usd: float = 0.0
    max_total_notional_usd: float = 0.0
    max_total_margin_pct: float = 0.0  # of equity, as a fraction (0.6 = 60%)
    slippage_guard_bps: float = 0.0
    slippage_window: int = 20
    slippage_min_fills: int = 5

    @classmethod
    def from_config(cls, cfg: StrategyConfig, **overrides: Any) -> RiskLimits:
        """Limits from a strategy config (trade.max_open_positions, max_total_margin_pct)."""
        base = cls(
            max_open_positions=int(cfg.trade.max_open_positions or 0),
            max_total_margin_pct=float(cfg.trade.max_total_margin_pct or 0.0),
        )
        return base.with_(**overrides) if overrides else base

    def with_(self, **changes: Any) -> RiskLimits:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    kind: OrderKind
    notional_usd: float = 0.0
    margin_usd: float = 0.0


@dataclass(frozen=True)
class AccountView:
    equity: float
    open_symbols: frozenset[str] = frozenset()
    total_notional_usd: float = 0.0
    total_margin_usd: float = 0.0


@dataclass(frozen=True)
class RiskDecision:
    allowed: bool
    reason: str = "ok"

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = RiskDecision(True)


@dataclass
class KillStatus:
    state: KillState = KillState.OFF
    reason: str = ""
    hard: bool = False

    def label(self) -> str:
        return "hard" if self.hard else self.state.value


_KILL_ORDER = {KillState.OFF: 0, KillState.CLOSE_ONLY: 1, KillState.HALT_ALL: 2}


def strongest(*states: KillState) -> KillState:
    """The strongest of several kill states (env, kill file, drawdown)."""
    return max(states, key=_KILL_ORDER.__getitem__, default=KillState.OFF)


def order_allowed(kill: KillStatus, *, reduces_risk: bool, operator: bool) -> RiskDecision:
    """May an order go out under ``kill``? The one rule every sender asks.

    ``reduces_risk``: a reduce-only close or a cancel (never an entry, an add or a reversal).
    ``operator``: sent by a person through a tool, not decided by the daemon.

    * hard kill: nothing, by anyone;
    * ``halt_all``: the daemon sends nothing (its exits and cancels included); the operator's
      reduce-only closes still go out (getting out by hand must not need the daemon released);
    * ``close_only``: only orders that reduce risk;
    * off: anything (the other risk checks still apply to the daemon's orders)."""
    if kill.hard:
        return RiskDecision(False, "hard_kill")
    if kill.state is KillState.HALT_ALL and not (operator and reduces_risk):
        return RiskDecision(False, "halt_all")
    if kill.state is KillState.CLOSE_ONLY and not reduces_risk:
        return RiskDecision(False, "close_only")
    return ALLOW


def _utc_day(now_ms: int) -> int:
    return now_ms // DAY_MS


@dataclass
class _Equity:
    hwm: float = 0.0
    day: int = -1
    day_start: float = 0.0
    last: float = 0.0


@dataclass
class RiskManager:
    limits: RiskLimits = field(default_factory=RiskLimits)
    alert: AlertFn = field(default=lambda kind, msg: log.warning("%s: %s", kind, msg))
    env_kill: KillState = KillState.OFF
    kill_file: Path | None = None
    hard_kill: bool = False
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        now = self.clock()
        lim = self.limits
        self._entries = TokenBucket(lim.entries_per_min, now=now)
        self._exits = TokenBucket(lim.exits_per_min, now=now)
        self._cancels = TokenBucket(lim.cancels_per_min, now=now)
        self._per_symbol: dict[str, TokenBucket] = {}
        self._file_kill = KillState.OFF
        self._file_text = ""
        self._auto_kill = KillState.OFF  # drawdown / daily loss
        self._auto_reason = ""
        self._daily_tripped_day = -1
        self._eq = _Equity()
        self._slippage: deque[float] = deque(maxlen=max(1, lim.slippage_window))
        self.status = KillStatus()
        self.blocked_counts: dict[str, int] = {}
        self._recompute(initial=True)

    # ---- configuration --------------------------------------------------------------------
    def set_limits(self, limits: RiskLimits) -> None:
        """New limits (hot reload); buckets keep their fill level where the rate is unchanged."""
        old = self.limits
        self.limits = limits
        now = self.clock()
        if limits.entries_per_min != old.entries_per_min:
            self._entries = TokenBucket(limits.entries_per_min, now=now)
        if limits.exits_per_min != old.exits_per_min:
            self._exits = TokenBucket(limits.exits_per_min, now=now)
        if limits.cancels_per_min != old.cancels_per_min:
            self._cancels = TokenBucket(limits.cancels_per_min, now=now)
        if limits.entries_per_symbol_per_min != old.entries_per_symbol_per_min:
            self._per_symbol.clear()
        if limits.slippage_window != old.slippage_window:
            self._slippage = deque(self._slippage, maxlen=max(1, limits.slippage_window))

    # ---- kill switches -----------------------------------------------------------------------
    def poll_kill_file(self) -> KillStatus:
        """Read the kill file (each loop). An unreadable or unknown word keeps the current state
        and alerts; a missing file means no file kill."""
        if self.kill_file is not None:
            try:
                text = self.kill_file.read_text(errors="replace")[:200]
            except FileNotFoundError:
                text = ""
            except OSError as exc:
                self.alert("kill_switch", f"kill file unreadable ({type(exc).__name__}); state kept")
                return self.status
            state = parse_kill_word(text)
            changed = text != self._file_text
            self._file_text = text
            if state is None:
                if changed:
                    word = text.split()[0][:40]  # blank is "off": an unknown text has a word
                    self.alert(
                        "kill_switch",
                        f"kill file {self.kill_file} holds an unknown word {word!r}; state kept "
                        f"({self.status.label()}). Known: {', '.join(KILL_FILE_WORDS)}",
                    )
            else:
                if state is KillState.OFF and changed and text.strip():
                    # Writing an explicit clear/resume/off also releases a tripped drawdown kill.
                    self._release_auto()
                self._file_kill = state
        self._recompute()
        return self.status

    def set_hard_kill(self, on: bool) -> None:
        self.hard_kill = on
        self._recompute()

    def set_env_kill(self, state: KillState) -> None:
        self.env_kill = state
        self._recompute()

    def _release_auto(self) -> None:
        if self._auto_kill is not KillState.OFF:
            self._auto_kill = KillState.OFF
            self._auto_reason = ""
            self._eq.hwm = self._eq.last  # a fresh high-water mark after an operator release

    def _recompute(self, initial: bool = False) -> None:
        candidates = [
            (self.env_kill, "AI_QUANT_KILL_SWITCH"),
            (self._file_kill, "kill file"),
            (self._auto_kill, self._auto_reason or "risk limit"),
        ]
        state, reason = max(candidates, key=lambda c: _KILL_ORDER[c[0]])
        if state is KillState.OFF:
            reason = ""
        new = KillStatus(state, reason, self.hard_kill)
        old = self.status
        self.status = new
        if initial:
            if new.hard or new.state is not KillState.OFF:
                self.alert("kill_switch", f"kill switch {new.label()} at start ({new.reason or 'hard'})")
            return
        if (old.state, old.hard) != (new.state, new.hard):
            msg = f"kill switch {old.label()} -> {new.label()}" + (f" ({new.reason})" if new.reason else "")
            log.warning(msg)
            self.alert("kill_switch", msg)

    # ---- equity ------------------------------------------------------------------------------
    def update_equity(self, equity: float, now_ms: int) -> None:
        """High-water mark, drawdown kill and daily loss limit (the day starts at 00:00 UTC)."""
        eq = self._eq
        eq.last = equity
        day = _utc_day(now_ms)
        if day != eq.day:
            eq.day, eq.day_start = day, equity
            if self._auto_kill is not KillState.OFF and self._auto_reason.startswith("daily loss"):
                self._auto_kill, self._auto_reason = KillState.OFF, ""
                self._recompute()
        eq.hwm = max(eq.hwm, equity)
        lim = self.limits
        if self._auto_kill is not KillState.OFF:
            return
        if lim.max_drawdown_pct > 0 and eq.hwm > 0:
            dd = (eq.hwm - equity) / eq.hwm * 100.0
            if dd >= lim.max_drawdown_pct:
                self._trip(f"drawdown {dd:.2f}% from high-water mark {eq.hwm:.2f} >= {lim.max_drawdown_pct}%")
                return
        if lim.daily_loss_limit_usd > 0:
            loss = eq.day_start - equity
            if loss >= lim.daily_loss_limit_usd:
                self._trip(f"daily loss {loss:.2f} USD >= limit {lim.daily_loss_limit_usd:.2f} USD")

    def _trip(self, reason: str) -> None:
        self._auto_kill = KillState.CLOSE_ONLY
        self._auto_reason = reason
        self._recompute()

    @property
    def high_water_mark(self) -> float:
        return self._eq.hwm

    # ---- slippage guard -----------------------------------------------------------------------
    def record_slippage(self, bps: float) -> None:
        self._slippage.append(abs(float(bps)))

    def slippage_median_bps(self) -> float | None:
        return statistics.median(self._slippage) if self._slippage else None

    # ---- the check -------------------------------------------------------------------------
    def check(self, order: OrderRequest, account: AccountView) -> RiskDecision:
        """Allow or block one order. Never raises; an internal error blocks (fail closed)."""
        try:
            decision = self._check(order, account)
        except Exception as exc:
            decision = RiskDecision(False, f"risk_check_error:{type(exc).__name__}")
            self.alert("risk_error", f"risk check failed for {order.symbol} {order.kind}; order blocked")
            log.exception("risk check failed; order blocked")
        if not decision.allowed:
            self.blocked_counts[decision.reason.split(":")[0]] = (
                self.blocked_counts.get(decision.reason.split(":")[0], 0) + 1
            )
        return decision

    def check_order(self, order: Order, account: AccountView) -> RiskDecision:
        """The check for one order of the loop: an exit when it is reduce-only, else an entry of its
        notional, with margin = notional / leverage (leverage at least 1)."""
        notional = float(order.notional_usd or 0)
        margin = notional / max(1.0, float(order.leverage or 0))
        return self.check(
            OrderRequest(order.symbol, "exit" if order.reduce_only else "entry", notional, margin), account
        )

    def _check(self, order: OrderRequest, account: AccountView) -> RiskDecision:
        if order.kind not in ("entry", "exit", "cancel"):
            raise ValueError(f"unknown order kind {order.kind!r}")
        st = self.status
        kill = order_allowed(st, reduces_risk=order.kind != "entry", operator=False)
        if not kill.allowed:
            return kill
        now = self.clock()
        if order.kind == "cancel":
            return ALLOW if self._cancels.take(now) else RiskDecision(False, "rate_limit_cancels")
        if order.kind == "exit":
            return ALLOW if self._exits.take(now) else RiskDecision(False, "rate_limit_exits")
        # entries
        lim = self.limits
        if not math.isfinite(account.equity) or account.equity <= 0:
            return RiskDecision(False, "no_equity")
        if (
            lim.max_open_positions > 0
            and order.symbol not in account.open_symbols
            and len(account.open_symbols) >= lim.max_open_positions
        ):
            return RiskDecision(False, "max_open_positions")
        if lim.max_notional_per_order_usd > 0 and order.notional_usd > lim.max_notional_per_order_usd:
            return RiskDecision(False, "max_notional_per_order")
        if (
            lim.max_total_notional_usd > 0
            and account.total_notional_usd + order.notional_usd > lim.max_total_notional_usd
        ):
            return RiskDecision(False, "max_total_notional")
        if (
            lim.max_total_margin_pct > 0
            and account.total_margin_usd + order.margin_usd > lim.max_total_margin_pct * account.equity
        ):
            return RiskDecision(False, "max_total_margin")
        if lim.slippage_guard_bps > 0 and len(self._slippage) >= lim.slippage_min_fills:
            med = statistics.median(self._slippage)
            if med > lim.slippage_guard_bps:
                return RiskDecision(False, "slippage_guard")
        sym_bucket = self._per_symbol.get(order.symbol)
        if sym_bucket is None:
            sym_bucket = TokenBucket(lim.entries_per_symbol_per_min, now=now)
            self._per_symbol[order.symbol] = sym_bucket
        # Take from both buckets only when both have a token.
        if not self._entries.peek(now):
            return RiskDecision(False, "rate_limit_entries")
        if not sym_bucket.peek(now):
            return RiskDecision(False, "rate_limit_symbol_entries")
        self._entries.take(now)
        sym_bucket.take(now)
        return ALLOW


__all__ = [
    "AccountView",
    "KillState",
    "KillStatus",
    "OrderRequest",
    "RiskDecision",
    "RiskLimits",
    "RiskManager",
    "TokenBucket",
    "order_allowed",
    "parse_kill_word",
    "strongest",
]
