//! The ai-quant decision kernel.
pub use aiq_config as config;
