//! Decoding of the venue's WebSocket text frames (protocol doc section 7).

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub px: f64,
    pub sz: f64,
    pub n: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candle {
    pub symbol: String,
    pub interval: String,
    pub t: i64,
    pub t_close: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
    pub n: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame that is not a JSON object (the venue's greeting, for one).
    NonJson,
    Pong,
    SubscriptionResponse {
        method: String,
        subscription: Value,
    },
    Error(String),
    AllMids(Vec<(String, f64)>),
    Bbo {
        coin: String,
        time: i64,
        bid: Option<Level>,
        ask: Option<Level>,
    },
    Candle(Candle),
    UserFills {
        is_snapshot: bool,
        user: String,
        fills: Vec<Value>,
    },
    OrderUpdates(Vec<Value>),
    UserFundings {
        is_snapshot: bool,
        fundings: Vec<Value>,
    },
    LedgerUpdates {
        is_snapshot: bool,
        updates: Vec<Value>,
    },
    /// A channel the sidecar does not use.
    Other(String),
    /// JSON that does not have the documented shape.
    Invalid(String),
}

impl Frame {
    /// True for frames that carry market or user data (not acks, errors or pongs).
    pub fn is_data(&self) -> bool {
        !matches!(self, Frame::NonJson | Frame::Pong | Frame::SubscriptionResponse { .. } | Frame::Error(_))
            && !matches!(self, Frame::Invalid(_))
    }
}

/// A number that the venue may send as a JSON string ("30135.0") or as a JSON number.
fn num<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N<'a> {
        F(f64),
        #[serde(borrow)]
        S(std::borrow::Cow<'a, str>),
    }
    match N::deserialize(d)? {
        N::F(f) => Ok(f),
        N::S(s) => {
            let f: f64 = s.trim().parse().map_err(|_| de::Error::custom(format!("not a number: {s:?}")))?;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(de::Error::custom("non-finite number"))
            }
        }
    }
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let f = num(d)?;
    if f.fract() != 0.0 || f.abs() > 9.0e15 {
        return Err(de::Error::custom("not an integer"));
    }
    Ok(f as i64)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    channel: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireCandle {
    #[serde(deserialize_with = "int")]
    t: i64,
    #[serde(rename = "T", deserialize_with = "int")]
    t_close: i64,
    s: String,
    i: String,
    #[serde(deserialize_with = "num")]
    o: f64,
    #[serde(deserialize_with = "num")]
    h: f64,
    #[serde(deserialize_with = "num")]
    l: f64,
    #[serde(deserialize_with = "num")]
    c: f64,
    #[serde(deserialize_with = "num")]
    v: f64,
    #[serde(default, deserialize_with = "int")]
    n: i64,
}

impl From<WireCandle> for Candle {
    fn from(w: WireCandle) -> Self {
        Candle {
            symbol: w.s,
            interval: w.i,
            t: w.t,
            t_close: w.t_close,
            o: w.o,
            h: w.h,
            l: w.l,
            c: w.c,
            v: w.v,
            n: w.n,
        }
    }
}

/// Parse one candle object (a WS `candle` push or one element of a `candleSnapshot` reply).
pub fn parse_candle(v: &str) -> Result<Candle, String> {
    serde_json::from_str::<WireCandle>(v).map(Candle::from).map_err(|e| e.to_string())
}

/// Parse a `candleSnapshot` reply (an array of candle objects).
pub fn parse_candle_snapshot(body: &str) -> Result<Vec<Candle>, String> {
    let raw: Vec<WireCandle> = serde_json::from_str(body).map_err(|e| format!("candleSnapshot: {e}"))?;
    Ok(raw.into_iter().map(Candle::from).collect())
}

#[derive(Deserialize)]
struct WireLevel {
    #[serde(deserialize_with = "num")]
    px: f64,
    #[serde(deserialize_with = "num")]
    sz: f64,
    #[serde(default, deserialize_with = "int")]
    n: i64,
}

#[derive(Deserialize)]
struct WireBbo {
    coin: String,
    #[serde(default, deserialize_with = "int")]
    time: i64,
    bbo: (Option<WireLevel>, Option<WireLevel>),
}

#[derive(Deserialize)]
struct WireMids {
    mids: HashMap<String, String>,
}

#[derive(Deserialize)]
struct WireUserFills {
    #[serde(default, rename = "isSnapshot")]
    is_snapshot: Option<bool>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    fills: Vec<Value>,
}

#[derive(Deserialize)]
struct WireFundings {
    #[serde(default, rename = "isSnapshot")]
    is_snapshot: Option<bool>,
    #[serde(default)]
    fundings: Vec<Value>,
}

#[derive(Deserialize)]
struct WireLedger {
    #[serde(default, rename = "isSnapshot")]
    is_snapshot: Option<bool>,
    #[serde(default, rename = "nonFundingLedgerUpdates")]
    updates: Vec<Value>,
}

#[derive(Deserialize)]
struct WireAck {
    method: String,
    subscription: Value,
}

fn lvl(w: Option<WireLevel>) -> Option<Level> {
    w.map(|w| Level { px: w.px, sz: w.sz, n: w.n })
}

