"""Misuse of the model layer's public surface: every wrong input gets a clear error naming the argument.

Swept: tnn_ref.checks, toeplitz, tno (Tno, Tno2d), rpe, decay, free_coefficients, norm, blocks, heads, model
(TnnConfig and its presets, the three models, count_parameters) and baselines, with wrong types (bool or
float where an int is meant, numpy where torch is), wrong shapes, empty sizes, NaN and inf, out-of-range
token ids, wrong dtypes, mismatched devices (the meta device stands in for a GPU) and contradictory options.
"""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tnn_ref.baselines import (
    SelfAttention,
    TransformerConfig,
    TransformerEncoder,
    TransformerImageClassifier,
    TransformerLM,
    alibi_attention,
    alibi_bias,
    alibi_slopes,
    sinusoidal_positions,
)
from tnn_ref.blocks import Glu, Gtu, TnnBlock
from tnn_ref.checks import require_finite
from tnn_ref.decay import Decay
from tnn_ref.free_coefficients import FreeCoefficients
from tnn_ref.heads import ClassificationHead, MaskedLmHead, PatchEmbedding, TokenEmbedding, mean_pool
from tnn_ref.model import TnnConfig, TnnEncoder, TnnImageClassifier, TnnLM, count_parameters
from tnn_ref.norm import SimpleRMSNorm
from tnn_ref.rpe import Rpe
from tnn_ref.tno import Tno, Tno2d
from tnn_ref.toeplitz import (
    circulant_column,
    fft_length,
    kernel_spectrum,
    spectrum_product,
    toeplitz_fft,
    toeplitz_matrix,
)

TINY = TnnConfig(vocab_size=11, dim=8, layers=1, expand=2, rpe_dim=8, rpe_layers=1)
TINY_IMAGES = TINY.with_(image_size=16, patch_size=4, num_classes=5)
TINY_TRANSFORMER = TransformerConfig(vocab_size=11, dim=8, layers=1, heads=2)

NOT_AN_INT = st.one_of(st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.integers(max_value=0))


# ----------------------------------------------------------------------------------------------
# require_finite: element by element, says what and where
# ----------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(),
       bad=st.sampled_from([float("nan"), float("inf"), float("-inf")]), as_numpy=st.booleans())
def test_require_finite_names_the_first_offending_element(shape, data, bad, as_numpy):
    size = math.prod(shape)
    first = data.draw(st.integers(0, size - 1))
    values = np.linspace(-3e38, 3e38, size)  # large but finite: these must not be mistaken for overflow
    values[first] = bad
    values[first + 1:] = np.where(np.arange(size - first - 1) % 2 == 0, float("nan"), values[first + 1:])
    value = values.reshape(shape) if as_numpy else torch.tensor(values.reshape(shape))
    index = tuple(int(i) for i in np.unravel_index(first, shape))
    what = "NaN" if bad != bad else ("inf" if bad > 0 else "-inf")
    with pytest.raises(ValueError, match=rf"^v contains {what} \(first at index {re.escape(str(index))}\)"):
        require_finite("v", value)


@pytest.mark.parametrize("value", [torch.tensor([4e38, -4e38], dtype=torch.float64), torch.full((3,), 1.7e308, dtype=torch.float64),
                                   np.array([1.7e308, 1.7e308]), torch.tensor([3e38, 3e38, 3e38]), torch.zeros(0)])
def test_require_finite_passes_large_finite_values(value):
    require_finite("v", value)  # the old check summed its input and called 4e38 "NaN"


def test_toeplitz_fft_accepts_values_beyond_float32_range_in_float64():
    x = torch.tensor([[[4e38], [1.0]]], dtype=torch.float64)  # (1, 2, 1)
    y = toeplitz_fft(x, torch.tensor([[1.0], [2.0]], dtype=torch.float64))
    torch.testing.assert_close(y, torch.tensor([[[4e38], [8e38 + 1.0]]], dtype=torch.float64))


# ----------------------------------------------------------------------------------------------
# toeplitz: the helpers are public too
# ----------------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(n=NOT_AN_INT)
def test_fft_length_refuses_what_is_not_a_positive_int(n):
    with pytest.raises(ValueError, match="n must be a positive sequence length"):
        fft_length(n)


