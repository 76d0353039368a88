"""tnn_ref.toeplitz against slow, obviously-correct oracles.

Oracles: scipy.linalg.toeplitz (the matrix), scipy.linalg.matmul_toeplitz, and dense float64 products.
Tolerances: float64 paths agree to 1e-10 relative to the size of the result; float32 FFT paths to
1e-4 relative (the FFT's rounding grows like log n, and |y| is normalised by its largest entry).
"""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tnn_ref.toeplitz import (
    circulant_column,
    fft_length,
    matvec_circulant,
    matvec_naive,
    toeplitz_fft,
    toeplitz_fft_plain,
    toeplitz_matrix,
)

LENGTHS = [1, 2, 7, 8, 33, 64]


def rel_err(a, b):
    """max |a - b| / max |b|: an error relative to the scale of the answer."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def dense_oracle(x, c, r):
    """float64 dense product, one matrix per channel: x (..., n, d) -> (..., n, d)."""
    x64, c64 = x.double(), c.double()
    matrices = toeplitz_matrix(c64, None if r is None else r.double())  # (d, n, n)
    return torch.einsum("dij,...jd->...id", matrices, x64)


# ----------------------------------------------------------------------------------------------
# The explicit matrix
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", LENGTHS)
def test_toeplitz_matrix_matches_scipy(n):
    rng = np.random.default_rng(n)
    c, r = rng.normal(size=n), rng.normal(size=n)
    np.testing.assert_array_equal(toeplitz_matrix(c, r), scipy.linalg.toeplitz(c, r))
    # causal: r=None is lower triangular here (scipy would make it symmetric)
    np.testing.assert_array_equal(toeplitz_matrix(c), np.tril(scipy.linalg.toeplitz(c, r)))


def test_toeplitz_matrix_torch_and_channels():
    rng = np.random.default_rng(0)
    n, d = 9, 3
    c, r = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    numpy_result = toeplitz_matrix(c, r)
    assert numpy_result.shape == (d, n, n)
    torch_result = toeplitz_matrix(torch.tensor(c), torch.tensor(r))
    assert isinstance(torch_result, torch.Tensor) and torch_result.shape == (d, n, n)
    for ch in range(d):
        expected = scipy.linalg.toeplitz(c[:, ch], r[:, ch])
        np.testing.assert_array_equal(numpy_result[ch], expected)
        np.testing.assert_array_equal(torch_result[ch].numpy(), expected)
        np.testing.assert_array_equal(toeplitz_matrix(torch.tensor(c))[ch].numpy(), np.tril(expected))


def test_toeplitz_matrix_ignores_r0():
    c, r = np.array([1.0, 2.0, 3.0]), np.array([99.0, 5.0, 6.0])
    assert toeplitz_matrix(c, r)[0, 0] == 1.0


# ----------------------------------------------------------------------------------------------
# numpy paths
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("columns", [None, 3])
def test_numpy_matvecs_match_dense_and_scipy(n, causal, columns):
    rng = np.random.default_rng(100 + n)
    c, r = rng.normal(size=n), rng.normal(size=n)
    x = rng.normal(size=n if columns is None else (n, columns))
    dense = toeplitz_matrix(c, None if causal else r) @ x
    r_arg = None if causal else r
    assert rel_err(matvec_naive(c, r_arg, x), dense) < 1e-12
    assert rel_err(matvec_circulant(c, r_arg, x), dense) < 1e-10
    # scipy's own FFT product, with an explicit zero row for the causal case
    scipy_r = np.zeros(n) if causal else r
    assert rel_err(matvec_circulant(c, r_arg, x), scipy.linalg.matmul_toeplitz((c, scipy_r), x)) < 1e-10


def test_numpy_matvec_accepts_integers():
    c, x = np.array([1, 2, 3]), np.array([1, 0, 0])
    np.testing.assert_allclose(matvec_circulant(c, None, x), [1.0, 2.0, 3.0], atol=1e-12)
    np.testing.assert_array_equal(matvec_naive(c, None, x), [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------------------------
# torch FFT path
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", LENGTHS + [4097])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_toeplitz_fft_matches_dense(n, causal, dtype, tol):
    gen = torch.Generator().manual_seed(n)
    batch, d = 2, 3
    x = torch.randn(batch, n, d, generator=gen, dtype=dtype)
    c = torch.randn(n, d, generator=gen, dtype=dtype)
    r = None if causal else torch.randn(n, d, generator=gen, dtype=dtype)
    y = toeplitz_fft(x, c, r)
    assert y.shape == x.shape and y.dtype == dtype
    assert rel_err(y, dense_oracle(x, c, r)) < tol


def test_toeplitz_fft_many_batch_dims_and_scipy():
    gen = torch.Generator().manual_seed(1)
    n, d = 10, 4
    x = torch.randn(2, 3, n, d, generator=gen, dtype=torch.float64)
    c, r = torch.randn(n, d, generator=gen, dtype=torch.float64), torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = toeplitz_fft(x, c, r)
    for ch in range(d):
        expected = scipy.linalg.matmul_toeplitz((c[:, ch].numpy(), r[:, ch].numpy()), x[..., ch].reshape(-1, n).T.numpy())
        assert rel_err(y[..., ch].reshape(-1, n).T, expected) < 1e-10


@pytest.mark.parametrize("n", [1, 5, 8])
@pytest.mark.parametrize("causal", [True, False])
def test_toeplitz_fft_gradcheck(n, causal):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, n, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    c = torch.randn(n, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    if causal:
        assert torch.autograd.gradcheck(lambda x, c: toeplitz_fft(x, c), (x, c))
    else:
        r = torch.randn(n, 3, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, c, r: toeplitz_fft(x, c, r), (x, c, r))


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 7, 3), (3, 2, 8, 5), (1, 64, 4), (2, 257, 6)])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_fast_backward_equals_autograd_reference(shape, causal, dtype, tol):
    """The hand-written backward of toeplitz_fft against torch's autograd through toeplitz_fft_plain."""
    gen = torch.Generator().manual_seed(sum(shape))
    n, d = shape[-2], shape[-1]
    x = torch.randn(shape, generator=gen, dtype=dtype)
    c = torch.randn(n, d, generator=gen, dtype=dtype)
    r = None if causal else torch.randn(n, d, generator=gen, dtype=dtype)
    g = torch.randn(shape, generator=gen, dtype=dtype)
    grads = []
    for fn in (toeplitz_fft, toeplitz_fft_plain):
        inputs = [t.clone().requires_grad_() for t in (x, c) + (() if causal else (r,))]
        y = fn(inputs[0], inputs[1], None if causal else inputs[2])
        grads.append((y, torch.autograd.grad(y, inputs, g)))
    (y_fast, fast), (y_ref, ref) = grads
    assert rel_err(y_fast.detach(), y_ref.detach()) < tol
    for a, b in zip(fast, ref):
        assert rel_err(a, b) < tol