/// Decode one text frame. Never panics; unexpected input becomes `NonJson`, `Other` or `Invalid`.
pub fn decode(text: &str) -> Frame {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Frame::NonJson;
    }
    let env: Envelope = match serde_json::from_str(trimmed) {
        Ok(e) => e,
        Err(e) => return Frame::Invalid(format!("bad json: {e}")),
    };
    let Some(channel) = env.channel else {
        return Frame::Invalid("no channel".into());
    };
    let data = env.data.map(RawValue::get);
    let nodata = || format!("{channel}: no data");
    let res: Result<Frame, String> = (|| {
        Ok(match channel {
            "pong" => Frame::Pong,
            "allMids" => {
                let m: WireMids =
                    serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(m.mids.len());
                for (k, v) in m.mids {
                    if let Ok(f) = v.trim().parse::<f64>() {
                        if f.is_finite() {
                            out.push((k, f));
                        }
                    }
                }
                Frame::AllMids(out)
            }
            "bbo" => {
                let b: WireBbo = serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                Frame::Bbo { coin: b.coin, time: b.time, bid: lvl(b.bbo.0), ask: lvl(b.bbo.1) }
            }
            "candle" => {
                let d = data.ok_or_else(nodata)?;
                // The docs type this as an array; the venue sends one object. Accept both.
                if d.trim_start().starts_with('[') {
                    let mut v = parse_candle_snapshot(d)?;
                    match v.pop() {
                        Some(c) => Frame::Candle(c),
                        None => return Err("candle: empty array".into()),
                    }
                } else {
                    Frame::Candle(parse_candle(d)?)
                }
            }
            "userFills" => {
                let u: WireUserFills =
                    serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                Frame::UserFills { is_snapshot: u.is_snapshot.unwrap_or(false), user: u.user, fills: u.fills }
            }
            "orderUpdates" => {
                let v: Vec<Value> =
                    serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                Frame::OrderUpdates(v)
            }
            "userFundings" => {
                let u: WireFundings =
                    serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                Frame::UserFundings { is_snapshot: u.is_snapshot.unwrap_or(false), fundings: u.fundings }
            }
            "userNonFundingLedgerUpdates" => {
                let u: WireLedger =
                    serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                Frame::LedgerUpdates { is_snapshot: u.is_snapshot.unwrap_or(false), updates: u.updates }
            }
            "subscriptionResponse" => {
                let a: WireAck = serde_json::from_str(data.ok_or_else(nodata)?).map_err(|e| e.to_string())?;
                Frame::SubscriptionResponse { method: a.method, subscription: a.subscription }
            }
            "error" => {
                let v: Value = match data {
                    Some(d) => serde_json::from_str(d).map_err(|e| e.to_string())?,
                    None => Value::Null,
                };
                Frame::Error(match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
            }
            other => Frame::Other(other.to_string()),
        })
    })();
    res.unwrap_or_else(Frame::Invalid)
}

