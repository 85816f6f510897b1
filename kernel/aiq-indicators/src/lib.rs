//! Incremental technical indicators. Each indicator consumes one bar at a time in O(1).
