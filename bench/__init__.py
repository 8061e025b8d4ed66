"""Benchmarks for the tracking endpoints and ingestion: `make bench` runs bench/run.py."""
