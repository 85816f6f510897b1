//! Typed fast path: the `Kernel` class and its result types, plus the JSON envelope functions.

use aiq_config::{Confidence, StrategyConfig};
use aiq_kernel::envelope;
use aiq_kernel::indicators::IndicatorBank;
use aiq_kernel::{Candle, Fill, FillMode, IntentKind, Kernel, OrderIntent, ReasonCode, Side, StepOutput};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn parse_config(config_json: Option<&str>) -> PyResult<StrategyConfig> {
    let mut merged = aiq_config::defaults_json();
    if let Some(text) = config_json {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| value_err(format!("config is not valid JSON: {e}")))?;
        envelope::merge(&mut merged, v);
    }
    aiq_config::from_json_value(merged).map_err(value_err)
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Long => "long",
        Side::Short => "short",
    }
}

fn kind_str(k: IntentKind) -> &'static str {
    match k {
        IntentKind::Open => "open",
        IntentKind::Add => "add",
        IntentKind::Reduce => "reduce",
        IntentKind::Close => "close",
        IntentKind::Reverse => "reverse",
    }
}

fn conf_str(c: Confidence) -> &'static str {
    match c {
        Confidence::Low => "low",
        Confidence::Medium => "medium",
        Confidence::High => "high",
    }
}

fn parse_side(s: &str) -> PyResult<Side> {
    match s {
        "long" | "buy" => Ok(Side::Long),
        "short" | "sell" => Ok(Side::Short),
        other => Err(value_err(format!("side must be long/short (or buy/sell), got {other:?}"))),
    }
}

/// An order the kernel wants placed.
#[pyclass(frozen, get_all, module = "bt_runtime")]
#[derive(Clone)]
pub struct Intent {
    intent_id: u64,
    symbol: String,
    kind: &'static str,
    side: &'static str,
    quantity: f64,
    price: f64,
    notional_usd: f64,
    reason: String,
    reason_code: &'static str,
    confidence: &'static str,
    score: f64,
    timestamp_ms: i64,
    reduce_only: bool,
    leverage: f64,
}

impl From<&OrderIntent> for Intent {
    fn from(i: &OrderIntent) -> Self {
        Self {
            intent_id: i.intent_id,
            symbol: i.symbol.clone(),
            kind: kind_str(i.kind),
            side: side_str(i.side),
            quantity: i.quantity,
            price: i.price,
            notional_usd: i.notional_usd,
            reason: i.reason.clone(),
            reason_code: i.reason_code.as_str(),
            confidence: conf_str(i.confidence),
            score: i.score,
            timestamp_ms: i.timestamp_ms,
            reduce_only: i.reduce_only,
            leverage: i.leverage,
        }
    }
}

#[pymethods]
impl Intent {
    fn __repr__(&self) -> String {
        format!(
            "Intent(id={}, {} {} {} qty={} px={} reason={})",
            self.intent_id, self.kind, self.side, self.symbol, self.quantity, self.price, self.reason_code
        )
    }
}

/// A simulated (or applied) execution.
#[pyclass(frozen, get_all, module = "bt_runtime", name = "Fill")]
#[derive(Clone)]
pub struct PyFill {
    intent_id: u64,
    symbol: String,
    kind: &'static str,
    side: &'static str,
    quantity: f64,
    price: f64,
    notional_usd: f64,
    fee_usd: f64,
    pnl_usd: f64,
    reason_code: &'static str,
    timestamp_ms: i64,
}

impl From<&Fill> for PyFill {
    fn from(f: &Fill) -> Self {
        Self {
            intent_id: f.intent_id,
            symbol: f.symbol.clone(),
            kind: kind_str(f.kind),
            side: side_str(f.side),
            quantity: f.quantity,
            price: f.price,
            notional_usd: f.notional_usd,
            fee_usd: f.fee_usd,
            pnl_usd: f.pnl_usd,
            reason_code: f.reason_code.as_str(),
            timestamp_ms: f.timestamp_ms,
        }
    }
}

