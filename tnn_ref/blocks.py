"""The token mixer (GTU), the channel mixer (GLU), and the TNN block that chains them with norms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tnn_ref.checks import require_bool, require_dropout, require_features, require_positive_int, require_same_device
from tnn_ref.norm import SimpleRMSNorm
from tnn_ref.tno import Tno
from tnn_ref.toeplitz import fft_length, kernel_spectrum


def _silu_backward_into(grad: torch.Tensor, z: torch.Tensor) -> None:
    """z <- grad * SiLU'(z), in place: torch's own fused SiLU backward (one pass), writing over z."""
    torch.ops.aten.silu_backward.grad_input(grad, z, grad_input=z)


def _rows(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(-1, z.shape[-1])  # (..., n, k) -> (rows, k): every position of every sequence


CHUNK_ELEMENTS = 1 << 17  # positions x channels per FFT chunk: the lean GTU's speed / memory trade-off


def _channel_chunks(positions: int, channels: int) -> list[slice]:
    """Slices of about CHUNK_ELEMENTS / positions channels, at least 32: the FFT buffers of one chunk stay small."""
    width = max(32, CHUNK_ELEMENTS // max(positions, 1))
    return [slice(start, min(start + width, channels)) for start in range(0, channels, width)]


def _padded_buffer(like: torch.Tensor, chunks: list[slice], m: int) -> torch.Tensor:
    """One zero buffer (widest chunk, B, m) for every rfft of the chunks: each writes its first n entries
    and the rest stay zero, so no FFT pads (allocates, fills and copies) its input again."""
    width = max(chunk.stop - chunk.start for chunk in chunks)
    return like.new_zeros(width, like.shape[1], m)


def _masked_silu_into(padded: torch.Tensor, p: torch.Tensor, keep: torch.Tensor | None, n: int) -> torch.Tensor:
    """padded[:h, :, :n] <- SiLU(p) * keep, for p (h, B, n); returns padded[:h] (h, B, m), zero beyond n."""
    out = padded[: p.shape[0]]
    torch.ops.aten.silu.out(p, out=out[..., :n])
    if keep is not None:
        out[..., :n].mul_(keep)  # padded positions hold zero: they cannot reach a real position through T
    return out


def _own_channel_major(a: torch.Tensor) -> bool:
    """Whether the kernel a (k, H) may take its own gradient: a result of the graph (not a leaf, not a view of
    one) stored channel-major, so each chunk's rows are one block, free once the chunk's spectrum is taken."""
    return a.grad_fn is not None and a._base is None and a.T.is_contiguous()


class _GatedToeplitz(torch.autograd.Function):
    """The GTU as one autograd node: o = W_o(SiLU(W_u x + b_u) * T(SiLU(W_v x + b_v) * mask)).

    Module by module, autograd keeps six tensors of width e*d per position for the backward (both
    pre-activations, both SiLU outputs, the TNO output and the gated product) and the TNO's FFT buffers
    at their largest. This node keeps x and the two pre-activations; it recomputes the SiLUs and T v, and
    its backward writes the pre-activations' gradients over them, and the kernel's gradient over the kernel
    when the kernel is the TNO's fresh channel-major result (`_own_channel_major`), so it allocates no new
    tensor of width e*d. The pre-activations are held channel-major, (e*d, batch, n): a chunk of channels is then one
    contiguous block whose FFTs run along its last axis without a transposed copy, and every matmul reads
    its operands transposed where needed, which BLAS does for free. The FFTs run over chunks of channels
    (`_channel_chunks`), so each FFT buffer is a chunk's, not the whole width's. With G = rfft(grad_t),
    V = rfft(v), A = rfft(a): grad_v = irfft(G * conj(A))[:n] (T^T grad_t), grad_a = irfft(sum over the
    batch of G * conj(V))[:k]. Once differentiable: a second derivative through it raises (use
    `Gtu(lean=False)` for that).
    """

    @staticmethod
    def forward(ctx, x, wu, bu, wv, bv, wo, bo, a, m, mask):
        n = x.shape[-2]
        x_rows = _rows(x)  # (B*n, d)
        batch = x_rows.shape[0] // n
        pu = torch.addmm(bu[:, None], wu, x_rows.T).view(-1, batch, n)  # (H, B*n) -> (H, B, n)
        pv = torch.addmm(bv[:, None], wv, x_rows.T).view(-1, batch, n)  # (H, B, n)
        keep = None if mask is None else mask.reshape(batch, n)  # (B, n): 1 at real tokens
        gated = torch.empty_like(pu)  # (H, B, n): SiLU(u) * T v, filled chunk by chunk
        chunks = _channel_chunks(batch * n, pu.shape[0])
        padded = _padded_buffer(pu, chunks, m)  # (h, B, m): zero beyond n, what every rfft reads
        for ch in chunks:
            v = _masked_silu_into(padded, pv[ch], keep, n)  # (h, B, m): SiLU(v) * mask, then zeros
            v_f = torch.fft.rfft(v, dim=-1)  # (h, B, m//2+1)
            v_f *= kernel_spectrum(a[:, ch], m)[:, None]  # (h, B, m//2+1) times (h, 1, m//2+1)
            t = torch.fft.irfft(v_f, n=m, dim=-1)[..., :n]  # (h, B, n): the first n entries are T v
            del v_f  # each chunk buffer is dropped once used, so few are alive at a time
            torch.ops.aten.silu.out(pu[ch], out=gated[ch])
            gated[ch].mul_(t)
        ctx.save_for_backward(x, pu, pv, a, wu, wv, wo, keep)  # not T v: backward recomputes it from rfft(v)
        ctx.m = m
        out = torch.addmm(bo, gated.view(-1, batch * n).T, wo.T)  # (B*n, H) @ (H, d) -> (B*n, d)
        return out.view_as(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, pu, pv, a, wu, wv, wo, keep = ctx.saved_tensors
        k, m = a.shape[0], ctx.m
        hidden, batch, n = pu.shape
        g_rows, x_rows = _rows(grad_out), _rows(x)  # (B*n, d) each
        grad_wo_t = torch.empty_like(wo.T)  # (H, d): rows per channel
        grad_a_t = a.T if _own_channel_major(a) else torch.empty_like(a.T)  # (H, k): in a's rows when they are free
        chunks = _channel_chunks(batch * n, hidden)
        padded = _padded_buffer(pu, chunks, m)  # (h, B, m): zero beyond n, what every rfft reads
        for ch in chunks:
            a_f = kernel_spectrum(a[:, ch], m)[:, None]  # (h, 1, m//2+1)
            v_f = torch.fft.rfft(_masked_silu_into(padded, pv[ch], keep, n), dim=-1)  # (h, B, m//2+1), v recomputed
            t = torch.fft.irfft(v_f * a_f, n=m, dim=-1)[..., :n]  # (h, B, n): T v, recomputed
            u = F.silu(pu[ch])  # (h, B, n), recomputed
            grad_t = padded[: u.shape[0]]  # (h, B, m): first u * t (read once), then grad_t = grad_p * u
            gated = torch.mul(u, t, out=grad_t[..., :n])  # (h, B, n): a view when the batch is 1
            grad_wo_t[ch] = gated.reshape(-1, batch * n) @ g_rows  # (h, B*n) @ (B*n, d) -> (h, d)
            grad_p = (wo[:, ch].T @ g_rows.T).view_as(u)  # (h, B*n) -> (h, B, n): grad of the gated product
            torch.mul(grad_p, u, out=grad_t[..., :n])
            del u
            # the pre-activations are not needed again: their buffers take their gradients (a second backward
            # through this node then raises torch's "modified by an inplace operation" error instead of
            # reading gradients as activations); grad_pu first, so T v and grad_p are freed before the FFTs below
            _silu_backward_into(grad_p.mul_(t), pu[ch])
            del grad_p, t
            g_f = torch.fft.rfft(grad_t, dim=-1)  # (h, B, m//2+1): rfft of grad_t
            cross = v_f.conj_physical_().mul_(g_f)  # (h, B, m//2+1): G * conj(V), in v_f's buffer
            cross = cross[:, 0] if batch == 1 else cross.sum(1)  # (h, m//2+1): summed over the batch
            grad_a_t[ch] = torch.fft.irfft(cross, n=m, dim=-1)[:, :k]  # (h, k)
            del v_f, cross
            grad_v = torch.fft.irfft(g_f.mul_(a_f.conj_physical_()), n=m, dim=-1)[..., :n]  # (h, B, n): T^T grad_t
            del g_f, a_f
            if keep is not None:
                grad_v = grad_v * keep
            _silu_backward_into(grad_v, pv[ch])
            del grad_v  # not kept alive into the next chunk
        grad_pu, grad_pv = pu.view(hidden, -1), pv.view(hidden, -1)  # (H, B*n) each
        grad_x = torch.mm(grad_pu.T, wu).addmm_(grad_pv.T, wv)  # (B*n, d): full-width matmuls
        return (grad_x.view_as(x), grad_pu @ x_rows, grad_pu.sum(1), grad_pv @ x_rows, grad_pv.sum(1), grad_wo_t.T,
                g_rows.sum(0), grad_a_t.T, None, None)


class Gtu(nn.Module):
    """Gated Toeplitz Unit: o = W_o(SiLU(W_u x) * TNO(SiLU(W_v x))), with d -> e*d -> d projections.

    `tno` is the operator that mixes the e*d channels along the sequence (a `Tno`, or a `Tno2d` for
    images); its `dim` must equal `expand * dim`.
    """

    def __init__(self, dim: int, expand: int, tno: nn.Module, lean: bool = True, gate: bool = True):
        """lean=True: training through a 1-D `Tno` runs as one autograd node that keeps x and two
        pre-activations for backward (`_GatedToeplitz`); lean=False: module by module, which also allows
        second derivatives. gate=False (an ablation): o = W_o(TNO(SiLU(W_v x))), no W_u."""
        super().__init__()
        require_positive_int("dim", dim)
        require_positive_int("expand", expand)
        self.lean = require_bool("lean", lean)
        self.gate = require_bool("gate", gate)
        if not isinstance(tno, nn.Module):
            raise TypeError(f"tno must be an nn.Module (a Tno or Tno2d), got {type(tno).__name__}")
        hidden = expand * dim
        if getattr(tno, "dim", hidden) != hidden:
            raise ValueError(f"tno must mix expand * dim = {hidden} channels, got a TNO of dim {tno.dim}")
        self.u_proj = nn.Linear(dim, hidden) if gate else None
        self.v_proj = nn.Linear(dim, hidden)
        self.o = nn.Linear(hidden, dim)
        self.dim = dim
        self.toep = tno

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., n, d) -> (..., n, d). mask (batch, n) bool, True at real tokens: padded positions are zeroed
        before the TNO, so whatever padding follows a sequence cannot change its real positions."""
        require_features("x", x, self.dim)
        weights = _mask_weights(mask, x)  # (b, n, 1) or None
        if self._fused(x):
            n = x.shape[-2]
            m = fft_length(n)
            a = self.toep.fft_kernel(n, m)  # (n or m, e*d): rebuilt from the weights, as Tno.forward does
            return _GatedToeplitz.apply(x, self.u_proj.weight, self.u_proj.bias, self.v_proj.weight, self.v_proj.bias,
                                        self.o.weight, self.o.bias, a.to(x.dtype), m, weights)
        return self.around(x, lambda v: self.toep(v if weights is None else v * weights))

    def around(self, x: torch.Tensor, mix) -> torch.Tensor:
        """The GTU with `mix` (v (..., e*d) -> (..., e*d)) in place of the TNO: the decoders pass theirs."""
        v = F.silu(self.v_proj(x))  # (..., n, e*d): what the TNO mixes along the sequence
        if not self.gate:
            return self.o(mix(v))  # (..., n, d)
        u = F.silu(self.u_proj(x))  # (..., n, e*d): the gate
        return self.o(u * mix(v))  # (..., n, d)

    def _fused(self, x: torch.Tensor) -> bool:
        """The one-node path: for training a gated 1-D TNO in float32/float64, outside autocast."""
        return (self.lean and self.gate and torch.is_grad_enabled() and isinstance(self.toep, Tno)
                and x.dtype in (torch.float32, torch.float64) and x.dtype == self.u_proj.weight.dtype
                and x.numel() > 0 and not torch.is_autocast_enabled(x.device.type))


