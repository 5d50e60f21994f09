"""Benchmarks a user can rerun; results are recorded in docs/benchmarks.md."""
