//! Venue subscriptions: what is wanted, what is active on the current connection, and the diff.

use serde_json::{json, Value};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sub {
    AllMids,
    Bbo(String),
    Candle(String, String),
    UserFills(String),
    OrderUpdates(String),
    UserFundings(String),
    Ledger(String),
}

impl Sub {
    pub fn to_json(&self) -> Value {
        match self {
            Sub::AllMids => json!({"type": "allMids"}),
            Sub::Bbo(c) => json!({"type": "bbo", "coin": c}),
            Sub::Candle(c, i) => json!({"type": "candle", "coin": c, "interval": i}),
            Sub::UserFills(u) => json!({"type": "userFills", "user": u, "aggregateByTime": false}),
            Sub::OrderUpdates(u) => json!({"type": "orderUpdates", "user": u}),
            Sub::UserFundings(u) => json!({"type": "userFundings", "user": u}),
            Sub::Ledger(u) => json!({"type": "userNonFundingLedgerUpdates", "user": u}),
        }
    }

    pub fn message(&self, subscribe: bool) -> String {
        let method = if subscribe { "subscribe" } else { "unsubscribe" };
        json!({"method": method, "subscription": self.to_json()}).to_string()
    }
}

/// The wanted set for watched `symbols` (BBO), `pairs` (symbol, interval) and an optional user.
pub fn wanted<'a>(
    symbols: impl IntoIterator<Item = &'a str>,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    user: Option<&str>,
) -> BTreeSet<Sub> {
    let mut out = BTreeSet::new();
    out.insert(Sub::AllMids);
    for s in symbols {
        out.insert(Sub::Bbo(s.to_string()));
    }
    for (s, i) in pairs {
        out.insert(Sub::Bbo(s.to_string()));
        out.insert(Sub::Candle(s.to_string(), i.to_string()));
    }
    if let Some(u) = user {
        let u = u.to_lowercase();
        out.insert(Sub::UserFills(u.clone()));
        out.insert(Sub::OrderUpdates(u.clone()));
        out.insert(Sub::UserFundings(u.clone()));
        out.insert(Sub::Ledger(u));
    }
    out
}

/// Subscriptions sent on the current connection.
#[derive(Debug, Default)]
pub struct SubManager {
    pub active: BTreeSet<Sub>,
}

impl SubManager {
    /// Messages that bring the connection to `wanted` (unsubscribes first), and records them as sent.
    pub fn sync(&mut self, wanted: &BTreeSet<Sub>) -> Vec<String> {
        let mut msgs: Vec<String> = self.active.difference(wanted).map(|s| s.message(false)).collect();
        msgs.extend(wanted.difference(&self.active).map(|s| s.message(true)));
        self.active = wanted.clone();
        msgs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_set() {
        let w = wanted(["SOL"], [("BTC", "1m"), ("BTC", "5m"), ("ETH", "1m")], Some("0xAB"));
        assert!(w.contains(&Sub::AllMids));
        assert!(w.contains(&Sub::Bbo("BTC".into())));
        assert!(w.contains(&Sub::Candle("BTC".into(), "5m".into())));
        assert!(w.contains(&Sub::UserFills("0xab".into())));
        assert!(w.contains(&Sub::Bbo("SOL".into())));
        assert_eq!(w.len(), 1 + 3 + 3 + 4);
    }

    #[test]
    fn diff_and_reset() {
        let mut m = SubManager::default();
        let a = wanted([], [("BTC", "1m")], None);
        let msgs = m.sync(&a);
        assert_eq!(msgs.len(), 3);
        assert!(msgs.iter().all(|x| x.contains("\"subscribe\"")));
        assert!(m.sync(&a).is_empty());
        let b = wanted([], [("ETH", "1m")], None);
        let msgs = m.sync(&b);
        assert_eq!(msgs.iter().filter(|x| x.contains("unsubscribe")).count(), 2);
        assert_eq!(msgs.len(), 4);
        assert!(msgs[0].contains("unsubscribe"));
        let mut fresh = SubManager::default();
        assert_eq!(fresh.sync(&b).len(), 3);
    }

    #[test]
    fn wire_shapes() {
        let v: Value = serde_json::from_str(&Sub::Candle("BTC".into(), "1h".into()).message(true)).unwrap();
        assert_eq!(
            v,
            json!({"method":"subscribe","subscription":{"type":"candle","coin":"BTC","interval":"1h"}})
        );
        let v: Value = serde_json::from_str(&Sub::UserFills("0xa".into()).message(false)).unwrap();
        assert_eq!(v["subscription"]["aggregateByTime"], false);
        assert_eq!(v["method"], "unsubscribe");
    }
}
