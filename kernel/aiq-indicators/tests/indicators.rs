//! Hand-checkable cases, warm-up indices, NaN handling and bit-identical save/restore.

use aiq_config::StrategyConfig;
use aiq_indicators::*;

/// Deterministic synthetic candles: a multiplicative random walk (xorshift), with a flat stretch.
fn candles(n: usize) -> Vec<Candle> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut px = 60_000.0;
    (0..n)
        .map(|i| {
            let o = px;
            if (500..540).contains(&i) {
                return Candle { t: i as i64 * 300_000, o, h: o, l: o, c: o, v: 0.0 };
                // exchange pause: flat, no volume
            }
            px *= 1.0 + (rnd() - 0.5) * 0.01;
            let h = o.max(px) * (1.0 + rnd() * 0.002);
            let l = o.min(px) * (1.0 - rnd() * 0.002);
            Candle { t: i as i64 * 300_000, o, h, l, c: px, v: rnd() * 100.0 }
        })
        .collect()
}

fn first_some<T>(v: &[Option<T>]) -> Option<usize> {
    v.iter().position(Option::is_some)
}

#[test]
fn sma_and_ema_by_hand() {
    let mut s = Sma::new(3).unwrap();
    let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|&x| s.update(x)).collect();
    assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(4.0)]);

    // k = 2 / 4 = 0.5; seed = mean(1, 2, 3) = 2; then (4 - 2) * 0.5 + 2 = 3; (6 - 3) * 0.5 + 3 = 4.5.
    let mut e = Ema::new(3).unwrap();
    let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 6.0].iter().map(|&x| e.update(x)).collect();
    assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(4.5)]);
    assert_eq!(e.warmup(), 2);
}

#[test]
fn rsi_by_hand_and_flat() {
    // Changes +1, +1, -1: gain 2/3, loss 1/3 -> 66.67. Next change +1 with Wilder smoothing:
    // gain (2/3 * 2 + 1) / 3 = 7/9, loss (1/3 * 2) / 3 = 2/9 -> 77.78.
    let mut r = Rsi::new(3).unwrap();
    let out: Vec<_> = [1.0, 2.0, 3.0, 2.0, 3.0].iter().map(|&x| r.update(x)).collect();
    assert_eq!(first_some(&out), Some(3));
    assert!((out[3].unwrap() - 200.0 / 3.0).abs() < 1e-12);
    assert!((out[4].unwrap() - 700.0 / 9.0).abs() < 1e-12);

    let mut flat = Rsi::new(3).unwrap();
    let out: Vec<_> = [5.0; 6].iter().map(|&x| flat.update(x)).collect();
    assert_eq!(out[3..], [Some(0.0), Some(0.0), Some(0.0)]);
}

#[test]
fn atr_by_hand() {
    // TR(1) = max(12-9, |12-10|, |9-10|) = 3; TR(2) = max(11-10, |11-11|, |10-11|) = 1 -> ATR(2) = 2;
    // TR(3) = max(13-12, |13-10.5|, |12-10.5|) = 2.5 -> (2 * 1 + 2.5) / 2 = 2.25.
    let bars = [(11.0, 9.0, 10.0), (12.0, 9.0, 11.0), (11.0, 10.0, 10.5), (13.0, 12.0, 12.5)];
    let mut a = Atr::new(2).unwrap();
    let out: Vec<_> = bars.iter().map(|&(h, l, c)| a.update(h, l, c)).collect();
    assert_eq!(out, vec![None, None, Some(2.0), Some(2.25)]);
    assert_eq!(true_range(12.0, 9.0, 10.0), 3.0);
}