def test_gradient_of_x_alone_and_of_coefficients_alone():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    c = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    r = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: toeplitz_fft(x, c.detach(), r), (x,))
    assert torch.autograd.gradcheck(lambda c: toeplitz_fft(x.detach(), c, r), (c,))


@pytest.mark.parametrize("shape", [(2, 1, 3), (2, 4, 3), (3, 5, 2), (2, 2, 6, 3)])
@pytest.mark.parametrize("causal", [True, False])
def test_toeplitz_fft_gradcheck_and_gradgradcheck(shape, causal):
    """First and second derivatives against finite differences, in x, c and r together (float64)."""
    gen = torch.Generator().manual_seed(sum(shape) + causal)
    n, d = shape[-2], shape[-1]
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    c = torch.randn(n, d, generator=gen, dtype=torch.float64, requires_grad=True)
    inputs = (x, c) if causal else (x, c, torch.randn(n, d, generator=gen, dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(toeplitz_fft, inputs)
    assert torch.autograd.gradgradcheck(toeplitz_fft, inputs)


@pytest.mark.parametrize("n", [1, 6, 7])
@pytest.mark.parametrize("causal", [True, False])
def test_second_derivative_through_a_linear_upstream_equals_the_reference(n, causal):
    """A gradient penalty: with a linear loss the first gradient T^T w depends on c only through T, and
    create_graph=True must keep that dependence (it used to come back without a graph)."""
    gen = torch.Generator().manual_seed(n)
    x0 = torch.randn(2, n, 3, generator=gen, dtype=torch.float64)
    c0 = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    r0 = None if causal else torch.randn(n, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(2, n, 3, generator=gen, dtype=torch.float64)
    results = []
    for fn in (toeplitz_fft, toeplitz_fft_plain):
        x, c = x0.clone().requires_grad_(), c0.clone().requires_grad_()
        r = None if causal else r0.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad((fn(x, c, r) * w).sum(), x, create_graph=True)
        assert grad_x.requires_grad
        penalty = grad_x.pow(2).sum()
        results.append(torch.autograd.grad(penalty, [c] + ([] if causal else [r])))
    for fast, ref in zip(*results):
        assert rel_err(fast, ref) < 1e-10


def test_toeplitz_fft_half_precision_computes_in_float32():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 300, 4, generator=gen)
    c = torch.randn(300, 4, generator=gen)
    y16 = toeplitz_fft(x.bfloat16(), c.bfloat16())
    assert y16.dtype == torch.bfloat16
    # the float32 product of the same (rounded) inputs, rounded once at the end
    expected = toeplitz_fft(x.bfloat16().float(), c.bfloat16().float()).bfloat16()
    torch.testing.assert_close(y16, expected, rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = toeplitz_fft(x, c)
    assert y.dtype == torch.float32 and rel_err(y, dense_oracle(x, c, None)) < 1e-4


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), d=st.integers(1, 4), batch=st.integers(1, 3), causal=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_toeplitz_fft_property(n, d, batch, causal, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d, generator=gen, dtype=torch.float64)
    c = torch.randn(n, d, generator=gen, dtype=torch.float64)
    r = None if causal else torch.randn(n, d, generator=gen, dtype=torch.float64)
    assert rel_err(toeplitz_fft(x, c, r), dense_oracle(x, c, r)) < 1e-10


@pytest.mark.parametrize("fn", [toeplitz_fft, toeplitz_fft_plain])
@pytest.mark.parametrize("shape", [(0, 5, 3), (2, 0, 5, 3), (2, 5, 0), (5, 0)])
@pytest.mark.parametrize("causal", [True, False])
def test_empty_batch_or_channels_give_the_empty_result(fn, shape, causal):
    """Like torch's own ops: an x with no elements gives an empty result of x's shape, and zero gradients."""
    n, d = shape[-2], shape[-1]
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    c = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    r = None if causal else torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    y = fn(x, c, r)
    assert y.shape == x.shape and y.dtype == x.dtype
    y.sum().backward()
    for t in (x, c) + (() if causal else (r,)):
        assert t.grad is not None and t.grad.shape == t.shape and not t.grad.any()


@pytest.mark.parametrize("fn", [toeplitz_fft, toeplitz_fft_plain])
def test_finite_inputs_whose_product_overflows_are_refused(fn):
    """[3e38, -3e38] is finite in float32 but its FFT overflows: a clear error, not [inf, nan]."""
    x = torch.tensor([[[3e38], [-3e38]]])  # (1, 2, 1)
    with pytest.raises(ValueError, match="overflows torch.float32.*compute in float64"):
        fn(x, torch.ones(2, 1))
    # the same numbers in float64 are fine, and so are values beyond float32's range
    big = torch.tensor([[[4e38], [-3e38]]], dtype=torch.float64)
    c = torch.tensor([[1.0], [0.5]], dtype=torch.float64)
    assert rel_err(fn(big, c), dense_oracle(big, c, None)) < 1e-10


def test_causality_holds_exactly_for_the_dense_product_and_to_rounding_for_the_fft():
    """A huge value at a future position: the dense product ignores it exactly; the FFT's earlier outputs
    move, but only by rounding relative to max|x| (as the docstring of toeplitz_fft says)."""
    gen = torch.Generator().manual_seed(0)
    n, d, future = 64, 3, 40
    x = torch.randn(1, n, d, generator=gen)
    c = torch.randn(n, d, generator=gen)
    spiked = x.clone()
    spiked[0, future] = 1e30
    dense = toeplitz_matrix(c)  # (d, n, n), exactly zero above the diagonal
    before = torch.einsum("dij,bjd->bid", dense, x)[:, :future]
    after = torch.einsum("dij,bjd->bid", dense, spiked)[:, :future]
    assert torch.equal(before, after)
    leak = (toeplitz_fft(spiked, c) - toeplitz_fft(x, c))[:, :future].abs().max()
    eps = torch.finfo(torch.float32).eps
    assert leak <= 10 * eps * 1e30 * c.abs().max()  # the documented bound: eps * max|x| * max|c|, times a small factor
    assert leak > 1e6 * toeplitz_fft(x, c).abs().max()  # and it is real: far larger than the outputs themselves


def test_fft_length_and_circulant_column():
    for n in [1, 2, 3, 100, 4097]:
        m = fft_length(n)
        assert m >= 2 * n - 1
    c = torch.tensor([[1.0], [2.0], [3.0]])
    r = torch.tensor([[9.0], [4.0], [5.0]])
    assert circulant_column(c, r, 6)[:, 0].tolist() == [1, 2, 3, 0, 5, 4]
    assert circulant_column(c, None, 5)[:, 0].tolist() == [1, 2, 3, 0, 0]
    with pytest.raises(ValueError, match="m must be at least"):
        circulant_column(c, r, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_toeplitz_fft_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(0)
    x, c, r = torch.randn(2, 513, 8, generator=gen), torch.randn(513, 8, generator=gen), torch.randn(513, 8, generator=gen)
    y = toeplitz_fft(x.cuda(), c.cuda(), r.cuda())
    assert y.device.type == "cuda" and rel_err(y.cpu(), dense_oracle(x, c, r)) < 1e-4


# ----------------------------------------------------------------------------------------------
# Bad input: a clear error that names the argument
# ----------------------------------------------------------------------------------------------

def good_operands(n=4, d=2):
    return torch.randn(1, n, d), torch.randn(n, d), torch.randn(n, d)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda x, c, r: (x[0, :, 0], c, r), ValueError, r"x must have shape \(\.\.\., n, d\)"),
        (lambda x, c, r: (x[:, :0], c[:0], r[:0]), ValueError, "x must have a positive sequence length"),
        (lambda x, c, r: (x, c[:3], r), ValueError, r"c must have shape \(n, d\)"),
        (lambda x, c, r: (x, c, r[:, :1]), ValueError, r"r must have shape \(n, d\)"),
        (lambda x, c, r: (x, c[:, None], r), ValueError, r"c must have shape"),
        (lambda x, c, r: (x.long(), c, r), TypeError, "x must be a floating-point tensor"),
        (lambda x, c, r: (x, c.int(), r), TypeError, "c must be a floating-point tensor"),
        (lambda x, c, r: (x, c, r.to(torch.complex64)), TypeError, "r must be a floating-point tensor"),
        (lambda x, c, r: (x.numpy(), c, r), TypeError, "x must be a torch.Tensor"),
        (lambda x, c, r: (x.index_put((torch.tensor(0),), torch.tensor(float("nan"))), c, r), ValueError, "x contains NaN"),
        (lambda x, c, r: (x, c.index_put((torch.tensor(1),), torch.tensor(float("inf"))), r), ValueError,
         r"c contains inf \(first at index \(1, 0\)\)"),
        (lambda x, c, r: (x, c, torch.full_like(r, float("-inf"))), ValueError, r"r contains -inf \(first at index \(0, 0\)\)"),
    ],
)
def test_toeplitz_fft_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        toeplitz_fft(*make(*good_operands()))


