"""Parsers for the candle and funding formats ai-quant imports. They read and validate; they never write.

Formats:

* freqtrade Feather (Arrow IPC, LZ4): ``<BASE>_<QUOTE>[_<SETTLE>]-<tf>[-<type>].feather`` with columns
  ``date, open, high, low, close, volume``. ``type`` ``futures`` (or none: spot) -> trade candles,
  ``mark`` -> mark candles (table ``mark_candles``), ``funding_rate`` -> funding (rate in ``open``).
* Binance public data (data.binance.vision), ``.csv`` or the ``.zip`` holding it: klines
  ``open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,
  taker_buy_quote_volume,ignore`` with or without a header row (times in ms, or in µs as in newer
  spot files: converted exactly), and funding ``calc_time,funding_interval_hours,last_funding_rate``.
* Hyperliquid ``candleSnapshot`` JSON (list of ``{"t","T","s","i","o","c","h","l","v","n"}``) and
  ``fundingHistory`` JSON (list of ``{"coin","fundingRate","premium","time"}``), bare or inside a
  vcrpy cassette (``.yaml``) as recorded by the hyperliquid-python-sdk tests.

Symbols are the base asset (``BTC_USDC_USDC-5m-futures.feather`` -> ``BTC``, ``BTCUSDT`` -> ``BTC``).
The source goes to the metadata: ``hyperliquid``, ``binance-futures``, ``binance-spot``, or, for a
freqtrade file whose venue the path does not name, ``freqtrade-futures`` / ``freqtrade-spot``.

Every row is validated (:func:`engine.data.verify.row_findings`); corrupt rows come back as findings
with their key and a mask, and the caller decides (the importer refuses the file by default).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import yaml

from engine.data.candle_store import CandleBatch, CandleKind
from engine.data.funding_store import PERIOD_HOURS_BY_VENUE, FundingBatch, floor_to_hour
from engine.data.intervals import HOUR_MS, INTERVALS, interval_ms
from engine.data.verify import Finding, close_time_findings, duplicate_findings, row_findings

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
FUNDING_CSV_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD")

FREQTRADE_NAME = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<tf>\d+[smhdwM])(?:-(?P<type>futures|mark|funding_rate|spot|index|premiumIndex))?\.feather$"
)
BINANCE_KLINE_NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+)-(?P<tf>\d+[smhdwM])-\d{4}-\d{2}(?:-\d{2})?\.(csv|zip)$"
)
BINANCE_FUNDING_NAME = re.compile(r"^(?P<pair>[A-Z0-9]+)-fundingRate-\d{4}-\d{2}\.(csv|zip)$")


class ImportFormatError(ValueError):
    """A file that looks like a supported format but cannot be read as one."""


@dataclass(frozen=True)
class ParseOptions:
    """Overrides for what the parser would infer from the path and content."""

    source: str | None = None
    symbol: str | None = None
    interval: str | None = None
    funding_period_hours: int | None = None


Batch = TypeVar("Batch", CandleBatch, FundingBatch)


@dataclass(frozen=True)
class ParsedFile(Generic[Batch]):
    """One file read and validated: its rows, the findings and the mask of the corrupt ones."""

    path: Path
    batch: Batch
    source: str
    findings: list[Finding] = field(default_factory=list)
    bad: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    origin: str = ""

    @property
    def clean(self) -> Batch:
        return self.batch.take(~self.bad)


@dataclass(frozen=True)
class ParsedCandles(ParsedFile[CandleBatch]):
    kind: CandleKind = field(kw_only=True)


@dataclass(frozen=True)
class ParsedFunding(ParsedFile[FundingBatch]):
    period_hours: int = field(kw_only=True)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


ParsedItem = ParsedCandles | ParsedFunding | Skipped


# ---- helpers ---------------------------------------------------------------------------------------


def base_of_pair(pair: str) -> str:
    """``BTCUSDT`` -> ``BTC`` (first matching quote suffix); unknown quote -> the pair itself."""
    for quote in QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)]
    return pair


def venue_of_path(path: Path) -> str | None:
    parts = {p.lower() for p in path.parts}
    joined = "/".join(parts)
    if "hyperliquid" in joined:
        return "hyperliquid"
    if "binance" in joined:
        return "binance"
    return None


def candle_batch(
    symbol: str, interval: str, t: npt.NDArray[np.int64], cols: Sequence[npt.NDArray[Any]]
) -> CandleBatch:
    o, h, lo, c, v, n = (np.asarray(x, dtype=np.float64) for x in cols)
    return CandleBatch(symbol, interval, np.asarray(t, dtype=np.int64), o, h, lo, c, v, n)


def validate_candles(
    path: Path,
    batch: CandleBatch,
    kind: CandleKind,
    source: str,
    t_close: npt.NDArray[np.int64] | None = None,
    origin: str = "",
) -> ParsedCandles:
    findings, bad = row_findings(batch, kind)
    if t_close is not None:
        more, bad2 = close_time_findings(batch, t_close, kind.table)
        findings += more
        bad = bad | bad2
    findings.sort(key=lambda f: (f.t, f.check))
    return ParsedCandles(path, batch, source, findings, bad, origin, kind=kind)


def validate_funding(
    path: Path,
    symbol: str,
    raw_time: npt.NDArray[np.int64],
    rate: npt.NDArray[np.float64],
    premium: npt.NDArray[np.float64],
    source: str,
    period_hours: int,
    origin: str = "",
) -> ParsedFunding:
    """Floor times to the hour; report non-finite rates and rows that collide on the floored hour."""
    time = floor_to_hour(raw_time)
    batch = FundingBatch(symbol, time, rate, premium)
    findings: list[Finding] = []
    bad = ~np.isfinite(rate)
    for i in np.flatnonzero(bad):
        findings.append(
            Finding(
                "nonfinite",
                symbol,
                "funding",
                int(time[i]),
                f"rate={float(rate[i])!r}",
                table="funding_rates",
            )
        )

    def in_one_hour(t: int, count: int) -> str:
        raw = ", ".join(str(int(x)) for x in raw_time[time == t])
        return f"{count} rows fall in this hour (source times {raw})"

    dups, dup_rows = duplicate_findings(time, symbol, "funding", "funding_rates", in_one_hour)
    findings += dups
    bad |= dup_rows
    return ParsedFunding(path, batch, source, findings, bad, origin, period_hours=period_hours)


def _funding_period(venue: str | None, options: ParseOptions, time: npt.NDArray[np.int64]) -> int:
    if options.funding_period_hours:
        return options.funding_period_hours
    if venue in PERIOD_HOURS_BY_VENUE:
        return PERIOD_HOURS_BY_VENUE[venue]
    steps = np.diff(np.unique(floor_to_hour(time)))
    return max(1, int(np.median(steps)) // HOUR_MS) if len(steps) else 8


# ---- freqtrade feather -----------------------------------------------------------------------------


def parse_feather(path: Path, options: ParseOptions = ParseOptions()) -> list[ParsedItem]:
    m = FREQTRADE_NAME.match(path.name)
    if not m:
        return [Skipped(path, "feather file name is not <BASE>_<QUOTE>[_<SETTLE>]-<tf>[-<type>].feather")]
    ctype = m["type"] or "spot"
    if ctype in ("index", "premiumIndex"):
        return [Skipped(path, f"candle type {ctype!r} is not imported")]
    table = feather.read_table(path)
    missing = {"date", "open", "high", "low", "close", "volume"} - set(table.column_names)
    if missing:
        raise ImportFormatError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    date = table.column("date").cast("int64").to_numpy()
    unit = getattr(table.schema.field("date").type, "unit", "ns")
    per_ms = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}[unit]
    t = date * 1000 if per_ms is None else date // per_ms
    cols = {
        k: table.column(k).to_numpy(zero_copy_only=False).astype(np.float64)
        for k in ("open", "high", "low", "close", "volume")
    }
    venue = venue_of_path(path)
    futures = ctype != "spot"
    source = options.source or (
        f"{venue}-{'futures' if futures else 'spot'}" if venue == "binance" else venue
    )
    source = source or f"freqtrade-{'futures' if futures else 'spot'}"
    symbol = options.symbol or m["base"]
    if ctype == "funding_rate":
        period = _funding_period(venue, options, t)
        nan = np.full(len(t), np.nan)
        return [
            validate_funding(path, symbol, t, cols["open"], nan, source, period, "freqtrade funding_rate")
        ]
    interval = options.interval or m["tf"]
    if interval not in INTERVALS:
        raise ImportFormatError(f"{path}: timeframe {interval!r} is not one of {', '.join(INTERVALS)}")
    nan = np.full(len(t), np.nan)
    batch = candle_batch(
        symbol, interval, t, (cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], nan)
    )
    kind = CandleKind.MARK if ctype == "mark" else CandleKind.TRADE
    return [validate_candles(path, batch, kind, source, origin=f"freqtrade {ctype}")]


# ---- Binance public data CSV -----------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".csv")]
            if len(names) != 1:
                raise ImportFormatError(f"{path}: expected one .csv inside, found {len(names)}")
            return zf.read(names[0]).decode("utf-8")
    return path.read_text(encoding="utf-8")


def _csv_frame(text: str, columns: Sequence[str], path: Path) -> pd.DataFrame:
    first = text.lstrip().split("\n", 1)[0].strip()
    fields = [f.strip() for f in first.split(",")]
    has_header = bool(fields) and fields[0] == columns[0]
    if not has_header and len(fields) != len(columns):
        raise ImportFormatError(f"{path}: expected {len(columns)} columns, first line has {len(fields)}")
    frame = pd.read_csv(
        io.StringIO(text), header=0 if has_header else None, names=None if has_header else list(columns)
    )
    if has_header and list(frame.columns) != list(columns):
        raise ImportFormatError(f"{path}: header {list(frame.columns)} is not {list(columns)}")
    for col in frame.columns:
        if frame[col].dtype == object:
            bad = pd.to_numeric(frame[col], errors="coerce").isna() & frame[col].notna()
            if bad.any():
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 1 + int(has_header)
                raise ImportFormatError(
                    f"{path}: line {line}: column {col!r} is not a number: {frame[col][bad].iloc[0]!r}"
                )
    return frame


def _ms(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Binance times are ms, or µs (16 digits) in newer spot files; µs are converted exactly."""
    return np.where(values >= 10**14, values // 1000, values)


def csv_kind(path: Path) -> str | None:
    """``kline``, ``funding`` or ``None`` from the first line (header or column count)."""
    try:
        first = _read_text(path).lstrip().split("\n", 1)[0]
    except (UnicodeDecodeError, zipfile.BadZipFile):
        return None
    fields = [f.strip() for f in first.split(",")]
    if fields[0] == "open_time" or (len(fields) == len(KLINE_COLUMNS) and fields[0].isdigit()):
        return "kline"
    if fields[0] == "calc_time" or (len(fields) == 3 and fields[0].isdigit()):
        return "funding"
    return None


def parse_binance_csv(path: Path, options: ParseOptions = ParseOptions()) -> list[ParsedItem]:
    kind = csv_kind(path)
    if kind is None:
        return [Skipped(path, "CSV is neither a Binance kline nor a Binance funding file")]
    text = _read_text(path)
    low_path = "/".join(p.lower() for p in path.parts)
    source = options.source or ("binance-spot" if "/spot/" in f"/{low_path}/" else "binance-futures")
    if kind == "funding":
        fm = BINANCE_FUNDING_NAME.match(path.name)
        symbol = options.symbol or (base_of_pair(fm["pair"]) if fm else None)
        if symbol is None:
            raise ImportFormatError(f"{path}: cannot tell the symbol from the name; pass --symbol")
        frame = _csv_frame(text, FUNDING_CSV_COLUMNS, path)
        periods = sorted({int(x) for x in frame["funding_interval_hours"]})
        if options.funding_period_hours:
            period = options.funding_period_hours
        elif len(periods) == 1:
            period = periods[0]
        else:
            raise ImportFormatError(
                f"{path}: mixed funding_interval_hours {periods}; import the parts separately"
            )
        raw = _ms(frame["calc_time"].to_numpy(dtype=np.int64))
        rate = frame["last_funding_rate"].to_numpy(dtype=np.float64)
        return [
            validate_funding(
                path, symbol, raw, rate, np.full(len(raw), np.nan), source, period, "binance funding csv"
            )
        ]
    km = BINANCE_KLINE_NAME.match(path.name)
    symbol = options.symbol or (base_of_pair(km["pair"]) if km else None)
    interval = options.interval or (km["tf"] if km else None)
    if symbol is None or interval is None:
        raise ImportFormatError(
            f"{path}: cannot tell symbol/interval from the name; pass --symbol and --interval"
        )
    interval_ms(interval)
    frame = _csv_frame(text, KLINE_COLUMNS, path)
    t = _ms(frame["open_time"].to_numpy(dtype=np.int64))
    t_close = _ms(frame["close_time"].to_numpy(dtype=np.int64))
    batch = candle_batch(
        symbol,
        interval,
        t,
        [frame[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume", "count")],
    )
    return [validate_candles(path, batch, CandleKind.TRADE, source, t_close, "binance kline csv")]


# ---- Hyperliquid JSON ------------------------------------------------------------------------------


def _hl_candles(
    path: Path, rows: list[dict[str, Any]], options: ParseOptions, origin: str
) -> list[ParsedItem]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row["s"]), str(row["i"])), []).append(row)
    out: list[ParsedItem] = []
    for (sym, itv), items in sorted(groups.items()):
        interval = options.interval or itv
        if interval not in INTERVALS:
            out.append(Skipped(path, f"{sym}: interval {interval!r} is not one of {', '.join(INTERVALS)}"))
            continue
        t = np.array([int(r["t"]) for r in items], dtype=np.int64)
        t_close = np.array([int(r["T"]) for r in items], dtype=np.int64)
        cols = [np.array([float(r[k]) for r in items]) for k in ("o", "h", "l", "c", "v")]
        cols.append(np.array([float(r["n"]) if r.get("n") is not None else np.nan for r in items]))
        batch = candle_batch(options.symbol or sym, interval, t, cols)
        out.append(
            validate_candles(path, batch, CandleKind.TRADE, options.source or "hyperliquid", t_close, origin)
        )
    return out


