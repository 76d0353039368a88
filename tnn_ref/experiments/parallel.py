"""Independent training runs on several worker processes at once: a sweep's learning rates, the seeds.

A run seeds its own weights and batches (`train_and_score`) and uses one torch thread, so it gives the same
numbers in a worker as in the notebook's own process; only its train_seconds differ (two runs on two cores
slow each other a little through the shared memory bus). With two workers on a 2-core machine a
notebook's experiments take a little over half their one-process wall time.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from tnn_ref.bench.harness import setup_for_timing
from tnn_ref.checks import require_positive_int


def _start_worker() -> None:
    setup_for_timing(1)  # what the notebooks set in their own process: one thread, freed memory kept


class Workers:
    """`workers` spawned processes, each set up like a notebook (one thread); with 1, runs stay in this process.

    Use as a context manager (or call close()); map(fn, calls) is [fn(*args) for args in calls], in order.
    fn must be importable (a module-level function) and the arguments and results picklable, as for any
    process pool; an exception in a run is raised here.
    """

    def __init__(self, workers: int = 2):
        self.workers = require_positive_int("workers", workers)
        self._pool = None
        if self.workers > 1:  # spawn, not fork: a forked child would inherit this process's threads and heap
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker)

    def map(self, fn: Callable, calls: Sequence[tuple]) -> list:
        calls = [tuple(args) for args in calls]
        if self._pool is None:
            return [fn(*args) for args in calls]
        futures = [self._pool.submit(fn, *args) for args in calls]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