/// Result of one kernel call: intents, simulated fills and blocked entries `(symbol, reason_code)`.
#[pyclass(frozen, get_all, module = "bt_runtime")]
pub struct StepResult {
    intents: Vec<Intent>,
    fills: Vec<PyFill>,
    blocked: Vec<(String, &'static str)>,
}

impl From<StepOutput> for StepResult {
    fn from(o: StepOutput) -> Self {
        Self {
            intents: o.intents.iter().map(Intent::from).collect(),
            fills: o.fills.iter().map(PyFill::from).collect(),
            blocked: o.blocked.iter().map(|b| (b.symbol.clone(), b.reason_code.as_str())).collect(),
        }
    }
}

#[pymethods]
impl StepResult {
    fn __len__(&self) -> usize {
        self.intents.len()
    }
}

/// The decision kernel. `config_json` is a (partial) config merged over the defaults.
#[pyclass(module = "bt_runtime", name = "Kernel")]
pub struct PyKernel {
    inner: Kernel,
}

#[pymethods]
impl PyKernel {
    #[new]
    #[pyo3(signature = (config_json=None, initial_cash=10_000.0, fill_mode="simulate"))]
    fn new(config_json: Option<&str>, initial_cash: f64, fill_mode: &str) -> PyResult<Self> {
        if !initial_cash.is_finite() || initial_cash < 0.0 {
            return Err(value_err("initial_cash must be a finite number >= 0"));
        }
        let mode = match fill_mode {
            "simulate" => FillMode::Simulate,
            "external" => FillMode::External,
            other => return Err(value_err(format!("fill_mode must be simulate or external, got {other:?}"))),
        };
        Ok(Self { inner: Kernel::new(parse_config(config_json)?, initial_cash, mode) })
    }

    /// Use a symbol-specific config (a partial config merged over the defaults).
    fn set_symbol_config(&mut self, symbol: &str, config_json: &str) -> PyResult<()> {
        self.inner.set_symbol_config(symbol, parse_config(Some(config_json))?);
        Ok(())
    }

    /// Feed one closed candle (open time `t` in ms).
    #[allow(clippy::too_many_arguments)]
    fn step_candle(
        &mut self,
        symbol: &str,
        t: i64,
        o: f64,
        h: f64,
        l: f64,
        c: f64,
        v: f64,
    ) -> PyResult<StepResult> {
        self.inner.step_candle(symbol, Candle { t, o, h, l, c, v }).map(StepResult::from).map_err(value_err)
    }

    /// Apply a funding payment; returns the cash change (negative when paid).
    fn on_funding(&mut self, symbol: &str, rate: f64, price: f64, t: i64) -> PyResult<f64> {
        self.inner.on_funding(symbol, rate, price, t).map_err(value_err)
    }

    /// A new mid price: exits run at once for the symbol.
    fn on_mid(&mut self, symbol: &str, price: f64, t: i64) -> PyResult<StepResult> {
        self.inner.on_mid(symbol, price, t).map(StepResult::from).map_err(value_err)
    }

    /// Exits, then ranked entries, for every symbol stepped since the last call.
    #[pyo3(signature = (now_ms, equity=None))]
    fn evaluate(&mut self, now_ms: i64, equity: Option<f64>) -> PyResult<StepResult> {
        if let Some(e) = equity {
            if !e.is_finite() {
                return Err(value_err("equity must be finite"));
            }
        }
        Ok(self.inner.evaluate(now_ms, equity).into())
    }

    /// Entries on a sub-bar close (`engine.entry_interval`): each listed symbol's latest main-bar
    /// snapshot with its close replaced by the sub-bar close goes through the same signal, gates
    /// and ranking as `evaluate` and fills at that close; no protective exits run here. The
    /// replay's `--entry-interval` calls exactly this (docs/backtester.md).
    #[pyo3(signature = (prices, now_ms, equity=None))]
    fn evaluate_sub_bar(
        &mut self,
        prices: Vec<(String, f64)>,
        now_ms: i64,
        equity: Option<f64>,
    ) -> PyResult<StepResult> {
        if let Some(e) = equity {
            if !e.is_finite() {
                return Err(value_err("equity must be finite"));
            }
        }
        let refs: Vec<(&str, f64)> = prices.iter().map(|(s, p)| (s.as_str(), *p)).collect();
        self.inner.evaluate_sub_bar(&refs, now_ms, equity).map(StepResult::from).map_err(value_err)
    }

