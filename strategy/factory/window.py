"""The bar length of each interval the factory sweeps: one home for what pipeline, optimize and reopt
all need (#24). Their ISO <-> epoch-ms arithmetic is exchange.timestamps."""

from __future__ import annotations

from exchange.intervals import HOUR_MS, INTERVALS

# The intervals a factory profile may use: those of the one list up to an hour.
INTERVAL_MS = {name: ms for name, ms in INTERVALS.items() if ms <= HOUR_MS}
