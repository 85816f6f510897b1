//! JSON envelope API: `step(state, event, params)` on JSON text, for tools and debugging.
//!
//! Every payload carries `schema_version` 1. Any input, however malformed or hostile, yields an
//! envelope: `{"ok": true, "result": {...}}` or `{"ok": false, "error": {code, message, details}}`.
//! Nothing in here panics on input (fuzzed in `fuzz/` and by proptest).

use std::collections::BTreeMap;

use aiq_config::StrategyConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::kernel::{Candle, FillMode, Kernel, KernelState, StepOutput};
use crate::types::SCHEMA_VERSION;

/// Inputs larger than this are refused before parsing (a hostile payload cannot exhaust memory).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidJson,
    SchemaVersionMismatch,
    InvalidParams,
    InvalidEvent,
    InvalidState,
    KernelError,
    PayloadTooLarge,
}

/// One market event for the envelope API.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    Candle {
        schema_version: u32,
        symbol: String,
        t: i64,
        o: f64,
        h: f64,
        l: f64,
        c: f64,
        v: f64,
    },
    Funding {
        schema_version: u32,
        symbol: String,
        t: i64,
        rate: f64,
        price: f64,
    },
    Mid {
        schema_version: u32,
        symbol: String,
        t: i64,
        price: f64,
    },
    Evaluate {
        schema_version: u32,
        t: i64,
        #[serde(default)]
        equity: Option<f64>,
    },
}

impl Event {
    fn schema_version(&self) -> u32 {
        match self {
            Event::Candle { schema_version, .. }
            | Event::Funding { schema_version, .. }
            | Event::Mid { schema_version, .. }
            | Event::Evaluate { schema_version, .. } => *schema_version,
        }
    }
}

/// Kernel parameters: the merged config, optional per-symbol configs and the initial cash used
/// when no state is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub schema_version: u32,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub symbol_configs: BTreeMap<String, Value>,
    #[serde(default = "default_cash")]
    pub initial_cash: f64,
    #[serde(default = "default_fill_mode")]
    pub fill_mode: FillMode,
}

fn default_cash() -> f64 {
    10_000.0
}

fn default_fill_mode() -> FillMode {
    FillMode::Simulate
}

fn error(code: ErrorCode, message: impl Into<String>, details: Vec<String>) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message.into(), "details": details}})
}

/// Reads only `schema_version` from a payload (other fields are skipped, not built).
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    schema_version: Option<Value>,
}

fn probe_version(what: &str, text: &str) -> Result<(), Value> {
    if text.len() > MAX_PAYLOAD_BYTES {
        return Err(error(
            ErrorCode::PayloadTooLarge,
            format!("{what} is {} bytes; the limit is {MAX_PAYLOAD_BYTES}", text.len()),
            vec![],
        ));
    }
    let probe: VersionProbe = serde_json::from_str(text).map_err(|e| {
        error(ErrorCode::InvalidJson, format!("{what} is not valid JSON: {e}"), vec![what.into()])
    })?;
    let v = json!({"schema_version": probe.schema_version});
    check_version(what, &v)
}

fn check_version(what: &str, v: &Value) -> Result<(), Value> {
    match v.get("schema_version").and_then(Value::as_u64) {
        Some(n) if n == u64::from(SCHEMA_VERSION) => Ok(()),
        Some(n) => Err(error(
            ErrorCode::SchemaVersionMismatch,
            format!("{what} has schema_version {n}; this kernel speaks {SCHEMA_VERSION}"),
            vec![what.to_string()],
        )),
        None => Err(error(
            ErrorCode::SchemaVersionMismatch,
            format!("{what} lacks an integer schema_version (expected {SCHEMA_VERSION})"),
            vec![what.to_string()],
        )),
    }
}

