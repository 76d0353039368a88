"""The one setup call the notebooks make before they time anything."""

import threadpoolctl
import torch

from tnn_ref.bench.harness import setup_for_timing


def test_setup_for_timing_pins_threads():
    before = torch.get_num_threads()
    try:
        applied = setup_for_timing(1)
        assert applied["torch_threads"] == torch.get_num_threads() == 1
        blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
        assert applied["blas_threads"] == 1 and blas and all(count == 1 for count in blas)
    finally:
        torch.set_num_threads(before)
