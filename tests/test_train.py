"""The training loop: it learns, it resumes exactly, it refuses bad settings."""

import json
import math

import pytest
import torch

from tnn_ref.model import TnnConfig, TnnLM
from tnn_ref.tasks.characters import CharCorpus
from tnn_ref.training.evaluate import evaluate_lm
from tnn_ref.training.loop import LmTask, TrainConfig, load_checkpoint, pick_device, train

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


@pytest.mark.parametrize("changes, error, match", [
    ({"steps": 0}, ValueError, "steps must be a positive int"),
    ({"steps": True}, ValueError, "steps must be a positive int"),  # a bool is no count
    ({"steps": 2.0}, ValueError, "steps must be a positive int"),
    ({"lr": -1.0}, ValueError, "lr must be a finite number > 0"),
    ({"lr": math.nan}, ValueError, "lr must be a finite number > 0"),
    ({"lr": math.inf}, ValueError, "lr must be a finite number > 0"),  # was accepted: every weight NaN
    ({"lr": "1e-3"}, ValueError, "lr must be a finite number > 0"),
    ({"lr": True}, ValueError, "lr must be a finite number > 0"),
    ({"betas": (0.9,)}, ValueError, "betas must be two numbers"),
    ({"betas": "ab"}, ValueError, "betas must be two numbers"),
    ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\] must be below 1"),  # AdamW refused it inside train()
    ({"betas": (math.nan, 0.98)}, ValueError, r"betas\[0\] must be a finite number >= 0"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": math.nan}, ValueError, "weight_decay must be a finite number >= 0"),
    ({"schedule": "linear"}, ValueError, "schedule must be one of"),
    ({"schedule": ["cosine"]}, ValueError, "schedule must be one of"),
    ({"min_lr_ratio": 1.5}, ValueError, "min_lr_ratio must be at most 1"),
    ({"min_lr_ratio": -0.1}, ValueError, "min_lr_ratio must be a finite number >= 0"),
    ({"eval_every": 0}, ValueError, "eval_every must be a positive int"),
    ({"warmup": -1}, ValueError, "warmup must be a non-negative int"),
    ({"warmup": 1.5}, ValueError, "warmup must be a non-negative int"),
    ({"clip": 0.0}, ValueError, "clip must be a finite number > 0"),
    ({"clip": math.nan}, ValueError, "clip must be a finite number > 0"),
    ({"seed": -1}, ValueError, "seed must be a non-negative int"),  # numpy refuses negative seeds, inside train()
    ({"seed": 2**32}, ValueError, r"seed must be an int in \[0, 2\*\*32\)"),
    ({"time_budget_s": 0}, ValueError, "time_budget_s must be a finite number > 0"),
    ({"time_budget_s": math.nan}, ValueError, "time_budget_s must be a finite number > 0"),  # was: never stops
    ({"device": "tpu"}, ValueError, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ({"device": "meta"}, ValueError, "device must be"),
    ({"device": 0}, TypeError, "device must be"),
    ({"log_path": 5}, TypeError, "log_path must be None or a file path"),
    ({"checkpoint_every": 0, "checkpoint_path": "x.pt"}, ValueError, "checkpoint_every must be None or a positive int"),
    ({"checkpoint_every": 10}, ValueError, "checkpoint_every needs checkpoint_path"),  # was: silently never written
    ({"progress": "no"}, TypeError, "progress must be True or False"),
])
def test_bad_settings(changes, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**changes)


def test_bad_task_settings():
    corpus = CharCorpus.from_text(TEXT)
    with pytest.raises(ValueError, match="larger than the training data"):
        LmTask(corpus.train, corpus.val, batch_size=1000, context=64)
    with pytest.raises(ValueError, match="context must be a positive int"):
        LmTask(corpus.train, corpus.val, batch_size=1, context=0)
    with pytest.raises(TypeError, match="train must be a 1-D torch.Tensor"):
        LmTask(corpus.train.numpy(), corpus.val, batch_size=1, context=8)
    with pytest.raises(ValueError, match="eval_batch_size must be a positive int"):
        LmTask(corpus.train, corpus.val, batch_size=1, context=8, eval_batch_size=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"eval_tokens": 20}, "eval_tokens=20 is shorter than one window of eval_context=32"),
    ({"eval_context": 10_000}, "eval_context=10000 needs at least 10001 tokens, but val holds"),
    ({"eval_context": 0}, "eval_context must be a positive int"),
    ({"eval_tokens": -5}, "eval_tokens must be None or a positive int"),
])
def test_task_refuses_an_evaluation_window_the_validation_data_cannot_serve(kwargs, match):
    """Refused at construction, not at the first evaluation eval_every updates into the run."""
    corpus = CharCorpus.from_text(TEXT)
    with pytest.raises(ValueError, match=match):
        LmTask(corpus.train, corpus.val, batch_size=2, context=32, **kwargs)


class FailingEvaluation(LmTask):
    def evaluate(self, model):
        raise RuntimeError("the evaluation broke")


def test_a_failing_evaluation_keeps_the_finished_updates(tmp_path):
    corpus, model = setup()
    task = FailingEvaluation(corpus.train, corpus.val, batch_size=2, context=16)
    ckpt = tmp_path / "ckpt.pt"
    config = TrainConfig(steps=10, eval_every=3, progress=False, checkpoint_path=str(ckpt))
    with pytest.raises(RuntimeError, match="the evaluation broke") as failure:
        train(model, task, config)
    assert any("3 finished updates were checkpointed" in note for note in failure.value.__notes__)
    state = load_checkpoint(ckpt)
    assert state["step"] == 3  # the updates before the failing evaluation
    for name, value in model.state_dict().items():
        torch.testing.assert_close(state["model"][name], value, rtol=0, atol=0)
    # and a resume with a working evaluation goes on from there
    _, model2 = setup()
    good = LmTask(corpus.train, corpus.val, batch_size=2, context=16)
    resumed = train(model2, good, TrainConfig(steps=4, eval_every=3, progress=False, checkpoint_path=str(ckpt)),
                    resume=True)
    assert len(resumed.losses) == 1 and resumed.steps_done == 4


