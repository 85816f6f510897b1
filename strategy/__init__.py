"""Decisions and their search: the kernel driver, the Python shadow reference, the broker adapter
and the strategy factory."""
