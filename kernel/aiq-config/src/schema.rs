//! The schema of a merged config: the type and range of every key, in declaration order, and
//! the rules between keys. The one copy: the kernel's `validate`, the layered loader
//! (`layered::resolve`, used by the daemon through `bt_runtime` and by the backtester) and the
//! layout check all read this table. Each key's rule is written next to its field and default
//! in `lib.rs` (`config_section!`); [`FIELDS`] collects them. The named rules are defined here.

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Incl(f64),
    Excl(f64),
}

use std::sync::LazyLock;
use Bound::{Excl, Incl};

/// What a leaf key holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A finite number (an integer is accepted).
    Float {
        lo: Option<Bound>,
        hi: Option<Bound>,
    },
    /// A whole number (never a float, never a boolean).
    Int {
        lo: Option<Bound>,
        hi: Option<Bound>,
    },
    Bool,
    Choice(&'static [&'static str]),
    /// An interval name from `intervals.txt`; `allow_empty`: "" means "same as engine.interval".
    Interval {
        allow_empty: bool,
    },
    StrList,
}

pub const fn float(lo: Option<Bound>, hi: Option<Bound>) -> Kind {
    Kind::Float { lo, hi }
}
pub const fn int(lo: Option<Bound>, hi: Option<Bound>) -> Kind {
    Kind::Int { lo, hi }
}

pub const U32_MAX: f64 = 4_294_967_295.0;
pub const NUM: Kind = float(None, None);
pub const POSITIVE: Kind = float(Some(Excl(0.0)), None);
pub const NON_NEGATIVE: Kind = float(Some(Incl(0.0)), None);
pub const FRACTION: Kind = float(Some(Incl(0.0)), Some(Incl(1.0)));
pub const LEVERAGE: Kind = float(Some(Incl(1.0)), Some(Incl(50.0)));
/// An RSI or ADX threshold: both indicators live on 0..100, so a level outside never fires (or
/// always does) without saying so.
pub const LEVEL: Kind = float(Some(Incl(0.0)), Some(Incl(100.0)));
pub const U32: Kind = int(Some(Incl(0.0)), Some(Incl(U32_MAX)));
/// A window in bars.
pub const WINDOW: Kind = int(Some(Incl(1.0)), Some(Incl(5000.0)));
pub const BOOL: Kind = Kind::Bool;
pub const CONFIDENCE: Kind = Kind::Choice(&["low", "medium", "high"]);
pub const MACD_MODE: Kind = Kind::Choice(&["accel", "sign", "none"]);
pub const STRATEGY_NAME: Kind = Kind::Choice(&["mei_alpha_v1", "ema_cross"]);
pub const INTERVAL: Kind = Kind::Interval { allow_empty: false };
pub const OPT_INTERVAL: Kind = Kind::Interval { allow_empty: true };
pub const STR_LIST: Kind = Kind::StrList;

/// Every leaf key (dotted path) and its kind, in declaration order (the order of the fields in
/// `lib.rs`): problems are reported in this order.
pub static FIELDS: LazyLock<Vec<(&'static str, Kind)>> = LazyLock::new(|| {
    let mut rows = Vec::new();
    <crate::StrategyConfig as crate::Section>::rules("", &mut rows);
    // Built once per process; the tree and the messages borrow the paths for 'static.
    rows.into_iter().map(|(path, kind)| (&*Box::leak(path.into_boxed_str()), kind)).collect()
});

/// `low < high` (strict) or `low <= high` between two keys of one section (checked once every
/// key of the section is valid; the first broken rule of a section is reported).
pub struct OrderRule {
    pub section: &'static str,
    pub low: &'static str,
    pub high: &'static str,
    pub strict: bool,
}

pub static ORDER_RULES: &[OrderRule] = &[
    OrderRule { section: "trade", low: "vol_scalar_min", high: "vol_scalar_max", strict: false },
    OrderRule {
        section: "trade",
        low: "reentry_cooldown_min_mins",
        high: "reentry_cooldown_max_mins",
        strict: false,
    },
    OrderRule { section: "indicators", low: "ema_fast_window", high: "ema_slow_window", strict: true },
    OrderRule { section: "indicators", low: "macd_fast", high: "macd_slow", strict: true },
    OrderRule { section: "thresholds.ranging", low: "rsi_low", high: "rsi_high", strict: false },
];

