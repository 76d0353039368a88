"""Padding cannot reach the real tokens of either encoder, and materialised attention equals SDPA."""

import pytest
import torch

from tnn_ref.baselines import SelfAttention, TransformerConfig, TransformerEncoder, TransformerLM


@pytest.mark.parametrize("position", ["sinusoidal", "alibi", "none"])
@pytest.mark.parametrize("attention", ["sdpa", "materialised"])
def test_transformer_classification_ignores_any_amount_of_padding(position, attention):
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=12, num_classes=3, dim=8, layers=2, heads=2, position=position,
                               attention=attention)
    model = TransformerEncoder(config).double().eval()
    real = torch.randint(1, 12, (2, 9))
    reference = model.classify(real, torch.ones(2, 9, dtype=torch.bool))
    for padding in (1, 4, 30):
        tokens = torch.cat([real, torch.randint(0, 12, (2, padding))], dim=1)
        mask = torch.arange(9 + padding)[None].expand(2, -1) < 9
        torch.testing.assert_close(model.classify(tokens, mask), reference, rtol=1e-8, atol=1e-8)
    leaked = model.classify(torch.cat([real, torch.zeros(2, 4, dtype=torch.long)], dim=1))
    assert (leaked - reference).abs().max() > 1e-6  # without the mask the padding is attended to


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("alibi", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_materialised_attention_equals_sdpa(causal, alibi, masked):
    torch.manual_seed(1)
    sdpa = SelfAttention(8, 2, 0.0, causal, alibi).double()
    explicit = SelfAttention(8, 2, 0.0, causal, alibi, attention="materialised").double()
    explicit.load_state_dict(sdpa.state_dict())
    x = torch.randn(2, 7, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3]) if masked else None
    a, b = sdpa(x, mask), explicit(x, mask)
    torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    ga, = torch.autograd.grad(a.square().sum(), x)
    gb, = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(gb, ga, rtol=1e-10, atol=1e-10)


def test_bad_masks_and_attention_are_refused():
    with pytest.raises(ValueError, match="attention must be one of"):
        TransformerConfig(attention="flash")
    model = TransformerLM(TransformerConfig(vocab_size=5, dim=8, layers=1, heads=2))
    attn = model.blocks[0].attn
    x = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="mask must be a boolean tensor of shape"):
        attn(x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one real token"):
        attn(x, torch.tensor([[True] * 4, [False] * 4]))
