"""ai-quant engine package."""
