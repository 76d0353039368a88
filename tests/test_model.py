"""The TNN model parts against GUIDE section 1, written out by hand in float64, and whole-model properties."""

import io

import pytest
import torch
import torch.nn.functional as F

from tnn_ref.blocks import Glu, Gtu
from tnn_ref.decay import Decay
from tnn_ref.model import TnnConfig, TnnEncoder, TnnImageClassifier, TnnLM, count_parameters
from tnn_ref.norm import SimpleRMSNorm
from tnn_ref.rpe import Rpe
from tnn_ref.tno import Tno, Tno2d
from tnn_ref.toeplitz import circulant_column, toeplitz_matrix

TINY = TnnConfig(vocab_size=11, dim=8, layers=2, expand=2, rpe_dim=8, rpe_layers=2)


def seeded(module, seed=0):
    """Re-initialise every parameter with a fixed seed (also the decay logits, which start at 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    return module


# ----------------------------------------------------------------------------------------------
# SimpleRMSNorm, RPE, decay: the formulas
# ----------------------------------------------------------------------------------------------

def test_simple_rms_norm_formula():
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    expected = x / (torch.sqrt((x**2).sum(-1, keepdim=True)) * 6**-0.5 + 1e-8)
    torch.testing.assert_close(SimpleRMSNorm(6)(x), expected)
    assert len(list(SimpleRMSNorm(6).parameters())) == 0
    with pytest.raises(ValueError, match="x must have 6 features"):
        SimpleRMSNorm(6)(torch.randn(2, 5))


def test_rpe_matches_its_definition():
    rpe = seeded(Rpe(out_dim=5, rpe_dim=4, layers=2).double())
    k = torch.tensor([0.0, 1.0, -3.0, 250.0], dtype=torch.float64)

    def srms(v):
        return v / (v.norm(dim=-1, keepdim=True) * 4**-0.5 + 1e-8)

    h = k[:, None] @ rpe.pos_proj.weight.T + rpe.pos_proj.bias  # Linear(1 -> r)
    for layer in rpe.layers:
        h = F.linear(torch.relu(srms(h)), layer[2].weight, layer[2].bias)  # norm -> ReLU -> Linear(r -> r)
    expected = F.linear(torch.relu(srms(h)), rpe.out[2].weight, rpe.out[2].bias)
    coefficients = rpe(k)
    torch.testing.assert_close(coefficients, expected)
    assert coefficients.T.is_contiguous()  # channel-major: each channel's coefficients contiguous for its FFT


@pytest.mark.parametrize("features, transform", [("index", lambda k, n: k), ("normalized", lambda k, n: k / n),
                                                 ("exp", lambda k, n: torch.exp(k / n))])
def test_rpe_features(features, transform):
    rpe = seeded(Rpe(3, rpe_dim=4, layers=1, features=features).double())
    plain = Rpe(3, rpe_dim=4, layers=1).double()
    plain.load_state_dict(rpe.state_dict())
    k = torch.arange(-4.0, 5.0, dtype=torch.float64)
    torch.testing.assert_close(rpe(k, length=9), plain(transform(k, 9)))
    if features != "index":
        with pytest.raises(ValueError, match="pass length=n"):
            rpe(k)


def test_rpe_bad_options():
    with pytest.raises(ValueError, match="act must be one of"):
        Rpe(3, act="gelu")
    with pytest.raises(ValueError, match="features must be one of"):
        Rpe(3, features="log")
    with pytest.raises(ValueError, match="offsets must be a 1-D tensor"):
        Rpe(3)(torch.zeros(2, 2))


def test_decay_fixed_and_learnable():
    fixed = Decay(4, 0.9)(6, dtype=torch.float64)
    torch.testing.assert_close(fixed[:, 0], 0.9 ** torch.arange(6, dtype=torch.float64))
    learn = Decay(4, 0.9, learnable=True)
    with torch.no_grad():
        learn.logit.copy_(torch.tensor([-20.0, 0.0, 1.0, 20.0]))
    rates = learn.rates()
    assert torch.all(rates >= 0.9) and torch.all(rates <= 1.0)
    torch.testing.assert_close(rates[1], torch.tensor(0.95))
    factors = learn(5, dtype=torch.float64)
    torch.testing.assert_close(factors, rates.double()[None, :] ** torch.arange(5.0, dtype=torch.float64)[:, None], rtol=1e-6, atol=0)
    factors.sum().backward()
    assert learn.logit.grad is not None and learn.logit.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan"), "0.9", True])
def test_decay_out_of_range(bad):
    with pytest.raises(ValueError, match="decay must be None or a float in"):
        Tno(4, causal=True, decay=bad)


# ----------------------------------------------------------------------------------------------
# TNO: kernel, FFT path against the explicit matrix
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [True, False])
def test_tno_kernel_is_decayed_rpe(causal):
    tno = seeded(Tno(3, causal=causal, decay=0.8, rpe_dim=4, rpe_layers=1).double())
    n = 6
    c, r = tno.kernel(n)
    k = torch.arange(n, dtype=torch.float64)
    torch.testing.assert_close(c, tno.rpe(k) * 0.8 ** k[:, None])  # t[0] * 0.8^0: the diagonal is not decayed
    if causal:
        assert r is None
    else:
        torch.testing.assert_close(r[1:], tno.rpe(-k[1:]) * 0.8 ** k[1:, None])
        torch.testing.assert_close(r[0], c[0])
    undecayed = seeded(Tno(3, causal=causal, decay=None, rpe_dim=4, rpe_layers=1).double())
    torch.testing.assert_close(undecayed.kernel(n)[0], undecayed.rpe(k))


@pytest.mark.parametrize("n", [1, 2, 7, 8])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("extra", [0, 3])
@pytest.mark.parametrize("decay, learnable, coefficients", [(0.9, False, "rpe"), (None, False, "rpe"),
                                                            (0.8, True, "rpe"), (0.9, False, "free")])
def test_fft_kernel_is_the_circulant_column_of_the_kernel(n, causal, extra, decay, learnable, coefficients):
    # the column the GTU's FFTs read, built from the source at the column's own offsets, against the one assembled
    # from kernel(n) by slicing and concatenating: same values and same gradients for every parameter
    max_len = 9 if coefficients == "free" else None
    tno = seeded(Tno(6, causal=causal, decay=decay, learnable_decay=learnable, rpe_dim=4, rpe_layers=1,
                     coefficients=coefficients, max_len=max_len).double())
    m = 2 * n - 1 + extra
    c, r = tno.kernel(n)
    expected = c if causal else circulant_column(c, r, m)  # (n or m, 6)
    got = tno.fft_kernel(n, m)
    torch.testing.assert_close(got, expected)
    grad = torch.randn_like(expected)
    params = [p for p in tno.parameters() if p.requires_grad]
    torch.testing.assert_close(torch.autograd.grad(got, params, grad), torch.autograd.grad(expected, params, grad))
    if not causal and coefficients == "rpe":
        assert got.T.is_contiguous()  # channel-major, as the RPE returns it: the GTU may write its gradient there


def test_fft_kernel_refuses_a_length_too_short_for_an_exact_product():
    tno = Tno(4, causal=False, rpe_dim=4, rpe_layers=1)
    with pytest.raises(ValueError, match=r"m must be an int >= 2n - 1 = 9"):
        tno.fft_kernel(5, 8)


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("learnable", [False, True])
def test_tno_fft_equals_explicit_matrix(n, causal, learnable):
    tno = seeded(Tno(5, causal=causal, decay=0.9, learnable_decay=learnable, rpe_dim=8, rpe_layers=2).double())
    x = torch.randn(3, n, 5, dtype=torch.float64)
    c, r = tno.kernel(n)
    matrices = toeplitz_matrix(c, r)  # (5, n, n)
    expected = torch.einsum("dij,bjd->bid", matrices, x)
    torch.testing.assert_close(tno(x), expected, rtol=1e-10, atol=1e-10)
    with torch.no_grad():  # the inference path
        torch.testing.assert_close(tno(x), expected, rtol=1e-10, atol=1e-10)
    if causal:
        assert torch.all(torch.triu(matrices, diagonal=1) == 0)


@pytest.mark.parametrize("shape", [(2, 4, 6), (1, 5, 5), (2, 1, 3)])
def test_tno2d_equals_explicit_matrices(shape):
    b, h, w = shape
    tno = seeded(Tno2d(4, decay=0.9, rpe_dim=6, rpe_layers=1).double())
    x = torch.randn(b, h, w, 4, dtype=torch.float64)
    th = toeplitz_matrix(*tno.tno_h.kernel(h))  # (4, H, H)
    tw = toeplitz_matrix(*tno.tno_w.kernel(w))  # (4, W, W)
    expected = torch.einsum("dij,bjwd->biwd", th, x) + torch.einsum("dij,bhjd->bhid", tw, x)
    torch.testing.assert_close(tno(x), expected, rtol=1e-10, atol=1e-10)


def test_tno_parameters_do_not_depend_on_length():
    tno = Tno(12, causal=False, rpe_dim=16, rpe_layers=3)
    count = count_parameters(tno)
    for n in [1, 100, 5000]:
        c, r = tno.kernel(n)
        assert c.shape == r.shape == (n, 12)
    assert count_parameters(tno) == count == (2 * 16) + 3 * (16 * 16 + 16) + (16 * 12 + 12)


def test_tno_bad_input():
    tno = Tno(4, causal=True, rpe_dim=4, rpe_layers=1)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., n, 4\)"):
        tno(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="positive sequence length"):
        tno(torch.randn(2, 0, 4))
    with pytest.raises(ValueError, match="n must be a positive sequence length"):
        tno.kernel(0)
    with pytest.raises(ValueError, match="learnable_decay=True needs a base decay"):
        Tno(4, causal=True, decay=None, learnable_decay=True)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, H, W, 4\)"):
        Tno2d(4)(torch.randn(2, 3, 4))


# ----------------------------------------------------------------------------------------------
# GTU, GLU, block order
# ----------------------------------------------------------------------------------------------

def test_gtu_and_glu_formulas():
    tno = Tno(12, causal=True, rpe_dim=4, rpe_layers=1)
    gtu = seeded(Gtu(4, 3, tno).double())
    x = torch.randn(2, 7, 4, dtype=torch.float64)
    u = F.silu(gtu.u_proj(x))
    v = F.silu(gtu.v_proj(x))
    torch.testing.assert_close(gtu(x), gtu.o(u * gtu.toep(v)))
    glu = seeded(Glu(4, 9).double())
    torch.testing.assert_close(glu(x), glu.l3(F.silu(glu.l1(x)) * glu.l2(x)))
    with pytest.raises(ValueError, match="tno must mix expand \\* dim = 8"):
        Gtu(4, 2, tno)


@pytest.mark.parametrize("prenorm", [True, False])
def test_block_order(prenorm):
    block = seeded(TINY.with_(prenorm=prenorm).block(TINY.tno(causal=True)).double())
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    norm, gtu, glu = SimpleRMSNorm(8), block.token_mixer, block.feature_mixer
    if prenorm:
        h = x + gtu(norm(x))
        expected = h + glu(norm(h))
    else:
        h = norm(x + gtu(x))
        expected = norm(h + glu(h))
    torch.testing.assert_close(block(x), expected)


# ----------------------------------------------------------------------------------------------
# Whole models
# ----------------------------------------------------------------------------------------------

def test_paper_lm_parameter_count():
    # 48.67M by our count from GUIDE section 1; the paper reports 48.68M
    assert count_parameters(TnnLM(TnnConfig.paper_lm())) == 48_667_136


@pytest.mark.parametrize("n", [1, 2, 9, 16, 31])
def test_lm_is_causal(n):
    model = TnnLM(TINY).double().eval()
    gen = torch.Generator().manual_seed(n)
    tokens = torch.randint(0, 11, (2, n), generator=gen)
    base = model(tokens)
    for t in range(n):
        changed = tokens.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        out = model(changed)
        torch.testing.assert_close(out[:, :t], base[:, :t], rtol=1e-12, atol=1e-12)
        if t < n:
            assert not torch.allclose(out[:, t], base[:, t])


def test_encoder_is_bidirectional():
    model = TnnEncoder(TINY).double().eval()
    tokens = torch.randint(0, 11, (1, 8))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 11
    assert not torch.allclose(model(tokens)[0, 0], model(changed)[0, 0])


def test_long_forward_is_finite():
    model = TnnLM(TINY).eval()
    with torch.no_grad():
        logits = model(torch.randint(0, 11, (1, 14_000)))
    assert logits.shape == (1, 14_000, 11) and torch.isfinite(logits).all()


@pytest.mark.parametrize("make", [lambda: TnnLM(TINY.with_(learnable_decay=True)), lambda: TnnEncoder(TINY)])
def test_backward_reaches_every_parameter(make):
    model = make()
    tokens = torch.randint(0, 11, (2, 10))
    out = model(tokens).sum()
    if isinstance(model, TnnEncoder):
        out = out + model.classify(tokens).sum()
    out.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_image_classifier_backward_and_shape():
    cfg = TINY.with_(image_size=16, patch_size=4, channels=3, num_classes=5)
    model = TnnImageClassifier(cfg)
    logits = model(torch.randn(2, 3, 16, 12))
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="multiples of patch_size=4"):
        model(torch.randn(2, 3, 15, 16))
    with pytest.raises(ValueError, match=r"images must have shape \(batch, 3, H, W\)"):
        model(torch.randn(2, 1, 16, 16))
    with pytest.raises(TypeError, match="images must be a floating-point tensor"):
        model(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))


@pytest.mark.parametrize("cls", [TnnLM, TnnEncoder])
def test_state_dict_round_trip(cls):
    model = cls(TINY.with_(learnable_decay=True)).eval()
    seeded(model, 3)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = cls(TINY.with_(learnable_decay=True)).eval()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    tokens = torch.randint(0, 11, (2, 13))
    torch.testing.assert_close(fresh(tokens), model(tokens), rtol=0, atol=0)


@pytest.mark.parametrize(
    "tokens, error, match",
    [
        (torch.tensor([[1, 2, 11]]), ValueError, r"tokens must be ids in \[0, 11\).*found 11"),
        (torch.tensor([[1, -1, 2]]), ValueError, "found -1"),
        (torch.tensor([[1.0, 2.0]]), TypeError, "tokens must hold integer token ids"),
        (torch.tensor([1, 2, 3]), ValueError, r"tokens must have shape \(batch, n\)"),
        (torch.zeros(2, 0, dtype=torch.long), ValueError, "tokens must have a positive sequence length"),
        ([[1, 2]], TypeError, "tokens must be a torch.Tensor"),
    ],
)
@pytest.mark.parametrize("cls", [TnnLM, TnnEncoder])
def test_bad_tokens(cls, tokens, error, match):
    with pytest.raises(error, match=match):
        cls(TINY)(tokens)


def test_config_validation():
    with pytest.raises(ValueError, match="dim must be a positive int"):
        TnnConfig(dim=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        TnnConfig(dropout=1.0)
    with pytest.raises(ValueError, match="decay must be None or a float"):
        TnnConfig(decay=2.0)


def test_bf16_autocast_runs_fft_in_float32(monkeypatch):
    import tnn_ref.tno as tno_module

    seen = []
    real = tno_module.toeplitz_fft

    def spy(x, c, r=None, **kwargs):
        y = real(x, c, r, **kwargs)
        seen.append((x.dtype, c.dtype))
        return y

    monkeypatch.setattr(tno_module, "toeplitz_fft", spy)
    model = TnnLM(TINY)
    tokens = torch.randint(0, 11, (2, 20))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(tokens)
    assert torch.isfinite(logits).all()
    assert seen and all(c_dtype == torch.float32 for _, c_dtype in seen)
    assert all(x_dtype == torch.bfloat16 for x_dtype, _ in seen)  # the linear layers did run in bf16
    # and inside toeplitz_fft the FFT itself is float32
    import tnn_ref.toeplitz as toeplitz_module
    fft_dtypes = []
    real_rfft = torch.fft.rfft
    monkeypatch.setattr(toeplitz_module.torch.fft, "rfft", lambda t, *a, **k: (fft_dtypes.append(t.dtype), real_rfft(t, *a, **k))[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(tokens)
    assert fft_dtypes and set(fft_dtypes) == {torch.float32}


def test_presets():
    roberta, deit = TnnConfig.paper_roberta(), TnnConfig.paper_deit_tiny()
    assert (roberta.layers, roberta.dim, roberta.decay, roberta.prenorm) == (12, 768, 0.99, False)
    assert (deit.dim, deit.patch_size, deit.rpe_dim, deit.rpe_layers, deit.decay) == (192, 16, 48, 1, 0.9)
    lm = TnnConfig.paper_lm()
    assert (lm.layers, lm.dim, lm.expand, lm.glu_hidden, lm.rpe_dim, lm.rpe_layers, lm.decay) == (7, 512, 3, 512, 64, 6, 0.99)


def _weights_changed_by_data(tno):
    tno.rpe.out[2].bias.data.add_(1.0)  # through .data: no version-counter bump


def _weights_changed_in_place(tno):
    with torch.no_grad():
        tno.rpe.out[2].bias.add_(1.0)  # as an optimizer step does


def _decay_rate_changed(tno):
    tno.decay.rate = 0.5


@pytest.mark.parametrize("change", [_weights_changed_by_data, _weights_changed_in_place, _decay_rate_changed])
@pytest.mark.parametrize("causal", [True, False])
def test_no_grad_calls_follow_every_change_of_the_weights(change, causal):
    """Evaluation and generation (no_grad) must use the current weights and decay, like the grad path."""
    torch.manual_seed(0)
    tno = Tno(4, causal=causal, decay=0.9, rpe_dim=8, rpe_layers=1)
    x = torch.randn(1, 6, 4)
    with torch.no_grad():
        before = tno(x)
    change(tno)
    with torch.no_grad():
        after = tno(x)
    c, r = tno.kernel(6)
    expected = torch.einsum("dij,bjd->bid", toeplitz_matrix(c.detach().double(), None if r is None else r.detach().double()),
                            x.double())
    torch.testing.assert_close(after.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after, tno(x).detach(), rtol=0, atol=0)  # the grad path gives the same numbers
    assert not torch.allclose(after, before)


def test_no_grad_call_after_autocast_is_full_float32():
    """A bf16-autocast call must not leave anything behind for a later float32 call."""
    torch.manual_seed(0)
    tno = Tno(4, causal=True, decay=0.99, rpe_dim=8, rpe_layers=1)
    x = torch.randn(1, 600, 4)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tno(x)
        after_autocast = tno(x)
    torch.testing.assert_close(after_autocast, tno(x).detach(), rtol=0, atol=0)  # the grad path: built afresh


def test_rpe_and_kernel_run_in_float32_under_bf16_autocast():
    """In bf16 the offsets themselves round (256 and 257 become one number); the RPE and decay must not."""
    torch.manual_seed(0)
    n = 16384
    tno = Tno(4, causal=False, decay=0.99, rpe_dim=8, rpe_layers=1)
    with torch.no_grad():
        c32, r32 = tno.kernel(n)
        s32 = tno.coefficients(n)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            c16, r16 = tno.kernel(n)
            s16 = tno.coefficients(n)
            pair = tno.rpe(torch.tensor([256, 257]))
    assert c16.dtype == r16.dtype == s16.dtype == torch.float32
    torch.testing.assert_close(c16, c32, rtol=0, atol=0)  # the same float32 operations, autocast or not
    torch.testing.assert_close(r16, r32, rtol=0, atol=0)
    assert not torch.equal(pair[0], pair[1])
    # neighbouring offsets stay as distinct as float32 makes them: every one of the first 512, and the same
    # pairs beyond (far out the RPE's own norm makes neighbours differ by less than float32 resolves)
    distinct16 = (s16[1:] != s16[:-1]).any(dim=1)  # (2n-2,)
    distinct32 = (s32[1:] != s32[:-1]).any(dim=1)
    assert distinct16[:512].all()
    assert torch.equal(distinct16, distinct32)


def test_rpe_of_a_bf16_model_still_tells_offsets_apart():
    """model.bfloat16() keeps the weights in 16 bits, but the offsets are not rounded to them."""
    torch.manual_seed(0)
    rpe = Rpe(3, rpe_dim=8, layers=1)
    out32 = rpe(torch.arange(250, 260))
    out16 = rpe.bfloat16()(torch.arange(250, 260))
    assert out16.dtype == torch.float32 and bool((out16[1:] != out16[:-1]).any(dim=1).all())
    assert (out16 - out32).abs().max() < 0.05 * out32.abs().max()  # only the weights are rounded


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool, torch.uint8])
@pytest.mark.parametrize("grad", [True, False])
def test_tno_refuses_non_float_input_with_and_without_grad(dtype, grad):
    tno = Tno(4, causal=True, rpe_dim=4, rpe_layers=1)
    with torch.set_grad_enabled(grad), pytest.raises(TypeError, match="x must be a floating-point tensor"):
        tno(torch.ones(1, 5, 4, dtype=dtype))


@pytest.mark.parametrize("shape", [(0, 7, 8), (0, 3, 7, 8)])
@pytest.mark.parametrize("causal", [True, False])
def test_tno_empty_batch_gives_the_empty_result(shape, causal):
    tno = Tno(8, causal=causal, rpe_dim=4, rpe_layers=1)
    x = torch.randn(shape, requires_grad=True)
    y = tno(x)
    assert y.shape == shape
    y.sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in tno.parameters())
    with torch.no_grad():
        assert tno(x).shape == shape
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., n, 8\)"):
        tno(torch.randn(2, 7, 0))  # 0 channels into a TNO of 8 is a shape error


@pytest.mark.parametrize("make, batch", [
    (lambda: TnnLM(TINY), torch.zeros(0, 9, dtype=torch.long)),
    (lambda: TnnEncoder(TINY), torch.zeros(0, 9, dtype=torch.long)),
    (lambda: TnnImageClassifier(TINY.with_(image_size=16, patch_size=4, num_classes=5)), torch.zeros(0, 3, 16, 12)),
])
def test_models_map_an_empty_batch_to_an_empty_result(make, batch):
    model = make().eval()
    with torch.no_grad():
        out = model(batch)
        if isinstance(model, TnnEncoder):
            assert model.classify(batch).shape == (0, TINY.num_classes)
            assert model.classify(batch, torch.zeros(0, 9, dtype=torch.bool)).shape == (0, TINY.num_classes)
    expected = (0, 5) if isinstance(model, TnnImageClassifier) else (0, 9, TINY.vocab_size)
    assert out.shape == expected