/// The de-duplication key of a fill: (hash, tid).
pub fn fill_key(fill: &Value) -> Option<(String, i64)> {
    let hash = fill.get("hash").and_then(Value::as_str).unwrap_or("").to_string();
    let tid = fill.get("tid").and_then(|t| t.as_i64().or_else(|| t.as_str().and_then(|s| s.parse().ok())))?;
    Some((hash, tid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn greeting_and_pong() {
        assert_eq!(decode("Websocket connection established."), Frame::NonJson);
        assert_eq!(decode(r#"{"channel":"pong"}"#), Frame::Pong);
        assert!(!Frame::Pong.is_data());
    }

    #[test]
    fn all_mids() {
        let f = decode(r#"{"channel":"allMids","data":{"mids":{"BTC":"30135.0","ETH":"1800.5","X":"bad"}}}"#);
        let Frame::AllMids(mut m) = f else { panic!("{f:?}") };
        m.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(m, vec![("BTC".to_string(), 30135.0), ("ETH".to_string(), 1800.5)]);
    }

    #[test]
    fn bbo_with_missing_side() {
        let f = decode(
            r#"{"channel":"bbo","data":{"coin":"BTC","time":5,"bbo":[{"px":"80639.0","sz":"0.00186","n":2},null]}}"#,
        );
        assert_eq!(
            f,
            Frame::Bbo {
                coin: "BTC".into(),
                time: 5,
                bid: Some(Level { px: 80639.0, sz: 0.00186, n: 2 }),
                ask: None
            }
        );
    }

    #[test]
    fn candle_object_strings_and_numbers() {
        let s = r#"{"channel":"candle","data":{"t":1684699200000,"T":1684702799999,"s":"kPEPE","i":"1h","o":"0.0015","c":"0.0016","h":"0.0017","l":"0.0014","v":"12.5","n":42}}"#;
        let Frame::Candle(c) = decode(s) else { panic!() };
        assert_eq!((c.t, c.t_close, c.n), (1684699200000, 1684702799999, 42));
        assert_eq!(c.symbol, "kPEPE");
        assert_eq!(c.v, 12.5);
        let s2 = r#"{"channel":"candle","data":[{"t":1,"T":2,"s":"BTC","i":"1m","o":1,"c":2,"h":3,"l":0.5,"v":4,"n":1}]}"#;
        let Frame::Candle(c2) = decode(s2) else { panic!() };
        assert_eq!(c2.h, 3.0);
    }

    #[test]
    fn user_channels() {
        let f = decode(
            r#"{"channel":"userFills","data":{"isSnapshot":true,"user":"0xab","fills":[{"hash":"0x1","tid":7}]}}"#,
        );
        let Frame::UserFills { is_snapshot, fills, .. } = f else { panic!() };
        assert!(is_snapshot);
        assert_eq!(fill_key(&fills[0]), Some(("0x1".into(), 7)));
        let f = decode(r#"{"channel":"userFills","data":{"user":"0xab","fills":[]}}"#);
        assert!(matches!(f, Frame::UserFills { is_snapshot: false, .. }));
        assert!(
            matches!(decode(r#"{"channel":"orderUpdates","data":[{"order":{}}]}"#), Frame::OrderUpdates(v) if v.len() == 1)
        );
        assert!(matches!(
            decode(r#"{"channel":"userFundings","data":{"user":"0x","fundings":[{"time":1}]}}"#),
            Frame::UserFundings { fundings, .. } if fundings.len() == 1
        ));
        assert!(matches!(
            decode(r#"{"channel":"userNonFundingLedgerUpdates","data":{"user":"0x","nonFundingLedgerUpdates":[{}],"isSnapshot":true}}"#),
            Frame::LedgerUpdates { is_snapshot: true, updates } if updates.len() == 1
        ));
    }

    #[test]
    fn acks_errors_and_junk() {
        assert!(matches!(
            decode(r#"{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"allMids"}}}"#),
            Frame::SubscriptionResponse { method, .. } if method == "subscribe"
        ));
        assert_eq!(
            decode(r#"{"channel":"error","data":"Already subscribed"}"#),
            Frame::Error("Already subscribed".into())
        );
        assert!(matches!(decode(r#"{"channel":"trades","data":[]}"#), Frame::Other(c) if c == "trades"));
        assert!(matches!(decode("{not json"), Frame::Invalid(_)));
        assert!(matches!(decode(r#"{"channel":"candle","data":{"t":"x"}}"#), Frame::Invalid(_)));
        assert!(matches!(decode(r#"{"channel":"allMids"}"#), Frame::Invalid(_)));
        assert!(matches!(decode(r#"{"data":1}"#), Frame::Invalid(_)));
        assert!(matches!(
            decode(
                r#"{"channel":"candle","data":{"t":1.5,"T":2,"s":"B","i":"1m","o":1,"c":1,"h":1,"l":1,"v":1}}"#
            ),
            Frame::Invalid(_)
        ));
    }

    fn json_leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>().prop_map(|f| format!("\"{f}\"")),
            "[a-zA-Z0-9 .\\-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn decode_never_panics_on_bytes(s in "\\PC{0,200}") {
            let _ = decode(&s);
        }

        #[test]
        fn decode_never_panics_on_shaped_frames(
            ch in prop_oneof![Just("allMids"), Just("bbo"), Just("candle"), Just("userFills"),
                              Just("orderUpdates"), Just("userFundings"), Just("error"), Just("pong"),
                              Just("subscriptionResponse"), Just("userNonFundingLedgerUpdates")],
            keys in proptest::collection::vec(prop_oneof![Just("t"), Just("T"), Just("s"), Just("i"), Just("o"),
                Just("c"), Just("h"), Just("l"), Just("v"), Just("n"), Just("coin"), Just("bbo"), Just("mids"),
                Just("fills"), Just("time"), Just("isSnapshot")], 0..12),
            vals in proptest::collection::vec(json_leaf(), 12),
            cut in 0usize..400,
        ) {
            let body: Vec<String> = keys.iter().zip(vals.iter()).map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let frame = format!("{{\"channel\":\"{ch}\",\"data\":{{{}}}}}", body.join(","));
            let _ = decode(&frame);
            let cut = cut.min(frame.len());
            if frame.is_char_boundary(cut) {
                let _ = decode(&frame[..cut]);
            }
        }

        #[test]
        fn candle_roundtrip(t in 0i64..4_000_000_000_000, o in 0.0001f64..1e6, v in 0.0f64..1e9, n in 0i64..1_000_000) {
            let s = format!(
                "{{\"channel\":\"candle\",\"data\":{{\"t\":{t},\"T\":{},\"s\":\"BTC\",\"i\":\"1m\",\"o\":\"{o}\",\"c\":\"{o}\",\"h\":\"{o}\",\"l\":\"{o}\",\"v\":\"{v}\",\"n\":{n}}}}}",
                t + 59_999
            );
            let Frame::Candle(c) = decode(&s) else { panic!("{s}") };
            prop_assert_eq!(c.t, t);
            prop_assert_eq!(c.o, o);
            prop_assert_eq!(c.v, v);
            prop_assert_eq!(c.n, n);
        }
    }
}
