"""Benchmarks for teardown_ref and the harness (`make bench`, specs/bench.md).

`peer` is the pure-Python peer that implements the same teardown contract; the other modules each
measure one family of figures; `__main__` runs them all and writes the table and the JSON.
"""
