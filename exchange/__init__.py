"""ai-quant exchange package."""
