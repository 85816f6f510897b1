"""Shared helpers for the operator tools in tools/ (flat_now, manual_trade, export_state, ...).

tools/ is not a package: each tool puts tools/ and the repository root on ``sys.path`` and
imports ``ops.<module>``.
"""
