"""Text generation: greedy equals the argmax of a full forward pass; sampling is seeded."""

import pytest
import torch

from tnn_ref.decoding import generate
from tnn_ref.model import TnnConfig, TnnLM

CONFIG = TnnConfig(vocab_size=13, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=1)


def test_greedy_matches_forward():
    torch.manual_seed(0)
    model = TnnLM(CONFIG).eval()
    prompt = torch.randint(0, 13, (2, 5))
    out = generate(model, prompt, steps=6, temperature=0)
    assert out.shape == (2, 11) and torch.equal(out[:, :5], prompt)
    for t in range(5, 11):
        assert torch.equal(out[:, t], model(out[:, :t])[:, -1].argmax(-1))


def test_sampling_is_seeded_and_top_k_respected():
    torch.manual_seed(0)
    model = TnnLM(CONFIG)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    a = generate(model, prompt, 20, generator=torch.Generator().manual_seed(1))
    b = generate(model, prompt, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    one = generate(model, prompt, 8, top_k=1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(one, generate(model, prompt, 8, temperature=0))  # top-1 sampling is greedy


def test_bad_arguments():
    model = TnnLM(CONFIG)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), -1)
    with pytest.raises(ValueError, match=r"prompt must be ids in \[0, 13\)"):
        generate(model, torch.full((1, 2), 13), 1)
    with pytest.raises(ValueError, match="top_k must be in"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 1, top_k=0)
