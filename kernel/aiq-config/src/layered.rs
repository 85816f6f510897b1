//! A config file's layers merged over the defaults, checked and hashed: the one implementation,
//! used by the daemon (through `bt_runtime`) and by the backtester.
//!
//! Merge order for symbol `S` (mappings merge key by key, everything else replaces, lists
//! included): `defaults <- live safety limit (live/dry_live) <- global <- symbols.S <- live
//! (live/dry_live) <- modes.<mode>`. `live` and `modes.<mode>` take `{global, symbols}` or a
//! shorthand mapping that counts as `global`; within one, `global` applies before `symbols.S`.
//!
//! Every problem is collected (file order, then schema order) and names the place in the file
//! where the offending value was set.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::difflib::close_match;
use crate::raw::Raw;
use crate::schema::{
    choices_text, in_range, num_text, range_text, tree, Kind, Node, GLOBAL_ONLY_KEYS, ORDER_RULES,
};
use crate::StrategyConfig;

/// One problem at a dotted key path inside the file ("" when it concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key_path: String,
    pub message: String,
}

impl Problem {
    fn new(key_path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key_path: key_path.into(), message: message.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key_path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key_path, self.message)
        }
    }
}

pub const TOP_LEVEL_SECTIONS: &[&str] = &["global", "symbols", "live", "modes"];
const LAYER_FORM_KEYS: &[&str] = &["global", "symbols"];
/// Canonical strategy modes (`AI_QUANT_STRATEGY_MODE`, `modes.<name>`).
pub const STRATEGY_MODES: &[&str] = &["primary", "fallback", "conservative", "flat"];
pub const STRATEGY_MODE_ALIASES: &[(&str, &str)] = &[
    ("m1", "primary"),
    ("m2", "fallback"),
    ("m3", "conservative"),
    ("safe", "conservative"),
    ("halt", "flat"),
    ("pause", "flat"),
];
/// `trade.max_open_positions` in live and dry_live when no layer of the file sets it: a
/// live-safety limit, not a strategy default.
pub const DEFAULT_LIVE_MAX_OPEN_POSITIONS: u32 = 1;

/// The canonical strategy mode for `name` (a canonical name or an alias, any case).
pub fn canonical_strategy_mode(name: &str) -> Result<&'static str, String> {
    let key = name.trim().to_lowercase();
    if let Some(m) = STRATEGY_MODES.iter().find(|m| **m == key) {
        return Ok(m);
    }
    if let Some((_, m)) = STRATEGY_MODE_ALIASES.iter().find(|(a, _)| *a == key) {
        return Ok(m);
    }
    let aliases: Vec<String> = STRATEGY_MODE_ALIASES.iter().map(|(a, m)| format!("{a}->{m}")).collect();
    Err(format!(
        "unknown strategy mode {} (expected one of {}; aliases {})",
        crate::raw::py_repr_str(name),
        STRATEGY_MODES.join(", "),
        aliases.join(", ")
    ))
}

type Location = Vec<String>;

fn dotted(location: &[String]) -> String {
    location.join(".")
}

fn at(location: &[String], key: &str) -> Location {
    let mut out = location.to_vec();
    out.push(key.to_string());
    out
}

/// Partial strategy config found at `location` in the file (e.g. `symbols.BTC`).
#[derive(Debug, Clone)]
struct Overlay {
    location: Location,
    values: Vec<(Raw, Raw)>,
}

/// `global` plus per-symbol overlays: the top level, `live`, or one `modes.<name>`.
#[derive(Debug, Clone, Default)]
struct Layer {
    global: Option<Overlay>,
    symbols: Vec<(String, Overlay)>,
}

impl Layer {
    fn overlays_for(&self, symbol: Option<&str>) -> Vec<&Overlay> {
        let mut found: Vec<&Overlay> = self.global.iter().collect();
        if let Some(s) = symbol {
            found.extend(self.symbols.iter().filter(|(n, _)| n == s).map(|(_, o)| o));
        }
        found
    }
}

