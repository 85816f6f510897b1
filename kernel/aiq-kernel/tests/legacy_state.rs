//! Saved states stay loadable across the symbol-indexed kernel (issue #17): the fixtures under
//! `tests/fixtures/legacy_state/` were written by the kernel of commit b9b2aad (per-symbol
//! `BTreeMap<String, _>` state) running the scenario below. Today's kernel must save the same
//! bytes at the same point, and continue from the old state with the same outputs and the same
//! final state, also when its own symbol indices were laid out in another order before the load.
//!
//! To rewrite the fixtures (only for a deliberate change of decisions or of the state format):
//! `AIQ_WRITE_LEGACY_STATE=1 cargo test --release -p aiq-kernel --test legacy_state`.

use std::path::PathBuf;

use aiq_config::StrategyConfig;
use aiq_kernel::{Candle, FillMode, Kernel, KernelState, StepOutput};

const STEP: i64 = 300_000;
/// Fed in this (not name-sorted) order each bar.
const SYMBOLS: [&str; 5] = ["SOL", "kPEPE", "BTC", "ETH", "ADA"];
const SAVE_AT: usize = 760;
const END: usize = 1460;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy_state").join(name)
}

fn cfg() -> StrategyConfig {
    let mut c = StrategyConfig::default();
    c.indicators.ema_fast_window = 8;
    c.indicators.ema_slow_window = 15;
    c.indicators.adx_window = 10;
    c.thresholds.entry.min_adx = 10.0;
    c.trade.entry_min_confidence = aiq_config::Confidence::Low;
    c.trade.enable_pyramiding = true;
    c.trade.enable_reef_filter = false;
    c.trade.enable_ssf_filter = false;
    c.trade.enable_rsi_overextension_exit = false;
    c.filters.enable_ranging_filter = false;
    c.filters.enable_anomaly_filter = false;
    c
}

/// ETH trades with its own (merged) config.
fn eth_cfg() -> StrategyConfig {
    let mut c = cfg();
    c.trade.sl_atr_mult = 1.1;
    c.trade.allow_reverse = false;
    c
}

fn kernel() -> Kernel {
    let mut k = Kernel::new(cfg(), 10_000.0, FillMode::Simulate);
    k.set_symbol_config("ETH", eth_cfg());
    k
}

/// Bar `i` of symbol number `s`: a trending, oscillating path, phase-shifted per symbol.
fn bar(s: usize, i: usize) -> Candle {
    let x = i as f64 + 37.0 * s as f64;
    let scale = [1.0, 0.001, 300.0, 20.0, 0.5][s];
    let c = scale * (100.0 + 0.01 * x + 3.0 * (x / 17.0).sin() + 1.5 * (x / (5.3 + s as f64)).cos());
    let o = c - scale * 0.3 * (x / 3.1).sin();
    Candle {
        t: i as i64 * STEP,
        o,
        h: o.max(c) + scale * 0.2,
        l: o.min(c) - scale * 0.2,
        c,
        v: 10.0 + (x / 7.0).sin().abs(),
    }
}

