"""Benchmarks that run the real services as processes: ``python -m bench.long_calls`` (``make bench``)."""
