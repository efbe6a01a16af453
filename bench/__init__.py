"""Shepherd's benchmarks: `make bench` runs them; BENCHMARKS.md records their tables."""