/// A config file whose layout and keys are valid (values are checked once merged).
#[derive(Debug, Clone)]
pub struct Document {
    base: Layer,
    live: Option<Layer>,
    modes: Vec<(&'static str, Layer)>,
    symbols: Vec<String>,
}

/// Where a merged value was set: a place in the file, or a named layer that is not the file.
#[derive(Debug, Clone)]
struct Origin {
    location: Option<Location>,
    layer_index: usize,
    layer_name: String,
}

impl Origin {
    fn describe(&self) -> String {
        self.location.as_deref().map_or_else(|| self.layer_name.clone(), dotted)
    }
}

type Origins = HashMap<Vec<String>, Origin>;

fn origin_of<'a>(origins: &'a Origins, path: &[String]) -> Option<&'a Origin> {
    (1..=path.len()).rev().find_map(|end| origins.get(&path[..end]))
}

/// A validated merged config with its canonical JSON and id.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub cfg: StrategyConfig,
    /// The typed config serialised back (every key, normalised types: `3` and `3.0` are one id).
    pub json: serde_json::Value,
    pub canonical_json: String,
    pub config_id: String,
    /// Names of the layers applied, in order (`defaults`, `global`, `symbols.BTC`, ...).
    pub layers: Vec<String>,
    /// The merged values as the file wrote them (`3` stays an integer where the key is a float):
    /// what the backtester's sweep id hashes, so ids of earlier runs stay valid.
    pub merged: serde_json::Value,
}

impl Resolved {
    fn new(cfg: StrategyConfig, layers: Vec<String>, merged: serde_json::Value) -> Self {
        let json = serde_json::to_value(&cfg).expect("config serialises");
        let canonical_json = crate::canonical::canonical_json(&json);
        let config_id = crate::canonical::sha256_hex(&canonical_json);
        Self { cfg, json, canonical_json, config_id, layers, merged }
    }
}

// ---------------------------------------------------------------------------------------------
// Layout: sections, the two layer forms, every key against the schema.

struct Checker {
    problems: Vec<Problem>,
    /// Every key name of the schema -> the dotted paths where it lives (preorder).
    index: &'static [(&'static str, String)],
}

fn suggest(word: &str, choices: &[&str]) -> String {
    close_match(word, choices)
        .map(|c| format!(" (did you mean {}?)", crate::raw::py_repr_str(c)))
        .unwrap_or_default()
}

fn section_names(node: &Node) -> Vec<&'static str> {
    match node {
        Node::Section(c) => c.iter().map(|(n, _)| *n).collect(),
        Node::Leaf(_) => Vec::new(),
    }
}

