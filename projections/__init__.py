"""Folds of the event log into RocksDB: window metrics, paid periods, replay, export, audit."""
