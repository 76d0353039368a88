"""The lean SimpleRMSNorm (one node keeping its output) against the plain expression, to second order."""

import pytest
import torch

from tnn_ref.norm import SimpleRMSNorm


def plain(x, eps=1e-8):
    return x / (x.norm(2, dim=-1, keepdim=True) * x.shape[-1] ** -0.5 + eps)


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (2, 7, 6), (3, 1, 8)])
def test_lean_norm_equals_the_plain_expression_with_its_gradients(shape):
    torch.manual_seed(shape[-1])
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        x[..., :1, :] *= 1e-3  # a small row, far from eps
    weights = torch.randn(*shape, dtype=torch.float64)
    norm = SimpleRMSNorm(shape[-1])
    y = norm(x)
    assert y.grad_fn is not None and "SimpleRmsNorm" in type(y.grad_fn).__name__  # the lean node ran
    (grad,) = torch.autograd.grad((y * weights).sum(), x)
    (expected,) = torch.autograd.grad((plain(x) * weights).sum(), x)
    torch.testing.assert_close(y, plain(x), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


def test_lean_norm_second_derivatives():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    norm = SimpleRMSNorm(5)
    assert torch.autograd.gradcheck(norm, (x,))
    assert torch.autograd.gradgradcheck(norm, (x,))


def test_an_all_zero_row_gets_the_plain_gradient():
    x = torch.zeros(2, 4, dtype=torch.float64)
    x[1] = torch.tensor([1.0, -2.0, 0.5, 3.0])
    x.requires_grad_(True)
    weights = torch.arange(8, dtype=torch.float64).reshape(2, 4)
    (grad,) = torch.autograd.grad((SimpleRMSNorm(4)(x) * weights).sum(), x)
    (expected,) = torch.autograd.grad((plain(x) * weights).sum(), x)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


def test_lean_norm_keeps_its_output_not_its_input():
    x = torch.randn(3, 16, requires_grad=True)
    y = SimpleRMSNorm(16)(x)
    saved = [t for t in y.grad_fn.saved_tensors]
    assert any(t.data_ptr() == y.data_ptr() for t in saved)
    assert not any(t.data_ptr() == x.data_ptr() for t in saved)


def test_lean_flag_is_checked():
    with pytest.raises(TypeError, match="lean"):
        SimpleRMSNorm(4, lean="yes")
