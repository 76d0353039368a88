"""The RPE as one node (Rpe(lean=True), the default for training) against the module-by-module RPE."""

import pytest
import torch

from tnn_ref.rpe import Rpe, _RpeMlp


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
@pytest.mark.parametrize("layers", [0, 2])
def test_rpe_node_first_and_second_derivatives(act, layers):
    """gradcheck runs the node's own backward; gradgradcheck (create_graph=True) its recomputed one."""
    torch.manual_seed(layers)
    rpe = Rpe(3, rpe_dim=4, layers=layers, act=act).double()
    params = [p.detach().clone().requires_grad_() for p in rpe.parameters()]  # (w0, b0, ..., wL, bL)
    features = torch.tensor([0.0, 1.5, -2.0, 3.0, 0.25], dtype=torch.float64, requires_grad=True)  # (m,) offsets
    node = lambda f, *p: _RpeMlp.apply(f, act, (1e-8,) * (layers + 1), *p)  # noqa: E731
    assert torch.autograd.gradcheck(node, (features, *params))
    assert torch.autograd.gradgradcheck(node, (features, *params))


def test_rpe_node_keeps_one_tensor_per_norm_layer():
    """What the node saves: the features, the parameters, and per norm layer y (m, r) and s (m, 1), nothing wider."""
    rpe = Rpe(6, rpe_dim=4, layers=2)
    t = rpe(torch.arange(5))
    assert type(t.grad_fn).__name__ == "_RpeMlpBackward"
    parameters = [tuple(p.shape) for p in rpe.parameters()]
    assert [tuple(s.shape) for s in t.grad_fn.saved_tensors] == [(5,), *parameters, *[(5, 4), (5, 1)] * 3]


def test_lean_rpe_output_is_channel_major():
    rpe = Rpe(6, rpe_dim=4, layers=1)
    t = rpe(torch.arange(5))  # with grad: the lean layers
    assert t.shape == (5, 6) and t.T.is_contiguous()
