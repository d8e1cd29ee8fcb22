"""Benchmarks (``zstream bench NAME``): each times our path against a baseline in the same run."""
