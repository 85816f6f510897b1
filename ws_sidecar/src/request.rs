//! The Unix-socket protocol: newline-delimited JSON requests `{id, method, params}` and responses
//! `{id, ok, result | error}`.

use serde_json::{json, Map, Value};

/// Longest accepted request line, newline excluded.
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Map<String, Value>,
}

/// A response as a JSON line (with its trailing newline).
pub fn ok_line(id: &Value, result: Value) -> Vec<u8> {
    let mut v = serde_json::to_vec(&json!({"id": id, "ok": true, "result": result})).unwrap_or_default();
    v.push(b'\n');
    v
}

pub fn err_line(id: &Value, error: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec(&json!({"id": id, "ok": false, "error": error})).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Parse one request line. On failure, the error response to send (id 0 when no id could be read).
pub fn parse(line: &[u8]) -> Result<Request, Vec<u8>> {
    let zero = Value::from(0);
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => return Err(err_line(&zero, "bad json: not UTF-8")),
    };
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(err_line(&zero, &format!("bad json: {e}"))),
    };
    let Value::Object(mut obj) = v else {
        return Err(err_line(&zero, "bad json: a request is a JSON object"));
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => zero.clone(),
        Some(id @ (Value::Number(_) | Value::String(_))) => id,
        Some(_) => return Err(err_line(&zero, "bad request: id must be a number or a string")),
    };
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(err_line(&id, "bad request: method must be a string")),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(err_line(&id, "bad request: params must be an object")),
    };
    Ok(Request { id, method, params })
}

/// Typed access to request parameters, with errors that name the parameter.
pub struct Params<'a>(pub &'a Map<String, Value>);

impl Params<'_> {
    pub fn str_opt(&self, k: &str) -> Result<Option<String>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("param {k} must be a string")),
        }
    }

    pub fn str_req(&self, k: &str) -> Result<String, String> {
        self.str_opt(k)?.ok_or_else(|| format!("param {k} is required"))
    }

    pub fn f64_opt(&self, k: &str) -> Result<Option<f64>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| format!("param {k} must be a number")),
        }
    }

    pub fn u64_opt(&self, k: &str) -> Result<Option<u64>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(u) => Ok(Some(u)),
                None => match v.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(Some(f as u64)),
                    _ => Err(format!("param {k} must be a non-negative integer")),
                },
            },
        }
    }

    /// A list of symbols: a JSON array of strings, or one comma-separated string.
    pub fn symbols(&self, k: &str) -> Result<Option<Vec<String>>, String> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                Ok(Some(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()))
            }
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    match x.as_str() {
                        Some(s) if !s.is_empty() && s.len() <= 64 => out.push(s.to_string()),
                        _ => return Err(format!("param {k} must hold non-empty strings")),
                    }
                }
                Ok(Some(out))
            }
            Some(_) => Err(format!("param {k} must be an array of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resp(b: &[u8]) -> Value {
        assert_eq!(b.last(), Some(&b'\n'));
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn parses_requests() {
        let r = parse(br#"{"id":3,"method":"health","params":{"symbols":["BTC"]}}"#).unwrap();
        assert_eq!(r.id, json!(3));
        assert_eq!(r.method, "health");
        assert_eq!(Params(&r.params).symbols("symbols").unwrap(), Some(vec!["BTC".to_string()]));
        let r = parse(br#"{"method":"ws_stats"}"#).unwrap();
        assert_eq!(r.id, json!(0));
        assert!(r.params.is_empty());
    }

    #[test]
    fn bad_json_gets_id_zero() {
        let v = resp(&parse(b"{nope").unwrap_err());
        assert_eq!(v["id"], 0);
        assert_eq!(v["ok"], false);
        assert!(v["error"].as_str().unwrap().starts_with("bad json"));
        let v = resp(&parse(b"[1,2]").unwrap_err());
        assert!(v["error"].as_str().unwrap().starts_with("bad json"));
        let v = resp(&parse(b"\xff\xfe").unwrap_err());
        assert!(v["error"].as_str().unwrap().starts_with("bad json"));
    }

    #[test]
    fn bad_fields_keep_the_id() {
        let v = resp(&parse(br#"{"id":9,"method":1}"#).unwrap_err());
        assert_eq!(v["id"], 9);
        let v = resp(&parse(br#"{"id":"a","method":"x","params":[1]}"#).unwrap_err());
        assert_eq!(v["id"], "a");
        let v = resp(&parse(br#"{"id":{},"method":"x"}"#).unwrap_err());
        assert_eq!(v["id"], 0);
    }

    #[test]
    fn params_types() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"a":"x","n":5,"f":1.5,"neg":-1,"s":"BTC, ETH","bad":[1]}"#).unwrap();
        let p = Params(&m);
        assert_eq!(p.str_req("a").unwrap(), "x");
        assert!(p.str_req("zz").is_err());
        assert_eq!(p.u64_opt("n").unwrap(), Some(5));
        assert!(p.u64_opt("neg").is_err());
        assert!(p.u64_opt("f").is_err());
        assert_eq!(p.f64_opt("f").unwrap(), Some(1.5));
        assert_eq!(p.symbols("s").unwrap(), Some(vec!["BTC".into(), "ETH".into()]));
        assert!(p.symbols("bad").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_give_a_request_or_a_valid_error_line(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            match parse(&bytes) {
                Ok(r) => prop_assert!(r.id.is_number() || r.id.is_string()),
                Err(line) => {
                    let v: Value = serde_json::from_slice(&line).unwrap();
                    prop_assert_eq!(&v["ok"], &json!(false));
                    prop_assert!(v["error"].is_string());
                }
            }
        }

        #[test]
        fn shaped_requests(id in prop_oneof![Just("1".to_string()), Just("\"x\"".to_string()), Just("null".to_string()), Just("[]".to_string()), any::<i64>().prop_map(|i| i.to_string())],
                           method in "[a-z_]{0,20}", p in prop_oneof![Just("{}"), Just("null"), Just("[]"), Just("{\"symbols\":[\"BTC\"]}"), Just("3")],
                           cut in 0usize..200) {
            let line = format!("{{\"id\":{id},\"method\":\"{method}\",\"params\":{p}}}");
            let _ = parse(line.as_bytes());
            let _ = parse(&line.as_bytes()[..cut.min(line.len())]);
        }
    }
}