impl Checker {
    fn new() -> Self {
        fn walk(node: &Node, prefix: &str, out: &mut Vec<(&'static str, String)>) {
            if let Node::Section(children) = node {
                for (name, sub) in children {
                    let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
                    out.push((name, path.clone()));
                    walk(sub, &path, out);
                }
            }
        }
        static INDEX: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
            let mut index = Vec::new();
            walk(tree(), "", &mut index);
            index
        });
        Self { problems: Vec::new(), index: &INDEX }
    }

    fn add(&mut self, location: &[String], message: String) {
        self.problems.push(Problem::new(dotted(location), message));
    }

    /// `value` as a mapping (null counts as empty); None after recording a problem.
    fn mapping(&mut self, value: Option<&Raw>, location: &[String], what: &str) -> Option<Vec<(Raw, Raw)>> {
        match value {
            None | Some(Raw::Null) => Some(Vec::new()),
            Some(Raw::Map(m)) => Some(m.clone()),
            Some(other) => {
                self.add(location, format!("expected a mapping of {what}, got {}", other.describe()));
                None
            }
        }
    }

    fn string_keys(
        &mut self,
        values: Vec<(Raw, Raw)>,
        location: &[String],
        what: &str,
    ) -> Vec<(String, Raw)> {
        let mut out = Vec::new();
        for (key, value) in values {
            match key {
                Raw::Str(k) => out.push((k, value)),
                other => {
                    let hint = if matches!(other, Raw::Bool(_)) {
                        " (YAML reads yes/no/on/off/true/false as booleans; quote it)"
                    } else {
                        ""
                    };
                    self.add(location, format!("{what} {} is not a string{hint}", other.py_repr()));
                }
            }
        }
        out
    }

    fn unknown_key(&self, key: &str, choices: &[&str], section: &[String]) -> String {
        let here = dotted(&at(section, key));
        let elsewhere: Vec<&str> =
            self.index.iter().filter(|(n, p)| *n == key && *p != here).map(|(_, p)| p.as_str()).collect();
        let name = crate::raw::py_repr_str(key);
        if elsewhere.is_empty() {
            format!("unknown key {name}{}", suggest(key, choices))
        } else {
            format!("unknown key {name} here (it belongs at {})", elsewhere.join(" or "))
        }
    }

    fn section(
        &mut self,
        value: Option<&Raw>,
        location: &[String],
        node: &Node,
        section: &[String],
        per_symbol: bool,
    ) -> Option<Vec<(Raw, Raw)>> {
        let what = if section.is_empty() {
            "strategy settings".to_string()
        } else {
            format!("{} settings", dotted(section))
        };
        let values = self.mapping(value, location, &what)?;
        let choices = section_names(node);
        let mut out = Vec::new();
        for (key, sub) in self.string_keys(values, location, "key") {
            let here = at(location, &key);
            match node.child(&key) {
                None => {
                    let message = self.unknown_key(&key, &choices, section);
                    self.add(&here, message);
                }
                Some(_) if per_symbol && section.is_empty() && GLOBAL_ONLY_KEYS.contains(&key.as_str()) => {
                    let name = crate::raw::py_repr_str(&key);
                    self.add(
                        &here,
                        format!("{name} applies to the whole daemon; set it under global, not per symbol"),
                    );
                }
                Some(child @ Node::Section(_)) => {
                    if let Some(checked) =
                        self.section(Some(&sub), &here, child, &at(section, &key), per_symbol)
                    {
                        out.push((Raw::Str(key), Raw::Map(checked)));
                    }
                }
                Some(Node::Leaf(_)) => out.push((Raw::Str(key), sub)),
            }
        }
        Some(out)
    }

    fn overlay(&mut self, value: Option<&Raw>, location: Location, per_symbol: bool) -> Option<Overlay> {
        let values = self.section(value, &location, tree(), &[], per_symbol)?;
        Some(Overlay { location, values })
    }

    fn symbols(&mut self, value: Option<&Raw>, location: &[String]) -> Vec<(String, Overlay)> {
        let values = self.mapping(value, location, "symbol overrides").unwrap_or_default();
        let mut out = Vec::new();
        for (sym, sub) in self.string_keys(values, location, "symbol") {
            if let Some(o) = self.overlay(Some(&sub), at(location, &sym), true) {
                out.push((sym, o));
            }
        }
        out
    }

    /// `{global: ..., symbols: ...}` or the shorthand `{trade: ..., ...}` (all global).
    fn layer(&mut self, value: Option<&Raw>, location: &[String]) -> Layer {
        let values = match self.mapping(value, location, "settings") {
            Some(v) if !v.is_empty() => v,
            _ => return Layer::default(),
        };
        let keys: Vec<&str> = values.iter().filter_map(|(k, _)| k.as_str()).collect();
        if !keys.iter().any(|k| LAYER_FORM_KEYS.contains(k)) {
            let whole = Raw::Map(values.clone());
            return Layer {
                global: self.overlay(Some(&whole), location.to_vec(), false),
                symbols: Vec::new(),
            };
        }
        let top_names = section_names(tree());
        for key in keys.iter().filter(|k| !LAYER_FORM_KEYS.contains(k)) {
            let message = if top_names.contains(key) {
                format!(
                    "mixes the {{global, symbols}} form with shorthand keys; move this under {}.global",
                    dotted(location)
                )
            } else {
                format!("unknown key {}{}", crate::raw::py_repr_str(key), suggest(key, LAYER_FORM_KEYS))
            };
            self.add(&at(location, key), message);
        }
        let map = Raw::Map(values.clone());
        let global = self.overlay(map.get("global"), at(location, "global"), false);
        let symbols = self.symbols(map.get("symbols"), &at(location, "symbols"));
        Layer { global, symbols }
    }

    fn modes(&mut self, value: Option<&Raw>) -> Vec<(&'static str, Layer)> {
        let location = vec!["modes".to_string()];
        let values = self.mapping(value, &location, "strategy modes").unwrap_or_default();
        let mut out = Vec::new();
        for (name, sub) in self.string_keys(values, &location, "mode name") {
            let here = at(&location, &name);
            if let Some(mode) = STRATEGY_MODES.iter().find(|m| **m == name) {
                let layer = self.layer(Some(&sub), &here);
                out.push((*mode, layer));
            } else if let Some((_, canonical)) =
                STRATEGY_MODE_ALIASES.iter().find(|(a, _)| *a == name.to_lowercase())
            {
                let (alias, canonical) = (crate::raw::py_repr_str(&name), crate::raw::py_repr_str(canonical));
                self.add(
                    &here,
                    format!(
                        "{alias} is an alias of {canonical}; name the section {canonical} \
                         (aliases are for AI_QUANT_STRATEGY_MODE)"
                    ),
                );
            } else {
                self.add(
                    &here,
                    format!(
                        "unknown strategy mode {}{}; expected one of {}",
                        crate::raw::py_repr_str(&name),
                        suggest(&name, STRATEGY_MODES),
                        STRATEGY_MODES.join(", ")
                    ),
                );
            }
        }
        out
    }
}

