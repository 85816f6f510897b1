//! The replay report as one self-contained HTML page (`ai-quant-bt replay --html FILE`).
//!
//! The page embeds the vendored plotly.js (assets/vendor/plotly, MIT), its own script and style,
//! and one JSON payload built here, so it opens with no network access. What cannot be seen at
//! full view is downsampled to bound the file: the equity curve keeps each bucket's extremes
//! (so no drawdown is hidden) and candles are aggregated into OHLC pyramids (high and low kept)
//! whose finest level fits a fixed budget; the page picks the finest level that fits the zoom.

use std::collections::BTreeMap;

use aiq_backtest::data::{iso, Timeline};
use aiq_backtest::prepare::Prepared;
use aiq_backtest::report::Report;
use aiq_backtest::sim::RunResult;
use aiq_backtest::BtError;
use aiq_indicators::{IndicatorBank, IndicatorSnapshot};
use aiq_kernel::exits::stop_loss_level;
use aiq_kernel::signal::dynamic_tp_mult;
use aiq_kernel::types::Position;
use serde_json::{json, Value};

const PLOTLY: &str = include_str!("../assets/vendor/plotly/plotly.min.js");
const TEMPLATE: &str = include_str!("../assets/report/replay.html");
const APP_JS: &str = include_str!("../assets/report/replay.js");

/// Equity buckets (each keeps up to three points: min, max and deepest drawdown).
const EQUITY_BUCKETS: usize = 2_500;
/// Candles at the finest level, all symbols together.
const CANDLE_BUDGET: usize = 60_000;
/// Each coarser level aggregates this many candles of the level below.
const PYRAMID_RATIO: i64 = 6;
/// The coarsest level holds at most this many candles per symbol.
const COARSEST_MAX: usize = 1_500;

