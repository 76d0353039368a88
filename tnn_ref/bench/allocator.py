"""glibc's malloc settings for this process: keep freed memory (fast) or return it at once (measurable).

By default glibc serves every block above 128 KiB (the sizes of FFT buffers and activations) with a
fresh mmap and unmaps it when freed, so the next call pays a page fault per 4 KiB page again. On these
2-core machines that page faulting took more than half of `toeplitz_fft`'s time at n = 8K (measured
with `python -m tnn_ref.bench toeplitz --no-reuse-freed-memory` against the default). Raising the mmap
and trim thresholds lets freed blocks be reused (`reuse_freed_memory`). The opposite setting
(`return_freed_memory`) makes the resident memory follow the live tensors, which memory measurements
want. Both change nothing on other platforms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def _set_malloc(mmap_threshold: int, trim_threshold: int, top_pad: int) -> bool:
    """Apply the three mallopt settings; True if all were accepted (False off glibc)."""
    if platform.system() != "Linux":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1
    ok &= mallopt(_M_TOP_PAD, top_pad) == 1
    return bool(ok)


def reuse_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc to keep freed blocks up to `mmap_threshold` bytes for reuse; True if it was applied."""
    return _set_malloc(mmap_threshold, trim_threshold, 64 << 20)


def return_freed_memory(threshold: int = 128 << 10) -> bool:
    """Blocks above `threshold` bytes get their own mapping, unmapped when freed, and the heap's free top is
    trimmed; True if applied. Memory then leaves the RSS as soon as a tensor dies."""
    # a fixed threshold also switches off glibc's dynamic one, which would rise after the first large free
    return _set_malloc(threshold, threshold, 0)