def _hl_funding(
    path: Path, rows: list[dict[str, Any]], options: ParseOptions, origin: str
) -> list[ParsedItem]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["coin"]), []).append(row)
    out: list[ParsedItem] = []
    for coin, items in sorted(groups.items()):
        raw = np.array([int(r["time"]) for r in items], dtype=np.int64)
        rate = np.array([float(r["fundingRate"]) for r in items])
        premium = np.array([float(r["premium"]) if r.get("premium") is not None else np.nan for r in items])
        period = options.funding_period_hours or PERIOD_HOURS_BY_VENUE["hyperliquid"]
        out.append(
            validate_funding(
                path,
                options.symbol or coin,
                raw,
                rate,
                premium,
                options.source or "hyperliquid",
                period,
                origin,
            )
        )
    return out


def parse_hyperliquid_payload(
    path: Path, payload: Any, options: ParseOptions, origin: str
) -> list[ParsedItem]:
    """A decoded ``candleSnapshot`` or ``fundingHistory`` response."""
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        keys = set(payload[0])
        if {"t", "T", "s", "i", "o", "h", "l", "c", "v"} <= keys:
            return _hl_candles(path, payload, options, origin)
        if {"coin", "fundingRate", "time"} <= keys:
            return _hl_funding(path, payload, options, origin)
    if isinstance(payload, list) and not payload:
        return [Skipped(path, "empty list")]
    return [Skipped(path, "JSON is neither a Hyperliquid candleSnapshot nor a fundingHistory response")]


