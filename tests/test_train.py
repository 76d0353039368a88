"""The training loop: it learns, it resumes exactly, it refuses bad settings."""

import json

import pytest
import torch

from tnn_ref.model import TnnConfig, TnnLM
from tnn_ref.tasks.shakespeare import CharCorpus
from tnn_ref.training.loop import LmTask, TrainConfig, load_checkpoint, train

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
SMALL = TnnConfig(vocab_size=1, dim=16, layers=1, expand=2, rpe_dim=8, rpe_layers=1, dropout=0.1)


def setup():
    corpus = CharCorpus.from_text(TEXT)
    torch.manual_seed(0)
    model = TnnLM(SMALL.with_(vocab_size=len(corpus.vocab)))
    return corpus, model


def test_overfits_one_batch():
    corpus, model = setup()
    fixed = corpus.train[:65]

    class OneBatch(LmTask):
        def batch(self, generator):
            return fixed[None, :-1], fixed[None, 1:]

    task = OneBatch(corpus.train, corpus.val, batch_size=1, context=64)
    result = train(model, task, TrainConfig(steps=150, lr=1e-2, warmup=10, eval_every=150, progress=False,
                                            weight_decay=0.0))
    # a 16-wide model memorises 64 characters: from ln(27) = 3.3 nats to well under 0.5
    assert result.losses[0] > 2.5 and result.losses[-1] < 0.5


def test_resume_continues_exactly(tmp_path):
    corpus, model = setup()
    task = LmTask(corpus.train, corpus.val, batch_size=4, context=32)
    full = TrainConfig(steps=12, eval_every=6, progress=False)
    uninterrupted = train(model, task, full)

    _, model2 = setup()
    ckpt = tmp_path / "ckpt.pt"
    log = tmp_path / "log.jsonl"
    first = train(model2, task, TrainConfig(steps=6, eval_every=6, progress=False, checkpoint_path=str(ckpt),
                                            log_path=str(log)))
    assert first.steps_done == 6 and ckpt.exists()
    _, model3 = setup()  # a fresh process would start from a fresh model
    resumed = train(model3, task, TrainConfig(steps=12, eval_every=6, progress=False, checkpoint_path=str(ckpt),
                                              log_path=str(log)), resume=True)
    assert resumed.losses[0] == uninterrupted.losses[6]  # the same next-step loss, exactly
    assert resumed.losses == uninterrupted.losses[6:]
    for a, b in zip(model3.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["step"] for row in rows] == [6, 12] and "val_bpc" in rows[0]
    state = load_checkpoint(ckpt)
    assert state["step"] == 12 and len(state["history"]) == 2


def test_time_budget_stops_early():
    corpus, model = setup()
    task = LmTask(corpus.train, corpus.val, batch_size=2, context=16)
    result = train(model, task, TrainConfig(steps=10_000, eval_every=1000, progress=False, time_budget_s=0.2))
    assert result.stopped_by_budget and result.steps_done < 10_000 and result.history[-1]["step"] == result.steps_done


@pytest.mark.parametrize("changes, match", [
    ({"steps": 0}, "steps must be a positive int"),
    ({"lr": -1.0}, "lr must be positive"),
    ({"schedule": "linear"}, "schedule must be one of"),
    ({"eval_every": 0}, "eval_every must be a positive int"),
    ({"warmup": -1}, "warmup must be >= 0"),
])
def test_bad_settings(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**changes)


def test_bad_task_settings():
    corpus = CharCorpus.from_text(TEXT)
    with pytest.raises(ValueError, match="larger than the training data"):
        LmTask(corpus.train, corpus.val, batch_size=1000, context=64)
    with pytest.raises(ValueError, match="must be positive"):
        LmTask(corpus.train, corpus.val, batch_size=1, context=0)


def test_schedules():
    inv = TrainConfig(lr=1.0, warmup=4, steps=100)
    assert [round(inv.lr_at(s), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert inv.lr_at(15) == pytest.approx(0.5)  # sqrt(4 / 16)
    cos = TrainConfig(lr=1.0, warmup=0, steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert cos.lr_at(0) > 0.97 and cos.lr_at(9) == pytest.approx(0.1)
