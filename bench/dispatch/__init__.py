"""Dispatch throughput benchmark (see run.py)."""
