//! The ai-quant decision kernel.
//!
//! One kernel makes every trading decision: the live daemon, paper trading, the CPU replay and
//! the parameter sweep all drive [`Kernel`]. It consumes candles and computes its own indicators
//! incrementally ([`aiq_indicators::IndicatorBank`]), so every path shares one implementation.
//! The strategy is specified in `docs/strategy/mei_alpha_v1.md`.

pub mod ema_cross;
pub mod envelope;
pub mod exits;
pub mod kernel;
pub mod reads;
pub mod regime;
pub mod signal;
pub mod sizing;
pub mod symbol_map;
pub mod types;

pub use aiq_config as config;
pub use aiq_indicators as indicators;
pub use kernel::{Candle, FillMode, Kernel, KernelError, KernelState, StepOutput};
pub use symbol_map::SymbolMap;
pub use types::*;