/// Sorted symbols with overrides anywhere in a parsed file: `symbols`, `live.symbols` or
/// `modes.<name>.symbols`. Symbol names are case-sensitive (Hyperliquid has `kPEPE`).
pub fn list_symbols(raw: &Raw) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut collect = |section: Option<&Raw>| {
        if let Some(Raw::Map(m)) = section {
            found.extend(m.iter().filter_map(|(k, _)| k.as_str().map(str::to_string)));
        }
    };
    collect(raw.get("symbols"));
    collect(raw.get("live").and_then(|l| l.get("symbols")));
    if let Some(Raw::Map(modes)) = raw.get("modes") {
        for (_, layer) in modes {
            collect(layer.get("symbols"));
        }
    }
    found.into_iter().collect()
}

/// Check the layout and every key of a parsed file; every problem at once.
pub fn check_document(raw: &Raw) -> Result<Document, Vec<Problem>> {
    let sections = TOP_LEVEL_SECTIONS.join(", ");
    let top = match raw {
        Raw::Null => {
            return Err(vec![Problem::new(
                "",
                format!(
                "the file is empty; expected a mapping with sections {sections} (write {{}} for defaults)"
            ),
            )])
        }
        Raw::Map(m) => m.clone(),
        other => {
            return Err(vec![Problem::new(
                "",
                format!("the top level must be a mapping with sections {sections}; got {}", other.describe()),
            )])
        }
    };
    let mut checker = Checker::new();
    let mut base = Layer::default();
    let mut live = None;
    let mut modes = Vec::new();
    let top_names = section_names(tree());
    for (key, value) in checker.string_keys(top, &[], "top-level key") {
        // file order, so problems come out in file order
        match key.as_str() {
            "global" => base.global = checker.overlay(Some(&value), vec![key.clone()], false),
            "symbols" => base.symbols = checker.symbols(Some(&value), std::slice::from_ref(&key)),
            "live" => live = Some(checker.layer(Some(&value), std::slice::from_ref(&key))),
            "modes" => modes = checker.modes(Some(&value)),
            _ => {
                let hint = if top_names.contains(&key.as_str()) {
                    "; strategy keys go under global: or symbols.<SYM>:".to_string()
                } else {
                    suggest(&key, TOP_LEVEL_SECTIONS)
                };
                let name = crate::raw::py_repr_str(&key);
                checker.add(
                    std::slice::from_ref(&key),
                    format!("unknown top-level section {name}{hint} (expected {sections})"),
                );
            }
        }
    }
    if !checker.problems.is_empty() {
        return Err(checker.problems);
    }
    Ok(Document { base, live, modes, symbols: list_symbols(raw) })
}

// ---------------------------------------------------------------------------------------------
// Merge with origins.

/// The defaults as a document value (built once).
static DEFAULTS: LazyLock<Raw> = LazyLock::new(|| Raw::from_json(&crate::defaults_json()));

struct Merged {
    value: Raw,
    origins: Origins,
    layers: Vec<String>,
}