/// Round to 6 significant digits (what a chart can show), as the nearest double to that decimal.
fn sig6(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let e = 5 - x.abs().log10().floor() as i32;
    if e >= 0 {
        let m = 10f64.powi(e.min(22));
        (x * m).round() / m
    } else {
        let m = 10f64.powi(-e);
        (x / m).round() * m
    }
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Equity curve downsampled to bucket extremes, with the drawdown (% from the running peak).
fn equity(curve: &[(i64, f64)], initial: f64) -> Value {
    let mut dd = Vec::with_capacity(curve.len());
    let mut peak = initial;
    for &(_, eq) in curve {
        peak = peak.max(eq);
        dd.push(if peak > 0.0 { (peak - eq) / peak * 100.0 } else { 0.0 });
    }
    let per = curve.len().div_ceil(EQUITY_BUCKETS).max(1);
    let (mut t, mut e, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for (b, chunk) in curve.chunks(per).enumerate() {
        let base = b * per;
        let by = |f: &dyn Fn(usize) -> f64, max: bool| {
            (0..chunk.len())
                .max_by(|&i, &j| {
                    let (x, y) = (f(base + i), f(base + j));
                    if max {
                        x.total_cmp(&y)
                    } else {
                        y.total_cmp(&x)
                    }
                })
                .unwrap_or(0)
        };
        let mut idx = vec![
            by(&|i| curve[i].1, false),
            by(&|i| curve[i].1, true),
            by(&|i| dd[i], true),
            0,
            chunk.len() - 1,
        ];
        idx.sort_unstable();
        idx.dedup();
        for i in idx {
            t.push(curve[base + i].0);
            e.push(r2(curve[base + i].1));
            d.push((dd[base + i] * 1000.0).round() / 1000.0);
        }
    }
    json!({"t": t, "equity": e, "drawdown_pct": d, "points_full": curve.len()})
}

/// Month-by-month return (%) from the full equity curve: each month's last equity over the
/// previous month's (the initial equity for the first).
fn monthly(curve: &[(i64, f64)], initial: f64) -> Value {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut prev = initial;
    for &(t, eq) in curve {
        let m = iso(t)[..7].to_string();
        let e = out.entry(m).or_insert((prev, eq));
        e.1 = eq;
        prev = eq;
    }
    let rows: Vec<Value> = out
        .into_iter()
        .map(|(m, (a, b))| json!({"month": m, "return_pct": if a > 0.0 { r2((b / a - 1.0) * 100.0) } else { 0.0 }}))
        .collect();
    Value::Array(rows)
}

/// One symbol's OHLC pyramid: level 0 aggregates `f0` bars, each next level `PYRAMID_RATIO` more.
fn pyramid(bars: &[aiq_kernel::kernel::Candle], interval_ms: i64, f0: i64) -> Value {
    let mut levels = Vec::new();
    let mut f = f0.max(1);
    loop {
        let step = f * interval_ms;
        let (mut t, mut o, mut h, mut l, mut c) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut cur: Option<(i64, f64, f64, f64, f64)> = None;
        let flush = |x: (i64, f64, f64, f64, f64),
                     t: &mut Vec<i64>,
                     o: &mut Vec<f64>,
                     h: &mut Vec<f64>,
                     l: &mut Vec<f64>,
                     c: &mut Vec<f64>| {
            t.push(x.0);
            o.push(sig6(x.1));
            h.push(sig6(x.2));
            l.push(sig6(x.3));
            c.push(sig6(x.4));
        };
        for b in bars {
            let k = b.t.div_euclid(step) * step;
            cur = match cur {
                Some(x) if x.0 == k => Some((k, x.1, x.2.max(b.h), x.3.min(b.l), b.c)),
                Some(x) => {
                    flush(x, &mut t, &mut o, &mut h, &mut l, &mut c);
                    Some((k, b.o, b.h, b.l, b.c))
                }
                None => Some((k, b.o, b.h, b.l, b.c)),
            };
        }
        if let Some(x) = cur {
            flush(x, &mut t, &mut o, &mut h, &mut l, &mut c);
        }
        let n = t.len();
        // Times as minutes from the first candle keep the payload small.
        let t0 = t.first().copied().unwrap_or(0);
        let dt: Vec<i64> = t.iter().map(|x| (x - t0) / 60_000).collect();
        levels.push(json!({"step_ms": step, "t0": t0, "dt_min": dt, "o": o, "h": h, "l": l, "c": c}));
        if n <= COARSEST_MAX || levels.len() >= 8 {
            break;
        }
        f *= PYRAMID_RATIO;
    }
    Value::Array(levels)
}

/// Per-symbol bars in the replayed range, in time order.
fn bars_by_symbol(tl: &Timeline) -> Vec<Vec<aiq_kernel::kernel::Candle>> {
    let mut out = vec![Vec::new(); tl.symbols.len()];
    for (s, c) in &tl.step_items {
        out[*s as usize].push(*c);
    }
    out
}

/// The initial stop and take-profit of an entry: the kernel's own functions on the snapshot of
/// the last bar closed at the entry (what the kernel saw when it opened the position).
fn levels_at_entry(
    snap: &IndicatorSnapshot,
    side: aiq_kernel::types::Side,
    price: f64,
    cfg: &aiq_config::StrategyConfig,
) -> (f64, f64) {
    let atr = snap.atr.max(snap.close * cfg.trade.min_atr_pct);
    let pos = Position {
        symbol: String::new(),
        side,
        quantity: 0.0,
        avg_entry_price: price,
        entry_atr: atr,
        leverage: 1.0,
        confidence: aiq_config::Confidence::High,
        opened_at_ms: 0,
        last_add_ms: 0,
        adds_count: 0,
        tp1_taken: false,
        trailing_sl: None,
        tp_mult: dynamic_tp_mult(snap.adx, cfg),
        entry_adx_threshold: 0.0,
        mae_usd: 0.0,
        mfe_usd: 0.0,
        funding_paid_usd: 0.0,
        fees_paid_usd: 0.0,
    };
    let (sl, _) = stop_loss_level(&pos, snap, price, cfg);
    (sl, price + side.sign() * pos.tp_mult * atr)
}

fn name<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

/// Round trips as rows (columns in `cols`), with their initial stop and take-profit levels.
fn trips(p: &Prepared, r: &RunResult, bars: &[Vec<aiq_kernel::kernel::Candle>]) -> Value {
    let tl = &p.timeline;
    let cfgs = p.symbol_cfgs();
    let sym_idx: BTreeMap<&str, usize> =
        tl.symbols.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    // Entry times per symbol, ascending, to walk each symbol's indicator bank once.
    let mut wanted: Vec<Vec<(i64, usize)>> = vec![Vec::new(); tl.symbols.len()];
    for (k, t) in r.trips.iter().enumerate() {
        if let Some(&s) = sym_idx.get(t.symbol.as_str()) {
            wanted[s].push((t.opened_ms, k));
        }
    }
    let mut lv: Vec<Option<(f64, f64)>> = vec![None; r.trips.len()];
    for (s, w) in wanted.iter_mut().enumerate() {
        if w.is_empty() {
            continue;
        }
        w.sort_unstable();
        let cfg = cfgs.get(&tl.symbols[s]).unwrap_or(&p.base.cfg);
        let mut bank = IndicatorBank::from_config(cfg);
        let mut snap: Option<IndicatorSnapshot> = None;
        let mut bi = 0;
        for &(t_open, k) in w.iter() {
            while bi < bars[s].len() && bars[s][bi].t + tl.interval_ms <= t_open {
                let b = bars[s][bi];
                snap = Some(bank.update(b));
                bi += 1;
            }
            if let Some(sn) = &snap {
                let t = &r.trips[k];
                lv[k] = Some(levels_at_entry(sn, t.side, t.entry_price, cfg));
            }
        }
    }
    // Repeated strings are sent once: those columns hold an index into `dict[column]`.
    let mut dict: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut code = |col: &'static str, v: String| -> usize {
        let d = dict.entry(col).or_default();
        d.iter().position(|x| *x == v).unwrap_or_else(|| {
            d.push(v);
            d.len() - 1
        })
    };
    let rows: Vec<Value> = r
        .trips
        .iter()
        .zip(&lv)
        .map(|(t, l)| {
            let (sl, tp) = l.map_or((Value::Null, Value::Null), |(a, b)| (json!(sig6(a)), json!(sig6(b))));
            json!([
                t.trade_id,
                code("symbol", t.symbol.clone()),
                code("side", name(&t.side)),
                code("confidence", name(&t.confidence)),
                t.opened_ms,
                t.closed_ms,
                sig6(t.entry_price),
                sig6(t.exit_price),
                sig6(t.max_quantity),
                t.adds,
                r2(t.realized_pnl),
                (t.fees * 1e4).round() / 1e4,
                (t.funding * 1e4).round() / 1e4,
                (t.net_pnl * 1e4).round() / 1e4,
                code("exit_reason", t.exit_reason.as_str().to_string()),
                sl,
                tp
            ])
        })
        .collect();
    json!({
        "cols": ["trade_id", "symbol", "side", "confidence", "opened_ms", "closed_ms", "entry_price",
                 "exit_price", "max_quantity", "adds", "realized_pnl", "fees", "funding", "net_pnl",
                 "exit_reason", "stop_loss", "take_profit"],
        "dict": dict,
        "rows": rows
    })
}

/// The payload the page draws from.
fn payload(p: &Prepared, r: &RunResult, rep: &Report) -> Result<Value, BtError> {
    let tl = &p.timeline;
    let bars = bars_by_symbol(tl);
    let total: usize = bars.iter().map(Vec::len).sum();
    let f0 = total.div_ceil(CANDLE_BUDGET).max(1) as i64;
    let candles: serde_json::Map<String, Value> =
        tl.symbols.iter().zip(&bars).map(|(s, b)| (s.clone(), pyramid(b, tl.interval_ms, f0))).collect();
    let report = serde_json::to_value(rep).map_err(|e| BtError::new(e.to_string()))?;
    Ok(json!({
        "report": report,
        "config": p.base.json,
        "symbol_config_ids": rep.meta.symbol_config_ids,
        "interval_ms": tl.interval_ms,
        "symbols": tl.symbols,
        "equity": equity(&r.equity_curve, rep.meta.initial_balance),
        "monthly": monthly(&r.equity_curve, rep.meta.initial_balance),
        "candles": candles,
        "candle_factor": f0,
        "trips": trips(p, r, &bars),
    }))
}

/// The JSON payload as text that is safe inside a `<script>` element.
fn script_safe(v: &Value) -> Result<String, BtError> {
    let s = serde_json::to_string(v).map_err(|e| BtError::new(e.to_string()))?;
    Ok(s.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"))
}

/// Render the page.
pub fn render(p: &Prepared, r: &RunResult, rep: &Report) -> Result<String, BtError> {
    let data = script_safe(&payload(p, r, rep)?)?;
    let title = format!("ai-quant replay {}", rep.meta.config_id.chars().take(12).collect::<String>());
    // Single-pass substitution: the payload and scripts are never scanned for placeholders.
    let mut out = String::with_capacity(TEMPLATE.len() + PLOTLY.len() + APP_JS.len() + data.len());
    let mut rest = TEMPLATE;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let j = rest[i..]
            .find("}}")
            .map(|j| i + j)
            .ok_or_else(|| BtError::new("report template: unclosed {{"))?;
        match &rest[i + 2..j] {
            "TITLE" => out.push_str(&title),
            "PLOTLY" => out.push_str(PLOTLY),
            "APP" => out.push_str(APP_JS),
            "DATA" => out.push_str(&data),
            other => return Err(BtError::new(format!("report template: unknown placeholder {other}"))),
        }
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Write the page to `path`.
pub fn write(path: &str, p: &Prepared, r: &RunResult, rep: &Report) -> Result<(), BtError> {
    let html = render(p, r, rep)?;
    std::fs::write(path, html).map_err(|e| BtError::new(format!("{path}: cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiq_kernel::kernel::Candle;

    #[test]
    fn six_significant_digits() {
        assert_eq!(sig6(65_432.123_4), 65_432.1);
        assert_eq!(sig6(0.001_234_567_8), 0.001_234_57);
        assert_eq!(sig6(1_234_567.0), 1_234_570.0);
        assert_eq!(sig6(-2.345_678_9), -2.345_68);
        assert_eq!(sig6(0.0), 0.0);
    }

    #[test]
    fn equity_downsampling_keeps_the_extremes_and_the_deepest_drawdown() {
        let n = 100_000;
        let mut curve: Vec<(i64, f64)> =
            (0..n).map(|i| (i as i64 * 300_000, 10_000.0 + (i % 7) as f64)).collect();
        curve[54_321].1 = 7_000.0; // a one-step crash, deepest drawdown
        curve[77_777].1 = 12_000.0; // a one-step spike
        let v = equity(&curve, 10_000.0);
        let e: Vec<f64> = serde_json::from_value(v["equity"].clone()).unwrap();
        let d: Vec<f64> = serde_json::from_value(v["drawdown_pct"].clone()).unwrap();
        assert!(e.len() <= EQUITY_BUCKETS * 5 && e.len() < n / 5);
        assert!(e.contains(&7_000.0) && e.contains(&12_000.0));
        let max_dd = d.iter().cloned().fold(0.0, f64::max);
        assert!((max_dd - (10_006.0 - 7_000.0) / 10_006.0 * 100.0).abs() < 1e-3, "{max_dd}");
        assert_eq!(v["points_full"], n);
    }

    #[test]
    fn candle_levels_keep_high_and_low() {
        let bars: Vec<Candle> = (0..10_000)
            .map(|i| {
                let c = 100.0 + (i % 50) as f64;
                Candle {
                    t: i * 300_000,
                    o: c,
                    h: c + 1.0 + if i == 4_321 { 50.0 } else { 0.0 },
                    l: c - 1.0,
                    c,
                    v: 1.0,
                }
            })
            .collect();
        let lv = pyramid(&bars, 300_000, 4);
        let levels = lv.as_array().unwrap();
        assert!(levels.len() >= 2);
        let n0 = levels[0]["o"].as_array().unwrap().len();
        assert_eq!(n0, 2_500);
        let last = levels.last().unwrap();
        assert!(last["o"].as_array().unwrap().len() <= COARSEST_MAX);
        for l in levels {
            let h: Vec<f64> = serde_json::from_value(l["h"].clone()).unwrap();
            let lo: Vec<f64> = serde_json::from_value(l["l"].clone()).unwrap();
            assert_eq!(h.iter().cloned().fold(f64::MIN, f64::max), 100.0 + 21.0 + 1.0 + 50.0);
            assert_eq!(lo.iter().cloned().fold(f64::MAX, f64::min), 99.0);
        }
    }

    #[test]
    fn payload_text_cannot_close_its_script_element() {
        let v = json!({"config_path": "</script><script>alert(1)</script>", "x": "a & b"});
        let s = script_safe(&v).unwrap();
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
