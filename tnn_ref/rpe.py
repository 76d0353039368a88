"""Relative Position Encoder (RPE): a small MLP from a relative offset k to D Toeplitz coefficients.

    Linear(1 -> r), then `layers` x [SimpleRMSNorm(r) -> act -> Linear(r -> r)],
    then SimpleRMSNorm(r) -> act -> Linear(r -> D).

Its parameter count depends on r, layers and D, never on the sequence length: the same weights give
coefficients for any offset, which is what lets TNN run at lengths it never saw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tnn_ref.checks import require_bool, require_finite, require_nonnegative_int, require_positive_int
from tnn_ref.norm import SimpleRMSNorm, rms_backward, rms_scale
from tnn_ref.toeplitz import autocast_off

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU}
FEATURES = ("index", "normalized", "exp")


def rpe_features(offsets: torch.Tensor, features: str, length: int | None) -> torch.Tensor:
    """The scalar the RPE reads for each offset k: k ("index"), k/n ("normalized") or exp(k/n) ("exp")."""
    if features == "index":
        return offsets
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"features={features!r} divides by the sequence length: pass length=n (a positive int)")
    scaled = offsets / length
    return scaled if features == "normalized" else torch.exp(scaled)


def coefficient_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype coefficients are computed in: float64 stays, everything else (16-bit weights too) is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """layer(x) with the weights brought to x's dtype: 16-bit weights (model.half()) are used in float32."""
    return F.linear(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype))


def _project(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, transposed: bool) -> torch.Tensor:
    """z (m, r) -> z W^T + b (m, out); transposed=True computes it as its (out, m) transpose, each output
    channel contiguous (the layout the TNO's per-channel FFTs read)."""
    return torch.addmm(bias[:, None], weight, z.T).T if transposed else torch.addmm(bias, z, weight.T)


def _activation_backward(act: str, grad_z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dy from dL/dz for z = act(y), in differentiable operations."""
    if act == "relu":
        return torch.ops.aten.threshold_backward(grad_z, y, 0)  # grad_z where y > 0: what autograd's ReLU runs
    sig = torch.sigmoid(y)  # SiLU'(y) = sig (1 + y (1 - sig)), written out: torch's silu_backward has no derivative
    return grad_z * sig * (1 + y * (1 - sig))


class _RpeLayer(torch.autograd.Function):
    """Linear(act(SimpleRMSNorm(x))) as one node that keeps only x (m, r).

    Module by module autograd keeps the norm's output and the activation's output per layer; this node
    recomputes both from x in backward (a few passes over an (m, r) tensor), so the RPE's activations are
    one (m, r) tensor per layer, without running the whole MLP twice as a checkpoint would. The backward is
    written in differentiable operations of x (the norm's scale too), so second derivatives through it are
    right. transposed=True returns the (m, out) result computed as its (out, m) transpose: each output
    channel contiguous.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, act, eps, transposed):
        s = rms_scale(x, eps)  # (m, 1)
        z = ACTIVATION_FUNCTIONS[act](x / s)  # (m, r)
        out = _project(z, weight, bias, transposed)  # (m, out)
        ctx.save_for_backward(x, weight)
        ctx.act, ctx.eps = act, eps
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        s = rms_scale(x, ctx.eps)  # (m, 1), recomputed
        y = x / s  # (m, r), recomputed
        z = ACTIVATION_FUNCTIONS[ctx.act](y)  # (m, r), recomputed
        grad_x = rms_backward(_activation_backward(ctx.act, grad_out @ weight, y), y, s, ctx.eps)  # (m, r)
        return grad_x, grad_out.T @ z, grad_out.sum(0), None, None, None


ACTIVATION_FUNCTIONS = {"relu": F.relu, "silu": F.silu}


class Rpe(nn.Module):
    """offsets (m,) -> coefficients (m, out_dim), as the authors' code (Doraemonzzz/tnn-pytorch) builds it; LM setting rpe_dim=64, layers=6.

    It always runs in float32 (float64 if its weights are float64), whatever the autocast state or the
    weights' dtype: in 16 bits the offsets themselves round (bfloat16 holds 256 and 258 but not 257), so
    neighbouring offsets would get the same coefficients.
    """

    def __init__(self, out_dim: int, rpe_dim: int = 64, layers: int = 6, act: str = "relu", features: str = "index",
                 lean: bool = True):
        """lean=True: with grad, each norm -> act -> Linear runs as one node keeping only its input (`_RpeLayer`);
        lean=False: module by module, for comparison."""
        super().__init__()
        self.lean = require_bool("lean", lean)
        require_positive_int("out_dim", out_dim)
        require_positive_int("rpe_dim", rpe_dim)
        require_nonnegative_int("layers", layers)
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        self.features = features
        self.act = act
        self.pos_proj = nn.Linear(1, rpe_dim)
        self.layers = nn.ModuleList(
            nn.Sequential(SimpleRMSNorm(rpe_dim), ACTIVATIONS[act](), nn.Linear(rpe_dim, rpe_dim)) for _ in range(layers)
        )
        self.out = nn.Sequential(SimpleRMSNorm(rpe_dim), ACTIVATIONS[act](), nn.Linear(rpe_dim, out_dim))

    def forward(self, offsets: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """offsets: (m,) relative positions k (ints or floats); length: n, needed by the i/n features."""
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 1:
            raise ValueError("offsets must be a 1-D tensor of relative positions k")
        if offsets.is_complex() or offsets.dtype == torch.bool:
            raise TypeError(f"offsets must hold real numbers (ints or floats), got dtype {offsets.dtype}")
        if offsets.is_floating_point():
            require_finite("offsets", offsets)
        weight = self.pos_proj.weight
        dtype = coefficient_dtype(weight.dtype)
        with autocast_off(weight.device):
            x = rpe_features(offsets.to(device=weight.device, dtype=dtype), self.features, length)  # (m,)
            x = _linear(self.pos_proj, x[:, None])  # (m, 1) -> (m, rpe_dim)
            for block in self.layers:
                x = self._layer(block, x)  # (m, rpe_dim)
            # (out_dim, m) computed, returned as its (m, out_dim) transpose: each channel's coefficients are
            # then contiguous, the layout the TNO's per-channel FFTs read
            return self._layer(self.out, x, transposed=True)  # (m, out_dim)

    def _layer(self, block: nn.Sequential, x: torch.Tensor, transposed: bool = False) -> torch.Tensor:
        """SimpleRMSNorm -> act -> Linear, the linear in x's dtype: (m, r) -> (m, out)."""
        norm, act, linear = block
        weight, bias = linear.weight.to(x.dtype), linear.bias.to(x.dtype)
        if self.lean and torch.is_grad_enabled():
            return _RpeLayer.apply(x, weight, bias, self.act, norm.eps, transposed)
        z = act(norm(x))  # (m, r)
        return _project(z, weight, bias, transposed)
