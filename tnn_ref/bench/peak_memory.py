"""Peak memory of a CPU run, as the operating system sees it: the peak resident set size (RSS).

tracemalloc sees only Python's own allocations, not torch's tensors, so we read the RSS instead:

- `peak_rss_bytes` is the process's peak (Linux: VmHWM; elsewhere getrusage's ru_maxrss); on Linux
  `reset_peak_rss` restarts it from the current RSS (writing 5 to /proc/self/clear_refs), so a peak can
  cover just one part of a run;
- the RSS counts what the C allocator keeps, not only live tensors. `tnn_ref.bench.allocator.return_freed_memory` makes glibc
  serve every block above 128 KiB by its own mapping and give it back when freed, so the RSS follows
  the live tensors (the opposite of `tnn_ref.bench.allocator.reuse_freed_memory`, which is faster);
- `run_in_fresh_process` gives each measurement its own process, so nothing an earlier run left in the
  heap, or imported, changes it.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

def current_rss_bytes() -> int | None:
    """The resident set size of this process now (Linux: /proc/self/statm), or None where it cannot be read."""
    try:
        with open("/proc/self/statm") as handle:
            resident_pages = int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Make the peak RSS start again from the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # 5: reset the peak RSS counter (man 5 proc)
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """The peak RSS of this process since it started or since the last `reset_peak_rss`.

    Linux: VmHWM from /proc/self/status, the counter that `reset_peak_rss` resets. getrusage's ru_maxrss
    also keeps the peak saved whenever a thread exits, which a reset cannot clear; it is the fallback.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def run_in_fresh_process(fn: Callable[..., Result], *args, **kwargs) -> Result:
    """fn(*args, **kwargs) in a newly spawned Python process; its return value (or exception) comes back.

    fn must be importable (a module-level function, not one defined in a notebook), and the arguments
    and the result picklable.
    """
    context = multiprocessing.get_context("spawn")  # not fork: a forked child would inherit this process's heap
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args, **kwargs).result()