@pytest.mark.parametrize("call, error, match", [
    (lambda: circulant_column(torch.ones(3, 1), torch.ones(2, 1), 6), ValueError, "r must have the same shape as c"),
    (lambda: circulant_column(torch.ones(3, 1), None, 5.5), ValueError, r"m must be at least 2n - 1 = 5 \(an int\)"),
    (lambda: circulant_column(np.ones((3, 1)), None, 6), TypeError, "c must be a torch.Tensor"),
    (lambda: circulant_column(torch.ones(3, 1, dtype=torch.long), None, 6), TypeError, "c must be a floating-point"),
    (lambda: kernel_spectrum(np.ones((3, 1)), 6), TypeError, "a must be a torch.Tensor"),
    (lambda: kernel_spectrum(torch.ones(7, 1), 6), ValueError, r"a must hold 1 to m rows and m must be an int; got len\(a\) = 7, m = 6"),
    (lambda: spectrum_product(torch.ones(1, 3, 2), torch.ones(1, 4, dtype=torch.complex64), 6), ValueError,
     r"a_f must be a complex spectrum of shape \(d, m//2\+1\) = \(2, 4\)"),
    (lambda: spectrum_product(torch.ones(1, 3, 2), torch.ones(2, 4), 6), ValueError, "a_f must be a complex spectrum"),
    (lambda: spectrum_product(torch.ones(1, 4, 2), torch.ones(2, 4, dtype=torch.complex64), 6), ValueError,
     "m must be an int >= 2n - 1 = 7"),
    (lambda: toeplitz_fft(torch.ones(1, 3, 1), torch.ones(3, 1), check_finite="no"), TypeError,
     "check_finite must be True or False"),
    (lambda: toeplitz_matrix(torch.ones(3), np.ones(3)), TypeError, "r must be a torch.Tensor"),
])
def test_toeplitz_helpers_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_half_precision_overflow_of_the_result_is_refused():
    x = torch.full((1, 100, 1), 1000.0, dtype=torch.float16)  # the sum, 1e5, exceeds float16's 65504
    with pytest.raises(ValueError, match="overflows torch.float16"):
        toeplitz_fft(x, torch.ones(100, 1, dtype=torch.float16))


# ----------------------------------------------------------------------------------------------
# Tno, Tno2d
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(dim=0, causal=True), ValueError, "dim must be a positive int"),
    (dict(dim=4.0, causal=True), ValueError, "dim must be a positive int"),
    (dict(dim=True, causal=True), ValueError, "dim must be a positive int"),
    (dict(dim=4, causal="yes"), TypeError, "causal must be True or False"),
    (dict(dim=4, causal=1), TypeError, "causal must be True or False"),
    (dict(dim=4, causal=True, learnable_decay="no"), TypeError, "learnable_decay must be False, True"),
    (dict(dim=4, causal=True, decay=1.0, learnable_decay="sigmoid"), ValueError, "has no finite start"),
    (dict(dim=4, causal=True, rpe_layers=True), ValueError, "layers must be a non-negative int"),
    (dict(dim=4, causal=True, rpe_layers=1.5), ValueError, "layers must be a non-negative int"),
    (dict(dim=4, causal=True, rpe_dim=0), ValueError, "rpe_dim must be a positive int"),
    (dict(dim=4, causal=True, rpe_act=["relu"]), ValueError, "act must be one of"),
    (dict(dim=4, causal=True, max_len=16), ValueError, "max_len=16 sizes the table of coefficients='free'"),
    (dict(dim=4, causal=True, coefficients="free", max_len=8, rpe_features="normalized"), ValueError,
     "rpe_features='normalized' applies to the RPE"),
    (dict(dim=4, causal=True, coefficients="free", max_len=8.0), ValueError, "max_len must be a positive int"),
    (dict(dim=4, causal=True, decay=1.0, learnable_decay=True), ValueError, "cannot learn anything"),
])
def test_tno_contradictory_or_mistyped_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        Tno(**kwargs)


