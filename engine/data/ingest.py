"""Import files into the candle and funding databases (the engine behind ``tools/import_candles.py``).

Policy: a file with corrupt rows is **refused** (nothing of it is written) and every corrupt row is
reported with its key; ``skip_corrupt=True`` writes the valid rows and still reports the corrupt ones.
Writes are idempotent upserts, so re-importing is a no-op and a newer file only adds its new bars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.aggregate import AggregationError, StoreAggregation, aggregate_in_store
from engine.data.candle_store import CandleBatch, CandleKind, CandleStore, SourceConflictError, UpsertResult
from engine.data.funding_store import FundingConflictError, FundingStore
from engine.data.importers import (
    Batch,
    ImportFormatError,
    ParsedCandles,
    ParsedFile,
    ParsedFunding,
    ParseOptions,
    Skipped,
    iter_files,
    parse_file,
)
from engine.data.intervals import interval_ms
from engine.data.verify import Finding


@dataclass(frozen=True)
class SymbolMapping:
    """``--symbol-map`` pairs and the ``--source-prefix`` switch (``binance-futures:BTC``)."""

    mapping: dict[str, str] = field(default_factory=dict)
    source_prefix: bool = False

    def apply(self, symbol: str, source: str) -> str:
        symbol = self.mapping.get(symbol, symbol)
        return f"{source}:{symbol}" if self.source_prefix else symbol

    @staticmethod
    def parse(text: str | None, source_prefix: bool = False) -> SymbolMapping:
        mapping: dict[str, str] = {}
        for part in (text or "").split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"--symbol-map entry {part!r} is not FROM=TO")
            key, value = part.split("=", 1)
            mapping[key.strip()] = value.strip()
        return SymbolMapping(mapping, source_prefix)


@dataclass
class FileResult:
    path: Path
    status: str  # ok | partial | refused | skipped | error
    what: str = ""
    result: UpsertResult = field(default_factory=UpsertResult)
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    message: str = ""

    def lines(self, root: Path | None = None) -> list[str]:
        name = str(self.path.relative_to(root)) if root and self.path.is_relative_to(root) else str(self.path)
        head = f"{self.status.upper():8} {name}"
        if self.what:
            head += f": {self.what}"
        if self.status in ("ok", "partial"):
            head += f" {self.rows} rows: {self.result}"
        if self.message:
            head += f" {self.message}" if self.status in ("ok", "partial") else f": {self.message}"
        return [head] + [f"    {f.line()}" for f in self.findings]


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    aggregations: list[StoreAggregation] = field(default_factory=list)
    aggregation_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.status in ("refused", "error") for f in self.files) or bool(self.aggregation_errors)

    def total(self, kind: str | None = None) -> UpsertResult:
        out = UpsertResult()
        for f in self.files:
            if kind is None or f.what.startswith(kind):
                out = out + f.result
        return out

    def render(self, root: Path | None = None) -> str:
        lines: list[str] = []
        for f in self.files:
            lines.extend(f.lines(root))
        for a in self.aggregations:
            lines.append(
                f"AGG      {a.symbol} {a.fine} -> {a.coarse}: {a.bars} complete bucket(s): {a.result}; "
                f"{len(a.incomplete)} incomplete bucket(s) left out"
            )
            lines.extend(
                f"    incomplete ({a.symbol}, {a.coarse}, t={b.t}): {b.have}/{b.need} bars"
                for b in a.incomplete[:5]
            )
            if len(a.incomplete) > 5:
                lines.append(f"    ... {len(a.incomplete) - 5} more incomplete bucket(s)")
        lines.extend(f"ERROR    {e}" for e in self.aggregation_errors)
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"files: {summary or 'none'}")
        lines.append(
            f"candles: {self.total('candles')}; mark candles: {self.total('mark')}; funding: {self.total('funding')}"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class ImportOptions:
    parse: ParseOptions = field(default_factory=ParseOptions)
    symbols: SymbolMapping = field(default_factory=SymbolMapping)
    skip_corrupt: bool = False
    aggregate: Sequence[str] = ()


def import_paths(
    paths: Sequence[Path], db_dir: Path, options: ImportOptions = ImportOptions()
) -> ImportReport:
    report = ImportReport()
    # (symbol, interval) -> (source, min t, max t) of trade bars written, for aggregation
    touched: dict[tuple[str, str], tuple[str, int, int]] = {}
    with CandleStore(db_dir) as cstore, FundingStore(db_dir) as fstore:
        for path in iter_files(paths):
            try:
                items = parse_file(path, options.parse)
            except (ImportFormatError, OSError, ValueError) as exc:
                report.files.append(FileResult(path, "error", message=str(exc)))
                continue
            for item in items:
                if isinstance(item, Skipped):
                    report.files.append(FileResult(path, "skipped", message=item.reason))
                elif isinstance(item, ParsedCandles):
                    report.files.append(_import_candles(item, cstore, options, touched))
                else:
                    report.files.append(_import_funding(item, fstore, options))
        for target in options.aggregate:
            _aggregate_touched(cstore, touched, target, report)
    return report


def _import_candles(
    item: ParsedCandles,
    store: CandleStore,
    options: ImportOptions,
    touched: dict[tuple[str, str], tuple[str, int, int]],
) -> FileResult:
    symbol = options.symbols.apply(item.batch.symbol, item.source)
    label = "candles" if item.kind is CandleKind.TRADE else "mark candles"
    what = f"{label} {symbol} {item.batch.interval} [{item.source}]"

    def write(clean: CandleBatch) -> UpsertResult:
        result = store.upsert(clean, item.source, item.kind)
        if item.kind is CandleKind.TRADE and len(clean):
            key = (symbol, clean.interval)
            lo, hi = int(clean.t.min()), int(clean.t.max())
            if key in touched:
                _, plo, phi = touched[key]
                lo, hi = min(lo, plo), max(hi, phi)
            touched[key] = (item.source, lo, hi)
        return result

    return _write_file(item, symbol, what, options, write, note_skipped_rows=True)


def _import_funding(item: ParsedFunding, store: FundingStore, options: ImportOptions) -> FileResult:
    symbol = options.symbols.apply(item.batch.symbol, item.source)
    what = f"funding {symbol} [{item.source}, rate per {item.period_hours}h]"
    return _write_file(
        item,
        symbol,
        what,
        options,
        lambda clean: store.upsert(clean, item.source, item.period_hours),
        note_skipped_rows=False,
    )


def _write_file(
    item: ParsedFile[Batch],
    symbol: str,
    what: str,
    options: ImportOptions,
    write: Callable[[Batch], UpsertResult],
    *,
    note_skipped_rows: bool,
) -> FileResult:
    """The import policy for one parsed file: refused whole when it has corrupt rows (unless
    ``skip_corrupt``), else its clean rows, renamed to ``symbol``, go to ``write``; a source
    conflict or a bad batch is the file's error, not the run's."""
    n_bad = int(item.bad.sum())
    if item.findings and not options.skip_corrupt:
        return FileResult(
            item.path,
            "refused",
            what,
            findings=item.findings,
            message=f"{n_bad} corrupt row(s), nothing written",
        )
    clean = item.clean.renamed(symbol)
    try:
        result = write(clean)
    except (SourceConflictError, FundingConflictError, ValueError) as exc:
        return FileResult(item.path, "error", what, message=str(exc))
    status = "partial" if item.findings else "ok"
    msg = f"({n_bad} corrupt row(s) not written)" if item.findings and note_skipped_rows else ""
    return FileResult(item.path, status, what, result, len(clean), item.findings, msg)


def _aggregate_touched(
    store: CandleStore,
    touched: dict[tuple[str, str], tuple[str, int, int]],
    target: str,
    report: ImportReport,
) -> None:
    """Aggregate into ``target`` from the finest interval written this run that divides it."""
    t_ms = interval_ms(target)
    by_symbol: dict[str, list[tuple[str, str, int, int]]] = {}
    for (symbol, interval), (source, lo, hi) in touched.items():
        ms = interval_ms(interval)
        if ms < t_ms and t_ms % ms == 0:
            by_symbol.setdefault(symbol, []).append((interval, source, lo, hi))
    for symbol, candidates in sorted(by_symbol.items()):
        fine, source, lo, hi = min(candidates, key=lambda c: interval_ms(c[0]))
        agg_source = f"{source}/agg:{fine}"
        try:
            report.aggregations.append(aggregate_in_store(store, symbol, fine, target, agg_source, lo, hi))
        except (AggregationError, SourceConflictError, ValueError) as exc:
            report.aggregation_errors.append(f"aggregate {symbol} {fine} -> {target}: {exc}")