/// Bars `from..to` of the scenario: candles, evaluate, funding every 12 bars, exit mids and
/// sub-bar entries every 5. Returns every output as JSON lines.
fn run(k: &mut Kernel, from: usize, to: usize) -> String {
    let mut log = String::new();
    let push = |log: &mut String, what: &str, out: &StepOutput| {
        if !(out.intents.is_empty() && out.fills.is_empty() && out.blocked.is_empty()) {
            log.push_str(what);
            log.push(' ');
            log.push_str(&serde_json::to_string(out).unwrap());
            log.push('\n');
        }
    };
    for i in from..to {
        for (s, sym) in SYMBOLS.iter().enumerate() {
            push(&mut log, sym, &k.step_candle(sym, bar(s, i)).unwrap());
        }
        let t_close = i as i64 * STEP + STEP;
        if i % 12 == 0 {
            for (s, sym) in SYMBOLS.iter().enumerate() {
                let rate = if s % 2 == 0 { 0.0001 } else { -0.00005 };
                let paid = k.on_funding(sym, rate, bar(s, i).c, t_close).unwrap();
                log.push_str(&format!("funding {sym} {}\n", paid.to_bits()));
            }
        }
        push(&mut log, "evaluate", &k.evaluate(t_close, None));
        if i % 5 == 0 {
            let tick = t_close + 60_000;
            for (s, sym) in SYMBOLS.iter().enumerate().rev() {
                push(&mut log, "mid", &k.on_mid(sym, bar(s, i).c * 1.004, tick).unwrap());
            }
            let prices = [("ETH", bar(3, i).c * 0.997), ("BTC", bar(2, i).c * 1.002)];
            push(&mut log, "sub", &k.evaluate_sub_bar(&prices, tick + 1, None).unwrap());
        }
    }
    log.push_str(&format!("equity {}\n", k.equity().to_bits()));
    log
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{}: {e}", fixture(name).display()))
}

/// Writes the fixtures when asked (run on the code whose states must stay loadable), else checks
/// that today's kernel saves the same state at the same point.
#[test]
fn state_saved_mid_run_is_byte_identical_to_the_legacy_kernels() {
    let mut k = kernel();
    let first = run(&mut k, 0, SAVE_AT);
    let saved = serde_json::to_string(&k.state).unwrap();
    if std::env::var("AIQ_WRITE_LEGACY_STATE").as_deref() == Ok("1") {
        let rest = run(&mut k, SAVE_AT, END);
        std::fs::create_dir_all(fixture("")).unwrap();
        std::fs::write(fixture("state.json"), &saved).unwrap();
        std::fs::write(fixture("continued.log"), rest).unwrap();
        std::fs::write(fixture("final_state.json"), serde_json::to_string(&k.state).unwrap()).unwrap();
        return;
    }
    assert!(first.matches("\"fills\":[{").count() >= 10, "the scenario must trade before the save");
    assert_eq!(saved, read("state.json"), "the state saved mid-run differs from the legacy kernel's");
}

/// A kernel that learned symbols in another order (ETH's config first, then kPEPE, then a symbol
/// the state does not know) loads the legacy state and continues exactly as the legacy kernel did.
#[test]
fn legacy_state_loads_and_continues_identically() {
    let state: KernelState = serde_json::from_str(&read("state.json")).unwrap();
    assert!(!state.positions.is_empty(), "the fixture should hold open positions");
    let mut k = kernel();
    k.symbol_index("kPEPE");
    k.symbol_index("ZEC");
    k.load_state(state).unwrap();
    assert_eq!(serde_json::to_string(&k.state).unwrap(), read("state.json"));
    let rest = run(&mut k, SAVE_AT, END);
    assert!(rest.matches("\"fills\":[{").count() >= 10, "the scenario must trade after the load");
    assert_eq!(rest, read("continued.log"));
    assert_eq!(serde_json::to_string(&k.state).unwrap(), read("final_state.json"));
}

/// `state` is public: replacing it directly (without `load_state`) must also keep the kernel's
/// symbol indices right (its maps are re-aligned on the next call).
#[test]
fn state_replaced_from_outside_continues_identically() {
    let mut k = kernel();
    run(&mut k, 0, 10);
    k.state = serde_json::from_str(&read("state.json")).unwrap();
    // A symbol added from outside, with no bars: it must not disturb the others.
    let extra: KernelState = serde_json::from_str(&read("state.json")).unwrap();
    let sol = extra.symbols.get("SOL").unwrap().clone();
    k.state.symbols.insert("AAA".to_string(), sol);
    k.state.symbols.get_mut("AAA").unwrap().dirty = false;
    k.state.symbols.get_mut("AAA").unwrap().set_snap(None);
    let rest = run(&mut k, SAVE_AT, END);
    assert_eq!(rest, read("continued.log"));
    k.state.symbols.remove("AAA");
    assert_eq!(serde_json::to_string(&k.state).unwrap(), read("final_state.json"));
}
