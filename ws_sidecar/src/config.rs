//! Settings from environment variables and command-line flags (flags win).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_EXCHANGE_URL: &str = "http://127.0.0.1:3001";

/// Milliseconds in one bar of `interval`, or `None` for an interval the candle store does not
/// keep (the one list: `kernel/aiq-config/intervals.txt`).
pub use aiq_config::interval_ms;

/// Default retention horizon of an interval in days (upstream facts: 1m 1 d, 3m/5m 7 d,
/// 15m/30m 30 d, 1h 120 d); longer intervals keep what the venue serves (5000 bars).
pub fn default_retention_days(interval: &str) -> Option<i64> {
    match interval {
        "1m" => Some(1),
        "3m" | "5m" => Some(7),
        "15m" | "30m" => Some(30),
        "1h" => Some(120),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub sock: PathBuf,
    pub sock_fallback_warning: Option<String>,
    pub exchange_url: String,
    pub candles_dir: PathBuf,
    pub symbols: Vec<String>,
    pub intervals: Vec<String>,
    pub user: Option<String>,
    pub prune_disable: BTreeSet<String>,
    pub client_ttl: Duration,
    pub stale_after: Duration,
    pub ping_every: Duration,
    pub subscribe_gap: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub flush_every: Duration,
    pub reconcile_delay: Duration,
    pub backfill_chunk: i64,
    pub backfill_concurrency: usize,
    pub backfill_spacing: Duration,
    pub backfill_bars: i64,
    pub prune_every: Duration,
    pub queue_cap: usize,
    pub bbo_db: Option<PathBuf>,
    pub bbo_sample: Duration,
    pub bbo_retention: Duration,
    pub log_level: u8,
}

pub const USAGE: &str = "\
ai-quant-sidecar: holds the venue WebSocket, persists candles to SQLite, serves a Unix socket.

Flags (each overrides the environment variable named beside it):
  --sock PATH                 AI_QUANT_WS_SIDECAR_SOCK (default $XDG_RUNTIME_DIR/ai-quant-ws.sock)
  --exchange-url URL          AI_QUANT_EXCHANGE_URL (default http://127.0.0.1:3001; WS at ws://…/ws)
  --candles-dir DIR           AI_QUANT_CANDLES_DIR (default $AI_QUANT_DATA_DIR/candles_dbs, run/candles_dbs)
  --symbols A,B               AI_QUANT_SIDECAR_SYMBOLS (always watched, besides clients' symbols)
  --intervals 1m,1h           AI_QUANT_SIDECAR_INTERVALS
  --user 0x…                  AI_QUANT_SIDECAR_USER (userFills, orderUpdates, userFundings, ledger)
  --prune-disable 3m,5m       AI_QUANT_CANDLE_PRUNE_DISABLE_INTERVALS (default 3m,5m; 'none' prunes all)
  --client-ttl-secs N         AI_QUANT_WS_CLIENT_TTL_SECS (default 90)
  --stale-secs N              no data message for N s means a stale stream: reconnect (default 30)
  --ping-secs N               app-level ping period (default 50)
  --reconnect-min-ms N        first reconnect delay, doubled per failure with jitter (default 500)
  --reconnect-max-ms N        reconnect delay cap (default 30000)
  --flush-ms N                candle persistence period (default 1000)
  --reconcile-delay-ms N      re-read a bar over REST this long after it closes (default 1500)
  --backfill-chunk N          bars per candleSnapshot request (default 1500)
  --backfill-concurrency N    requests in flight (default 4)
  --backfill-spacing-ms N     minimum gap between request starts (default 500)
  --backfill-bars N           history to bootstrap on an empty DB (default: retention, max 5000 bars)
  --prune-every-secs N        retention pass period (default 600)
  --queue-cap N               bound of each user-event queue (default 5000)
  --bbo-db PATH               optional BBO snapshots DB (sampled)
  --bbo-sample-ms N           BBO sampling period per symbol (default 1000)
  --bbo-retention-secs N      BBO snapshot retention (default 86400)
  --quiet | --verbose         log level
  --version, --help
";

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

fn parse_u64(name: &str, v: &str) -> Result<u64, String> {
    v.trim().parse::<u64>().map_err(|_| format!("{name}: expected a non-negative integer, got {v:?}"))
}

fn current_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The default socket path and, when `$XDG_RUNTIME_DIR` is missing, a warning.
pub fn default_sock(xdg: Option<String>) -> (PathBuf, Option<String>) {
    match xdg.filter(|x| !x.is_empty()) {
        Some(dir) => (PathBuf::from(dir).join("ai-quant-ws.sock"), None),
        None => {
            let uid = current_uid().map(|u| format!("-{u}")).unwrap_or_default();
            let path = std::env::temp_dir().join(format!("ai-quant-ws{uid}.sock"));
            let warn = format!(
                "XDG_RUNTIME_DIR is not set; using {} (set AI_QUANT_WS_SIDECAR_SOCK to choose)",
                path.display()
            );
            (path, Some(warn))
        }
    }
}

/// `http://host:port` → `ws://host:port/ws` (and https → wss), as the SDKs derive it.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("http") {
        format!("ws{rest}/ws")
    } else {
        format!("{base}/ws")
    }
}

pub enum Parsed {
    Run(Box<Config>),
    Version,
    Help,
}

impl Config {
    /// Build the settings from `env` (a lookup function) and `args` (without the program name).
    pub fn from_sources(env: &dyn Fn(&str) -> Option<String>, args: &[String]) -> Result<Parsed, String> {
        let mut flags: Vec<(String, String)> = Vec::new();
        let mut log_level = 2u8;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            match a.as_str() {
                "--version" | "-V" => return Ok(Parsed::Version),
                "--help" | "-h" => return Ok(Parsed::Help),
                "--quiet" => log_level = 1,
                "--verbose" => log_level = 3,
                _ if a.starts_with("--") => {
                    let (name, value) = match a.split_once('=') {
                        Some((n, v)) => (n.to_string(), v.to_string()),
                        None => {
                            i += 1;
                            let v = args.get(i).ok_or_else(|| format!("{a} needs a value"))?;
                            (a.clone(), v.clone())
                        }
                    };
                    flags.push((name, value));
                }
                _ => return Err(format!("unexpected argument {a:?} (see --help)")),
            }
            i += 1;
        }
        let flag = |name: &str| flags.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        for (n, _) in &flags {
            if !USAGE.contains(&format!("{n} ")) {
                return Err(format!("unknown flag {n} (see --help)"));
            }
        }
        let pick = |f: &str, e: &str| flag(f).or_else(|| env(e).filter(|v| !v.is_empty()));
        let num = |f: &str, e: Option<&str>, default: u64| -> Result<u64, String> {
            match flag(f).or_else(|| e.and_then(env).filter(|v| !v.is_empty())) {
                Some(v) => parse_u64(f, &v),
                None => Ok(default),
            }
        };

        let (sock, sock_fallback_warning) = match pick("--sock", "AI_QUANT_WS_SIDECAR_SOCK") {
            Some(p) => (PathBuf::from(p), None),
            None => default_sock(env("XDG_RUNTIME_DIR")),
        };
        let exchange_url = pick("--exchange-url", "AI_QUANT_EXCHANGE_URL")
            .unwrap_or_else(|| DEFAULT_EXCHANGE_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(exchange_url.starts_with("http://") || exchange_url.starts_with("https://")) {
            return Err(format!("exchange URL must start with http:// or https://, got {exchange_url:?}"));
        }
        let candles_dir = match pick("--candles-dir", "AI_QUANT_CANDLES_DIR") {
            Some(d) => PathBuf::from(d),
            None => env("AI_QUANT_DATA_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("run"))
                .join("candles_dbs"),
        };
        let symbols =
            pick("--symbols", "AI_QUANT_SIDECAR_SYMBOLS").map(|s| split_list(&s)).unwrap_or_default();
        let intervals =
            pick("--intervals", "AI_QUANT_SIDECAR_INTERVALS").map(|s| split_list(&s)).unwrap_or_default();
        for iv in &intervals {
            if interval_ms(iv).is_none() {
                let known: Vec<&str> = aiq_config::INTERVALS.iter().map(|r| r.0).collect();
                let venue_only = if aiq_config::VENUE_INTERVALS.contains(&iv.as_str()) {
                    " (the venue serves it, the candle store does not keep it)"
                } else {
                    ""
                };
                return Err(format!("unknown interval {iv:?}{venue_only}; known: {}", known.join(" ")));
            }
        }
        let user = pick("--user", "AI_QUANT_SIDECAR_USER").map(|u| u.to_lowercase());
        if let Some(u) = &user {
            if !is_address(u) {
                return Err(format!("user must be a 0x-prefixed 40-hex-digit address, got {u:?}"));
            }
        }
        let prune_disable = match pick("--prune-disable", "AI_QUANT_CANDLE_PRUNE_DISABLE_INTERVALS") {
            Some(s) if s.trim().eq_ignore_ascii_case("none") => BTreeSet::new(),
            Some(s) => split_list(&s).into_iter().collect(),
            None => ["3m", "5m"].iter().map(|s| s.to_string()).collect(),
        };
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        let cfg = Config {
            sock,
            sock_fallback_warning,
            exchange_url,
            candles_dir,
            symbols,
            intervals,
            user,
            prune_disable,
            client_ttl: secs(num("--client-ttl-secs", Some("AI_QUANT_WS_CLIENT_TTL_SECS"), 90)?.max(1)),
            stale_after: secs(num("--stale-secs", None, 30)?.max(1)),
            ping_every: secs(num("--ping-secs", None, 50)?.max(1)),
            subscribe_gap: ms(10),
            reconnect_min: ms(num("--reconnect-min-ms", None, 500)?.max(1)),
            reconnect_max: ms(num("--reconnect-max-ms", None, 30_000)?.max(1)),
            flush_every: ms(num("--flush-ms", None, 1000)?.max(10)),
            reconcile_delay: ms(num("--reconcile-delay-ms", None, 1500)?),
            backfill_chunk: num("--backfill-chunk", None, 1500)?.clamp(1, 5000) as i64,
            backfill_concurrency: num("--backfill-concurrency", None, 4)?.clamp(1, 64) as usize,
            backfill_spacing: ms(num("--backfill-spacing-ms", None, 500)?),
            backfill_bars: num("--backfill-bars", None, 0)?.min(5000) as i64,
            prune_every: secs(num("--prune-every-secs", None, 600)?.max(1)),
            queue_cap: num("--queue-cap", None, 5000)?.clamp(1, 10_000_000) as usize,
            bbo_db: flag("--bbo-db").map(PathBuf::from),
            bbo_sample: ms(num("--bbo-sample-ms", None, 1000)?),
            bbo_retention: secs(num("--bbo-retention-secs", None, 86_400)?),
            log_level,
        };
        Ok(Parsed::Run(Box::new(cfg)))
    }

    /// History to load on an empty DB for `interval`, in bars (never more than the venue's 5000).
    pub fn bootstrap_bars(&self, interval: &str, candle_limit: i64) -> i64 {
        let iv = interval_ms(interval).unwrap_or(60_000);
        let retention = default_retention_days(interval).map(|d| d * 86_400_000 / iv).unwrap_or(5000);
        let base = if self.backfill_bars > 0 { self.backfill_bars } else { retention };
        base.max(candle_limit).clamp(1, 5000)
    }
}

pub fn is_address(s: &str) -> bool {
    s.len() == 42 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Config, String> {
        let map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match Config::from_sources(&|k| map.get(k).cloned(), &args)? {
            Parsed::Run(c) => Ok(*c),
            _ => Err("not run".into()),
        }
    }

    #[test]
    fn defaults() {
        let c = parse(&[("XDG_RUNTIME_DIR", "/run/user/7")], &[]).unwrap();
        assert_eq!(c.sock, PathBuf::from("/run/user/7/ai-quant-ws.sock"));
        assert!(c.sock_fallback_warning.is_none());
        assert_eq!(c.exchange_url, "http://127.0.0.1:3001");
        assert_eq!(c.candles_dir, PathBuf::from("run/candles_dbs"));
        assert_eq!(c.client_ttl, Duration::from_secs(90));
        assert!(c.prune_disable.contains("3m") && c.prune_disable.contains("5m"));
    }

    #[test]
    fn sock_falls_back_to_temp_with_warning() {
        let c = parse(&[], &[]).unwrap();
        assert!(c.sock.starts_with(std::env::temp_dir()));
        assert!(c.sock_fallback_warning.unwrap().contains("XDG_RUNTIME_DIR"));
    }

    #[test]
    fn flags_win_over_env() {
        let env = [
            ("AI_QUANT_WS_SIDECAR_SOCK", "/tmp/env.sock"),
            ("AI_QUANT_SIDECAR_SYMBOLS", "BTC,ETH"),
            ("AI_QUANT_SIDECAR_INTERVALS", "1m"),
            ("AI_QUANT_WS_CLIENT_TTL_SECS", "5"),
            ("AI_QUANT_CANDLE_PRUNE_DISABLE_INTERVALS", "none"),
        ];
        let c = parse(&env, &["--sock", "/tmp/flag.sock", "--intervals=5m,1h", "--client-ttl-secs", "7"])
            .unwrap();
        assert_eq!(c.sock, PathBuf::from("/tmp/flag.sock"));
        assert_eq!(c.symbols, vec!["BTC", "ETH"]);
        assert_eq!(c.intervals, vec!["5m", "1h"]);
        assert_eq!(c.client_ttl, Duration::from_secs(7));
        assert!(c.prune_disable.is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&[], &["--intervals", "7m"]).is_err());
        assert!(parse(&[], &["--user", "0x12"]).is_err());
        assert!(parse(&[], &["--exchange-url", "ftp://x"]).is_err());
        assert!(parse(&[], &["--nope", "1"]).is_err());
        assert!(parse(&[], &["--flush-ms", "-3"]).is_err());
        assert!(parse(&[], &["stray"]).is_err());
    }

    #[test]
    fn venue_only_intervals_are_refused_by_name() {
        // The one list (kernel/aiq-config/intervals.txt): the venue serves 3d/1w/1M, the store does not.
        for iv in ["3d", "1w", "1M"] {
            let err = parse(&[], &["--intervals", iv]).unwrap_err();
            assert!(err.contains("the candle store does not keep it") && err.contains("1m 3m 5m"), "{err}");
        }
        assert!(!parse(&[], &["--intervals", "7m"]).unwrap_err().contains("venue serves"));
        assert_eq!(interval_ms("1d"), Some(86_400_000));
    }

    #[test]
    fn ws_url_is_derived() {
        assert_eq!(ws_url("http://127.0.0.1:3001"), "ws://127.0.0.1:3001/ws");
        assert_eq!(ws_url("https://api.hyperliquid.xyz/"), "wss://api.hyperliquid.xyz/ws");
    }

    #[test]
    fn bootstrap_bars_follow_retention() {
        let c = parse(&[], &[]).unwrap();
        assert_eq!(c.bootstrap_bars("1m", 0), 1440);
        assert_eq!(c.bootstrap_bars("1h", 0), 2880);
        assert_eq!(c.bootstrap_bars("1d", 0), 5000);
        assert_eq!(c.bootstrap_bars("1m", 3000), 3000);
        assert_eq!(c.bootstrap_bars("1h", 9000), 5000);
    }
}
