"""Data checks that return typed findings.

Every finding names its key: ``(symbol, interval, t)`` for a row, a ``t`` range for a gap or a run.
Nothing here changes data. Classes (``Finding.check``):

``nonfinite``        NaN or infinite price (or volume, for trade candles)
``ohlc``             high < low, open/close outside [low, high], or a price <= 0
``negative_volume``  v < 0
``misaligned``       t is not a multiple of the interval (funding: of one hour)
``duplicate``        more than one row with the same key
``t_close``          stored/source close time differs from ``t + interval_ms - 1``
``gap``              missing bar times between the first and last bar, listed as ranges
``zero_volume``      runs of bars with v == 0 (real on Hyperliquid and Binance; see shared/data README)
``implausible``      a high or low more than ``PLAUSIBLE_FACTOR`` times off the median close of the
                     neighbouring bars (``h = 1e308`` passes every row check; shared/data stays within 2.1x)
``meta``             candle_meta disagrees with the rows it describes
``funding_gap``      missing funding hours given the source period (Hyperliquid has real ones)
``unreadable``       a source file (``--file``) that cannot be parsed (truncated, overwritten, bad
                     format), or a database that fails SQLite's ``quick_check``
``skipped``          a source file (``--file``) that no parser takes (name or type not recognised)

Mark candles (``mark_candles``) carry no meaningful volume (0 or NaN in the sources), so volume
checks are not applied to them.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.data.candle_store import CandleBatch, CandleKind, CandleStore
from engine.data.funding_store import FundingBatch, FundingStore
from engine.data.intervals import HOUR_MS, interval_ms
from engine.data.schema import funding_db_path

CHECKS = (
    "nonfinite",
    "ohlc",
    "negative_volume",
    "misaligned",
    "duplicate",
    "t_close",
    "gap",
    "zero_volume",
    "implausible",
    "meta",
    "funding_gap",
    "unreadable",
    "skipped",
)

#: Row-level classes: a row with one of these is corrupt and is never written by an importer.
ROW_CHECKS = frozenset({"nonfinite", "ohlc", "negative_volume", "misaligned", "duplicate", "t_close"})

#: ``implausible``: a high above, or a low below, this many times (1/times) the neighbours' median close.
#: The largest ratio in the real data of shared/data is 2.1 (XRP 1h, 2025-10-10 crash).
PLAUSIBLE_FACTOR = 10.0
#: Bars each side whose closes form the reference (so a run of a few bad bars is still caught).
PLAUSIBLE_NEIGHBOURS = 5


def iso(t_ms: int) -> str:
    """``1704067200000`` -> ``2024-01-01T00:00:00Z`` (milliseconds shown only when non-zero)."""
    dt = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    if t_ms % 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(x: float) -> str:
    return repr(float(x))


@dataclass(frozen=True)
class Finding:
    check: str
    symbol: str
    interval: str
    t: int
    detail: str
    t_end: int | None = None
    count: int = 1
    table: str = "candles"
    path: str | None = None  # file-level findings (unreadable, skipped) name a file, not a bar

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.symbol, self.interval, self.t)

    @classmethod
    def of_file(cls, check: str, path: Path | str, detail: str) -> Finding:
        return cls(check, "", "", 0, detail, table="file", path=str(path))

    def line(self) -> str:
        if self.path is not None:
            return f"{self.check} {self.path}: {self.detail}"
        where = "" if self.table == "candles" else f"[{self.table}] "
        if self.t_end is None:
            return f"{self.check} {where}({self.symbol}, {self.interval}, t={self.t} {iso(self.t)}): {self.detail}"
        return (
            f"{self.check} {where}({self.symbol}, {self.interval}) {iso(self.t)} .. {iso(self.t_end)}: "
            f"{self.detail}"
        )


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    def of(self, check: str, symbol: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.check == check and (symbol is None or f.symbol == symbol)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.check] = out.get(f.check, 0) + 1
        return out

    def failed(self, allow: Iterable[str] = ()) -> bool:
        allowed = set(allow)
        return any(f.check not in allowed for f in self.findings)

    def render(self, allow: Iterable[str] = (), max_per_check: int | None = 50) -> str:
        allowed = set(allow)
        lines = [f"checked: {item}" for item in self.checked]
        by_check: dict[str, list[Finding]] = {}
        for f in self.findings:
            by_check.setdefault(f.check, []).append(f)
        for check in sorted(by_check, key=lambda c: CHECKS.index(c) if c in CHECKS else len(CHECKS)):
            items = by_check[check]
            level = "WARNING" if check in allowed else "ERROR"
            if all(f.path is not None for f in items):
                lines.append(f"{level} {check}: {len(items)} file(s)")
            else:
                total_units = sum(f.count for f in items)
                lines.append(f"{level} {check}: {len(items)} finding(s), {total_units} row(s)/bar(s)")
            shown = items if max_per_check is None else items[:max_per_check]
            lines.extend(f"  {f.line()}" for f in shown)
            if len(shown) < len(items):
                lines.append(f"  ... {len(items) - len(shown)} more {check} finding(s)")
        errors = sum(1 for f in self.findings if f.check not in allowed)
        warnings = len(self.findings) - errors
        lines.append(f"result: {'FAIL' if errors else 'OK'} ({errors} error(s), {warnings} warning(s))")
        return "\n".join(lines)


# ---- row checks ------------------------------------------------------------------------------------


def duplicate_findings(
    times: npt.NDArray[np.int64],
    symbol: str,
    interval: str,
    table: str,
    detail: Callable[[int, int], str] = lambda _t, count: f"{count} rows with this key",
) -> tuple[list[Finding], npt.NDArray[np.bool_]]:
    """One ``duplicate`` finding per time that more than one row holds (``detail(time, count)``), and
    the mask of every row at such a time."""
    uniq, counts = np.unique(times, return_counts=True)
    dup = counts > 1
    findings = [
        Finding("duplicate", symbol, interval, int(t), detail(int(t), int(n)), count=int(n), table=table)
        for t, n in zip(uniq[dup], counts[dup], strict=True)
    ]
    return findings, np.isin(times, uniq[dup])


def row_findings(
    batch: CandleBatch, kind: CandleKind = CandleKind.TRADE
) -> tuple[list[Finding], npt.NDArray[np.bool_]]:
    """Row-level findings for ``batch`` (in the batch's order) and a mask of the corrupt rows.

    Duplicates: every row of a duplicated key is marked corrupt; one finding per key.
    """
    table = kind.table
    sym, itv = batch.symbol, batch.interval
    ms = interval_ms(itv)
    bad = np.zeros(len(batch), dtype=np.bool_)
    findings: list[Finding] = []
    prices = np.vstack([batch.o, batch.h, batch.l, batch.c]) if len(batch) else np.empty((4, 0))
    finite: npt.NDArray[np.bool_] = np.asarray(np.isfinite(prices).all(axis=0), dtype=np.bool_)
    check_volume = kind is CandleKind.TRADE
    suspicious = ~finite | (batch.t % ms != 0)
    with np.errstate(invalid="ignore"):
        suspicious |= (batch.h < batch.l) | (batch.o < batch.l) | (batch.o > batch.h)
        suspicious |= (batch.c < batch.l) | (batch.c > batch.h) | (prices <= 0).any(axis=0)
        if check_volume:
            suspicious |= ~np.isfinite(batch.v) | (batch.v < 0)
    for i in np.flatnonzero(suspicious):
        t = int(batch.t[i])
        o, h, lo, c, v = (float(x[i]) for x in (batch.o, batch.h, batch.l, batch.c, batch.v))

        def add(check: str, detail: str, t: int = t) -> None:
            findings.append(Finding(check, sym, itv, t, detail, table=table))

        named = {"o": o, "h": h, "l": lo, "c": c}
        if check_volume:
            named["v"] = v
        nonfinite = [f"{k}={_num(x)}" for k, x in named.items() if not np.isfinite(x)]
        if nonfinite:
            add("nonfinite", "non-finite value(s) " + ", ".join(nonfinite))
        if finite[i]:
            if h < lo:
                add("ohlc", f"high < low (h={_num(h)}, l={_num(lo)})")
            if o < lo or o > h:
                add("ohlc", f"open outside [low, high] (o={_num(o)}, l={_num(lo)}, h={_num(h)})")
            if c < lo or c > h:
                add("ohlc", f"close outside [low, high] (c={_num(c)}, l={_num(lo)}, h={_num(h)})")
            nonpos = [f"{k}={_num(x)}" for k, x in named.items() if k != "v" and x <= 0]
            if nonpos:
                add("ohlc", "non-positive price " + ", ".join(nonpos))
        if check_volume and np.isfinite(v) and v < 0:
            add("negative_volume", f"negative volume (v={_num(v)})")
        if t % ms:
            add("misaligned", f"t is not a multiple of {ms} ms ({itv})")
    dups, dup_rows = duplicate_findings(batch.t, sym, itv, table)
    findings += dups
    return findings, bad | suspicious | dup_rows


def close_time_findings(
    batch: CandleBatch, t_close: npt.NDArray[np.int64], table: str = "candles"
) -> tuple[list[Finding], npt.NDArray[np.bool_]]:
    """Rows whose given close time is not ``t + interval_ms - 1``."""
    expected = batch.t_close
    bad = t_close != expected
    findings = [
        Finding(
            "t_close",
            batch.symbol,
            batch.interval,
            int(batch.t[i]),
            f"close time {int(t_close[i])} != t + interval_ms - 1 = {int(expected[i])}",
            table=table,
        )
        for i in np.flatnonzero(bad)
    ]
    return findings, bad


# ---- series checks ---------------------------------------------------------------------------------


def gap_findings(
    symbol: str, interval: str, t: npt.NDArray[np.int64], table: str = "candles"
) -> list[Finding]:
    """Missing bar times between consecutive aligned bars, one finding per contiguous range."""
    ms = interval_ms(interval)
    return _missing_runs(np.unique(t[t % ms == 0]), ms, "gap", symbol, interval, "bar(s)", table)


def _missing_runs(
    ts: npt.NDArray[np.int64], step: int, check: str, symbol: str, interval: str, noun: str, table: str
) -> list[Finding]:
    """One ``check`` finding per run of times missing between consecutive ``ts`` (unique, sorted)
    that should be ``step`` apart."""
    out = []
    for i in np.flatnonzero(np.diff(ts) > step):
        start, end = int(ts[i]) + step, int(ts[i + 1]) - step
        missing = (end - start) // step + 1
        out.append(
            Finding(
                check,
                symbol,
                interval,
                start,
                f"{missing} missing {noun}",
                t_end=end,
                count=missing,
                table=table,
            )
        )
    return out


def zero_volume_findings(batch: CandleBatch) -> list[Finding]:
    """Runs of consecutive (adjacent in time) bars with ``v == 0``."""
    ms = interval_ms(batch.interval)
    order = np.argsort(batch.t, kind="stable")
    t, v = batch.t[order], batch.v[order]
    zero = np.flatnonzero(v == 0)
    out: list[Finding] = []
    if len(zero) == 0:
        return out
    run_start = prev = zero[0]
    for idx in [*zero[1:], None]:
        if idx is not None and idx == prev + 1 and t[idx] - t[prev] == ms:
            prev = idx
            continue
        count = int(prev - run_start + 1)
        out.append(
            Finding(
                "zero_volume",
                batch.symbol,
                batch.interval,
                int(t[run_start]),
                f"{count} bar(s) with v = 0",
                t_end=int(t[prev]),
                count=count,
            )
        )
        if idx is not None:
            run_start = prev = idx
    return out


def implausible_findings(batch: CandleBatch, table: str = "candles") -> list[Finding]:
    """Bars whose high or low is ``PLAUSIBLE_FACTOR`` times off the median close of their neighbours.

    Neighbours are the ``PLAUSIBLE_NEIGHBOURS`` bars each side in time order (the bar itself left
    out, so an all-``1e308`` bar is caught too); non-finite or non-positive closes do not count.
    """
    n = len(batch)
    if n < 2:
        return []
    order = np.argsort(batch.t, kind="stable")
    t, h, lo = batch.t[order], batch.h[order], batch.l[order]
    with np.errstate(invalid="ignore"):
        c = np.where(np.isfinite(batch.c[order]) & (batch.c[order] > 0), batch.c[order], np.nan)
    k = PLAUSIBLE_NEIGHBOURS
    pad = np.concatenate([np.full(k, np.nan), c, np.full(k, np.nan)])
    window = np.lib.stride_tricks.sliding_window_view(pad, 2 * k + 1).copy()
    window[:, k] = np.nan
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: no reference, no finding
        ref = np.nanmedian(window, axis=1)
        high_bad = np.isfinite(h) & (h > ref * PLAUSIBLE_FACTOR)
        low_bad = np.isfinite(lo) & (lo > 0) & (lo < ref / PLAUSIBLE_FACTOR)
    out: list[Finding] = []
    for i in np.flatnonzero(high_bad | low_bad):
        parts = []
        if high_bad[i]:
            parts.append(f"h={_num(h[i])} is {h[i] / ref[i]:.3g}x")
        if low_bad[i]:
            parts.append(f"l={_num(lo[i])} is 1/{ref[i] / lo[i]:.3g} of")
        out.append(
            Finding(
                "implausible",
                batch.symbol,
                batch.interval,
                int(t[i]),
                f"{' and '.join(parts)} the neighbouring bars' median close {_num(ref[i])}",
                table=table,
            )
        )
    return out


def verify_batch(batch: CandleBatch, kind: CandleKind = CandleKind.TRADE) -> list[Finding]:
    """All row and series checks for one symbol and interval."""
    findings, _ = row_findings(batch, kind)
    findings += gap_findings(batch.symbol, batch.interval, batch.t, kind.table)
    findings += implausible_findings(batch, kind.table)
    if kind is CandleKind.TRADE:
        findings += zero_volume_findings(batch)
    return findings


def verify_funding_batch(batch: FundingBatch, period_hours: int) -> list[Finding]:
    sym = batch.symbol
    out: list[Finding] = []
    for i in np.flatnonzero(~np.isfinite(batch.rate)):
        out.append(
            Finding(
                "nonfinite",
                sym,
                "funding",
                int(batch.time[i]),
                f"rate={_num(batch.rate[i])}",
                table="funding_rates",
            )
        )
    for i in np.flatnonzero(batch.time % HOUR_MS != 0):
        out.append(
            Finding(
                "misaligned",
                sym,
                "funding",
                int(batch.time[i]),
                "time is not on the hour",
                table="funding_rates",
            )
        )
    out += duplicate_findings(batch.time, sym, "funding", "funding_rates")[0]
    step = period_hours * HOUR_MS
    times = np.unique(batch.time)
    out += _missing_runs(
        times, step, "funding_gap", sym, f"{period_hours}h", "funding time(s)", "funding_rates"
    )
    return out


# ---- databases -------------------------------------------------------------------------------------


def verify_db(
    db_dir: Path | str,
    intervals: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    include_funding: bool = True,
) -> Report:
    """Run every check over the databases in ``db_dir`` (all intervals present unless given).

    A database SQLite cannot read (overwritten, truncated, not a database) is an ``unreadable``
    finding naming the file; the other databases are still checked."""
    report = Report()
    with CandleStore(db_dir) as store:
        for interval in intervals or store.intervals_on_disk():
            try:
                _quick_check(store.conn(interval))
                _verify_interval(store, interval, symbols, report)
            except sqlite3.DatabaseError as exc:
                path = Path(db_dir) / f"candles_{interval}.db"
                report.findings.append(
                    Finding.of_file("unreadable", path, f"not a readable SQLite database: {exc}")
                )
    if include_funding and funding_db_path(Path(db_dir)).exists():
        try:
            _verify_funding(db_dir, symbols, report)
        except sqlite3.DatabaseError as exc:
            path = funding_db_path(Path(db_dir))
            report.findings.append(
                Finding.of_file("unreadable", path, f"not a readable SQLite database: {exc}")
            )
    return report


def _quick_check(conn: sqlite3.Connection) -> None:
    """Every page of the file read and checked, so damage the queries would not touch is found."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("; ".join(" ".join(p.split()) for p in problems))


def _verify_interval(
    store: CandleStore, interval: str, symbols: Sequence[str] | None, report: Report
) -> None:
    conn = store.conn(interval)
    ms = interval_ms(interval)
    for kind in CandleKind:
        rows = conn.execute(
            f"SELECT symbol, interval, t, t_close FROM {kind.table} "
            "WHERE interval != ? OR t_close != t + ? ORDER BY symbol, t",
            (interval, ms - 1),
        ).fetchall()
        for sym, itv, t, t_close in rows:
            if symbols and sym not in symbols:
                continue
            if itv != interval:
                report.findings.append(
                    Finding(
                        "misaligned",
                        sym,
                        itv,
                        t,
                        f"row of interval {itv!r} in candles_{interval}.db",
                        table=kind.table,
                    )
                )
            else:
                report.findings.append(
                    Finding("t_close", sym, itv, t, f"t_close {t_close} != t + {ms - 1}", table=kind.table)
                )
        for sym in store.symbols(interval, kind):
            if symbols and sym not in symbols:
                continue
            batch = store.read(sym, interval, kind=kind)
            report.extend(verify_batch(batch, kind))
            report.checked.append(f"{kind.table} {sym} {interval}: {len(batch)} bars")
            meta = store.meta(sym, interval, kind)
            if meta is None:
                report.findings.append(
                    Finding("meta", sym, interval, int(batch.t[0]), "no metadata row", table=kind.table)
                )
            elif (meta.first_t, meta.last_t, meta.rows) != (
                int(batch.t[0]),
                int(batch.t[-1]),
                len(batch),
            ):
                report.findings.append(
                    Finding(
                        "meta",
                        sym,
                        interval,
                        int(batch.t[0]),
                        f"metadata says first_t={meta.first_t} last_t={meta.last_t} rows={meta.rows}, "
                        f"table has {int(batch.t[0])} {int(batch.t[-1])} {len(batch)}",
                        table=kind.table,
                    )
                )


def _verify_funding(db_dir: Path | str, symbols: Sequence[str] | None, report: Report) -> None:
    with FundingStore(db_dir) as fstore:
        for sym in fstore.symbols():
            if symbols and sym not in symbols:
                continue
            fmeta = fstore.meta(sym)
            period = fmeta.period_hours if fmeta else 1
            fbatch = fstore.read(sym)
            report.extend(verify_funding_batch(fbatch, period))
            report.checked.append(f"funding_rates {sym}: {len(fbatch)} rows, period {period}h")
