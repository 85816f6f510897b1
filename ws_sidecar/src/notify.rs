//! systemd notifications (`sd_notify`): one datagram to `$NOTIFY_SOCKET`, when it is set.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Send `msg` (e.g. `READY=1`) to the notify socket; a no-op without `NOTIFY_SOCKET`.
pub fn notify(msg: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(false) };
    let path = path.to_string_lossy().to_string();
    if path.is_empty() {
        return Ok(false);
    }
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg.as_bytes(), &addr)?;
    } else {
        sock.send_to(msg.as_bytes(), &path)?;
    }
    Ok(true)
}

/// Half the watchdog period from `WATCHDOG_USEC`, when systemd asks for pings (and `WATCHDOG_PID`,
/// if set, is this process).
pub fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    #[test]
    fn datagram_reaches_the_socket() {
        let dir = std::env::temp_dir().join(format!("aiq-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("n.sock");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // Only this test touches NOTIFY_SOCKET in this process.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(super::notify("READY=1").unwrap());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!super::notify("READY=1").unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
