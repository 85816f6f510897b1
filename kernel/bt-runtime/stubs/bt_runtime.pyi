"""Type stubs for the PyO3 module `bt_runtime` (the ai-quant decision kernel)."""

from collections.abc import Sequence
from typing import Any, Literal, final

__version__: str
SCHEMA_VERSION: int

def defaults() -> dict[str, Any]:
    """The one source of default strategy config values."""

def validate_config_json(text: str) -> None:
    """Validate a fully merged config; raises ValueError naming the key path."""

def check_config_document(raw: Any) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Check a parsed config file's layout and keys: (problems as (key_path, message), strategy
    modes with a section, sorted symbols with overrides)."""

def resolve_config(
    raw: Any,
    symbol: str | None = None,
    live: bool = False,
    strategy_mode: str | None = None,
    live_max_open_positions: int | None = None,
) -> tuple[list[tuple[str, str]], str | None, str | None, list[str]]:
    """Merge, check and hash a parsed config file: (problems, canonical_json, config_id, layers);
    on problems the JSON and id are None."""

def config_fields() -> list[tuple[str, str]]:
    """Every leaf key of a merged config (dotted path) with its Python type, in declaration order."""

def strategy_modes() -> tuple[list[str], list[tuple[str, str]], int]:
    """Canonical strategy modes, their aliases and the live safety limit on max_open_positions."""

def canonical_strategy_mode(name: str) -> str:
    """The canonical strategy mode for a name or alias (any case); raises ValueError."""

def config_symbols(raw: Any) -> list[str]:
    """Sorted symbols with overrides anywhere in a parsed config file."""

def analyze_series(
    t: Sequence[int],
    o: Sequence[float],
    h: Sequence[float],
    l: Sequence[float],
    c: Sequence[float],
    v: Sequence[float],
    config_json: str | None,
    symbol: str,
    btc_bullish: Sequence[int] | None = None,
) -> dict[str, list[int]]:
    """Entry signal (1/-1/0) and confidence (0/1/2) for every bar."""

def step_json(state_json: str, event_json: str, params_json: str) -> str:
    """JSON envelope API; returns `{"ok": ...}` text and never raises."""

def initial_state_json(params_json: str) -> str: ...
def compute_indicators(
    t: Sequence[int],
    o: Sequence[float],
    h: Sequence[float],
    l: Sequence[float],
    c: Sequence[float],
    v: Sequence[float],
    config_json: str | None = None,
) -> dict[str, list[float]]:
    """Every indicator snapshot field as a column (NaN before warm-up)."""

def ema(values: Sequence[float], n: int) -> list[float]: ...
def sma(values: Sequence[float], n: int) -> list[float]: ...
def rsi(values: Sequence[float], n: int) -> list[float]: ...
def atr(h: Sequence[float], l: Sequence[float], c: Sequence[float], n: int) -> list[float]: ...
def adx(
    h: Sequence[float], l: Sequence[float], c: Sequence[float], n: int
) -> tuple[list[float], list[float], list[float]]:
    """(adx, plus_di, minus_di)."""

def bbands(
    values: Sequence[float], n: int, nbdev: float = 2.0
) -> tuple[list[float], list[float], list[float]]:
    """(upper, middle, lower)."""

def macd(
    values: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[list[float], list[float], list[float]]:
    """(macd, signal, hist)."""

def stochrsi(
    values: Sequence[float], timeperiod: int = 14, fastk_period: int = 5, fastd_period: int = 3
) -> tuple[list[float], list[float]]:
    """TA-Lib STOCHRSI: (fastk, fastd) on 0..100."""

def stochrsi_smoothed(
    values: Sequence[float], window: int = 14, smooth1: int = 3, smooth2: int = 3
) -> tuple[list[float], list[float]]:
    """Mei Alpha's smoothed StochRSI on 0..1: (k, d)."""

@final
class Intent:
    intent_id: int
    symbol: str
    kind: Literal["open", "add", "reduce", "close", "reverse"]
    side: Literal["long", "short"]
    quantity: float
    price: float
    notional_usd: float
    reason: str
    reason_code: str
    confidence: Literal["low", "medium", "high"]
    score: float
    timestamp_ms: int
    reduce_only: bool
    leverage: float

@final
class Fill:
    intent_id: int
    symbol: str
    kind: Literal["open", "add", "reduce", "close", "reverse"]
    side: Literal["long", "short"]
    quantity: float
    price: float
    notional_usd: float
    fee_usd: float
    pnl_usd: float
    reason_code: str
    timestamp_ms: int

@final
class StepResult:
    intents: list[Intent]
    fills: list[Fill]
    blocked: list[tuple[str, str]]
    def __len__(self) -> int: ...

@final
class Kernel:
    cash: float
    def __new__(
        cls,
        config_json: str | None = None,
        initial_cash: float = 10000.0,
        fill_mode: Literal["simulate", "external"] = "simulate",
    ) -> Kernel: ...
    def set_symbol_config(self, symbol: str, config_json: str) -> None: ...
    def step_candle(
        self, symbol: str, t: int, o: float, h: float, l: float, c: float, v: float
    ) -> StepResult: ...
    def on_funding(self, symbol: str, rate: float, price: float, t: int) -> float: ...
    def on_mid(self, symbol: str, price: float, t: int) -> StepResult: ...
    def evaluate(self, now_ms: int, equity: float | None = None) -> StepResult: ...
    def evaluate_sub_bar(
        self, prices: list[tuple[str, float]], now_ms: int, equity: float | None = None
    ) -> StepResult: ...
    def apply_fill(
        self,
        symbol: str,
        side: str,
        quantity: float,
        price: float,
        fee_usd: float,
        timestamp_ms: int,
        confidence: str = "medium",
        leverage: float = 1.0,
        intent_id: int = 0,
    ) -> float: ...
    def equity(self) -> float: ...
    def positions_json(self) -> str: ...
    def snapshot_json(self, symbol: str) -> str | None: ...
    def last_decision(self, symbol: str) -> tuple[int, int] | None: ...
    def save_state(self) -> str: ...
    def load_state(self, text: str) -> None: ...

def bench_native(
    t: Sequence[int],
    o: Sequence[float],
    h: Sequence[float],
    l: Sequence[float],
    c: Sequence[float],
    v: Sequence[float],
    config_json: str | None = None,
    repeats: int = 1,
) -> tuple[int, float, int]:
    """(bars, seconds, fills) for a native run over the bars, evaluating after every bar."""

def intervals() -> dict[str, int]:
    """Interval names and their length in milliseconds (the one table)."""
