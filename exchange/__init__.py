"""The venue: the seam every layer trades through (exchange/venue.py), the shared trading
vocabulary (exchange/model.py), Hyperliquid's adapters and the local exchange (exchange/sim)."""