    /// Apply a real fill (live trading, `fill_mode="external"`). Returns the realised PnL.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (symbol, side, quantity, price, fee_usd, timestamp_ms, confidence="medium", leverage=1.0, intent_id=0))]
    fn apply_fill(
        &mut self,
        symbol: &str,
        side: &str,
        quantity: f64,
        price: f64,
        fee_usd: f64,
        timestamp_ms: i64,
        confidence: &str,
        leverage: f64,
        intent_id: u64,
    ) -> PyResult<f64> {
        if !(quantity.is_finite()
            && quantity > 0.0
            && price.is_finite()
            && price > 0.0
            && fee_usd.is_finite())
        {
            return Err(value_err("fill needs finite quantity > 0, price > 0 and a finite fee"));
        }
        let confidence: Confidence = serde_json::from_value(serde_json::Value::String(confidence.into()))
            .map_err(|_| value_err(format!("confidence must be low/medium/high, got {confidence:?}")))?;
        if !(leverage.is_finite() && leverage >= 1.0) {
            return Err(value_err("leverage must be >= 1"));
        }
        let side = parse_side(side)?;
        let kind = match self.inner.state.positions.get(symbol) {
            None => IntentKind::Open,
            Some(p) if p.side == side => IntentKind::Add,
            Some(_) => IntentKind::Reduce,
        };
        let fill = Fill {
            intent_id,
            symbol: symbol.to_string(),
            kind,
            side,
            quantity,
            price,
            notional_usd: quantity * price,
            fee_usd,
            pnl_usd: 0.0,
            reason_code: ReasonCode::EntrySignal,
            timestamp_ms,
            confidence,
            leverage,
        };
        Ok(self.inner.apply_fill(fill).pnl_usd)
    }

    /// Cash plus unrealised PnL at the last known prices.
    fn equity(&self) -> f64 {
        self.inner.equity()
    }

    #[getter]
    fn cash(&self) -> f64 {
        self.inner.state.cash_usd
    }

    /// Open positions as JSON text (`{symbol: Position}`).
    fn positions_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.state.positions).map_err(value_err)
    }

    /// Latest indicator snapshot of a symbol as JSON text, or None.
    fn snapshot_json(&self, symbol: &str) -> PyResult<Option<String>> {
        self.inner.snapshot(symbol).map(|s| serde_json::to_string(s).map_err(value_err)).transpose()
    }

    /// Last entry decision for a symbol: `(signal, confidence)` or None.
    fn last_decision(&self, symbol: &str) -> Option<(i8, u8)> {
        let d = self.inner.state.symbols.get(symbol)?.last_decision?;
        Some((d.signal.code(), d.confidence.rank()))
    }

    /// The complete state as JSON text (restorable with `load_state`, bit-identically).
    fn save_state(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.state).map_err(value_err)
    }

    fn load_state(&mut self, text: &str) -> PyResult<()> {
        let state =
            serde_json::from_str(text).map_err(|e| value_err(format!("invalid kernel state: {e}")))?;
        self.inner.load_state(state).map_err(value_err)
    }
}

/// Common length of the OHLCV columns, or a ValueError.
fn column_len(t: &[i64], cols: [&[f64]; 5]) -> PyResult<usize> {
    let n = t.len();
    if cols.iter().any(|c| c.len() != n) {
        return Err(value_err("t, o, h, l, c, v must have the same length"));
    }
    Ok(n)
}

