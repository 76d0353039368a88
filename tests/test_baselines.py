"""Transformer baselines: same call signatures as TNN, causal where they must be, ALiBi as published."""

import math

import pytest
import torch

from tnn_ref.baselines import (
    TransformerConfig,
    TransformerEncoder,
    TransformerImageClassifier,
    TransformerLM,
    alibi_bias,
    alibi_slopes,
    sinusoidal_positions,
)
from tnn_ref.model import count_parameters

TINY = TransformerConfig(vocab_size=11, dim=16, layers=2, heads=4)


def test_paper_lm_parameter_count():
    # the paper's Transformer LM baseline: 44.65M
    assert count_parameters(TransformerLM(TransformerConfig.paper_lm())) == 44_651_008


@pytest.mark.parametrize("position", ["sinusoidal", "alibi", "none"])
@pytest.mark.parametrize("n", [1, 7, 12])
def test_lm_is_causal(position, n):
    model = TransformerLM(TINY.with_(position=position)).double().eval()
    tokens = torch.randint(0, 11, (2, n))
    base = model(tokens)
    assert base.shape == (2, n, 11)
    for t in range(n):
        changed = tokens.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        torch.testing.assert_close(model(changed)[:, :t], base[:, :t], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("position", ["sinusoidal", "alibi"])
def test_encoder_sees_both_sides(position):
    model = TransformerEncoder(TINY.with_(position=position)).double().eval()
    tokens = torch.randint(0, 11, (1, 6))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 11
    assert not torch.allclose(model(tokens)[0, 0], model(changed)[0, 0])
    assert model.classify(tokens).shape == (1, 2)


def test_alibi_slopes_and_bias():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    assert len(alibi_slopes(6)) == 6
    bias = alibi_bias(4, 2, causal=True)
    assert bias.shape == (2, 4, 4)
    assert bias[0, 3, 1] == pytest.approx(-2 * 2.0 ** -4) and bias[1, 3, 0] == pytest.approx(-3 * 2.0 ** -8)
    assert torch.isinf(bias[:, 0, 1]).all() and bias[0, 2, 2] == 0
    assert torch.equal(alibi_bias(4, 2, causal=False), alibi_bias(4, 2, causal=False).transpose(1, 2))


def test_sinusoidal_positions():
    table = sinusoidal_positions(5, 6)
    assert table.shape == (5, 6)
    assert table[3, 0] == pytest.approx(math.sin(3)) and table[3, 1] == pytest.approx(math.cos(3))
    assert table[2, 4] == pytest.approx(math.sin(2 / 10000 ** (4 / 6)), rel=1e-5)
    assert sinusoidal_positions(3, 7).shape == (3, 7)


def test_image_classifier():
    model = TransformerImageClassifier(TINY.with_(image_size=16, patch_size=4, num_classes=3))
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_bad_config_and_tokens():
    with pytest.raises(ValueError, match="divisible by heads"):
        TransformerConfig(dim=10, heads=4)
    with pytest.raises(ValueError, match="position must be one of"):
        TransformerConfig(position="rope")
    with pytest.raises(ValueError, match=r"tokens must be ids in \[0, 11\)"):
        TransformerLM(TINY)(torch.tensor([[11]]))


@pytest.mark.parametrize("causal", [True, False])
def test_blocked_alibi_attention_equals_full(causal):
    import torch.nn.functional as F

    from tnn_ref.baselines import alibi_attention

    q, k, v = (torch.randn(2, 3, 37, 4, dtype=torch.float64) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, attn_mask=alibi_bias(37, 3, causal).double())
    torch.testing.assert_close(alibi_attention(q, k, v, causal, block=8), full)
    torch.testing.assert_close(alibi_attention(q, k, v, causal, block=100), full)
