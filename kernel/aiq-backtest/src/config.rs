//! YAML strategy config: layered merge, typed validation, canonical JSON and `config_id`.
//!
//! Merge order for symbol `S` (mappings merge key by key, everything else replaces, lists included):
//! `defaults <- global <- symbols.S <- live (only with --live) <- modes.<mode>`.
//! `live` and `modes.<mode>` accept `{global: ..., symbols: ...}` or a shorthand mapping that is
//! treated as `global`. Within an overlay, its `global` applies before its `symbols.S`.

use std::collections::BTreeMap;
use std::path::Path;

use aiq_config::StrategyConfig;
use aiq_kernel::envelope::merge;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::BtError;

/// The parsed YAML document (as JSON values).
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: String,
    pub root: Map<String, Value>,
    /// `trade.max_open_positions` under `--live` when the file sets none (engine.config's live
    /// safety limit, default 1).
    pub live_max_open_positions: u32,
}

const TOP_KEYS: &[&str] = &["global", "symbols", "live", "modes"];

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, BtError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BtError::new(format!("--config {}: cannot read the file: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, BtError> {
        let v: Value = if text.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_norway::from_str(text).map_err(|e| BtError::new(format!("{origin}: invalid YAML: {e}")))?
        };
        let root = match v {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => return Err(BtError::new(format!("{origin}: the top level must be a mapping"))),
        };
        for k in root.keys() {
            if !TOP_KEYS.contains(&k.as_str()) {
                return Err(BtError::new(format!(
                    "{origin}: unknown top-level section {k:?} (expected one of global, symbols, live, modes)"
                )));
            }
        }
        Ok(Self { path: origin.to_string(), root, live_max_open_positions: 1 })
    }

    /// `modes.<mode>` if the file defines it.
    pub fn mode_section(&self, mode: &str) -> Option<&Value> {
        match self.section("modes") {
            Some(Value::Object(m)) => m.get(mode).filter(|v| !v.is_null()),
            _ => None,
        }
    }

    fn section(&self, key: &str) -> Option<&Value> {
        self.root.get(key).filter(|v| !v.is_null())
    }

    /// Mode names defined under `modes`.
    pub fn modes(&self) -> Vec<String> {
        match self.section("modes") {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Symbols with a `symbols.<SYM>` section (top level, `live` or any mode).
    pub fn symbols_with_overrides(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut add = |v: Option<&Value>| {
            if let Some(Value::Object(m)) = v {
                out.extend(m.keys().cloned());
            }
        };
        add(self.section("symbols"));
        if let Some(live) = self.section("live") {
            add(split_overlay(live).ok().and_then(|x| x.1));
        }
        if let Some(Value::Object(modes)) = self.section("modes") {
            for m in modes.values() {
                add(split_overlay(m).ok().and_then(|x| x.1));
            }
        }
        out.into_iter().collect()
    }

    /// The merged JSON config for `symbol` (`None`: no symbol section applies).
    pub fn merged_json(
        &self,
        symbol: Option<&str>,
        live: bool,
        mode: Option<&str>,
    ) -> Result<Value, BtError> {
        let mut merged = aiq_config::defaults_json();
        let origin = &self.path;
        let apply = |merged: &mut Value, v: Option<&Value>, what: &str| -> Result<(), BtError> {
            match v {
                None | Some(Value::Null) => Ok(()),
                Some(v @ Value::Object(_)) => {
                    merge(merged, v.clone());
                    Ok(())
                }
                Some(_) => Err(BtError::new(format!("{origin}: {what} must be a mapping"))),
            }
        };
        let sym_of = |m: Option<&Value>, what: &str| -> Result<Option<Value>, BtError> {
            match (m, symbol) {
                (Some(Value::Object(m)), Some(s)) => {
                    let v = m.get(s).cloned();
                    if let Some(Value::Object(o)) = &v {
                        for k in ["engine", "watchlist_exclude"] {
                            if o.contains_key(k) {
                                return Err(BtError::new(format!(
                                    "{origin}: {what}.{s}.{k}: {k} is daemon-wide and cannot be set per symbol"
                                )));
                            }
                        }
                    }
                    Ok(v)
                }
                (None | Some(Value::Null), _) | (_, None) => Ok(None),
                (Some(_), _) => Err(BtError::new(format!("{origin}: {what} must be a mapping of symbols"))),
            }
        };
        if live {
            // engine.config's live safety limit: applies before the file, which may override it.
            merge(
                &mut merged,
                serde_json::json!({"trade": {"max_open_positions": self.live_max_open_positions}}),
            );
        }
        apply(&mut merged, self.section("global"), "global")?;
        apply(&mut merged, sym_of(self.section("symbols"), "symbols")?.as_ref(), "symbols.<SYM>")?;
        if live {
            if let Some(l) = self.section("live") {
                let (g, s) = split_overlay(l)?;
                apply(&mut merged, g, "live.global")?;
                apply(&mut merged, sym_of(s, "live.symbols")?.as_ref(), "live.symbols.<SYM>")?;
            }
        }
        if let Some(mode) = mode {
            let mode = canonical_mode(mode)?;
            // A known mode the file does not define adds no layer (as engine.config does).
            if let Some(m) = self.mode_section(mode) {
                let (g, s) = split_overlay(m)?;
                apply(&mut merged, g, &format!("modes.{mode}.global"))?;
                apply(
                    &mut merged,
                    sym_of(s, &format!("modes.{mode}.symbols"))?.as_ref(),
                    "modes.<mode>.symbols",
                )?;
            }
        }
        Ok(merged)
    }

    /// The typed, validated config for `symbol`.
    pub fn resolve(
        &self,
        symbol: Option<&str>,
        live: bool,
        mode: Option<&str>,
    ) -> Result<ResolvedConfig, BtError> {
        let merged = self.merged_json(symbol, live, mode)?;
        ResolvedConfig::from_json(merged, &format!("{} ({})", self.path, symbol.unwrap_or("global")))
    }
}

type Overlay<'a> = (Option<&'a Value>, Option<&'a Value>);

/// An overlay is `{global, symbols}` or a shorthand (the whole mapping is `global`); mixing the
/// two forms is an error.
fn split_overlay(v: &Value) -> Result<Overlay<'_>, BtError> {
    match v {
        Value::Object(m) if m.keys().any(|k| k == "global" || k == "symbols") => {
            if let Some(k) = m.keys().find(|k| *k != "global" && *k != "symbols") {
                return Err(BtError::new(format!(
                    "an overlay mixes the {{global, symbols}} form with the shorthand key {k:?}; move it under global"
                )));
            }
            Ok((m.get("global"), m.get("symbols")))
        }
        other => Ok((Some(other), None)),
    }
}