@pytest.mark.parametrize("x, error, match", [
    (np.ones((1, 3, 4), dtype=np.float32), TypeError, "x must be a torch.Tensor"),
    ([[1.0] * 4], TypeError, "x must be a torch.Tensor"),
    (torch.ones(1, 3, 4, dtype=torch.complex64), TypeError, "x must be a floating-point tensor"),
    (torch.ones(4), ValueError, r"x must have shape \(\.\.\., n, 4\)"),
    (torch.ones(1, 0, 4), ValueError, "x must have a positive sequence length"),
])
@pytest.mark.parametrize("grad", [True, False])
def test_tno_bad_input_with_and_without_grad(x, error, match, grad):
    with torch.set_grad_enabled(grad), pytest.raises(error, match=match):
        Tno(4, causal=True, rpe_dim=4, rpe_layers=1)(x)


def test_tno_input_on_another_device_names_x():
    tno = Tno(4, causal=True, rpe_dim=4, rpe_layers=1).to("meta")
    with pytest.raises(ValueError, match="x is on cpu but the model's parameters are on meta"):
        tno(torch.ones(1, 3, 4))


@settings(max_examples=30, deadline=None)
@given(n=st.one_of(NOT_AN_INT, st.just(np.int64(3)), st.just(torch.tensor(3))),
       method=st.sampled_from(["kernel", "coefficients", "offsets", "ssm"]))
def test_tno_lengths_must_be_positive_ints(n, method):
    tno = Tno(4, causal=True, rpe_dim=4, rpe_layers=1)
    with pytest.raises(ValueError, match="n must be a positive sequence length"):
        getattr(tno, method)(n)


def test_tno2d_bad_input():
    tno = Tno2d(4, rpe_dim=4)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        tno(torch.ones(1, 3, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="x must have a positive sequence length"):
        tno(torch.ones(1, 0, 3, 4))
    assert tno(torch.ones(0, 3, 5, 4)).shape == (0, 3, 5, 4)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        Tno2d(0)


# ----------------------------------------------------------------------------------------------
# Rpe, Decay, FreeCoefficients, SimpleRMSNorm
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: Rpe(3)(torch.tensor([float("nan"), 1.0])), ValueError, r"offsets contains NaN \(first at index \(0,\)\)"),
    (lambda: Rpe(3)(torch.tensor([1.0, float("inf")])), ValueError, "offsets contains inf"),
    (lambda: Rpe(3)(torch.ones(2, dtype=torch.bool)), TypeError, "offsets must hold real numbers"),
    (lambda: Rpe(3)([1, 2]), ValueError, "offsets must be a 1-D tensor"),
    (lambda: Rpe(3, features="normalized")(torch.ones(2), length=True), ValueError, "pass length=n"),
    (lambda: Rpe(3, features="exp")(torch.ones(2), length=2.0), ValueError, "pass length=n"),
    (lambda: Rpe(2.5), ValueError, "out_dim must be a positive int"),
    (lambda: Rpe(2, layers=-1), ValueError, "layers must be a non-negative int"),
    (lambda: Decay(3, 0.9)(3, dtype=torch.long), TypeError, "dtype must be a floating-point torch.dtype"),
    (lambda: Decay(3, 0.9)(2.0), ValueError, "n must be a positive int"),
    (lambda: Decay(3, 0.9)(0), ValueError, "n must be a positive int"),
    (lambda: setattr(Decay(3, 0.9), "rate", 1.5), ValueError, r"decay must be None or a float in \(0, 1\]"),
    (lambda: Decay(3, None), ValueError, "a Decay needs a rate"),
    (lambda: Decay(3, 0.9, learnable="y"), TypeError, "learnable must be False, True"),
    (lambda: Decay(0, 0.9), ValueError, "dim must be a positive int"),
    (lambda: FreeCoefficients(2, 4, True)(torch.tensor([1.5])), ValueError, "offsets must be whole numbers"),
    (lambda: FreeCoefficients(2, 4, True)(torch.tensor([float("inf")])), ValueError, "offsets must be whole numbers"),
    (lambda: FreeCoefficients(2, 4, True)([1]), ValueError, "offsets must be a 1-D tensor"),
    (lambda: FreeCoefficients(2, 4, True)(torch.ones(1, 1, dtype=torch.long)), ValueError, "offsets must be a 1-D"),
    (lambda: FreeCoefficients(0, 4, True), ValueError, "out_dim must be a positive int"),
    (lambda: FreeCoefficients(2, 4, "yes"), TypeError, "causal must be True or False"),
    (lambda: FreeCoefficients(2, 4, True, std=float("nan")), ValueError, "std must be a finite number"),
    (lambda: SimpleRMSNorm(3)(torch.ones(2, 3, dtype=torch.long)), TypeError, "x must be a floating-point tensor"),
    (lambda: SimpleRMSNorm(1)(torch.tensor(1.0)), ValueError, "x must have 1 features"),
    (lambda: SimpleRMSNorm(3, eps=-1.0), ValueError, "eps must be a finite number > 0"),
    (lambda: SimpleRMSNorm(3, eps=0), ValueError, "eps must be a finite number > 0"),
    (lambda: SimpleRMSNorm(True), ValueError, "dim must be a positive int"),
])
def test_coefficient_parts_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_changed_decay_rate_reaches_the_kernel():
    tno = Tno(2, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1).double()
    tno.decay.rate = 0.5
    undecayed = tno.coefficients(4)
    torch.testing.assert_close(tno.kernel(4)[0], undecayed * 0.5 ** torch.arange(4.0, dtype=torch.float64)[:, None])