fn parse(what: &str, text: &str) -> Result<Value, Value> {
    if text.len() > MAX_PAYLOAD_BYTES {
        return Err(error(
            ErrorCode::PayloadTooLarge,
            format!("{what} is {} bytes; the limit is {MAX_PAYLOAD_BYTES}", text.len()),
            vec![],
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        error(ErrorCode::InvalidJson, format!("{what} is not valid JSON: {e}"), vec![what.into()])
    })
}

fn parse_config(v: Option<Value>, what: &str) -> Result<StrategyConfig, Value> {
    let mut merged = aiq_config::defaults_json();
    if let Some(v) = v {
        if !v.is_object() {
            return Err(error(ErrorCode::InvalidParams, format!("{what} must be an object"), vec![]));
        }
        merge(&mut merged, v);
    }
    aiq_config::from_json_value(merged)
        .map_err(|e| error(ErrorCode::InvalidParams, format!("{what}: {e}"), vec![e.path.clone()]))
}

/// Deep-merge `over` into `base` (mappings merge, everything else replaces).
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

thread_local! {
    // Tools call `step` many times with the same params: keep the last parsed kernel prototype.
    static PARAMS_CACHE: std::cell::RefCell<Option<(String, Kernel)>> = const { std::cell::RefCell::new(None) };
}

fn build_kernel(params_text: &str) -> Result<Kernel, Value> {
    let cached = PARAMS_CACHE
        .with(|c| c.borrow().as_ref().filter(|(text, _)| text == params_text).map(|(_, k)| k.clone()));
    if let Some(kernel) = cached {
        return Ok(kernel);
    }
    let kernel = build_kernel_uncached(params_text)?;
    PARAMS_CACHE.with(|c| *c.borrow_mut() = Some((params_text.to_string(), kernel.clone())));
    Ok(kernel)
}

fn build_kernel_uncached(params_text: &str) -> Result<Kernel, Value> {
    let pv = parse("params", params_text)?;
    check_version("params", &pv)?;
    let params: Params = serde_json::from_value(pv)
        .map_err(|e| error(ErrorCode::InvalidParams, format!("params: {e}"), vec![]))?;
    if !params.initial_cash.is_finite() || params.initial_cash < 0.0 {
        return Err(error(
            ErrorCode::InvalidParams,
            "params.initial_cash must be a finite number >= 0",
            vec![],
        ));
    }
    let cfg = parse_config(params.config.clone(), "params.config")?;
    let mut kernel = Kernel::new(cfg, params.initial_cash, params.fill_mode);
    for (sym, v) in &params.symbol_configs {
        let mut merged = params.config.clone().unwrap_or_else(|| json!({}));
        merge(&mut merged, v.clone());
        kernel.set_symbol_config(sym, parse_config(Some(merged), &format!("params.symbol_configs.{sym}"))?);
    }
    Ok(kernel)
}

/// A fresh state as JSON (the `state` input for a first `step`).
pub fn initial_state(params_text: &str) -> Value {
    match build_kernel(params_text) {
        Ok(kernel) => json!({"ok": true, "result": {"state": kernel.state}}),
        Err(e) => e,
    }
}

#[derive(Serialize)]
struct OkEnvelope<'a> {
    ok: bool,
    result: StepBody<'a>,
}

#[derive(Serialize)]
struct StepBody<'a> {
    schema_version: u32,
    state: &'a KernelState,
    intents: &'a [crate::types::OrderIntent],
    fills: &'a [crate::types::Fill],
    blocked: &'a [crate::kernel::EntryBlock],
}

fn result(out: &StepOutput, state: &KernelState) -> Result<String, Value> {
    let body = OkEnvelope {
        ok: true,
        result: StepBody {
            schema_version: SCHEMA_VERSION,
            state,
            intents: &out.intents,
            fills: &out.fills,
            blocked: &out.blocked,
        },
    };
    serde_json::to_string(&body)
        .map_err(|e| error(ErrorCode::KernelError, format!("could not serialise the result: {e}"), vec![]))
}

/// Apply one event to a state. Returns envelope JSON text; never panics on any input.
pub fn step(state_text: &str, event_text: &str, params_text: &str) -> String {
    match step_inner(state_text, event_text, params_text) {
        Ok(text) => text,
        Err(v) => v.to_string(),
    }
}

fn step_inner(state_text: &str, event_text: &str, params_text: &str) -> Result<String, Value> {
    probe_version("state", state_text)?;
    let ev = parse("event", event_text)?;
    let mut kernel = build_kernel(params_text)?;
    check_version("event", &ev)?;
    let state: KernelState = serde_json::from_str(state_text)
        .map_err(|e| error(ErrorCode::InvalidState, format!("state: {e}"), vec![]))?;
    kernel.load_state(state).map_err(|e| error(ErrorCode::InvalidState, e.to_string(), vec![]))?;
    let event: Event = serde_json::from_value(ev)
        .map_err(|e| error(ErrorCode::InvalidEvent, format!("event: {e}"), vec![]))?;
    debug_assert_eq!(event.schema_version(), SCHEMA_VERSION);
    let kerr = |e: crate::kernel::KernelError| error(ErrorCode::KernelError, e.to_string(), vec![]);
    let out = match event {
        Event::Candle { symbol, t, o, h, l, c, v, .. } => {
            kernel.step_candle(&symbol, Candle { t, o, h, l, c, v }).map_err(kerr)?
        }
        Event::Funding { symbol, t, rate, price, .. } => {
            kernel.on_funding(&symbol, rate, price, t).map_err(kerr)?;
            StepOutput::default()
        }
        Event::Mid { symbol, t, price, .. } => kernel.on_mid(&symbol, price, t).map_err(kerr)?,
        Event::Evaluate { t, equity, .. } => {
            if let Some(e) = equity {
                if !e.is_finite() {
                    return Err(error(ErrorCode::InvalidEvent, "event.equity must be finite", vec![]));
                }
            }
            kernel.evaluate(t, equity)
        }
    };
    result(&out, &kernel.state)
}