/// Keys that only make sense once per daemon; a `symbols.<SYM>` block may not set them.
pub static GLOBAL_ONLY_KEYS: &[&str] = &["engine", "watchlist_exclude"];

/// A node of the key tree built from [`FIELDS`].
#[derive(Debug, Clone)]
pub enum Node {
    Section(Vec<(&'static str, Node)>),
    Leaf(Kind),
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Section(c) => c.iter().find(|(n, _)| *n == name).map(|(_, n)| n),
            Node::Leaf(_) => None,
        }
    }
}

/// The key tree of a merged config (sections in declaration order).
pub fn tree() -> &'static Node {
    static TREE: LazyLock<Node> = LazyLock::new(|| {
        let mut root = Node::Section(Vec::new());
        for (path, kind) in FIELDS.iter() {
            let parts: Vec<&'static str> = path.split('.').collect();
            let mut node = &mut root;
            for (i, part) in parts.iter().enumerate() {
                let Node::Section(children) = node else { unreachable!("a leaf has no children") };
                let pos = match children.iter().position(|(n, _)| n == part) {
                    Some(p) => p,
                    None => {
                        let new =
                            if i + 1 == parts.len() { Node::Leaf(*kind) } else { Node::Section(Vec::new()) };
                        children.push((part, new));
                        children.len() - 1
                    }
                };
                node = &mut children[pos].1;
            }
        }
        root
    });
    &TREE
}

/// `between 1 and 50`, `> 0 and <= 1`, `>= 0` ...
pub fn range_text(lo: Option<Bound>, hi: Option<Bound>) -> String {
    if let (Some(Incl(a)), Some(Incl(b))) = (lo, hi) {
        return format!("between {} and {}", num_text(a), num_text(b));
    }
    let mut parts = Vec::new();
    match lo {
        Some(Incl(a)) => parts.push(format!(">= {}", num_text(a))),
        Some(Excl(a)) => parts.push(format!("> {}", num_text(a))),
        None => {}
    }
    match hi {
        Some(Incl(b)) => parts.push(format!("<= {}", num_text(b))),
        Some(Excl(b)) => parts.push(format!("< {}", num_text(b))),
        None => {}
    }
    if parts.is_empty() {
        "in range".into()
    } else {
        parts.join(" and ")
    }
}

/// A number as messages show it: whole numbers without `.0`.
pub fn num_text(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        crate::raw::py_float_str(x)
    }
}

pub fn in_range(x: f64, lo: Option<Bound>, hi: Option<Bound>) -> bool {
    let lo_ok = match lo {
        Some(Incl(a)) => x >= a,
        Some(Excl(a)) => x > a,
        None => true,
    };
    let hi_ok = match hi {
        Some(Incl(b)) => x <= b,
        Some(Excl(b)) => x < b,
        None => true,
    };
    lo_ok && hi_ok
}

/// `'a', 'b' or 'c'`.
pub fn choices_text(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| crate::raw::py_repr_str(c)).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v.as_object() {
            Some(m) => {
                for (k, sub) in m {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    leaves(sub, &path, out);
                }
            }
            None => out.push(prefix.to_string()),
        }
    }

    #[test]
    fn every_struct_field_has_exactly_one_rule() {
        let mut from_structs = Vec::new();
        leaves(&crate::defaults_json(), "", &mut from_structs);
        from_structs.sort();
        let mut from_table: Vec<String> = FIELDS.iter().map(|(p, _)| p.to_string()).collect();
        from_table.sort();
        assert_eq!(from_table, from_structs);
        for rule in ORDER_RULES {
            for key in [rule.low, rule.high] {
                let path = format!("{}.{key}", rule.section);
                assert!(FIELDS.iter().any(|(p, _)| *p == path), "{path}");
            }
        }
    }

    #[test]
    fn range_texts() {
        assert_eq!(range_text(Some(Incl(1.0)), Some(Incl(50.0))), "between 1 and 50");
        assert_eq!(range_text(Some(Excl(0.0)), Some(Incl(1.0))), "> 0 and <= 1");
        assert_eq!(range_text(Some(Excl(0.0)), None), "> 0");
        assert_eq!(choices_text(&["a", "b", "c"]), "'a', 'b' or 'c'");
    }
}
