//! ai-quant-bt (placeholder until the backtester lands).
fn main() {
    if std::env::args().any(|a| a == "--version") {
        println!("ai-quant-bt {}", env!("CARGO_PKG_VERSION"));
    }
}
