"""Benchmarks of the exporter against its floors, the naive stack and Nova's own API (see RESULTS.md)."""
