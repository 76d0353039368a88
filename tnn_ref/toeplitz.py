"""Toeplitz matrix-vector products: the naive O(n^2) reference, the numpy circulant FFT, and the
batched torch FFT that TNN runs on.

Convention (scipy's): a Toeplitz matrix is T[i, j] = t[i - j].
  * ``c`` is the first column, offsets 0, 1, ..., n-1 (the lower, "past" part);
  * ``r`` is the first row, offsets 0, -1, ..., -(n-1) (the upper, "future" part); ``r[0]`` is ignored,
    ``c[0]`` is the diagonal;
  * ``r=None`` means **causal**: zero above the diagonal. This differs from
    ``scipy.linalg.toeplitz(c)``, where a missing ``r`` means a symmetric matrix.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.fft
import torch

from tnn_ref.checks import (
    require_bool,
    require_finite,
    require_float_array,
    require_float_tensor,
    require_ndim,
    require_positive_length,
    require_same_device,
)

__all__ = [
    "toeplitz_matrix",
    "matvec_naive",
    "matvec_circulant",
    "circulant_column",
    "fft_length",
    "toeplitz_fft",
    "toeplitz_fft_plain",
    "kernel_spectrum",
    "spectrum_product",
    "compute_dtype",
    "autocast_off",
]


# ----------------------------------------------------------------------------------------------
# The explicit matrix
# ----------------------------------------------------------------------------------------------

def toeplitz_matrix(c, r=None):
    """The explicit Toeplitz matrix T[i, j] = t[i - j].

    c: (n,) or (n, d) first column(s); r: same shape as c, first row(s), r[0] ignored; None = causal
    (zero above the diagonal; unlike scipy.linalg.toeplitz, where None means symmetric).
    numpy in -> numpy out, torch in -> torch out. Returns (n, n) for c of shape (n,), or one matrix
    per channel, (d, n, n), for c of shape (n, d).
    """
    is_torch = isinstance(c, torch.Tensor)
    if is_torch:
        require_float_tensor("c", c)
    else:
        c = require_float_array("c", c)
    require_ndim("c", c, (1, 2), "(n,) or (n, d)")
    n = c.shape[0]
    require_positive_length("c", n)
    if r is not None:
        if is_torch:
            require_float_tensor("r", r)
            require_same_device("r", r, "c", c)
        else:
            r = require_float_array("r", r)
        if tuple(r.shape) != tuple(c.shape):
            raise ValueError(f"r must have the same shape as c {tuple(c.shape)}, got {tuple(r.shape)}")

    lib = torch if is_torch else np
    kwargs = {"device": c.device} if is_torch else {}
    offset = lib.arange(n, **kwargs)[:, None] - lib.arange(n, **kwargs)[None, :]  # (n, n): i - j
    lower = c[offset.clip(min=0)] if is_torch else c[np.clip(offset, 0, None)]  # (n, n[, d]): t[i-j] for i >= j
    if r is None:
        upper = lib.zeros_like(lower)
    else:
        upper = r[(-offset).clip(min=0)] if is_torch else r[np.clip(-offset, 0, None)]  # (n, n[, d]): t[i-j], i < j
    mask = offset >= 0
    if c.ndim == 2:
        mask = mask[:, :, None]  # (n, n, 1): broadcast over channels
    matrix = lib.where(mask, lower, upper)  # (n, n[, d])
    if c.ndim == 2:
        matrix = matrix.permute(2, 0, 1) if is_torch else matrix.transpose(2, 0, 1)  # (d, n, n)
    return matrix


# ----------------------------------------------------------------------------------------------
# numpy / scipy: the naive product and the circulant FFT
# ----------------------------------------------------------------------------------------------

def _check_numpy_operands(c, r, x):
    """Shared checks of the numpy paths: c (n,), r (n,) or None, x (n,) or (n, k)."""
    c = require_float_array("c", c)
    require_ndim("c", c, (1,), "(n,)")
    n = c.shape[0]
    require_positive_length("c", n)
    require_finite("c", c)
    if r is not None:
        r = require_float_array("r", r)
        if r.shape != c.shape:
            raise ValueError(f"r must have the same shape as c {c.shape}, got {r.shape}")
        require_finite("r", r)
    x = require_float_array("x", x)
    require_ndim("x", x, (1, 2), "(n,) or (n, k)")
    if x.shape[0] != n:
        raise ValueError(f"x must have length n = {n} along its first axis (len(c)), got shape {x.shape}")
    require_finite("x", x)
    return c, r, x


def matvec_naive(c, r, x):
    """T @ x by the definition y[i] = sum_j t[i - j] x[j]: O(n^2), written to be read, not to be fast.

    c: (n,), r: (n,) or None (causal), x: (n,) or (n, k) -> (n,) or (n, k), float64 numpy.
    """
    c, r, x = _check_numpy_operands(c, r, x)
    n = c.shape[0]
    y = np.zeros(x.shape, dtype=np.result_type(c, x, np.float64))
    for i in range(n):
        # row i of T is (t[i], t[i-1], ..., t[0], t[-1], ..., t[i-n+1])
        past = c[i::-1]  # (i+1,): t[i], ..., t[0] multiply x[0], ..., x[i]
        y[i] = past @ x[: i + 1]
        if r is not None and i + 1 < n:
            future = r[1 : n - i]  # (n-i-1,): t[-1], ..., t[-(n-1-i)] multiply x[i+1], ..., x[n-1]
            y[i] += future @ x[i + 1 :]
    return y


def matvec_circulant(c, r, x):
    """T @ x through the 2n circulant embedding and the real FFT (scipy.fft): O(n log n).

    The circulant's first column is a = [t0, t1, ..., t(n-1), 0, t(-(n-1)), ..., t(-1)] (the entry at
    index n is never used; causal: a is c zero-padded to 2n). A circulant is diagonalised by the DFT,
    so C @ [x; 0] = irfft(rfft(a) * rfft([x; 0])), and its first n entries are T @ x.
    c: (n,), r: (n,) or None (causal), x: (n,) or (n, k), like scipy.linalg.matmul_toeplitz.
    """
    c, r, x = _check_numpy_operands(c, r, x)
    n = c.shape[0]
    m = 2 * n
    a = np.zeros(m, dtype=np.result_type(c, np.float64))  # (2n,)
    a[:n] = c
    if r is not None:
        a[n + 1 :] = r[:0:-1]  # t(-(n-1)), ..., t(-1)
    a_f = scipy.fft.rfft(a)  # (n+1,) complex: the circulant's eigenvalues
    x_f = scipy.fft.rfft(x, n=m, axis=0)  # (n+1,) or (n+1, k): zero-padded to 2n
    if x.ndim == 2:
        a_f = a_f[:, None]  # (n+1, 1): same eigenvalues for every column of x
    return scipy.fft.irfft(a_f * x_f, n=m, axis=0)[:n]  # (n,) or (n, k)


# ----------------------------------------------------------------------------------------------
# torch: the batched, multi-channel workhorse
# ----------------------------------------------------------------------------------------------

def fft_length(n: int) -> int:
    """The FFT size used for length n: the smallest fast size >= 2n - 1 (any such size is exact)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive sequence length (an int), got {n!r}")
    return scipy.fft.next_fast_len(2 * n - 1, real=True)


