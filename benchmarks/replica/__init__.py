"""Helpers of benchmarks/replica_bench.py."""