def parse_json(path: Path, options: ParseOptions = ParseOptions()) -> list[ParsedItem]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{path}: invalid JSON: {exc}") from None
    return parse_hyperliquid_payload(path, payload, options, "hyperliquid json")


def parse_cassette(path: Path, options: ParseOptions = ParseOptions()) -> list[ParsedItem]:
    """A vcrpy cassette: import the ``candleSnapshot`` / ``fundingHistory`` interactions in it."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "interactions" not in doc:
        return [Skipped(path, "YAML is not a vcrpy cassette")]
    out: list[ParsedItem] = []
    kinds: list[str] = []
    for interaction in doc["interactions"]:
        try:
            request = json.loads(interaction["request"]["body"] or "{}")
            rtype = str(request.get("type"))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue
        kinds.append(rtype)
        if rtype not in ("candleSnapshot", "fundingHistory"):
            continue
        payload = json.loads(interaction["response"]["body"]["string"])
        out.extend(parse_hyperliquid_payload(path, payload, options, f"cassette {rtype}"))
    if not out:
        return [
            Skipped(
                path, f"cassette holds no candleSnapshot/fundingHistory ({', '.join(kinds) or 'nothing'})"
            )
        ]
    return out


# ---- dispatch --------------------------------------------------------------------------------------


#: What a damaged or hostile file makes the parsers raise besides ImportFormatError, OSError and
#: ValueError (rows missing keys, wrong JSON shapes, bad YAML/zip/Arrow, nesting deeper than the stack).
_MALFORMED = (
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    ArithmeticError,
    NotImplementedError,
    RecursionError,
    yaml.YAMLError,
    zipfile.BadZipFile,
    pa.ArrowException,
)


def parse_file(path: Path, options: ParseOptions = ParseOptions()) -> list[ParsedItem]:
    """Parse any supported file; unsupported files come back as :class:`Skipped` with the reason.

    A file that cannot be read raises :class:`ImportFormatError`, ``OSError`` or ``ValueError``.
    """
    try:
        return _parse_file(path, options)
    except (ImportFormatError, OSError, ValueError):
        raise
    except _MALFORMED as exc:
        raise ImportFormatError(f"{type(exc).__name__}: {exc}") from None


def _parse_file(path: Path, options: ParseOptions) -> list[ParsedItem]:
    suffix = path.suffix.lower()
    if suffix == ".feather":
        return parse_feather(path, options)
    if suffix in (".csv", ".zip"):
        return parse_binance_csv(path, options)
    if suffix == ".json":
        return parse_json(path, options)
    if suffix in (".yaml", ".yml"):
        return parse_cassette(path, options)
    return [Skipped(path, f"unsupported file type {suffix or '(none)'!r}")]


def iter_files(paths: Sequence[Path]) -> list[Path]:
    """Files named, plus every file under directories named (recursively), sorted, hidden ones left out."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                f
                for f in sorted(p.rglob("*"))
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        else:
            out.append(p)
    return out