impl Merged {
    fn apply(&mut self, overlay: &[(Raw, Raw)], name: String, location: Option<&[String]>) {
        let index = self.layers.len();
        self.layers.push(name.clone());
        let origin = |here: &[String]| Origin {
            location: location.map(|l| [l, here].concat()),
            layer_index: index,
            layer_name: name.clone(),
        };
        fn walk(
            target: &mut Vec<(Raw, Raw)>,
            values: &[(Raw, Raw)],
            path: &[String],
            origins: &mut Origins,
            origin: &dyn Fn(&[String]) -> Origin,
        ) {
            for (key, value) in values {
                let Some(k) = key.as_str() else { continue };
                let here = at(path, k);
                let slot = target.iter().position(|(t, _)| t.as_str() == Some(k));
                match (value, slot) {
                    (Raw::Map(sub), Some(i)) if matches!(target[i].1, Raw::Map(_)) => {
                        if let Raw::Map(inner) = &mut target[i].1 {
                            walk(inner, sub, &here, origins, origin);
                        }
                    }
                    (_, Some(i)) => {
                        target[i].1 = value.clone();
                        origins.insert(here.clone(), origin(&here));
                    }
                    (_, None) => {
                        target.push((key.clone(), value.clone()));
                        origins.insert(here.clone(), origin(&here));
                    }
                }
            }
        }
        if let Raw::Map(target) = &mut self.value {
            walk(target, overlay, &[], &mut self.origins, &origin);
        }
    }
}

impl Document {
    /// Canonical strategy modes with a `modes.<name>` section, in file order.
    pub fn modes(&self) -> Vec<&'static str> {
        self.modes.iter().map(|(m, _)| *m).collect()
    }

    /// Sorted symbols with overrides anywhere in the file.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    fn merge(
        &self,
        symbol: Option<&str>,
        live: bool,
        mode: Option<&str>,
        live_max_open_positions: Option<u32>,
    ) -> Merged {
        let mut m =
            Merged { value: DEFAULTS.clone(), origins: Origins::new(), layers: vec!["defaults".into()] };
        if live {
            let limit = live_max_open_positions.unwrap_or(DEFAULT_LIVE_MAX_OPEN_POSITIONS);
            let trade = Raw::Map(vec![(Raw::Str("max_open_positions".into()), Raw::Int(i128::from(limit)))]);
            m.apply(&[(Raw::Str("trade".into()), trade)], "live safety limit".into(), None);
        }
        let mut layers = vec![&self.base];
        if live {
            layers.extend(self.live.as_ref());
        }
        if let Some(mode) = mode {
            layers.extend(self.modes.iter().filter(|(n, _)| *n == mode).map(|(_, l)| l));
        }
        for layer in layers {
            for overlay in layer.overlays_for(symbol) {
                m.apply(&overlay.values, dotted(&overlay.location), Some(&overlay.location));
            }
        }
        m
    }

    /// Merge, check and hash the config for `symbol` (None: no symbol overrides), `live`
    /// (live/dry_live: the `live` section and the live safety limit) and strategy `mode` (a
    /// canonical name or an alias).
    pub fn resolve(
        &self,
        symbol: Option<&str>,
        live: bool,
        mode: Option<&str>,
        live_max_open_positions: Option<u32>,
    ) -> Result<Resolved, Vec<Problem>> {
        let mode = mode.map(canonical_strategy_mode).transpose().map_err(|e| vec![Problem::new("", e)])?;
        let merged = self.merge(symbol, live, mode, live_max_open_positions);
        let mut checks = Checks { origins: Some(&merged.origins), problems: Vec::new() };
        checks.model(&merged.value, tree(), &[]);
        if !checks.problems.is_empty() {
            return Err(checks.problems);
        }
        let (cfg, json) = typed(&merged.value)?;
        Ok(Resolved::new(cfg, merged.layers, json))
    }
}

/// The checked merged value as the typed config.
fn typed(value: &Raw) -> Result<(StrategyConfig, serde_json::Value), Vec<Problem>> {
    let json =
        value.to_json().ok_or_else(|| vec![Problem::new("", "rejected by the kernel: not plain JSON")])?;
    let cfg = crate::from_json_value(json.clone())
        .map_err(|e| vec![Problem::new(e.path, format!("rejected by the kernel: {}", e.message))])?;
    Ok((cfg, json))
}

// ---------------------------------------------------------------------------------------------
// Value checks: types, ranges, choices, then the order rules of each section.

struct Checks<'a> {
    /// Where each merged value came from; None: a bare config (the kernel's own check).
    origins: Option<&'a Origins>,
    problems: Vec<Problem>,
}

