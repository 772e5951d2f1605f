"""Folds of the event log: the window metrics in RocksDB (fold, queries, retention, replay) and their
OpenTelemetry export."""
