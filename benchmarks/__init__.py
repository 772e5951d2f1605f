"""Benchmarks: each compares against a baseline in the same run and records to RESULTS.md."""