/// `(signal, confidence)` for every bar of one symbol: signal 1/-1/0, confidence 0/1/2.
/// `btc_bullish[i]`: 1 bullish, 0 bearish, negative unknown; `None` means unknown throughout.
#[pyfunction]
#[pyo3(signature = (t, o, h, l, c, v, config_json, symbol, btc_bullish=None))]
#[allow(clippy::too_many_arguments)]
pub fn analyze_series(
    py: Python<'_>,
    t: Vec<i64>,
    o: Vec<f64>,
    h: Vec<f64>,
    l: Vec<f64>,
    c: Vec<f64>,
    v: Vec<f64>,
    config_json: Option<&str>,
    symbol: &str,
    btc_bullish: Option<Vec<i64>>,
) -> PyResult<Py<PyAny>> {
    let n = column_len(&t, [&o, &h, &l, &c, &v])?;
    if let Some(b) = &btc_bullish {
        if b.len() != n {
            return Err(value_err("btc_bullish must have the same length as t"));
        }
    }
    let cfg = parse_config(config_json)?;
    let mut bank = IndicatorBank::from_config(&cfg);
    let mut signals = Vec::with_capacity(n);
    let mut confs = Vec::with_capacity(n);
    let mut prev = None;
    for i in 0..n {
        let s = bank
            .try_update(Candle { t: t[i], o: o[i], h: h[i], l: l[i], c: c[i], v: v[i] })
            .map_err(|e| value_err(format!("bar {i} (t={}): {e}", t[i])))?;
        let btc = btc_bullish.as_ref().and_then(|b| if b[i] < 0 { None } else { Some(b[i] > 0) });
        let d = match &prev {
            Some(p) => aiq_kernel::signal::analyze(&s, p, &cfg, symbol, btc),
            None => aiq_kernel::signal::SignalDecision::neutral(),
        };
        signals.push(d.signal.code());
        confs.push(u32::from(d.confidence.rank()));
        prev = Some(s);
    }
    let out = pyo3::types::PyDict::new(py);
    out.set_item("signal", signals)?;
    out.set_item("confidence", confs)?;
    Ok(out.into_any().unbind())
}

/// Benchmark helper: step a fresh kernel natively over the bars `repeats` times (timestamps shifted
/// each pass), evaluating after every bar. Returns `(bars_processed, seconds, fills)`.
#[pyfunction]
#[pyo3(signature = (t, o, h, l, c, v, config_json=None, repeats=1))]
#[allow(clippy::too_many_arguments)]
pub fn bench_native(
    py: Python<'_>,
    t: Vec<i64>,
    o: Vec<f64>,
    h: Vec<f64>,
    l: Vec<f64>,
    c: Vec<f64>,
    v: Vec<f64>,
    config_json: Option<&str>,
    repeats: u32,
) -> PyResult<(u64, f64, u64)> {
    let n = column_len(&t, [&o, &h, &l, &c, &v])?;
    if n < 2 {
        return Err(value_err("bench_native needs at least 2 bars"));
    }
    let cfg = parse_config(config_json)?;
    py.detach(|| {
        let span = t[n - 1] - t[0] + (t[1] - t[0]);
        let mut kernel = Kernel::new(cfg, 10_000.0, FillMode::Simulate);
        let start = std::time::Instant::now();
        let mut fills = 0u64;
        for r in 0..i64::from(repeats) {
            for i in 0..n {
                let ts = t[i] + r * span;
                let candle = Candle { t: ts, o: o[i], h: h[i], l: l[i], c: c[i], v: v[i] };
                let out = kernel.step_candle("BTC", candle).map_err(value_err)?;
                fills += out.fills.len() as u64;
                fills += kernel.evaluate(ts, None).fills.len() as u64;
            }
        }
        Ok((n as u64 * u64::from(repeats), start.elapsed().as_secs_f64(), fills))
    })
}

/// JSON envelope API: apply one event to a state. Returns envelope JSON text; never raises.
#[pyfunction]
pub fn step_json(state_json: &str, event_json: &str, params_json: &str) -> String {
    guarded(|| envelope::step(state_json, event_json, params_json))
}

/// JSON envelope API: a fresh state for `params_json`.
#[pyfunction]
pub fn initial_state_json(params_json: &str) -> String {
    guarded(|| envelope::initial_state(params_json).to_string())
}

/// Last line of defence: a bug must surface as an error envelope, never as a crashed interpreter.
fn guarded(f: impl FnOnce() -> String + std::panic::UnwindSafe) -> String {
    match std::panic::catch_unwind(f) {
        Ok(v) => v,
        Err(_) => serde_json::json!({"ok": false, "error": {
            "code": "KERNEL_PANIC", "message": "internal kernel error (please report)", "details": []}})
        .to_string(),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKernel>()?;
    m.add_class::<Intent>()?;
    m.add_class::<PyFill>()?;
    m.add_class::<StepResult>()?;
    m.add_function(wrap_pyfunction!(analyze_series, m)?)?;
    m.add_function(wrap_pyfunction!(step_json, m)?)?;
    m.add_function(wrap_pyfunction!(bench_native, m)?)?;
    m.add_function(wrap_pyfunction!(initial_state_json, m)?)?;
    m.add("SCHEMA_VERSION", aiq_kernel::SCHEMA_VERSION)?;
    Ok(())
}
