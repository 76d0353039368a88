"""reuse_freed_memory applies on glibc Linux and leaves results unchanged."""

import platform

import torch

from tnn_ref.bench.allocator import reuse_freed_memory
from tnn_ref.toeplitz import toeplitz_fft


def test_reuse_freed_memory_keeps_results():
    x, c = torch.randn(1, 5000, 8), torch.randn(5000, 8)
    before = toeplitz_fft(x, c)
    applied = reuse_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied
    torch.testing.assert_close(toeplitz_fft(x, c), before, rtol=0, atol=0)