/// Strategy mode names and aliases (engine.config.modes).
pub const STRATEGY_MODES: &[&str] = &["primary", "fallback", "conservative", "flat"];
const MODE_ALIASES: &[(&str, &str)] = &[
    ("m1", "primary"),
    ("m2", "fallback"),
    ("m3", "conservative"),
    ("safe", "conservative"),
    ("halt", "flat"),
    ("pause", "flat"),
];

pub fn canonical_mode(name: &str) -> Result<&'static str, BtError> {
    let key = name.trim().to_ascii_lowercase();
    if let Some(m) = STRATEGY_MODES.iter().find(|m| **m == key) {
        return Ok(m);
    }
    if let Some((_, m)) = MODE_ALIASES.iter().find(|(a, _)| *a == key) {
        return Ok(m);
    }
    Err(BtError::new(format!(
        "unknown strategy mode {name:?} (expected one of {}; aliases {})",
        STRATEGY_MODES.join(", "),
        MODE_ALIASES.iter().map(|(a, m)| format!("{a}->{m}")).collect::<Vec<_>>().join(", ")
    )))
}

/// A validated config with its canonical JSON and id.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub cfg: StrategyConfig,
    /// The typed config serialised back to JSON (every key, normalised types).
    pub json: Value,
    pub config_id: String,
}

impl ResolvedConfig {
    pub fn from_json(merged: Value, origin: &str) -> Result<Self, BtError> {
        let cfg = aiq_config::from_json_value(merged).map_err(|e| BtError::new(format!("{origin}: {e}")))?;
        Ok(Self::from_cfg(cfg))
    }

    pub fn from_cfg(cfg: StrategyConfig) -> Self {
        let json = serde_json::to_value(&cfg).expect("config serialises");
        let config_id = config_id(&json);
        Self { cfg, json, config_id }
    }
}

/// `sha256` of the canonical JSON text (hex).
pub fn config_id(v: &Value) -> String {
    let text = canonical_json(v);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON text exactly as Python's `json.dumps(v, sort_keys=True, separators=(",", ":"))` writes it
/// (ASCII only, Python float repr), so both languages hash the same bytes.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&py_float_repr(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => write_py_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            out.push('{');
            for (i, (k, x)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_py_string(k, out);
                out.push(':');
                write_canonical(x, out);
            }
            out.push('}');
        }
    }
}

