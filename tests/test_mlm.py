"""Masking follows 15% / 80-10-10; the MLM task trains and evaluates the bidirectional models."""

import pytest
import torch

from tnn_ref.baselines import TransformerConfig, TransformerEncoder
from tnn_ref.model import TnnConfig, TnnEncoder
from tnn_ref.tasks.characters import CharCorpus
from tnn_ref.tasks.mlm import IGNORE, MlmTask, evaluate_mlm, mask_tokens
from tnn_ref.training.loop import TrainConfig, train


def test_mask_rates():
    tokens = torch.randint(0, 50, (200, 500))
    inputs, targets = mask_tokens(tokens, mask_id=50, vocab_size=50, generator=torch.Generator().manual_seed(0))
    chosen = targets != IGNORE
    assert abs(chosen.float().mean().item() - 0.15) < 0.005
    assert torch.equal(targets[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen])  # unchosen positions are untouched
    masked = (inputs == 50)[chosen].float().mean().item()
    kept = (inputs == tokens)[chosen].float().mean().item()  # 10% kept, plus random draws that hit the same id
    assert abs(masked - 0.8) < 0.01 and abs(kept - (0.1 + 0.1 / 50)) < 0.01
    assert not (inputs[~chosen] == 50).any()
    with pytest.raises(ValueError, match="rate must be in"):
        mask_tokens(tokens, 50, 50, torch.Generator(), rate=0.0)


@pytest.mark.parametrize("make", [
    lambda v: TnnEncoder(TnnConfig(vocab_size=v, dim=16, layers=1, expand=2, rpe_dim=8, rpe_layers=1)),
    lambda v: TransformerEncoder(TransformerConfig(vocab_size=v, dim=16, layers=1, heads=2)),
])
def test_mlm_training_improves(make):
    corpus = CharCorpus.from_text("to be or not to be, that is the question. " * 60)
    torch.manual_seed(0)
    model = make(len(corpus.vocab) + 1)  # + the mask token
    task = MlmTask(corpus.train, corpus.val, len(corpus.vocab), batch_size=8, context=32, eval_batch_size=16)
    before = task.evaluate(model)
    train(model, task, TrainConfig(steps=120, lr=5e-3, warmup=10, eval_every=120, progress=False, weight_decay=0.0))
    after = task.evaluate(model)
    assert after["val_loss"] < before["val_loss"] - 0.5 and after["val_accuracy"] > before["val_accuracy"]
    # evaluation is deterministic: the same masked positions every call
    assert task.evaluate(model) == after
    longer = evaluate_mlm(model, corpus.val, 64, task.mask_id, task.vocab_size)
    assert 0.0 <= longer["val_accuracy"] <= 1.0


def test_evaluation_masks_do_not_depend_on_batch_size():
    corpus = CharCorpus.from_text("to be or not to be, that is the question. " * 60)
    torch.manual_seed(0)
    model = TnnEncoder(TnnConfig(vocab_size=len(corpus.vocab) + 1, dim=8, layers=1, expand=2, rpe_dim=4, rpe_layers=1)).double()
    results = [evaluate_mlm(model, corpus.val, 16, len(corpus.vocab), len(corpus.vocab), batch_size=b) for b in (1, 3, 100)]
    for other in results[1:]:
        assert other["val_accuracy"] == results[0]["val_accuracy"]
        assert abs(other["val_loss"] - results[0]["val_loss"]) < 1e-6  # float32 sums in another order