def test_train_refuses_bad_arguments_before_the_first_update(tmp_path):
    corpus, model = setup()
    task = LmTask(corpus.train, corpus.val, batch_size=2, context=16)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(model, task, {"steps": 3})
    with pytest.raises(TypeError, match="object lacks loss, evaluate, batch"):
        train(model, object(), TrainConfig(steps=1, progress=False))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train(lambda x: x, task, TrainConfig(steps=1, progress=False))
    with pytest.raises(TypeError, match="resume must be a bool"):
        train(model, task, TrainConfig(steps=1, progress=False, checkpoint_path=str(tmp_path / "c.pt")), resume="yes")
    with pytest.raises(ValueError, match="resume=True needs config.checkpoint_path"):
        train(model, task, TrainConfig(steps=1, progress=False), resume=True)
    with pytest.raises(ValueError, match="checkpoint_path=.* is a folder"):  # found before training, not at the end
        train(model, task, TrainConfig(steps=1, progress=False, checkpoint_path=str(tmp_path)))


def test_resume_refuses_another_model_or_fewer_steps_clearly(tmp_path):
    corpus, model = setup()
    task = LmTask(corpus.train, corpus.val, batch_size=2, context=16)
    ckpt = str(tmp_path / "ckpt.pt")
    train(model, task, TrainConfig(steps=4, eval_every=4, progress=False, checkpoint_path=ckpt))
    with pytest.raises(ValueError, match="holds 4 finished updates, more than config.steps=2"):
        train(setup()[1], task, TrainConfig(steps=2, progress=False, checkpoint_path=ckpt), resume=True)
    other = TnnLM(SMALL.with_(vocab_size=len(corpus.vocab), dim=24))
    with pytest.raises(ValueError, match="holds another model than the one given"):
        train(other, task, TrainConfig(steps=6, progress=False, checkpoint_path=ckpt), resume=True)


def test_checkpoints_that_cannot_be_read_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        load_checkpoint(tmp_path / "missing.pt")
    for damaged in (b"", b"hello", b"PK\x03\x04" + bytes(100)):
        (tmp_path / "bad.pt").write_bytes(damaged)
        with pytest.raises(ValueError, match="is not a readable checkpoint"):
            load_checkpoint(tmp_path / "bad.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="no 'model' weights"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_a_resumed_log_holds_each_evaluation_once(tmp_path):
    """Rows logged after the last checkpoint are recomputed by the resume, so they are not kept twice."""
    corpus, model = setup()
    task = LmTask(corpus.train, corpus.val, batch_size=2, context=16)
    ckpt, log = tmp_path / "ckpt.pt", tmp_path / "log.jsonl"
    settings = dict(eval_every=2, progress=False, checkpoint_path=str(ckpt), log_path=str(log), checkpoint_every=2)
    train(model, task, TrainConfig(steps=2, **settings))
    with log.open("a") as handle:  # an evaluation at update 3 logged just before the run died (no checkpoint)
        handle.write(json.dumps({"step": 3, "val_loss": 9.0}) + "\n")
    train(setup()[1], task, TrainConfig(steps=4, **settings), resume=True)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [2, 4]


def test_pick_device_names_what_it_accepts():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            pick_device("cuda")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_tokens": -5}, ValueError, "max_tokens must be None or a positive int"),  # was: scored data[:-4]
    ({"max_tokens": 0}, ValueError, "max_tokens must be None or a positive int"),
    ({"max_tokens": True}, ValueError, "max_tokens must be None or a positive int"),
    ({"max_tokens": 100.0}, ValueError, "max_tokens must be None or a positive int"),
    ({"max_tokens": 10}, ValueError, "max_tokens=10 is shorter than one window of context=32"),
    ({"context": 0}, ValueError, "context must be a positive int"),
    ({"context": 10_000}, ValueError, "context=10000 needs at least 10001 tokens"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
])
def test_evaluate_lm_refuses_bad_arguments(kwargs, error, match):
    corpus, model = setup()
    settings = {"context": 32} | kwargs
    with pytest.raises(error, match=match):
        evaluate_lm(model, corpus.val, **settings)


def test_evaluate_lm_refuses_data_that_is_not_a_token_stream():
    corpus, model = setup()
    with pytest.raises(TypeError, match="data must be a 1-D torch.Tensor"):
        evaluate_lm(model, corpus.val.numpy(), 32)
    with pytest.raises(TypeError, match="data must hold integer token ids"):
        evaluate_lm(model, corpus.val.float(), 32)
    with pytest.raises(ValueError, match=r"data must have shape \(n,\)"):
        evaluate_lm(model, corpus.val[None], 32)


def test_evaluate_lm_max_tokens_scores_exactly_that_many():
    corpus, model = setup()
    result = evaluate_lm(model, corpus.val, 32, max_tokens=64)
    assert result["tokens"] == 64
    whole = evaluate_lm(model, corpus.val[:65], 32)
    assert result["loss"] == pytest.approx(whole["loss"], rel=1e-6)


def test_schedules():
    inv = TrainConfig(lr=1.0, warmup=4, steps=100)
    assert [round(inv.lr_at(s), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert inv.lr_at(15) == pytest.approx(0.5)  # sqrt(4 / 16)
    cos = TrainConfig(lr=1.0, warmup=0, steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert cos.lr_at(0) > 0.97 and cos.lr_at(9) == pytest.approx(0.1)