fn write_py_string(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits; fixed notation for exponents in
/// `[-4, 16)`, otherwise `d.ddde+XX`.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e3", "5e-5".
    let sci = format!("{x:e}");
    let (mant, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let s = if exp >= 0 {
            if n > exp + 1 {
                format!("{}.{}", &digits[..(exp + 1) as usize], &digits[(exp + 1) as usize..])
            } else {
                format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
            }
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        let es = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// Set `path` (dotted) in a full config JSON to a sweep value (a float), converting to the
/// field's type: booleans from 0/1, integers rounded, and the enums by index
/// (confidence 0 low / 1 medium / 2 high; macd_hist_entry_mode 0 accel / 1 sign / 2 none;
/// strategy 0 mei_alpha_v1 / 1 ema_cross). Fails when the path is not in the schema.
pub fn apply_override(cfg: &mut Value, path: &str, value: f64) -> Result<(), BtError> {
    let mut slot = &mut *cfg;
    for part in path.split('.') {
        slot = slot.as_object_mut().and_then(|m| m.get_mut(part)).ok_or_else(|| {
            BtError::new(format!("override path {path:?} does not exist in the config schema"))
        })?;
    }
    let bad = |why: &str| Err(BtError::new(format!("override {path} = {value}: {why}")));
    if !value.is_finite() {
        return bad("value must be finite");
    }
    let leaf = path.rsplit('.').next().unwrap_or(path);
    let new = match &*slot {
        Value::Bool(_) => {
            if value == 0.0 {
                Value::Bool(false)
            } else if value == 1.0 {
                Value::Bool(true)
            } else {
                return bad("a boolean takes 0 or 1");
            }
        }
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            if value.fract() != 0.0 || value < 0.0 {
                return bad("an integer field takes a whole number >= 0");
            }
            Value::from(value as u64)
        }
        Value::Number(_) => serde_json::Number::from_f64(value).map(Value::Number).expect("finite"),
        Value::String(_) => {
            let names: &[&str] = if leaf.ends_with("confidence") {
                &["low", "medium", "high"]
            } else if leaf == "macd_hist_entry_mode" {
                &["accel", "sign", "none"]
            } else if leaf == "strategy" {
                &["mei_alpha_v1", "ema_cross"]
            } else {
                return bad("this text field cannot be swept");
            };
            let i = value as usize;
            if value.fract() != 0.0 || value < 0.0 || i >= names.len() {
                return bad(&format!("an enum index must be 0..{} ({})", names.len() - 1, names.join(", ")));
            }
            Value::String(names[i].to_string())
        }
        _ => return bad("only scalar fields can be swept"),
    };
    *slot = new;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_float_repr() {
        for (x, s) in [
            (3.0, "3.0"),
            (0.03, "0.03"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (10_000_000.0, "10000000.0"),
            (1.5e-7, "1.5e-07"),
        ] {
            assert_eq!(py_float_repr(x), s, "{x}");
        }
    }

    #[test]
    fn canonical_sorted_compact() {
        let v = json!({"b": 1, "a": {"d": 2.0, "c": [true, null, "é"]}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":[true,null,"\u00e9"],"d":2.0},"b":1}"#);
    }

    #[test]
    fn merge_order_and_shorthand() {
        let y = r"
global: {trade: {leverage: 2.0, sl_atr_mult: 1.5}}
symbols: {ETH: {trade: {leverage: 4.0}}}
live: {trade: {sl_atr_mult: 1.0}}
modes:
  primary: {global: {trade: {leverage: 6.0}}, symbols: {ETH: {trade: {tp_atr_mult: 9.0}}}}
";
        let f = ConfigFile::parse(y, "t.yaml").unwrap();
        let g = f.resolve(None, false, None).unwrap().cfg;
        assert_eq!((g.trade.leverage, g.trade.sl_atr_mult), (2.0, 1.5));
        let e = f.resolve(Some("ETH"), true, None).unwrap().cfg;
        assert_eq!((e.trade.leverage, e.trade.sl_atr_mult), (4.0, 1.0));
        let m = f.resolve(Some("ETH"), false, Some("m1")).unwrap().cfg;
        assert_eq!((m.trade.leverage, m.trade.tp_atr_mult), (6.0, 9.0));
        assert!(f
            .resolve(None, false, Some("nope"))
            .unwrap_err()
            .to_string()
            .contains("unknown strategy mode"));
        // live safety limit (1) unless the file sets max_open_positions
        assert_eq!(f.resolve(Some("ETH"), true, None).unwrap().cfg.trade.max_open_positions, 1);
        assert_eq!(f.resolve(Some("ETH"), false, None).unwrap().cfg.trade.max_open_positions, 20);
    }

    #[test]
    fn unknown_key_is_named() {
        let f = ConfigFile::parse("global: {trade: {no_such: 1}}", "t.yaml").unwrap();
        assert!(f.resolve(None, false, None).unwrap_err().to_string().contains("no_such"));
        assert!(ConfigFile::parse("globl: {}", "t.yaml").unwrap_err().to_string().contains("globl"));
    }

    #[test]
    fn overrides_typed() {
        let mut v = aiq_config::defaults_json();
        apply_override(&mut v, "trade.sl_atr_mult", 1.25).unwrap();
        apply_override(&mut v, "trade.enable_pyramiding", 0.0).unwrap();
        apply_override(&mut v, "trade.entry_min_confidence", 1.0).unwrap();
        apply_override(&mut v, "indicators.ema_fast_window", 12.0).unwrap();
        apply_override(&mut v, "thresholds.entry.macd_hist_entry_mode", 2.0).unwrap();
        let c = ResolvedConfig::from_json(v.clone(), "x").unwrap().cfg;
        assert_eq!(c.trade.sl_atr_mult, 1.25);
        assert!(!c.trade.enable_pyramiding);
        assert_eq!(c.trade.entry_min_confidence, aiq_config::Confidence::Medium);
        assert_eq!(c.indicators.ema_fast_window, 12);
        assert!(apply_override(&mut v, "trade.nope", 1.0).unwrap_err().to_string().contains("trade.nope"));
        assert!(apply_override(&mut v, "trade.enable_pyramiding", 0.5).is_err());
    }
}