def _mask_weights(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """A (batch, n) boolean padding mask as (batch, n, 1) weights in x's dtype, checked against x (b, n, d)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or x.ndim != 3 or mask.shape != x.shape[:2]:
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a boolean tensor of shape (batch, n) = {tuple(x.shape[:2])} for x of shape "
                         f"(batch, n, d), got {got}")
    require_same_device("mask", mask, "x", x)
    return mask.to(x.dtype)[..., None]  # (b, n, 1)


class _GatedLinear(torch.autograd.Function):
    """The GLU as one autograd node: W3(SiLU(W1 x + b1) * (W2 x + b2)), keeping x and the two
    pre-activations for backward (not also the SiLU and the product: they are recomputed); the backward
    writes the pre-activations' gradients over them, which it no longer needs."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, w3, b3):
        p1 = F.linear(x, w1, b1)  # (..., n, h)
        p2 = F.linear(x, w2, b2)  # (..., n, h)
        out = F.linear(F.silu(p1).mul_(p2), w3, b3)  # (..., n, d)
        ctx.save_for_backward(x, p1, p2, w1, w2, w3)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, p1, p2, w1, w2, w3 = ctx.saved_tensors
        g_rows, x_rows = _rows(grad_out), _rows(x)  # (rows, d) each
        work = F.silu(p1).mul_(p2)  # (..., n, h): the gated product, recomputed; the one new hidden-width buffer
        grad_w3, grad_b3 = g_rows.T @ _rows(work), g_rows.sum(0)
        grad_h = torch.matmul(grad_out, w3, out=work)  # (..., n, h): grad of the gated product, over it
        # the saved buffers are not needed again once read, so they take the gradients (a second backward then
        # raises instead of reading gradients as activations): p2 <- grad_p1, then p1 <- SiLU(p1) <- grad_p2
        p2.mul_(grad_h)  # grad of SiLU(p1)
        torch.ops.aten.silu_backward.grad_input(p2, p1, grad_input=p2)  # p2 <- grad_p1
        grad_p1, grad_p2 = p2, F.silu(p1, inplace=True).mul_(grad_h)  # p1 <- grad_p2
        del work, grad_h
        p1_rows, p2_rows = _rows(grad_p1), _rows(grad_p2)  # (rows, h) each
        grad_x = (p1_rows @ w1).addmm_(p2_rows, w2)  # (rows, d)
        return (grad_x.view_as(x), p1_rows.T @ x_rows, p1_rows.sum(0), p2_rows.T @ x_rows, p2_rows.sum(0), grad_w3,
                grad_b3)


class Glu(nn.Module):
    """Gated Linear Unit, the channel mixer: W3(SiLU(W1 x) * (W2 x)).

    lean=True: one autograd node that keeps two of the four hidden-width tensors for backward (`_GatedLinear`).
    """

    def __init__(self, dim: int, hidden: int, lean: bool = True):
        super().__init__()
        require_positive_int("dim", dim)
        require_positive_int("hidden", hidden)
        self.lean = require_bool("lean", lean)
        self.dim = dim
        self.l1 = nn.Linear(dim, hidden)
        self.l2 = nn.Linear(dim, hidden)
        self.l3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_features("x", x, self.dim)
        if self.lean and torch.is_grad_enabled() and x.dtype == self.l1.weight.dtype and x.numel() > 0 \
                and not torch.is_autocast_enabled(x.device.type):
            return _GatedLinear.apply(x, self.l1.weight, self.l1.bias, self.l2.weight, self.l2.bias,
                                      self.l3.weight, self.l3.bias)
        return self.l3(F.silu(self.l1(x)) * self.l2(x))  # (..., d)


class Mlp(nn.Module):
    """A plain two-layer MLP, W2(SiLU(W1 x)): the ungated channel mixer of the ablations."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        require_positive_int("dim", dim)
        require_positive_int("hidden", hidden)
        self.dim = dim
        self.l1 = nn.Linear(dim, hidden)
        self.l2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_features("x", x, self.dim)
        return self.l2(F.silu(self.l1(x)))  # (..., d)


CHANNEL_MIXERS = ("glu", "mlp", "none")


class TnnBlock(nn.Module):
    """One TNN layer: a GTU then a GLU, each with a residual connection and SimpleRMSNorm.

    prenorm=True (LM, images): x + Dropout(GTU(norm(x))), then x + Dropout(GLU(norm(x))).
    prenorm=False (the reference's RoBERTa-style encoder): norm(x + Dropout(GTU(x))), likewise for the GLU.
    channel_mixer (an ablation): "glu" (the paper), "mlp" (`Mlp`, ungated) or "none" (the GTU sub-layer only).
    """

    def __init__(self, dim: int, gtu: Gtu, glu_dim: int, dropout: float = 0.0, prenorm: bool = True,
                 channel_mixer: str = "glu"):
        super().__init__()
        if channel_mixer not in CHANNEL_MIXERS:
            raise ValueError(f"channel_mixer must be one of {CHANNEL_MIXERS}, got {channel_mixer!r}")
        require_positive_int("dim", dim)
        if not isinstance(gtu, Gtu) or gtu.dim != dim:
            width = getattr(gtu, "dim", None)
            raise ValueError(f"gtu must be a Gtu of width dim = {dim}, got {type(gtu).__name__} of width {width}")
        require_dropout("dropout", dropout)
        self.prenorm = require_bool("prenorm", prenorm)
        self.token_norm = SimpleRMSNorm(dim)
        self.token_mixer = gtu
        mixers = {"glu": lambda: Glu(dim, glu_dim), "mlp": lambda: Mlp(dim, glu_dim), "none": lambda: None}
        self.feature_mixer = mixers[channel_mixer]()
        self.feature_norm = None if self.feature_mixer is None else SimpleRMSNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., n, dim) -> (..., n, dim); for a TNO on images, (b, H, W, dim). mask: see `Gtu.forward`."""
        return self.around(x, lambda h: self.token_mixer(h, mask))

    def around(self, x: torch.Tensor, token_mix) -> torch.Tensor:
        """The block with `token_mix` (h -> h, same shape) in place of the GTU: the decoders pass theirs."""
        if self.prenorm:
            x = x + self.dropout(token_mix(self.token_norm(x)))
            if self.feature_mixer is None:
                return x
            return x + self.dropout(self.feature_mixer(self.feature_norm(x)))
        x = self.token_norm(x + self.dropout(token_mix(x)))
        if self.feature_mixer is None:
            return x
        return self.feature_norm(x + self.dropout(self.feature_mixer(x)))