def test_toeplitz_fft_device_mismatch():
    x, c, r = good_operands()
    with pytest.raises(ValueError, match="c is on meta but x is on cpu"):
        toeplitz_fft(x, c.to("meta"), r)


@pytest.mark.parametrize("fn", [matvec_naive, matvec_circulant])
@pytest.mark.parametrize(
    "args, error, match",
    [
        ((np.ones((2, 2)), None, np.ones(2)), ValueError, r"c must have shape \(n,\)"),
        ((np.ones(0), None, np.ones(0)), ValueError, "c must have a positive sequence length"),
        ((np.ones(3), np.ones(2), np.ones(3)), ValueError, "r must have the same shape as c"),
        ((np.ones(3), None, np.ones(4)), ValueError, "x must have length n = 3"),
        ((np.ones(3), None, np.ones((3, 2, 2))), ValueError, r"x must have shape \(n,\) or \(n, k\)"),
        ((np.array([1.0, np.nan]), None, np.ones(2)), ValueError, "c contains NaN"),
        ((np.ones(2), None, np.array([np.inf, 1.0])), ValueError, r"x contains inf \(first at index \(0,\)\)"),
        ((np.ones(2), None, np.ones(2) + 1j), TypeError, "x must hold real numbers"),
        ((np.array(["a", "b"]), None, np.ones(2)), TypeError, "c must hold real numbers"),
        ((torch.ones(2), None, np.ones(2)), TypeError, "c must be a numpy array"),
    ],
)
def test_numpy_bad_input(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)


def test_toeplitz_matrix_bad_input():
    with pytest.raises(ValueError, match=r"c must have shape \(n,\) or \(n, d\)"):
        toeplitz_matrix(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="r must have the same shape as c"):
        toeplitz_matrix(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="c must have a positive sequence length"):
        toeplitz_matrix(torch.ones(0))
    with pytest.raises(TypeError, match="c must be a floating-point tensor"):
        toeplitz_matrix(torch.ones(3, dtype=torch.int64))
