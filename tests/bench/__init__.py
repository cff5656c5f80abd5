"""Benchmark scripts, run as modules (``python -m tests.bench.ledger_bench``); not pytest tests."""