def circulant_column(c: torch.Tensor, r: torch.Tensor | None, m: int) -> torch.Tensor:
    """First column(s) of the m-circulant embedding of T, m >= 2n - 1: (n, d) -> (m, d).

    [t0, ..., t(n-1), 0 ... 0, t(-(n-1)), ..., t(-1)]; causal (r None): c zero-padded to m.
    """
    require_float_tensor("c", c)
    require_ndim("c", c, (1, 2), "(n,) or (n, d)")
    n = c.shape[0]
    require_positive_length("c", n)
    if r is not None:
        require_float_tensor("r", r)
        require_same_device("r", r, "c", c)
        if r.shape != c.shape:
            raise ValueError(f"r must have the same shape as c {tuple(c.shape)}, got {tuple(r.shape)}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 2 * n - 1:
        raise ValueError(f"m must be at least 2n - 1 = {2 * n - 1} (an int) for an exact product, got {m!r}")
    zeros = c.new_zeros((m - n - (0 if r is None else n - 1),) + tuple(c.shape[1:]))
    parts = [c, zeros] if r is None else [c, zeros, r[1:].flip(0)]  # r[1:].flip: t(-(n-1)), ..., t(-1)
    return torch.cat(parts, dim=0)  # (m, d)


def _check_torch_operands(x, c, r, check_finite):
    require_bool("check_finite", check_finite)
    require_float_tensor("x", x)
    require_ndim("x", x, tuple(range(2, 16)), "(..., n, d)")
    n, d = x.shape[-2], x.shape[-1]
    require_positive_length("x", n)
    require_float_tensor("c", c)
    require_same_device("c", c, "x", x)
    if tuple(c.shape) != (n, d):
        raise ValueError(f"c must have shape (n, d) = {(n, d)} to match x {tuple(x.shape)}, got {tuple(c.shape)}")
    if r is not None:
        require_float_tensor("r", r)
        require_same_device("r", r, "x", x)
        if tuple(r.shape) != (n, d):
            raise ValueError(f"r must have shape (n, d) = {(n, d)} like c, got {tuple(r.shape)}")
    if check_finite:
        require_finite("x", x)
        require_finite("c", c)
        if r is not None:
            require_finite("r", r)


def compute_dtype(x: torch.Tensor, c: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16 inputs (an FFT of a long sequence loses too much in 16 bits), else the promoted type."""
    dtype = torch.promote_types(x.dtype, c.dtype)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def autocast_off(device: torch.device):
    """A context in which autocast leaves `device`'s ops in the dtype they are given (a no-op where autocast does not exist)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()  # e.g. the meta device, which has no autocast


def kernel_spectrum(a: torch.Tensor, m: int) -> torch.Tensor:
    """(k, d) leading part of the circulant column (zero beyond k), k <= m -> its rfft (d, m//2+1): the eigenvalues."""
    require_float_tensor("a", a)
    require_ndim("a", a, (2,), "(k, d)")
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= a.shape[0] <= m:
        raise ValueError(f"a must hold 1 to m rows and m must be an int; got len(a) = {a.shape[0]}, m = {m!r}")
    return torch.fft.rfft(a.T, n=m, dim=-1)  # (d, m//2+1)


def spectrum_product(x: torch.Tensor, a_f: torch.Tensor, m: int) -> torch.Tensor:
    """T @ x from the circulant's spectrum: x (..., n, d), a_f (d, m//2+1) -> y (..., n, d); needs m >= 2n - 1."""
    require_float_tensor("x", x)
    require_ndim("x", x, tuple(range(2, 16)), "(..., n, d)")
    n, d = x.shape[-2], x.shape[-1]
    if isinstance(m, bool) or not isinstance(m, int) or m < 2 * n - 1:
        raise ValueError(f"m must be an int >= 2n - 1 = {2 * n - 1} for an exact product, got {m!r}")
    if not isinstance(a_f, torch.Tensor) or not a_f.is_complex() or tuple(a_f.shape) != (d, m // 2 + 1):
        got = f"{a_f.dtype} {tuple(a_f.shape)}" if isinstance(a_f, torch.Tensor) else type(a_f).__name__
        raise ValueError(f"a_f must be a complex spectrum of shape (d, m//2+1) = {(d, m // 2 + 1)}, got {got}")
    require_same_device("a_f", a_f, "x", x)
    x_f = torch.fft.rfft(x.transpose(-1, -2), n=m, dim=-1)  # (..., d, m//2+1): x zero-padded to m
    y = torch.fft.irfft(x_f * a_f, n=m, dim=-1)[..., :n]  # (..., d, n): the first n entries are T @ x
    return y.transpose(-1, -2)  # (..., n, d)


class _CirculantProduct(torch.autograd.Function):
    """y = first n entries of (circulant(a) @ [x; 0]), all by real FFTs of length m, with a hand-written backward.

    a (k, d), k <= m: the leading part of the circulant's first column (zero beyond k). x (..., n, d).
    The FFTs run along the last axis of the transposed views, (..., d, n): a transform over contiguous
    memory is several times faster than one over a strided axis (torch's CPU FFT copies strided data).
    Backward, with G = rfft(grad_y padded to m), X = rfft(x padded), A = rfft(a padded):
      grad_x = irfft(G * conj(A))[:n]            (T^T g: the transposed circulant has spectrum conj(A))
      grad_a = irfft(sum over batch of G * conj(X))[:k]   (a circular cross-correlation of g and x)
    so the backward runs rfft of g, x and a (a is batch-free) and two irfft (one batch-free), where
    autograd through torch.fft would run complex-to-complex transforms.
    What is saved are the inputs x and a, not their spectra: spectra computed inside `forward` carry no
    graph, so a backward built on them gives a second derivative (create_graph=True) that silently misses
    every term through x and a. Written in differentiable torch operations on the saved x and a, the
    backward is differentiated exactly by autograd. The price is recomputing X and A; in exchange x (real,
    n per channel) takes half the memory of X (complex, m//2+1 per channel).
    """

    @staticmethod
    def forward(ctx, x, a, m):
        ctx.save_for_backward(x, a)
        ctx.m = m
        return spectrum_product(x, kernel_spectrum(a, m), m)  # (..., n, d)

    @staticmethod
    def backward(ctx, grad_y):
        x, a = ctx.saved_tensors
        n, k, m = x.shape[-2], a.shape[0], ctx.m
        g_f = torch.fft.rfft(grad_y.transpose(-1, -2), n=m, dim=-1)  # (..., d, m//2+1)
        grad_x = grad_a = None
        if ctx.needs_input_grad[0]:
            a_f = kernel_spectrum(a, m)  # (d, m//2+1)
            grad_x = torch.fft.irfft(g_f * a_f.conj(), n=m, dim=-1)[..., :n].transpose(-1, -2)  # (..., n, d)
        if ctx.needs_input_grad[1]:
            x_f = torch.fft.rfft(x.transpose(-1, -2), n=m, dim=-1)  # (..., d, m//2+1)
            cross = (g_f * x_f.conj()).reshape(-1, *g_f.shape[-2:]).sum(0)  # (d, m//2+1): summed over the batch
            grad_a = torch.fft.irfft(cross, n=m, dim=-1)[:, :k].T  # (k, d)
        return grad_x, grad_a, None


def _empty_product(x: torch.Tensor, c: torch.Tensor, r: torch.Tensor | None) -> torch.Tensor:
    """The product for an x that holds no numbers (batch 0 or d = 0): an empty (..., n, d) result.

    Built from x, c and r by a broadcast multiply (no work: the result is empty), so it stays in their
    graph and c and r get zero gradients, as torch's own ops give for empty input.
    """
    y = x * c  # (..., n, d), empty
    return y if r is None else y + x * r


def _require_finite_product(y: torch.Tensor, x: torch.Tensor, c: torch.Tensor, r: torch.Tensor | None) -> None:
    """Finite inputs can still overflow: entries near the top of the dtype's range sum to inf in the FFT."""
    if bool(torch.isfinite(y).all()):
        return
    largest = max(float(t.detach().abs().max()) for t in (c, r) if t is not None)
    raise ValueError(f"the Toeplitz product of these finite x, c and r overflows {y.dtype}: max |x| = "
                     f"{float(x.detach().abs().max()):.3g}, max |c|, |r| = {largest:.3g}; rescale x or the "
                     "coefficients, or compute in float64")


def toeplitz_fft(x: torch.Tensor, c: torch.Tensor, r: torch.Tensor | None = None, *, check_finite: bool = True):
    """y[..., :, ch] = T_ch @ x[..., :, ch]: one Toeplitz matrix per channel, by FFT in O(n log n).

    x: (..., n, d); c: (n, d) first columns (offsets 0..n-1); r: (n, d) first rows (offsets 0..-(n-1),
    r[0] ignored) or None for causal (zero above the diagonal; scipy's toeplitz would make it symmetric).
    Returns (..., n, d) in x's dtype. Differentiable in x, c and r, to any order (create_graph=True works);
    runs on x's device. Half and bfloat16 inputs (autocast) are computed in float32, since FFTs of long
    sequences lose too much in 16 bits. An x with no elements (batch 0, or d = 0) gives the empty result.
    check_finite=True refuses NaN and inf in x, c and r (one extra pass over x) and a result that
    overflowed; check_finite=False skips both scans, for callers that know.

    Causality holds only up to rounding. The circulant FFT mixes every position into every output; the
    future positions cancel out of the earlier outputs exactly in exact arithmetic, but in floating point
    only to within about eps * max|x| * max|c| (times a small factor that grows like log m). In float32 a
    value of 1e30 at a future position moves the earlier outputs by about 1e23. The dense product
    `toeplitz_matrix(c) @ x` is exactly causal (its zeros multiply the future exactly).

    The FFT size is `fft_length(n)`; causal kernels are never padded by hand (the FFT pads c), and the
    backward is written out (see `_CirculantProduct`). `toeplitz_fft_plain` is the same product through
    torch's own autograd, kept as the reference it is tested against.
    """
    _check_torch_operands(x, c, r, check_finite)
    if x.numel() == 0:
        return _empty_product(x, c, r).to(x.dtype)
    compute = compute_dtype(x, c)
    m = fft_length(x.shape[-2])
    with autocast_off(x.device):
        a = c.to(compute) if r is None else circulant_column(c.to(compute), r.to(compute), m)  # (n or m, d)
        y = _CirculantProduct.apply(x.to(compute), a, m).to(x.dtype)  # (..., n, d)
    if check_finite:
        _require_finite_product(y, x, c, r)
    return y


def toeplitz_fft_plain(x: torch.Tensor, c: torch.Tensor, r: torch.Tensor | None = None, *, check_finite: bool = True):
    """The same product as `toeplitz_fft`, written plainly at FFT size 2n with torch's autograd: the reference."""
    _check_torch_operands(x, c, r, check_finite)
    if x.numel() == 0:
        return _empty_product(x, c, r).to(x.dtype)
    compute = compute_dtype(x, c)
    n = x.shape[-2]
    m = 2 * n
    with autocast_off(x.device):
        a = circulant_column(c.to(compute), None if r is None else r.to(compute), m)  # (2n, d)
        a_f = torch.fft.rfft(a, dim=0)  # (n+1, d)
        x_f = torch.fft.rfft(x.to(compute), n=m, dim=-2)  # (..., n+1, d)
        y = torch.fft.irfft(x_f * a_f, n=m, dim=-2)[..., :n, :].to(x.dtype)  # (..., 2n, d) -> (..., n, d)
    if check_finite:
        _require_finite_product(y, x, c, r)
    return y
