//! The backtester's view of a YAML strategy config: read the file, then merge, check and hash it
//! with the one loader in aiq-config (`aiq_config::layered`, the daemon's too), plus sweep
//! overrides (`apply_override`).

use std::path::Path;

use aiq_config::{Document, Problem, Raw, Resolved, StrategyConfig};
use serde_json::Value;

pub use aiq_config::canonical::{canonical_json, config_id};

use crate::BtError;

/// A config file whose layout and keys were checked.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: String,
    doc: Document,
    /// `trade.max_open_positions` under `--live` when the file sets none (the live safety limit).
    pub live_max_open_positions: u32,
}

/// Every problem, one line each: `file: key.path: problem`.
fn problems_error(origin: &str, problems: &[Problem]) -> BtError {
    BtError::new(problems.iter().map(|p| format!("{origin}: {p}")).collect::<Vec<_>>().join("\n"))
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, BtError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BtError::new(format!("--config {}: cannot read the file: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, BtError> {
        let raw: Raw = if text.trim().is_empty() {
            Raw::Null
        } else {
            serde_norway::from_str(text).map_err(|e| BtError::new(format!("{origin}: invalid YAML: {e}")))?
        };
        let doc = aiq_config::check_document(&raw).map_err(|p| problems_error(origin, &p))?;
        Ok(Self {
            path: origin.to_string(),
            doc,
            live_max_open_positions: aiq_config::layered::DEFAULT_LIVE_MAX_OPEN_POSITIONS,
        })
    }

    fn checked(&self, symbol: Option<&str>, live: bool, mode: Option<&str>) -> Result<Resolved, BtError> {
        self.doc
            .resolve(symbol, live, mode, Some(self.live_max_open_positions))
            .map_err(|p| problems_error(&format!("{} ({})", self.path, symbol.unwrap_or("global")), &p))
    }

    /// The merged JSON config for `symbol` (`None`: no symbol section applies), checked, with the
    /// values as the file wrote them (the sweep id hashes it).
    pub fn merged_json(
        &self,
        symbol: Option<&str>,
        live: bool,
        mode: Option<&str>,
    ) -> Result<Value, BtError> {
        Ok(self.checked(symbol, live, mode)?.merged)
    }

    /// The typed, validated config for `symbol`.
    pub fn resolve(
        &self,
        symbol: Option<&str>,
        live: bool,
        mode: Option<&str>,
    ) -> Result<ResolvedConfig, BtError> {
        let r = self.checked(symbol, live, mode)?;
        Ok(ResolvedConfig { cfg: r.cfg, json: r.json, config_id: r.config_id })
    }
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
        let err = ConfigFile::parse("global: {trade: {no_such: 1}}", "t.yaml").unwrap_err().to_string();
        assert_eq!(err, "t.yaml: global.trade.no_such: unknown key 'no_such'");
        let err = ConfigFile::parse("globl: {}", "t.yaml").unwrap_err().to_string();
        assert!(
            err.contains("t.yaml: globl: unknown top-level section 'globl' (did you mean 'global'?)"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_at_once_with_its_place_in_the_file() {
        let f = ConfigFile::parse(
            "global: {trade: {leverage: 60}}\nsymbols: {BTC: {trade: {sl_atr_mult: -1}}}",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(
            f.resolve(Some("BTC"), false, None).unwrap_err().to_string(),
            "t.yaml (BTC): global.trade.leverage: must be between 1 and 50, got 60\n\
             t.yaml (BTC): symbols.BTC.trade.sl_atr_mult: must be > 0, got -1"
        );
        assert!(ConfigFile::parse("", "t.yaml")
            .unwrap_err()
            .to_string()
            .contains("t.yaml: the file is empty"));
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