#[test]
fn warmup_indices_match_talib_lookbacks() {
    let bars = candles(400);
    for n in [2u32, 5, 14, 20] {
        let mut adx = Adx::new(n).unwrap();
        let out: Vec<_> = bars.iter().map(|b| adx.update(b.h, b.l, b.c)).collect();
        assert_eq!(first_some(&out), Some(n as usize), "DI warm-up");
        let adx_first = out.iter().position(|o| o.is_some_and(|o| o.adx.is_some()));
        assert_eq!(adx_first, Some(2 * n as usize - 1), "ADX warm-up");
        assert_eq!(adx.warmup(), 2 * n as u64 - 1);

        let mut bb = Bollinger::new(n, 2.0).unwrap();
        let out: Vec<_> = bars.iter().map(|b| bb.update(b.c)).collect();
        assert_eq!(first_some(&out), Some(n as usize - 1));

        let mut st = StochRsi::new(n, 5, 3).unwrap();
        let out: Vec<_> = bars.iter().map(|b| st.update(b.c)).collect();
        assert_eq!(first_some(&out), Some(n as usize + 5 + 3 - 2));
        assert_eq!(st.warmup(), n as u64 + 6);

        let mut sm = StochRsiSmoothed::new(n, 3, 3).unwrap();
        let out: Vec<_> = bars.iter().map(|b| sm.update(b.c)).collect();
        assert_eq!(out.iter().position(|o| o.k.is_some()), Some(2 * n as usize + 1));
        assert_eq!(out.iter().position(|o| o.d.is_some()), Some(2 * n as usize + 3));
    }
    let mut m = Macd::new(12, 26, 9).unwrap();
    let out: Vec<_> = bars.iter().map(|b| m.update(b.c)).collect();
    assert_eq!(first_some(&out), Some(33));
}

#[test]
fn macd_fast_ema_is_seeded_on_the_slow_window_tail() {
    let closes: Vec<f64> = candles(200).iter().map(|b| b.c).collect();
    let (fast, slow, signal) = (3u32, 6u32, 2u32);
    let mut m = Macd::new(fast, slow, signal).unwrap();
    let out: Vec<_> = closes.iter().map(|&c| m.update(c)).collect();
    // Reference: fast EMA fed from bar slow - fast, slow EMA from bar 0.
    let mut ef = Ema::new(fast).unwrap();
    let mut es = Ema::new(slow).unwrap();
    let mut eg = Ema::new(signal).unwrap();
    for (i, &c) in closes.iter().enumerate() {
        let s = es.update(c);
        let f = if i >= (slow - fast) as usize { ef.update(c) } else { None };
        let expect = match (f, s) {
            (Some(f), Some(s)) => eg.update(f - s).map(|g| (f - s, g)),
            _ => None,
        };
        match (expect, out[i]) {
            (None, None) => {}
            (Some((line, sig)), Some(o)) => {
                assert_eq!(o.macd.to_bits(), line.to_bits());
                assert_eq!(o.signal.to_bits(), sig.to_bits());
                assert_eq!(o.hist.to_bits(), (line - sig).to_bits());
            }
            other => panic!("bar {i}: {other:?}"),
        }
    }
    // Swapped periods behave like the ordered ones (as TA-Lib).
    let mut swapped = Macd::new(slow, fast, signal).unwrap();
    let out2: Vec<_> = closes.iter().map(|&c| swapped.update(c)).collect();
    assert_eq!(out, out2);
}

#[test]
fn bollinger_flat_and_by_hand() {
    let mut bb = Bollinger::new(4, 2.0).unwrap();
    let out: Vec<_> = [1.0, 2.0, 3.0, 4.0].iter().map(|&x| bb.update(x)).collect();
    let o = out[3].unwrap();
    assert_eq!(o.middle, 2.5);
    assert!((o.upper - (2.5 + 2.0 * 1.25f64.sqrt())).abs() < 1e-12);
    let mut flat = Bollinger::new(5, 2.0).unwrap();
    for _ in 0..20 {
        if let Some(o) = flat.update(2497.5) {
            assert_eq!((o.upper, o.middle, o.lower), (2497.5, 2497.5, 2497.5));
        }
    }
}

