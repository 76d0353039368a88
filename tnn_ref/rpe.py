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


ACTIVATION_FUNCTIONS = {"relu": F.relu, "silu": F.silu}


def _activation_backward(act: str, grad_z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dy from dL/dz for z = act(y): ATen's own fused backward of the activation (one pass)."""
    if act == "relu":
        return torch.ops.aten.threshold_backward(grad_z, y, 0)  # grad_z where y > 0: what autograd's ReLU runs
    return torch.ops.aten.silu_backward(grad_z, y)


def _mlp(features: torch.Tensor, params: tuple, act: str, eps: tuple, saved: list | None = None) -> torch.Tensor:
    """The RPE's MLP on features (m,) from its flat parameters (w_0, b_0, ..., w_L, b_L): (m, out), channel-major.

    saved=None: plain differentiable operations. A list: each norm layer's y = x / s (m, r) and s (m, 1) are
    appended to it, and y is written over x, which only the caller holds (what `_RpeMlp.forward` does, without grad).
    """
    x = torch.addmm(params[1], features[:, None], params[0].T)  # (m, 1) @ (1, r) + b -> (m, r)
    last = len(params) // 2 - 1
    for i in range(1, last + 1):
        s = rms_scale(x, eps[i - 1])  # (m, 1)
        y = x / s if saved is None else x.div_(s)  # (m, r)
        if saved is not None:
            saved += [y, s]
        x = _project(ACTIVATION_FUNCTIONS[act](y), params[2 * i], params[2 * i + 1], transposed=i == last)
    return x


class _RpeMlp(torch.autograd.Function):
    """The whole RPE MLP as one autograd node that keeps, per norm layer, y = x / s (m, r) and the scale s (m, 1).

    Module by module, autograd keeps the norm's output and the activation's output for every layer and runs about
    three nodes per layer; this node recomputes act(y) in backward (one pass over an (m, r) tensor) and runs the
    layers' backward itself, with ATen's fused activation backwards, so the RPE costs one node and fewer small
    operations (at n = 1K its (1024, 64) tensors are too small for the operations' fixed costs to hide). A second
    derivative (backward with create_graph=True) recomputes the MLP from its saved inputs with autograd and
    differentiates that, so derivatives of every order are exact.
    """

    @staticmethod
    def forward(ctx, features, act, eps, *params):
        saved = []
        out = _mlp(features, params, act, eps, saved)  # (m, out)
        ctx.save_for_backward(features, *params, *saved)
        ctx.act, ctx.eps, ctx.count = act, eps, len(params)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        features, *rest = ctx.saved_tensors
        params, saved = rest[: ctx.count], rest[ctx.count:]
        needs = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph=True: differentiate the recomputed MLP, to any order
            inputs = [t for t, need in zip((features, *params), needs[:1] + needs[3:]) if need]
            with torch.enable_grad():
                out = _mlp(features, params, ctx.act, ctx.eps)  # (m, out)
            grads = iter(torch.autograd.grad(out, inputs, grad_out, create_graph=True))
            grad_features, *grad_params = [next(grads) if need else None for need in needs[:1] + needs[3:]]
            return grad_features, None, None, *grad_params
        grad_params = [None] * ctx.count
        g = grad_out  # (m, out): the gradient of the current layer's output
        for i in range(ctx.count // 2 - 1, 0, -1):
            y, s = saved[2 * i - 2], saved[2 * i - 1]  # (m, r), (m, 1)
            grad_params[2 * i] = g.T @ ACTIVATION_FUNCTIONS[ctx.act](y)  # (out, m) @ (m, r), act(y) recomputed
            grad_params[2 * i + 1] = g.sum(0)
            g = rms_backward(_activation_backward(ctx.act, g @ params[2 * i], y), y, s, ctx.eps[i - 1])  # (m, r)
        grad_params[0] = g.T @ features[:, None]  # (r, m) @ (m, 1)
        grad_params[1] = g.sum(0)
        grad_features = (g @ params[0])[:, 0] if needs[0] else None  # (m, r) @ (r, 1) -> (m,)
        return grad_features, None, None, *grad_params


class Rpe(nn.Module):
    """offsets (m,) -> coefficients (m, out_dim), as the authors' code (Doraemonzzz/tnn-pytorch) builds it; LM setting rpe_dim=64, layers=6.

    It always runs in float32 (float64 if its weights are float64), whatever the autocast state or the
    weights' dtype: in 16 bits the offsets themselves round (bfloat16 holds 256 and 258 but not 257), so
    neighbouring offsets would get the same coefficients.
    """

    def __init__(self, out_dim: int, rpe_dim: int = 64, layers: int = 6, act: str = "relu", features: str = "index",
                 lean: bool = True):
        """lean=True: with grad, the whole MLP runs as one node keeping each norm layer's output (`_RpeMlp`);
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
            if self.lean and torch.is_grad_enabled():
                blocks = [*self.layers, self.out]
                linears = [self.pos_proj, *(block[2] for block in blocks)]
                params = [t.to(dtype) for linear in linears for t in (linear.weight, linear.bias)]
                return _RpeMlp.apply(x, self.act, tuple(block[0].eps for block in blocks), *params)  # (m, out_dim)
            x = _linear(self.pos_proj, x[:, None])  # (m, 1) -> (m, rpe_dim)
            for block in self.layers:
                x = self._layer(block, x)  # (m, rpe_dim)
            # (out_dim, m) computed, returned as its (m, out_dim) transpose: each channel's coefficients are
            # then contiguous, the layout the TNO's per-channel FFTs read
            return self._layer(self.out, x, transposed=True)  # (m, out_dim)

    def _layer(self, block: nn.Sequential, x: torch.Tensor, transposed: bool = False) -> torch.Tensor:
        """SimpleRMSNorm -> act -> Linear, the linear in x's dtype: (m, r) -> (m, out)."""
        norm, act, linear = block
        z = act(norm(x))  # (m, r)
        return _project(z, linear.weight.to(x.dtype), linear.bias.to(x.dtype), transposed)
