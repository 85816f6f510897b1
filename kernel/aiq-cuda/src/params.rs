//! The decision core's parameter block (`AiqParams`), derived from the config keys declared in
//! aiq-config: which keys the core reads and what their fields are called. The build script
//! (build.rs, which compiles this file too) writes the list at every build into `$OUT_DIR`:
//! `aiq_params.h`, the X-macro field list the C++ core, its host build and NVRTC compile, and
//! `params_list.rs`, the same list for the Rust mirror (`abi::PARAMS`). Nothing is copied by
//! hand: a key added to aiq-config is a field of both at the next build.
//!
//! Every field is an f64 (booleans 0/1, choices by variant index, whole numbers exactly), in the
//! keys' declaration order.

use aiq_config::schema::Kind;

/// Config sections whose keys the core reads, with the prefix the key gets as a field name
/// (`thresholds.ranging.rsi_low` is `ranging_rsi_low`). "" is the top level (`strategy`).
const SECTIONS: &[(&str, &str)] = &[
    ("", ""),
    ("trade.", ""),
    ("filters.", ""),
    ("thresholds.entry.", ""),
    ("thresholds.ranging.", "ranging_"),
    ("thresholds.anomaly.", "anomaly_"),
    ("thresholds.tp_and_momentum.", ""),
    ("thresholds.stoch_rsi.", "stoch_"),
    ("market_regime.", ""),
];

/// Keys (or whole sections, ending in `.`) the core does not read, and why.
pub const NOT_READ: &[(&str, &str)] = &[
    ("indicators.", "indicator windows shape the snapshots the host computes (AiqSnap)"),
    ("thresholds.entry.ave_avg_atr_window", "an indicator window (avg_atr in AiqSnap)"),
    ("thresholds.entry.slow_drift_slope_window", "an indicator window (ema_slow_slope_pct in AiqSnap)"),
    ("engine.", "the daemon's loop settings"),
    ("watchlist_exclude", "the daemon's symbol list"),
    ("trade.use_bbo_for_fills", "the daemon's paper fills"),
    ("trade.maker_fee_bps", "no decision reads it: the kernel's fills pay the taker fee"),
    ("trade.reentry_cooldown_minutes", "no decision reads it (PESC uses the _min_/_max_mins keys)"),
];

/// Whether `path` is `key`, or below it when `key` is a section (ends in `.`).
pub fn covers(key: &str, path: &str) -> bool {
    if key.ends_with('.') {
        path.starts_with(key)
    } else {
        path == key
    }
}

/// `(field, config key)` of every `AiqParams` field, in layout order, from the schema rows
/// (`aiq_config::schema::FIELDS`). Panics naming the key when a key is in no known section:
/// whoever adds a section decides whether the core reads it.
pub fn derive(fields: &[(&str, Kind)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, kind) in fields {
        if NOT_READ.iter().any(|(key, _)| covers(key, path)) {
            continue;
        }
        let (section, prefix) = SECTIONS
            .iter()
            .filter(|(s, _)| path.starts_with(s) && !path[s.len()..].contains('.'))
            .max_by_key(|(s, _)| s.len())
            .unwrap_or_else(|| {
                panic!("config key {path}: add its section to SECTIONS or NOT_READ (aiq-cuda params.rs)")
            });
        assert!(
            !matches!(kind, Kind::Interval { .. } | Kind::StrList),
            "config key {path}: text is no parameter of the core; list it in NOT_READ (aiq-cuda params.rs)"
        );
        out.push((format!("{prefix}{}", &path[section.len()..]), path.to_string()));
    }
    out
}

const GENERATED: &str =
    "GENERATED at build time by kernel/aiq-cuda/build.rs (src/params.rs) from the config keys";

/// A 32-bit FNV-1a hash of the list (field and key, in order): part of the core's ABI value, so
/// a kernel compiled for another list of keys refuses to run (`AIQ_ERR_ABI`).
pub fn list_id(params: &[(String, String)]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for (name, path) in params {
        for b in name.bytes().chain([b'=']).chain(path.bytes()).chain([b'\n']) {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The text of `aiq_params.h`.
pub fn render_header(params: &[(String, String)]) -> String {
    let mut s = format!(
        "// {GENERATED}\n// of kernel/aiq-config/src/lib.rs: the fields of AiqParams in layout order, each\n\
         // with its key.\n#pragma once\n\n#define AIQ_PARAMS_ID 0x{:08x}u\n\n#define AIQ_PARAM_FIELDS(X)",
        list_id(params)
    );
    for (name, path) in params {
        s.push_str(&format!(" \\\n    X({name}) /* {path} */"));
    }
    s.push('\n');
    s
}

/// The text of `params_list.rs`.
pub fn render_rust(params: &[(String, String)]) -> String {
    let mut s = format!(
        "// {GENERATED}\n// of kernel/aiq-config/src/lib.rs.\n\
         /// `AIQ_PARAMS_ID` of `aiq_params.h` (see `params::list_id`).\n\
         pub const PARAMS_ID: u32 = 0x{:08x};\n\
         /// `(AiqParams field, config key)` in layout order: the list of `aiq_params.h`.\n\
         pub const PARAMS: [(&str, &str); {}] = [\n",
        list_id(params),
        params.len()
    );
    for (name, path) in params {
        s.push_str(&format!("    ({name:?}, {path:?}),\n"));
    }
    s.push_str("];\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiq_config::schema::FIELDS;

    #[test]
    fn names_are_unique_and_every_exclusion_names_a_key() {
        let params = derive(&FIELDS);
        let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), params.len());
        for (key, _) in NOT_READ {
            assert!(FIELDS.iter().any(|(path, _)| covers(key, path)), "{key} is no config key");
        }
    }

    #[test]
    fn a_key_in_no_known_section_stops_the_build() {
        let rows = [("strategy", Kind::Bool), ("newsection.x", Kind::Bool)];
        let e = std::panic::catch_unwind(|| derive(&rows)).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("newsection.x") && msg.contains("NOT_READ"), "{msg}");
        let p = derive(&[("thresholds.ranging.rsi_low", Kind::Bool), ("indicators.atr_window", Kind::Bool)]);
        assert_eq!(p, [("ranging_rsi_low".to_string(), "thresholds.ranging.rsi_low".to_string())]);
    }

    #[test]
    fn the_list_id_changes_with_the_list() {
        let a = derive(&FIELDS);
        let mut b = a.clone();
        b.swap(1, 2);
        assert_ne!(list_id(&a), list_id(&b));
        assert_ne!(list_id(&a), list_id(&a[1..]));
    }
}