#[test]
fn bollinger_sigma_stays_accurate_over_long_runs() {
    let closes: Vec<f64> = candles(50_000).iter().map(|b| b.c).collect();
    let n = 20usize;
    let mut bb = Bollinger::new(n as u32, 1.0).unwrap();
    let mut worst: f64 = 0.0;
    for (i, &c) in closes.iter().enumerate() {
        let Some(o) = bb.update(c) else { continue };
        let w = &closes[i + 1 - n..=i];
        let mean = w.iter().sum::<f64>() / n as f64;
        let sd = (w.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64).sqrt();
        if w.iter().all(|&x| x == w[0]) {
            assert_eq!(o.upper, o.middle, "flat window must give sigma exactly 0");
        } else {
            worst = worst.max(((o.upper - o.middle) - sd).abs() / sd);
        }
    }
    assert!(worst < 1e-9, "sigma relative error {worst:e}");
}

#[test]
fn stochrsi_flat_window_is_zero() {
    let mut st = StochRsi::new(3, 3, 1).unwrap();
    let mut sm = StochRsiSmoothed::new(3, 1, 1).unwrap();
    for i in 0..30 {
        let o = st.update(100.0);
        let s = sm.update(100.0);
        if i >= 5 {
            assert_eq!(o.unwrap().k, 0.0);
            assert_eq!(s.k, Some(0.0));
        }
    }
}

#[test]
fn zero_windows_are_errors_not_panics() {
    assert!(matches!(Sma::new(0), Err(IndicatorError::InvalidWindow { .. })));
    assert!(Ema::new(0).is_err() && Rsi::new(0).is_err() && Atr::new(0).is_err() && Adx::new(0).is_err());
    assert!(Bollinger::new(0, 2.0).is_err() && Bollinger::new(5, f64::NAN).is_err());
    assert!(Macd::new(12, 0, 9).is_err() && StochRsi::new(14, 0, 3).is_err());
    let mut cfg = BankConfig::default();
    cfg.indicators.rsi_window = 0;
    assert!(IndicatorBank::new(cfg).is_err());
    let mut sc = StrategyConfig::default();
    sc.indicators.adx_window = 0;
    sc.indicators.bb_std = f64::INFINITY;
    let mut bank = IndicatorBank::from_config(&sc);
    for b in candles(100) {
        bank.update(b);
    }
}

fn bits(s: &IndicatorSnapshot) -> Vec<u64> {
    s.columns().iter().map(|(_, v)| v.to_bits()).collect()
}

#[test]
fn bank_ready_flag_and_nan_before_warmup() {
    let mut bank = IndicatorBank::from_config(&StrategyConfig::default());
    assert_eq!(bank.ready_index(), 199);
    for (i, b) in candles(400).into_iter().enumerate() {
        let s = bank.update(b);
        assert_eq!(s.bar_count, i as u64 + 1);
        let any_nan = s.columns().iter().any(|(_, v)| v.is_nan());
        assert_eq!(s.ready, i >= 199, "bar {i}");
        assert_eq!(any_nan, !s.ready, "bar {i}: NaN iff not ready");
    }
    // A config where the last warm-up is not the macro EMA.
    let mut cfg = BankConfig::default();
    cfg.indicators.ema_macro_window = 10;
    let mut bank = IndicatorBank::new(cfg).unwrap();
    let ready = bank.ready_index() as usize;
    for (i, b) in candles(200).into_iter().enumerate() {
        let s = bank.update(b);
        assert_eq!(s.columns().iter().any(|(_, v)| v.is_nan()), i < ready, "bar {i}");
    }
}

