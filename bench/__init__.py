"""Benchmarks of the event store (not part of the installed package; run with `python -m bench.…`)."""
