//! ai-quant WebSocket sidecar: holds the venue WebSocket, persists candles to SQLite and serves fresh
//! market data and user events over a Unix socket. See docs/sidecar.md.

mod backfill;
mod candles;
mod config;
mod frame;
mod http;
mod notify;
mod queues;
mod request;
mod server;
mod state;
mod subs;
mod ws;

use config::{Config, Parsed};
use state::{lock, Shared};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

static LOG_LEVEL: AtomicU8 = AtomicU8::new(2);

/// Log to stderr: level 0 error, 1 warning, 2 info, 3 debug.
pub fn log(level: u8, msg: &str) {
    if level <= LOG_LEVEL.load(Ordering::Relaxed) {
        let tag = ["ERROR", "WARN", "INFO", "DEBUG"][level.min(3) as usize];
        eprintln!("{} {tag} ai-quant-sidecar: {msg}", candles::iso_utc(candles::now_ms()));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match Config::from_sources(&|k| std::env::var(k).ok(), &args) {
        Ok(Parsed::Version) => {
            println!("ai-quant-sidecar {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Ok(Parsed::Help) => {
            print!("{}", config::USAGE);
            return;
        }
        Ok(Parsed::Run(c)) => *c,
        Err(e) => {
            eprintln!("ai-quant-sidecar: {e}");
            std::process::exit(2);
        }
    };
    LOG_LEVEL.store(cfg.log_level, Ordering::Relaxed);
    // TLS (https/wss to the real venue) uses rustls with the ring provider.
    http::install_crypto_provider();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ai-quant-sidecar: runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(cfg));
    rt.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(code);
}

/// Bind the socket: refuse when another sidecar answers on it, remove a stale file, chmod 0600.
fn bind(path: &Path) -> Result<tokio::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("another process is serving {}", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("remove stale {}: {e}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(l)
}

async fn run(cfg: Config) -> i32 {
    if let Some(w) = &cfg.sock_fallback_warning {
        log(1, w);
    }
    if let Err(e) = http::parse_url(&cfg.exchange_url) {
        log(0, &e);
        return 2;
    }
    let sock = cfg.sock.clone();
    let listener = match bind(&sock) {
        Ok(l) => l,
        Err(e) => {
            log(0, &e);
            return 1;
        }
    };
    log(
        2,
        &format!(
            "v{} socket {} venue {} candles {} symbols [{}] intervals [{}] user {}",
            env!("CARGO_PKG_VERSION"),
            sock.display(),
            cfg.exchange_url,
            cfg.candles_dir.display(),
            cfg.symbols.join(","),
            cfg.intervals.join(","),
            cfg.user.as_deref().unwrap_or("-")
        ),
    );
    let sh = Shared::new(cfg);
    let server = tokio::spawn(server::serve(sh.clone(), listener));
    let ws_task = tokio::spawn(ws::run(sh.clone()));
    let backfill_task = tokio::spawn(backfill::run(sh.clone()));
    let flusher = tokio::spawn(flush_loop(sh.clone()));
    let house = tokio::spawn(housekeeping(sh.clone()));
    if let Err(e) = notify::notify("READY=1") {
        log(1, &format!("sd_notify READY: {e}"));
    }
    if let Some(period) = notify::watchdog_period() {
        let mut sd = sh.shutdown.subscribe();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = t.tick() => { let _ = notify::notify("WATCHDOG=1"); }
                    _ = sd.changed() => return,
                }
            }
        });
    }

    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log(0, &format!("signal handler: {e}"));
            return 1;
        }
    };
    tokio::select! {
        _ = term.recv() => log(2, "SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => log(2, "SIGINT: shutting down"),
    }
    let _ = notify::notify("STOPPING=1");
    let _ = sh.shutdown.send(true);
    let grace = Duration::from_secs(3);
    let _ = tokio::time::timeout(grace, ws_task).await;
    let _ = tokio::time::timeout(grace, backfill_task).await;
    let _ = tokio::time::timeout(grace, server).await;
    flusher.abort();
    house.abort();
    // Final flush of streamed candles, then close the DBs.
    let sh2 = sh.clone();
    let _ = tokio::task::spawn_blocking(move || {
        sh2.flush_blocking();
        lock(&sh2.db).close();
    })
    .await;
    let _ = std::fs::remove_file(&sock);
    log(2, "stopped");
    0
}

async fn flush_loop(sh: Arc<Shared>) {
    let mut t = tokio::time::interval(sh.cfg.flush_every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        let sh2 = sh.clone();
        let _ = tokio::task::spawn_blocking(move || sh2.flush_blocking()).await;
    }
}

async fn housekeeping(sh: Arc<Shared>) {
    let mut t = tokio::time::interval(Duration::from_millis(500));
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        t.tick().await;
        if server::expire_clients(&sh) {
            log(2, "client registrations expired; updating subscriptions");
            sh.subs_changed.notify_one();
        }
        let all_bootstrapped = lock(&sh.candles).keys.values().all(|k| k.bootstrapped);
        let due = last_prune.map_or(all_bootstrapped, |p| p.elapsed() >= sh.cfg.prune_every);
        if due {
            last_prune = Some(tokio::time::Instant::now());
            let sh2 = sh.clone();
            let _ = tokio::task::spawn_blocking(move || backfill::prune_blocking(&sh2)).await;
        }
    }
}
