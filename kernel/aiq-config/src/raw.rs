//! A parsed config document as it came from YAML, before any type is known: keeps what JSON
//! cannot (non-finite numbers, non-string keys, values YAML has that JSON lacks) so the checks
//! can name them, and keeps mapping order so problems come out in file order.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One value of a parsed document.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    /// An integer beyond `i128` (Python has them): its decimal digits.
    BigInt(String),
    Float(f64),
    Str(String),
    List(Vec<Raw>),
    /// Keys in document order; a key is normally a `Str`.
    Map(Vec<(Raw, Raw)>),
    /// A value of a kind a config never holds (a date, bytes, a huge integer ...): its type name
    /// and its Python-style repr, for messages.
    Other {
        type_name: String,
        repr: String,
    },
}

impl Raw {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Raw::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entry under string key `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Raw> {
        match self {
            Raw::Map(m) => m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn from_json(v: &serde_json::Value) -> Raw {
        use serde_json::Value;
        match v {
            Value::Null => Raw::Null,
            Value::Bool(b) => Raw::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Raw::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Raw::Int(i128::from(u))
                } else {
                    Raw::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Raw::Str(s.clone()),
            Value::Array(a) => Raw::List(a.iter().map(Raw::from_json).collect()),
            Value::Object(m) => {
                Raw::Map(m.iter().map(|(k, v)| (Raw::Str(k.clone()), Raw::from_json(v))).collect())
            }
        }
    }

    /// The value as JSON; `None` when it holds something JSON cannot (checked configs never do).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(*b),
            Raw::Int(i) => {
                if let Ok(x) = i64::try_from(*i) {
                    Value::from(x)
                } else {
                    Value::from(u64::try_from(*i).ok()?)
                }
            }
            Raw::Float(f) => Value::Number(serde_json::Number::from_f64(*f)?),
            Raw::BigInt(_) => return None,
            Raw::Str(s) => Value::String(s.clone()),
            Raw::List(a) => Value::Array(a.iter().map(Raw::to_json).collect::<Option<_>>()?),
            Raw::Map(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    out.insert(k.as_str()?.to_string(), v.to_json()?);
                }
                Value::Object(out)
            }
            Raw::Other { .. } => return None,
        })
    }

    /// A short, type-naming description for messages: `string 'high'`, `integer 3`, `a list`.
    pub fn describe(&self) -> String {
        match self {
            Raw::Null => "null (an empty value)".into(),
            Raw::Bool(b) => format!("boolean {b}"),
            Raw::Int(i) => format!("integer {i}"),
            Raw::BigInt(digits) => format!("integer {digits}"),
            Raw::Float(f) => format!("number {}", py_float_str(*f)),
            Raw::Str(s) => format!("string {}", py_repr_str(s)),
            Raw::List(_) => "a list".into(),
            Raw::Map(_) => "a mapping".into(),
            Raw::Other { type_name, .. } => type_name.clone(),
        }
    }

    /// Python's `repr()` of the value, for keys named in messages (`True`, `'BTC'`, `3`).
    pub fn py_repr(&self) -> String {
        match self {
            Raw::Null => "None".into(),
            Raw::Bool(true) => "True".into(),
            Raw::Bool(false) => "False".into(),
            Raw::Int(i) => i.to_string(),
            Raw::BigInt(digits) => digits.clone(),
            Raw::Float(f) => py_float_str(*f),
            Raw::Str(s) => py_repr_str(s),
            Raw::List(_) => "[...]".into(),
            Raw::Map(_) => "{...}".into(),
            Raw::Other { repr, .. } => repr.clone(),
        }
    }
}

/// Python's `repr(float)`, `inf`/`nan` included.
pub fn py_float_str(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        crate::canonical::py_float_repr(x)
    }
}

/// Python's `repr(str)`: single quotes unless the text holds one and no double quote.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(i128::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(i128::from(v)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Raw::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out: Vec<(Raw, Raw)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<Raw, Raw>()? {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(de::Error::custom(format!("duplicate key {}", k.py_repr())));
            }
            out.push((k, v));
        }
        Ok(Raw::Map(out))
    }
}
