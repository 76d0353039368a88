"""Benchmarks: the timing harness, each benchmark, peak memory, allocator settings, the reference TNO.

`python -m tnn_ref.bench {toeplitz,tno,layers,all}` runs them (see `tnn_ref.bench.__main__`).
"""