# ----------------------------------------------------------------------------------------------
# blocks, heads
# ----------------------------------------------------------------------------------------------

def _gtu():
    return Gtu(4, 2, Tno(8, causal=True, rpe_dim=4, rpe_layers=1))


@pytest.mark.parametrize("call, error, match", [
    (lambda: Gtu(4, 2, lambda x: x), TypeError, "tno must be an nn.Module"),
    (lambda: Gtu(4, 0, Tno(8, causal=True)), ValueError, "expand must be a positive int"),
    (lambda: _gtu()(torch.ones(1, 3, 4, dtype=torch.long)), TypeError, "x must be a floating-point tensor"),
    (lambda: _gtu()(torch.ones(1, 3, 5)), ValueError, "x must have 4 features"),
    (lambda: Glu(4, 0), ValueError, "hidden must be a positive int"),
    (lambda: Glu(4, 3)(torch.ones(2, 5)), ValueError, "x must have 4 features"),
    (lambda: TnnBlock(4, _gtu(), 4, dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
    (lambda: TnnBlock(4, _gtu(), 4, dropout="0.1"), ValueError, r"dropout must be in \[0, 1\)"),
    (lambda: TnnBlock(4, _gtu(), 4, prenorm="no"), TypeError, "prenorm must be True or False"),
    (lambda: TnnBlock(5, _gtu(), 4), ValueError, "gtu must be a Gtu of width dim = 5, got Gtu of width 4"),
    (lambda: TnnBlock(4, _gtu(), 4)(torch.ones(1, 3, 5)), ValueError, "x must have 4 features"),
    (lambda: TokenEmbedding(5, 4, 1.5), ValueError, r"dropout must be in \[0, 1\)"),
    (lambda: TokenEmbedding(5, 4, 0.0).to("meta")(torch.ones(1, 2, dtype=torch.long)), ValueError,
     "tokens is on cpu but the model's parameters are on meta"),
    (lambda: MaskedLmHead(4, 5)(torch.ones(1, 2, 4), torch.ones(4, 4)), ValueError,
     r"embedding must have shape \(vocab_size, dim\) = \(5, 4\)"),
    (lambda: MaskedLmHead(4, 5)(torch.ones(1, 2, 3), torch.ones(5, 4)), ValueError, "hidden must have 4 features"),
    (lambda: ClassificationHead(4, 3, 0.0)(torch.ones(2, 5)), ValueError, "pooled must have 4 features"),
    (lambda: ClassificationHead(4, 0, 0.0), ValueError, "num_classes must be a positive int"),
    (lambda: mean_pool(torch.ones(1, 3, 2), [[True] * 3]), ValueError, "mask must be a boolean tensor"),
    (lambda: mean_pool(torch.ones(3, 2), None), ValueError, r"x must have shape \(batch, n, d\)"),
    (lambda: mean_pool(torch.ones(1, 0, 2), None), ValueError, r"x must have shape \(batch, n, d\) with n >= 1"),
    (lambda: PatchEmbedding(3, 4, 0), ValueError, "patch_size must be a positive int"),
    (lambda: PatchEmbedding(3, 4, 2).to("meta")(torch.ones(1, 3, 4, 4)), ValueError, "images is on cpu"),
])
def test_blocks_and_heads_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_token_ids_of_any_integer_dtype_embed_like_long(dtype):
    embed = TokenEmbedding(5, 4, 0.0)
    tokens = torch.tensor([[0, 4, 2]])
    torch.testing.assert_close(embed(tokens.to(dtype)), embed(tokens))


def test_empty_batches_through_the_heads():
    assert TokenEmbedding(5, 4, 0.0)(torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3, 4)
    assert ClassificationHead(4, 3, 0.0)(torch.ones(0, 4)).shape == (0, 3)
    assert MaskedLmHead(4, 5)(torch.ones(0, 2, 4), torch.ones(5, 4)).shape == (0, 2, 5)
    assert PatchEmbedding(3, 4, 2)(torch.ones(0, 3, 4, 4)).shape == (0, 2, 2, 4)
    assert mean_pool(torch.ones(0, 3, 2), torch.zeros(0, 3, dtype=torch.bool)).shape == (0, 2)


# ----------------------------------------------------------------------------------------------
# model: TnnConfig, the models, count_parameters
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, error, match", [
    (dict(dim=1.5), ValueError, "dim must be a positive int"),
    (dict(layers=True), ValueError, "layers must be a positive int"),
    (dict(glu_dim=True), ValueError, "glu_dim must be None or a positive int"),
    (dict(glu_dim=0), ValueError, "glu_dim must be None or a positive int"),
    (dict(rpe_layers=1.5), ValueError, "rpe_layers must be a non-negative int"),
    (dict(rpe_act="gelu"), ValueError, "rpe_act must be one of"),
    (dict(rpe_features="log"), ValueError, "rpe_features must be one of"),
    (dict(dropout="0.1"), ValueError, r"dropout must be in \[0, 1\)"),
    (dict(decay=None, learnable_decay=True), ValueError, "learnable_decay=True needs a base decay rate"),
    (dict(learnable_decay=1), TypeError, "learnable_decay must be False, True"),
    (dict(decay=None, learnable_decay="sigmoid"), ValueError, "learnable_decay='sigmoid' needs a base decay rate"),
    (dict(gtu_gate="no"), TypeError, "gtu_gate must be True or False"),
    (dict(channel_mixer="ffn"), ValueError, "channel_mixer must be one of"),
    (dict(prenorm="yes"), TypeError, "prenorm must be True or False"),
    (dict(max_len=100), ValueError, "max_len=100 only applies to tno_coefficients='free'"),
    (dict(tno_coefficients="free", max_len=0), ValueError, "max_len must be None or a positive int"),
    (dict(tno_coefficients="free", max_len=2.5), ValueError, "max_len must be None or a positive int"),
    (dict(tno_coefficients="free"), ValueError, "needs a positive max_len"),
    (dict(image_size=224, patch_size=15), ValueError, "image_size=224 must be a multiple of patch_size=15"),
    (dict(patch_size=0), ValueError, "patch_size must be a positive int"),
])
def test_tnn_config_refuses_mistyped_and_contradictory_fields(changes, error, match):
    with pytest.raises(error, match=match):
        TnnConfig(**changes)
    with pytest.raises(error, match=match):
        TnnConfig.paper_lm().with_(**changes)


