"""Fixtures shared by the tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models: a second thread only adds waiting on a busy 2-core machine (100x slower, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
