"""SimpleRMSNorm: the parameter-free normalisation TNN uses inside the RPE and around its blocks."""

from __future__ import annotations

import torch
from torch import nn

from tnn_ref.checks import require_bool, require_features, require_float_at_least, require_positive_int


def rms_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    """s = ||x||_2 d^(-1/2) + eps over the last axis, (..., 1): what SimpleRMSNorm divides by."""
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True) * x.shape[-1] ** -0.5 + eps


def rms_backward(grad_y: torch.Tensor, y: torch.Tensor, s: torch.Tensor, eps: float,
                 grad_s: torch.Tensor | None = None) -> torch.Tensor:
    """dx of y = x / s from y and s alone (x itself not kept), in differentiable operations.

    With r = s - eps: dx = g_y / s + y (g_s s - sum(g_y y)) / (d r), the second term 0 where x = 0 (r = 0,
    the subgradient autograd's norm takes there).
    """
    r = s - eps  # (..., 1): ||x|| d^(-1/2)
    dot = (grad_y * y).sum(-1, keepdim=True)  # (..., 1)
    if grad_s is not None:
        dot = dot - grad_s * s
    through_r = (-dot / (y.shape[-1] * r)).where(r > 0, 0.0)  # (..., 1)
    return torch.addcmul(grad_y / s, y, through_r)  # grad_y / s + y * through_r, one pass fewer


class _SimpleRmsNorm(torch.autograd.Function):
    """(y, s) with s = `rms_scale(x)` and y = x / s, keeping y and s for backward, not x.

    The layer after a norm keeps y anyway (the GTU and GLU keep their input), so keeping y instead of x
    lets the residual stream x be freed: one (..., d) tensor less per norm for the backward. The backward
    (`rms_backward`) is written in differentiable operations on the two outputs, so derivatives of any
    order are right.
    """

    @staticmethod
    def forward(ctx, x, eps):
        s = rms_scale(x, eps)  # (..., 1)
        y = x / s  # (..., d)
        ctx.save_for_backward(y, s)
        ctx.eps = eps
        ctx.set_materialize_grads(False)  # s is rarely used: its gradient then stays None, not zeros
        return y, s

    @staticmethod
    def backward(ctx, grad_y, grad_s):
        y, s = ctx.saved_tensors
        if grad_y is None:
            grad_y = torch.zeros_like(y)
        return rms_backward(grad_y, y, s, ctx.eps, grad_s), None


class SimpleRMSNorm(nn.Module):
    """x / (||x||_2 * dim^(-1/2) + eps) over the last axis; no learnable scale or bias.

    Scale-invariant: SimpleRMSNorm(a * x) = SimpleRMSNorm(x) for a > 0, which is what keeps the RPE's
    output bounded for offsets far beyond those seen in training.
    lean=True: with grad, one autograd node that keeps its output, not its input (`_SimpleRmsNorm`);
    lean=False: the plain expression, for comparison.
    """

    def __init__(self, dim: int, eps: float = 1e-8, lean: bool = True):
        super().__init__()
        require_positive_int("dim", dim)
        self.dim = dim
        self.eps = require_float_at_least("eps", eps, 0.0, strict=True)  # > 0: an all-zero x must not divide by 0
        self.lean = require_bool("lean", lean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_features("x", x, self.dim)
        if self.lean and torch.is_grad_enabled() and x.requires_grad:
            return _SimpleRmsNorm.apply(x, self.eps)[0]
        return x / rms_scale(x, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