@pytest.mark.parametrize("preset", [TnnConfig.paper_lm, TnnConfig.paper_roberta, TnnConfig.paper_deit_tiny])
def test_presets_are_valid_and_frozen(preset):
    config = preset()
    assert config == config.with_()
    with pytest.raises(AttributeError):
        config.dim = 3  # a frozen dataclass: a model's config cannot drift from the model


def test_free_coefficients_are_refused_for_images_instead_of_ignored():
    with pytest.raises(ValueError, match="image models use RPE coefficients only"):
        TnnImageClassifier(TINY_IMAGES.with_(tno_coefficients="free", max_len=16))


@pytest.mark.parametrize("cls", [TnnLM, TnnEncoder, TnnImageClassifier])
@pytest.mark.parametrize("config", [TINY_TRANSFORMER, {"dim": 8}, None])
def test_tnn_models_need_a_tnn_config(cls, config):
    with pytest.raises(TypeError, match="config must be a TnnConfig"):
        cls(config)


@pytest.mark.parametrize("cls", [TransformerLM, TransformerEncoder, TransformerImageClassifier])
def test_transformer_models_need_a_transformer_config(cls):
    with pytest.raises(TypeError, match="config must be a TransformerConfig"):
        cls(TINY)


@pytest.mark.parametrize("make", [lambda: TnnLM(TINY), lambda: TnnEncoder(TINY), lambda: TransformerLM(TINY_TRANSFORMER)])
def test_tokens_on_another_device_name_tokens(make):
    with pytest.raises(ValueError, match="tokens is on cpu but the model's parameters are on meta"):
        make().to("meta")(torch.zeros(1, 3, dtype=torch.long))