fn type_hint(value: &Raw) -> &'static str {
    let Raw::Str(s) = value else { return "" };
    let t = s.trim().replace('_', "");
    if t.is_empty() || t.parse::<f64>().is_err() {
        return "";
    }
    if s.to_lowercase().contains('e') && !s.contains('.') {
        " (YAML 1.1 reads 1e-3 as text; write 0.001 or 1.0e-3)"
    } else {
        " (remove the quotes)"
    }
}

fn number_of(value: &Raw) -> Option<f64> {
    match value {
        Raw::Int(i) => Some(*i as f64),
        Raw::BigInt(digits) => digits.parse().ok(),
        Raw::Float(f) => Some(*f),
        _ => None,
    }
}

fn value_text(value: &Raw) -> String {
    match value {
        Raw::Int(i) => i.to_string(),
        Raw::BigInt(digits) => digits.clone(),
        Raw::Float(f) => num_text(*f),
        other => other.describe(),
    }
}

impl Checks<'_> {
    fn origin(&self, loc: &[String]) -> Option<&Origin> {
        self.origins.and_then(|o| origin_of(o, loc))
    }

    fn push(&mut self, problem: Problem) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    /// A problem with the value at `loc` (`item`: index into a list that was replaced whole).
    fn report(&mut self, loc: &[String], item: Option<usize>, mut message: String) {
        let mut full = loc.to_vec();
        full.extend(item.map(|i| i.to_string()));
        let origin = self.origin(&full).cloned();
        let key_path = match &origin {
            Some(Origin { location: Some(l), .. }) => {
                dotted(l) + &item.map(|i| format!("[{i}]")).unwrap_or_default()
            }
            _ => {
                if self.origins.is_some() {
                    let source =
                        origin.as_ref().map_or_else(|| "the kernel default".into(), Origin::describe);
                    message += &format!(" (from {source})");
                }
                dotted(&full)
            }
        };
        self.push(Problem::new(key_path, message));
    }

    /// Check a section; true when every key in it is valid.
    fn model(&mut self, value: &Raw, node: &Node, loc: &[String]) -> bool {
        let Node::Section(children) = node else { return true };
        let before = self.problems.len();
        let Raw::Map(entries) = value else {
            self.report(loc, None, format!("expected a mapping, got {}", value.describe()));
            return false;
        };
        for (name, child) in children {
            let here = at(loc, name);
            match (value.get(name), child) {
                (None, _) => self.report(&here, None, "missing from the kernel defaults".into()),
                (Some(v), Node::Section(_)) => {
                    self.model(v, child, &here);
                }
                (Some(v), Node::Leaf(kind)) => self.leaf(v, *kind, &here),
            }
        }
        for (key, _) in entries {
            if key.as_str().is_none_or(|k| node.child(k).is_none()) {
                let here = at(loc, &key.as_str().map_or_else(|| key.py_repr(), str::to_string));
                self.report(&here, None, format!("unknown key {}", key.py_repr()));
            }
        }
        if self.problems.len() > before {
            return false;
        }
        let section = dotted(loc);
        if let Some(rule) = ORDER_RULES.iter().find(|r| r.section == section && !self.order_holds(value, r)) {
            self.order_problem(value, loc, rule);
            return false;
        }
        true
    }

    fn order_holds(&self, value: &Raw, rule: &crate::schema::OrderRule) -> bool {
        let (Some(lo), Some(hi)) =
            (value.get(rule.low).and_then(number_of), value.get(rule.high).and_then(number_of))
        else {
            return true;
        };
        if rule.strict {
            lo < hi
        } else {
            lo <= hi
        }
    }

    fn order_problem(&mut self, value: &Raw, loc: &[String], rule: &crate::schema::OrderRule) {
        let (low, high) = (rule.low, rule.high);
        let show = |k: &str| value.get(k).map(value_text).unwrap_or_default();
        let (low_value, high_value) = (show(low), show(high));
        let o_low = self.origin(&at(loc, low)).cloned();
        let o_high = self.origin(&at(loc, high)).cloned();
        let rank = |o: &Option<Origin>| match o {
            Some(Origin { location: Some(_), layer_index, .. }) => *layer_index as i64,
            _ => -1,
        };
        // Report at the override that introduced the conflict (the later layer); name the other.
        let (at_origin, other, other_origin) =
            if rank(&o_low) >= rank(&o_high) { (o_low, high, o_high) } else { (o_high, low, o_low) };
        let (op, negated) = if rule.strict { ("<", ">=") } else { ("<=", ">") };
        let where_ = other_origin.as_ref().map_or_else(|| "the kernel default".into(), Origin::describe);
        let mut message =
            format!("{low} ({low_value}) {negated} {high} ({high_value}); {low} must be {op} {high}");
        if self.origins.is_some() {
            message += &format!(" ({other} comes from {where_})");
        }
        let key_path = at_origin.as_ref().map_or_else(|| dotted(&at(loc, low)), Origin::describe);
        self.push(Problem::new(key_path, message));
    }

    fn leaf(&mut self, value: &Raw, kind: Kind, loc: &[String]) {
        let expected = |what: &str| format!("expected {what}, got {}{}", value.describe(), type_hint(value));
        let message = match kind {
            Kind::Float { lo, hi } => match value {
                Raw::Int(_) | Raw::Float(_) | Raw::BigInt(_) => {
                    let x = number_of(value).unwrap_or(f64::NAN);
                    if matches!(value, Raw::Float(f) if !f.is_finite()) {
                        Some(format!("must be a finite number, got {}", value.describe()))
                    } else if !in_range(x, lo, hi) {
                        Some(format!("must be {}, got {}", range_text(lo, hi), value_text(value)))
                    } else {
                        None
                    }
                }
                _ => Some(expected("a number")),
            },
            Kind::Int { lo, hi } => match value {
                Raw::Int(_) | Raw::BigInt(_) if !number_of(value).is_some_and(|x| in_range(x, lo, hi)) => {
                    Some(format!("must be {}, got {}", range_text(lo, hi), value_text(value)))
                }
                Raw::Int(_) | Raw::BigInt(_) => None,
                _ => Some(expected("a whole number")),
            },
            Kind::Bool => (!matches!(value, Raw::Bool(_))).then(|| expected("true or false")),
            Kind::Choice(choices) => {
                let ok = value.as_str().is_some_and(|s| choices.contains(&s));
                (!ok).then(|| format!("expected {}, got {}", choices_text(choices), value.describe()))
            }
            Kind::Interval { allow_empty } => {
                let mut choices: Vec<&str> = if allow_empty { vec![""] } else { Vec::new() };
                choices.extend(crate::INTERVALS.iter().map(|(n, _)| *n));
                let ok = value.as_str().is_some_and(|s| choices.contains(&s));
                (!ok).then(|| format!("expected {}, got {}", choices_text(&choices), value.describe()))
            }
            Kind::StrList => match value {
                Raw::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !matches!(item, Raw::Str(_)) {
                            let m = format!("expected a string, got {}{}", item.describe(), type_hint(item));
                            self.report(loc, Some(i), m);
                        }
                    }
                    None
                }
                _ => Some(expected("a list")),
            },
        };
        if let Some(m) = message {
            self.report(loc, None, m);
        }
    }
}

