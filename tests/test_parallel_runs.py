"""Runs on worker processes give the numbers a run in this process gives (tnn_ref.experiments.parallel)."""

import functools

import pytest
import torch

from tnn_ref.experiments.parallel import Workers
from tnn_ref.experiments.sweep import require_learning_rates, train_and_score
from tnn_ref.model import TnnConfig, TnnEncoder
from tnn_ref.tasks.classify import ClassificationTask, LabelledData
from tnn_ref.training.loop import TrainConfig


def small_task():
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 8, (96, 11), generator=generator)  # (examples, odd length)
    labels = (tokens[:, 0] > tokens[:, -1]).long()  # needs the two ends of the sequence
    data = LabelledData(tokens, labels)
    return ClassificationTask(data.subset(torch.arange(64)), data.subset(torch.arange(64, 96)), batch_size=8), data


def test_two_workers_give_the_same_rows_as_one_process_in_the_same_order():
    task, data = small_task()
    make = functools.partial(TnnEncoder, TnnConfig(vocab_size=8, num_classes=2, dim=8, layers=1, rpe_dim=8))
    calls = [(make, task, TrainConfig(steps=6, lr=lr, seed=seed, eval_every=3), data) for lr, seed in
             ((1e-3, 0), (1e-2, 0), (1e-2, 1))]
    torch.set_num_threads(1)  # the workers' setting, so both sides compute with the same reduction order
    here = Workers(1).map(train_and_score, calls)
    with Workers(2) as workers:
        there = workers.map(train_and_score, calls)
    assert [row["lr"] for row in there] == [1e-3, 1e-2, 1e-2] and [row["seed"] for row in there] == [0, 0, 1]
    for a, b in zip(here, there):
        assert a["losses"] == b["losses"]  # bit for bit: seeded, one thread on both sides
        assert a["val_accuracy"] == b["val_accuracy"] and a["test_loss"] == b["test_loss"]
    assert here[0]["losses"] != here[1]["losses"]  # the calls differ, so the equality above says something


def test_a_failing_run_raises_here():
    with Workers(2) as workers, pytest.raises(ValueError, match="lrs must be a non-empty sequence"):
        workers.map(require_learning_rates, [([1e-3],), ([],)])


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
def test_workers_must_be_a_positive_int(workers):
    with pytest.raises((TypeError, ValueError), match="workers"):
        Workers(workers)
