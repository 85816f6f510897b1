//! Numeric helpers shared by the indicators, and the serde adapter for non-finite `f64`.

/// TA-Lib's zero band (`TA_EPSILON`, 1e-14 since TA-Lib 0.6). Values strictly inside
/// `(-EPS, EPS)` count as zero where TA-Lib tests `TA_IS_ZERO` (ADX/DI denominators); the
/// stochastic's flat-window test scales it by the operands' magnitude.
pub const TA_EPSILON: f64 = 1e-14;

#[inline]
pub(crate) fn is_zero(v: f64) -> bool {
    -TA_EPSILON < v && v < TA_EPSILON
}

/// True range of a bar given the previous close, with TA-Lib's evaluation order:
/// start from `high - low`, then replace with `|high - prev_close|`, then `|low - prev_close|`
/// when strictly greater.
#[inline]
pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut greatest = high - low;
    let v2 = (prev_close - high).abs();
    if v2 > greatest {
        greatest = v2;
    }
    let v3 = (prev_close - low).abs();
    if v3 > greatest {
        greatest = v3;
    }
    greatest
}

/// Serde adapter for `f64` fields that may be non-finite.
///
/// JSON has no NaN/Infinity, and `serde_json` would write `null` and then refuse to read it
/// back. This adapter writes finite values as numbers, NaN as `null`, and infinities as the
/// strings `"inf"` / `"-inf"`; it reads all of those back (plus `"nan"`), so a save/restore
/// round trip is bit-identical (with `serde_json`'s `float_roundtrip` feature, which the
/// workspace enables).
pub mod serde_f64 {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_none()
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    struct F64Visitor;

    impl<'de> Visitor<'de> for F64Visitor {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, null (NaN), \"inf\", \"-inf\" or \"nan\"")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
            d.deserialize_any(F64Visitor)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "inf" | "+inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                "nan" | "NaN" => Ok(f64::NAN),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_option(F64Visitor)
    }
}
