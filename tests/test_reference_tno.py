"""The benchmark's reference transcription computes exactly what Tno computes."""

import pytest
import torch

from tnn_ref.bench.reference_tno import reference_tno_forward
from tnn_ref.tno import Tno


@pytest.mark.parametrize("n", [1, 2, 9, 64])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("decay", [None, 0.9])
def test_reference_equals_tno(n, causal, decay):
    torch.manual_seed(n)
    tno = Tno(6, causal=causal, decay=decay, learnable_decay=decay is not None, rpe_dim=8, rpe_layers=2)
    x = torch.randn(2, n, 6, requires_grad=True)
    y = tno(x)
    y_ref = reference_tno_forward(tno, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *tno.parameters()], g)
    grads_ref = torch.autograd.grad(y_ref, [x, *tno.parameters()], g)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
