"""Keep freed memory in the process instead of returning it to the OS (glibc only).

By default glibc serves every block above 128 KiB (the sizes of FFT buffers and activations) with a
fresh mmap and unmaps it when freed, so the next call pays a page fault per 4 KiB page again. On these
2-core machines that page faulting took more than half of `toeplitz_fft`'s time at n = 8K (measured
with `python -m tnn_ref.bench toeplitz --no-reuse-freed-memory` against the default). Raising the mmap
and trim thresholds lets freed blocks be reused. It changes nothing on other platforms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def reuse_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc to keep freed blocks up to `mmap_threshold` bytes for reuse; True if it was applied."""
    if platform.system() != "Linux":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1
    ok &= mallopt(_M_TOP_PAD, 64 << 20) == 1
    return bool(ok)