/// Every problem of a bare merged config (the kernel's own check: no file, no origins).
pub fn check_config(cfg: &StrategyConfig) -> Vec<Problem> {
    let value = Raw::from_json(&serde_json::to_value(cfg).expect("config serialises"));
    let mut checks = Checks { origins: None, problems: Vec::new() };
    checks.model(&value, tree(), &[]);
    checks.problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Result<Document, Vec<Problem>> {
        let raw: Raw = serde_norway::from_str(yaml).unwrap();
        check_document(&raw)
    }

    fn errors(yaml: &str, symbol: Option<&str>, live: bool, mode: Option<&str>) -> Vec<String> {
        match doc(yaml) {
            Err(p) => p.iter().map(ToString::to_string).collect(),
            Ok(d) => {
                d.resolve(symbol, live, mode, None).unwrap_err().iter().map(ToString::to_string).collect()
            }
        }
    }

    #[test]
    fn merge_order_layers_and_live_limit() {
        let y = "
global: {trade: {leverage: 2.0, sl_atr_mult: 1.5}}
symbols: {ETH: {trade: {leverage: 4.0}}}
live: {trade: {sl_atr_mult: 1.0}}
modes:
  primary: {global: {trade: {leverage: 6.0}}, symbols: {ETH: {trade: {tp_atr_mult: 9.0}}}}
";
        let d = doc(y).unwrap();
        let g = d.resolve(None, false, None, None).unwrap();
        assert_eq!((g.cfg.trade.leverage, g.cfg.trade.sl_atr_mult), (2.0, 1.5));
        assert_eq!(g.layers, ["defaults", "global"]);
        let e = d.resolve(Some("ETH"), true, None, None).unwrap().cfg;
        assert_eq!((e.trade.leverage, e.trade.sl_atr_mult, e.trade.max_open_positions), (4.0, 1.0, 1));
        let m = d.resolve(Some("ETH"), false, Some("M1"), None).unwrap();
        assert_eq!((m.cfg.trade.leverage, m.cfg.trade.tp_atr_mult), (6.0, 9.0));
        assert_eq!(m.layers[3..], ["modes.primary.global", "modes.primary.symbols.ETH"]);
        assert_eq!(d.resolve(None, true, None, Some(4)).unwrap().cfg.trade.max_open_positions, 4);
        assert_eq!(d.resolve(None, false, None, None).unwrap().cfg.trade.max_open_positions, 20);
        assert!(d.resolve(None, false, Some("turbo"), None).unwrap_err()[0]
            .message
            .contains("aliases m1->primary"));
    }

    #[test]
    fn every_problem_names_the_place_in_the_file() {
        assert_eq!(
            errors(
                "global:\n  trade:\n    leverage: 60\n    allocation_pct: 0\n  indicators: {adx_window: 0}\n",
                None,
                false,
                None
            ),
            [
                "global.trade.allocation_pct: must be > 0 and <= 1, got 0",
                "global.trade.leverage: must be between 1 and 50, got 60",
                "global.indicators.adx_window: must be between 1 and 5000, got 0",
            ]
        );
        assert_eq!(
            errors("global: {trade: {alocation_pct: 0.1}, indicator: {}}\nsymbols: {BTC: {trade: {min_adx: 1}}}", None, false, None),
            [
                "global.trade.alocation_pct: unknown key 'alocation_pct' (did you mean 'allocation_pct'?)",
                "global.indicator: unknown key 'indicator' (did you mean 'indicators'?)",
                "symbols.BTC.trade.min_adx: unknown key 'min_adx' here (it belongs at thresholds.entry.min_adx)",
            ]
        );
        assert_eq!(
            errors("global: {trade: {slippage_bps: .inf, enable_pyramiding: 1, min_atr_pct: '1e-3'}}", None, false, None),
            [
                "global.trade.slippage_bps: must be a finite number, got number inf",
                "global.trade.enable_pyramiding: expected true or false, got integer 1",
                "global.trade.min_atr_pct: expected a number, got string '1e-3' (YAML 1.1 reads 1e-3 as text; write 0.001 or 1.0e-3)",
            ]
        );
        assert_eq!(
            errors("global: {indicators: {ema_fast_window: 30}}\nsymbols: {ETH: {indicators: {ema_slow_window: 25}}}", Some("ETH"), false, None),
            ["symbols.ETH.indicators.ema_slow_window: ema_fast_window (30) >= ema_slow_window (25); ema_fast_window must be < ema_slow_window (ema_fast_window comes from global.indicators.ema_fast_window)"]
        );
        assert_eq!(
            errors("live: {watchlist_exclude: [DOGE, 3]}", None, true, None),
            ["live.watchlist_exclude[1]: expected a string, got integer 3"]
        );
        assert_eq!(
            errors("symbols: {BTC: {engine: {}}}\nmodes: {m1: {}, primery: {}}", None, false, None),
            [
                "symbols.BTC.engine: 'engine' applies to the whole daemon; set it under global, not per symbol",
                "modes.m1: 'm1' is an alias of 'primary'; name the section 'primary' (aliases are for AI_QUANT_STRATEGY_MODE)",
                "modes.primery: unknown strategy mode 'primery' (did you mean 'primary'?); expected one of primary, fallback, conservative, flat",
            ]
        );
    }

    #[test]
    fn kernel_check_has_no_origins() {
        let mut cfg = StrategyConfig::default();
        cfg.indicators.ema_fast_window = 50;
        assert_eq!(
            check_config(&cfg)[0].to_string(),
            "indicators.ema_fast_window: ema_fast_window (50) >= ema_slow_window (50); ema_fast_window must be < ema_slow_window"
        );
    }
}
