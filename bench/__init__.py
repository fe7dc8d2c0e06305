"""Vidivo's benchmark suite: `python -m bench` (see README, results in bench/RESULTS.md)."""
