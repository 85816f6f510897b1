//! ai-quant WebSocket sidecar (placeholder until the sidecar lands).
fn main() {
    if std::env::args().any(|a| a == "--version") {
        println!("ai-quant-sidecar {}", env!("CARGO_PKG_VERSION"));
    }
}
