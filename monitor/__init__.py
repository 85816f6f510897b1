"""ai-quant monitor package."""