@settings(max_examples=25, deadline=None)
@given(bad=st.one_of(st.integers(11, 10**6), st.integers(-10**6, -1)), position=st.integers(0, 4))
def test_out_of_range_token_ids_are_named(bad, position):
    tokens = torch.zeros(1, 5, dtype=torch.long)
    tokens[0, position] = bad
    with pytest.raises(ValueError, match=rf"tokens must be ids in \[0, 11\).*found {bad}"):
        TnnLM(TINY)(tokens)


def test_count_parameters_needs_a_module():
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        count_parameters([torch.nn.Parameter(torch.ones(2))])


# ----------------------------------------------------------------------------------------------
# baselines
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: TransformerConfig(ffn_dim=0), ValueError, "ffn_dim must be None or a positive int"),
    (lambda: TransformerConfig(ffn_dim=2.5), ValueError, "ffn_dim must be None or a positive int"),
    (lambda: TransformerConfig(dropout="0"), ValueError, r"dropout must be in \[0, 1\)"),
    (lambda: TransformerConfig(image_size=10, patch_size=4), ValueError, "image_size=10 must be a multiple"),
    (lambda: sinusoidal_positions(-1, 4), ValueError, "n must be a non-negative int"),
    (lambda: sinusoidal_positions(2.0, 4), ValueError, "n must be a non-negative int"),
    (lambda: sinusoidal_positions(3, 0), ValueError, "dim must be a positive int"),
    (lambda: alibi_slopes(0), ValueError, "heads must be a positive int"),
    (lambda: alibi_slopes(2.0), ValueError, "heads must be a positive int"),
    (lambda: alibi_bias(4, 2, True, rows=slice(2, 10)), ValueError, "rows must be None or slice"),
    (lambda: alibi_bias(4, 2, True, rows=slice(None, 2)), ValueError, "rows must be None or slice"),
    (lambda: alibi_attention(*(torch.ones(1, 2, 3, 4),) * 3, True, block=0), ValueError, "block must be a positive int"),
    (lambda: alibi_attention(*(torch.ones(2, 3, 4),) * 3, True), ValueError, r"q must have shape \(b, h, n, d/h\)"),
    (lambda: alibi_attention(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 5, 4), torch.ones(1, 2, 3, 4), True), ValueError,
     "k must have the shape of q"),
    (lambda: SelfAttention(8, 2, 0.0, True, False)(torch.ones(3, 8)), ValueError, r"x must have shape \(batch, n, 8\)"),
    (lambda: SelfAttention(8, 2, 0.0, True, False)(torch.ones(1, 3, 7)), ValueError, "x must have 8 features"),
    (lambda: SelfAttention(8, 3, 0.0, True, False), ValueError, "must be divisible by heads"),
    (lambda: SelfAttention(8, 2, 0.0, "yes", False), TypeError, "causal must be True or False"),
])
def test_baselines_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("position", ["sinusoidal", "alibi", "none"])
def test_transformers_map_an_empty_batch_to_an_empty_result(position):
    config = TINY_TRANSFORMER.with_(position=position)
    tokens = torch.zeros(0, 5, dtype=torch.long)
    assert TransformerLM(config)(tokens).shape == (0, 5, 11)
    encoder = TransformerEncoder(config)
    assert encoder(tokens).shape == (0, 5, 11) and encoder.classify(tokens).shape == (0, 2)
    images = TransformerImageClassifier(config.with_(image_size=8, patch_size=4))
    assert images(torch.zeros(0, 3, 8, 8)).shape == (0, 2)
