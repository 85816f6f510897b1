"""Candle and funding data layer: SQLite stores, importers, aggregation and verification.

See :mod:`engine.data.schema` for the database layout and conventions.
"""
