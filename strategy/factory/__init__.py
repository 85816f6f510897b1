"""Strategy factory: sweep -> shortlist -> CPU replay -> validation -> registry -> lifecycle.

Statistics live in :mod:`strategy.factory.stats`, every gate threshold in
:mod:`strategy.factory.thresholds`.
"""
