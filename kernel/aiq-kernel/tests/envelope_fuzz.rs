//! Time-bounded mutation fuzzing of the JSON envelope API: no input may panic, and every answer
//! is an envelope with a boolean `ok`. Seeds come from `fuzz_corpus/`; the run lasts
//! `AIQ_FUZZ_SECS` seconds (default 60, as the kernel issue asks).

use std::time::{Duration, Instant};

use aiq_kernel::envelope;
use serde_json::Value;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic from the seed, so a failure is reproducible.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NASTY: &[&str] = &[
    "null",
    "true",
    "-1",
    "0",
    "1e308",
    "-1e308",
    "1e-320",
    "18446744073709551616",
    "\"\"",
    "\"long\"",
    "[]",
    "{}",
    "[[[[[[[[[[]]]]]]]]]]",
    "\"\\u0000\"",
    "NaN",
    "1.7976931348623157e309",
    "-0",
    "9007199254740993",
];

fn mutate_value(v: &mut Value, rng: &mut Rng) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            match rng.below(4) {
                0 => {
                    map.remove(k);
                }
                1 => {
                    let nasty: Value =
                        serde_json::from_str(NASTY[rng.below(NASTY.len())]).unwrap_or(Value::Null);
                    map.insert(k.clone(), nasty);
                }
                2 => {
                    map.insert(format!("x{}", rng.next() % 7), Value::from(rng.next() as i64));
                }
                _ => mutate_value(map.get_mut(k).expect("key exists"), rng),
            }
        }
        Value::Number(_) => {
            let choices = [0.0, -1.0, 1e300, -1e300, f64::MIN_POSITIVE, 3.5, 1e-9];
            *v = serde_json::Number::from_f64(choices[rng.below(choices.len())])
                .map_or(Value::Null, Value::Number);
        }
        Value::String(s) => {
            *s = ["", "BTC", "buy", "sell", "candle", "evaluate", "\u{202e}", "😀"][rng.below(8)].to_string();
        }
        _ => *v = Value::from(rng.next() as i64),
    }
}

fn mutate_text(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let i = rng.below(bytes.len());
        match rng.below(3) {
            0 => bytes[i] = (rng.next() & 0xff) as u8,
            1 => {
                bytes.remove(i);
            }
            _ => bytes.insert(i, b"{}[]\",:0e-"[rng.below(10)]),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn corpus() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_corpus");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fuzz_corpus exists") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        out.push((name, std::fs::read_to_string(&path).expect("corpus file")));
    }
    out.sort();
    out
}

fn assert_envelope(v: &Value) {
    let ok = v.get("ok").and_then(Value::as_bool).expect("envelope has boolean ok");
    if !ok {
        let code = v["error"]["code"].as_str().expect("error code");
        assert!(!code.is_empty());
        assert!(v["error"]["message"].is_string());
    }
}

#[test]
fn envelope_never_panics_on_mutated_input() {
    let secs: u64 = std::env::var("AIQ_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let seeds = corpus();
    let params = seeds.iter().find(|(n, _)| n == "params.json").expect("params seed").1.clone();
    let events: Vec<String> =
        seeds.iter().filter(|(n, _)| n != "params.json").map(|(_, t)| t.clone()).collect();
    let init: Value = envelope::initial_state(&params);
    let mut state = init["result"]["state"].to_string();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut runs = 0u64;
    let mut oks = 0u64;
    while Instant::now() < deadline {
        let event = &events[rng.below(events.len())];
        let (s, e, p) = match rng.below(6) {
            0 => (mutate_text(&state, &mut rng), event.clone(), params.clone()),
            1 => (state.clone(), mutate_text(event, &mut rng), params.clone()),
            2 => (state.clone(), event.clone(), mutate_text(&params, &mut rng)),
            3 => {
                let mut v: Value = serde_json::from_str(event).expect("seed is JSON");
                mutate_value(&mut v, &mut rng);
                (state.clone(), v.to_string(), params.clone())
            }
            4 => {
                let mut v: Value = serde_json::from_str(&params).expect("seed is JSON");
                mutate_value(&mut v, &mut rng);
                (state.clone(), event.clone(), v.to_string())
            }
            _ => {
                let mut v: Value = serde_json::from_str(&state).expect("state is JSON");
                mutate_value(&mut v, &mut rng);
                (v.to_string(), event.clone(), params.clone())
            }
        };
        let out: Value = serde_json::from_str(&envelope::step(&s, &e, &p)).expect("envelope is JSON");
        assert_envelope(&out);
        if out["ok"] == Value::Bool(true) {
            oks += 1;
            // Walk the state forward sometimes, so deeper states get fuzzed too.
            if rng.below(4) == 0 {
                state = out["result"]["state"].to_string();
            }
        }
        runs += 1;
    }
    eprintln!("envelope fuzz: {runs} inputs in {secs} s, {oks} accepted, no panic");
    assert!(runs > 100, "fuzzer made too few runs: {runs}");
}
