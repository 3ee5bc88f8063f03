"""Benchmarks of the fleet; run them from the repository root (see bench/README.md)."""
