"""ai-quant live package."""
