//! A minimal HTTP/1.1 client for `POST /info`: plain HTTP (the local exchange on loopback) or
//! HTTPS with rustls and the Mozilla root store (the real venue).
//! One request per connection (`Connection: close`); `Content-Length` and chunked bodies.

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MAX_BODY: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `https://`: the request goes over TLS.
    pub tls: bool,
}

pub fn parse_url(base: &str) -> Result<Url, String> {
    let (rest, tls) = match (base.strip_prefix("https://"), base.strip_prefix("http://")) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        _ => return Err(format!("not an http(s) URL: {base}")),
    };
    let default_port = if tls { 443 } else { 80 };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
        None => (rest, String::new()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
            (h.to_string(), p.parse::<u16>().map_err(|_| format!("bad port in {base}"))?)
        }
        _ => (hostport.to_string(), default_port),
    };
    if host.is_empty() {
        return Err(format!("no host in {base}"));
    }
    Ok(Url { host, port, path, tls })
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

/// Parse a complete HTTP/1.1 response (the connection was read to its end).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = Some(v.parse::<usize>().map_err(|_| "bad content-length")?);
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        let mut out = Vec::new();
        let mut p = rest;
        loop {
            let le = find(p, b"\r\n").ok_or("truncated chunk size")?;
            let size_txt = std::str::from_utf8(&p[..le]).map_err(|_| "bad chunk size")?;
            let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "bad chunk size")?;
            p = &p[le + 2..];
            if size == 0 {
                break;
            }
            if p.len() < size + 2 || out.len() + size > MAX_BODY {
                return Err("truncated or oversized chunk".into());
            }
            out.extend_from_slice(&p[..size]);
            p = &p[size + 2..];
        }
        out
    } else if let Some(n) = length {
        if rest.len() < n {
            return Err("truncated body".into());
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

/// Install rustls' `ring` crypto provider once per process (also used by the WebSocket's wss).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        install_crypto_provider();
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
    });
    tokio_rustls::TlsConnector::from(Arc::clone(config))
}

/// Send `req` and read the whole response (the server closes the connection).
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &[u8]) -> Result<Vec<u8>, String> {
    s.write_all(req).await.map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::with_capacity(64 * 1024);
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_BODY {
            return Err("response too large".into());
        }
    }
    Ok(raw)
}

/// `POST {url}{path}` with a JSON body.
pub async fn post_json(url: &Url, path: &str, body: &str, timeout: Duration) -> Result<Response, String> {
    let fut = async {
        let s =
            TcpStream::connect((url.host.as_str(), url.port)).await.map_err(|e| format!("connect: {e}"))?;
        let _ = s.set_nodelay(true);
        let req = format!(
            "POST {}{} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: ai-quant-sidecar/{}\r\n\r\n{}",
            url.path,
            path,
            url.host,
            url.port,
            body.len(),
            env!("CARGO_PKG_VERSION"),
            body
        );
        let raw = if url.tls {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| format!("bad TLS server name {:?}: {e}", url.host))?;
            let tls = tls_connector().connect(name, s).await.map_err(|e| format!("TLS handshake: {e}"))?;
            round_trip(tls, req.as_bytes()).await?
        } else {
            round_trip(s, req.as_bytes()).await?
        };
        parse_response(&raw)
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:3001").unwrap(),
            Url { host: "127.0.0.1".into(), port: 3001, path: String::new(), tls: false }
        );
        assert_eq!(parse_url("http://localhost/api/").unwrap().path, "/api");
        assert_eq!(parse_url("http://localhost").unwrap().port, 80);
        let u = parse_url("https://api.hyperliquid.xyz").unwrap();
        assert!(u.tls && u.port == 443 && u.host == "api.hyperliquid.xyz");
        assert!(!parse_url("http://127.0.0.1:3001").unwrap().tls);
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://:80").is_err());
        assert!(parse_url("http://h:x").is_err());
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"[1,2]");
        let r = parse_response(b"HTTP/1.1 429 Too Many Requests\r\n\r\nnull").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (429, &b"null"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[]").is_err());
        assert!(parse_response(b"garbage").is_err());
    }
}
