"""Benchmarks: `make bench` runs every bench/bench_*.py; each prints its figures and a ratio."""