#[test]
fn bank_rejects_bad_candles_without_changing_state() {
    let mut bank = IndicatorBank::from_config(&StrategyConfig::default());
    for b in candles(50) {
        bank.update(b);
    }
    let before = bank.clone();
    let last = *bank.last();
    for bad in [
        (f64::NAN, 1.0, 1.0, 1.0, 1.0),
        (1.0, f64::INFINITY, 1.0, 1.0, 1.0),
        (1.0, 1.0, 0.0, 1.0, 1.0),
        (1.0, 1.0, 1.0, -5.0, 1.0),
        (1.0, 1.0, 1.0, 1.0, -1.0),
        (1.0, 1.0, 1.0, 1.0, f64::NAN),
    ] {
        let r = bank.try_update(Candle { t: 1, o: bad.0, h: bad.1, l: bad.2, c: bad.3, v: bad.4 });
        assert!(matches!(r, Err(IndicatorError::InvalidInput { .. })), "{bad:?}");
        let s = bank.update(Candle { t: 1, o: bad.0, h: bad.1, l: bad.2, c: bad.3, v: bad.4 });
        assert_eq!(bits(&s), bits(&last));
    }
    assert_eq!(format!("{before:?}"), format!("{bank:?}"));
}

#[test]
fn save_restore_is_bit_identical() {
    let bars = candles(3000);
    let cfg = StrategyConfig::default();
    let mut straight = IndicatorBank::from_config(&cfg);
    let expected: Vec<Vec<u64>> = bars.iter().map(|b| bits(&straight.update(*b))).collect();

    for cut in [0usize, 1, 30, 199, 517, 1234, 2999] {
        let mut bank = IndicatorBank::from_config(&cfg);
        for b in &bars[..cut] {
            bank.update(*b);
        }
        let json = serde_json::to_string(&bank).unwrap();
        let mut restored: IndicatorBank = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&restored).unwrap(), json, "cut {cut}: re-serialisation differs");
        for (i, b) in bars.iter().enumerate().skip(cut) {
            let s = restored.update(*b);
            assert_eq!(bits(&s), expected[i], "cut {cut}, bar {i}");
        }
    }
}

#[test]
fn snapshot_json_round_trip_keeps_nan_and_infinities() {
    let mut s = IndicatorSnapshot::empty();
    s.close = 1.5;
    s.atr = f64::INFINITY;
    s.rsi = f64::NEG_INFINITY;
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"ema_fast\":null") && json.contains("\"atr\":\"inf\""));
    let back: IndicatorSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(bits(&back), bits(&s));
}

/// `cargo test -p aiq-indicators --release -- --ignored --nocapture bank_throughput`
#[test]
#[ignore]
fn bank_throughput() {
    let bars = candles(1_000_000);
    let mut bank = IndicatorBank::from_config(&StrategyConfig::default());
    let t0 = std::time::Instant::now();
    let mut acc = 0.0;
    for b in &bars {
        acc += bank.update(*b).adx;
    }
    let ns = t0.elapsed().as_nanos() as f64 / bars.len() as f64;
    println!("IndicatorBank::update: {ns:.1} ns/bar ({acc})");
}

/// The group bits are part of saved kernel state: group `i` is `1 << i`, `ALL` their union, and
/// every snapshot column but the always-set ones belongs to a group.
#[test]
fn output_groups_keep_their_bits_and_columns() {
    for (i, (_, g)) in Outputs::GROUPS.iter().enumerate() {
        assert_eq!(serde_json::to_string(g).unwrap(), (1u16 << i).to_string());
    }
    assert_eq!(serde_json::to_string(&Outputs::ALL).unwrap(), "4095");
    let always: Vec<&str> =
        SNAPSHOT_COLUMNS.iter().copied().filter(|c| Outputs::of_column(c).is_none()).collect();
    assert_eq!(always, ["t", "open", "high", "low", "close", "volume", "prev_close", "bar_count", "ready"]);
    assert_eq!(Outputs::of_column("prev3_macd_hist"), Some(Outputs::MACD));
    assert_eq!(Outputs::of_column("ema_slow_slope_pct"), Some(Outputs::EMA_SLOPE));
    assert_eq!(Outputs::ALL.names().len(), 12);
}
