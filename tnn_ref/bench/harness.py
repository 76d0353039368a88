"""The timing harness every benchmark shares: medians of repeated calls, with their spread, and the machine.

Timings are medians of repeated calls after a warm-up; each row also keeps the spread (min, max) so a
reader sees the noise. Goals are stated as ratios between contestants timed in the same run, never as
absolute times (these machines are noisy).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tnn_ref.bench.allocator import reuse_freed_memory


@dataclass
class Timing:
    """Seconds per call: the median over `repeats` calls, their interquartile range, the fastest and slowest."""

    median: float
    low: float
    high: float
    repeats: int
    iqr: float = 0.0


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device | str = "cpu", *, warmup: int = 1,
              repeats: int = 7, budget_s: float = 3.0) -> Timing:
    """Median (and IQR) of fn()'s time after `warmup` calls; stops early once `budget_s` is spent, after at
    least 5 calls (or `repeats`, if fewer are asked for)."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    start_all = time.perf_counter()
    for _ in range(repeats):
        times.append(_timed(fn, device))
        if len(times) >= min(5, repeats) and time.perf_counter() - start_all > budget_s:
            break
    return _timing(times)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of fn takes (CUDA: the GPU's time, from events)."""
    if device.type == "cuda":  # CUDA events time the GPU's work, not the host's launches
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _timing(times: list[float]) -> Timing:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return Timing(statistics.median(times), min(times), max(times), len(times), quartiles[2] - quartiles[0])


def time_interleaved(fns: dict[str, Callable[[], object]], device: torch.device | str = "cpu", *, warmup: int = 1,
                     repeats: int = 7, budget_s: float = 3.0) -> tuple[dict[str, Timing], list[dict[str, float]]]:
    """Contestants timed in rounds, one call of each per round, so a machine that speeds up or slows down
    mid-run moves all of them alike: (Timing per name, the rounds' seconds per name). Stops early once
    `budget_s` per contestant is spent, after at least 5 rounds (or `repeats`, if fewer are asked for)."""
    device = torch.device(device)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    rounds: list[dict[str, float]] = []
    start_all = time.perf_counter()
    for _ in range(repeats):
        rounds.append({name: _timed(fn, device) for name, fn in fns.items()})
        if len(rounds) >= min(5, repeats) and time.perf_counter() - start_all > budget_s * len(fns):
            break
    return {name: _timing([r[name] for r in rounds]) for name in fns}, rounds


def ratio_spread(rounds: list[dict[str, float]], numerator: str, denominator: str) -> dict:
    """Median and quartiles of numerator / denominator taken round by round (paired, so the drift cancels)."""
    ratios = [r[numerator] / r[denominator] for r in rounds]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"median": statistics.median(ratios), "q1": quartiles[0], "q3": quartiles[2], "rounds": len(ratios)}


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux: /proc/cpuinfo's "model name"; elsewhere what `platform` knows): the ratios
    depend on it, since MKL runs other code paths on other CPUs."""
    try:
        with open(cpuinfo) as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.uname().machine


def environment(device: torch.device) -> dict:
    """What the numbers were measured on."""
    info = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def setup_for_timing(threads: int = 1) -> dict:
    """The one call a notebook makes before it times anything on a small, shared machine; returns what it set.

    * `threads` BLAS threads (numpy/scipy, through threadpoolctl when it is installed) and torch threads:
      a product split over both cores of a 2-core machine waits for whichever core another process holds,
      so one thread measures the algorithm rather than the scheduler;
    * glibc keeps freed memory for reuse (`tnn_ref.bench.allocator.reuse_freed_memory`), so repeated
      FFT-sized allocations do not page-fault afresh on every call, as `python -m tnn_ref.bench` does.
    """
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits  # optional: the notebooks extra installs it
    except ImportError:
        blas = None
    else:
        threadpool_limits(threads, user_api="blas")  # applies to the already-loaded OpenBLAS too
        blas = threads
    return {"torch_threads": torch.get_num_threads(), "blas_threads": blas, "reuse_freed_memory": reuse_freed_memory()}
