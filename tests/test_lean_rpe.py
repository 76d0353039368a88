"""The RPE's one-node layers (Rpe(lean=True), the default for training) against the module-by-module RPE."""

import pytest
import torch

from tnn_ref.rpe import Rpe, _RpeLayer


@pytest.mark.parametrize("act", ["relu", "silu"])
@pytest.mark.parametrize("m", [1, 6, 7])
def test_lean_rpe_equals_module_by_module(act, m):
    torch.manual_seed(m)
    rpe = Rpe(5, rpe_dim=4, layers=2, act=act).double()
    offsets = torch.cat([torch.arange(m), -torch.arange(1, m)])  # both signs, as a bidirectional TNO asks

    def output_and_grads():
        t = rpe(offsets)
        return [t, *torch.autograd.grad((t * torch.linspace(-1, 1, 5, dtype=t.dtype)).pow(2).sum(), rpe.parameters())]

    lean = output_and_grads()
    rpe.lean = False
    for a, b in zip(lean, output_and_grads()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("act", ["relu", "silu"])
@pytest.mark.parametrize("transposed", [False, True])
def test_rpe_layer_first_and_second_derivatives(act, transposed):
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    layer = lambda x, w, b: _RpeLayer.apply(x, w, b, act, 1e-8, transposed)  # noqa: E731
    assert torch.autograd.gradcheck(layer, (x, weight, bias))
    assert torch.autograd.gradgradcheck(layer, (x, weight, bias))


def test_lean_rpe_output_is_channel_major():
    rpe = Rpe(6, rpe_dim=4, layers=1)
    t = rpe(torch.arange(5))  # with grad: the lean layers
    assert t.shape == (5, 6) and t.T.is_contiguous()
