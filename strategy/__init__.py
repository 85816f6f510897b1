"""ai-quant strategy package."""
