"""The recorded learning-rate sweep of notebook 08 (tnn_ref.experiments.sweep)."""

import math

import pytest
import torch

from tnn_ref.experiments.sweep import best_lr, lr_sweep, mean_std, require_learning_rates, train_and_score
from tnn_ref.tasks.classify import ClassificationTask, LabelledData
from tnn_ref.training.loop import TrainConfig


class TinyClassifier(torch.nn.Module):
    """Mean-pooled embeddings and a linear head: learns 'which of two tokens fills the sequence' in a few steps."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(2, 4)
        self.head = torch.nn.Linear(4, 2)

    def classify(self, tokens, mask=None):
        return self.head(self.embed(tokens).mean(dim=1))


def tiny_task():
    labels = torch.arange(64) % 2
    data = LabelledData(labels[:, None].repeat(1, 5), labels)
    return ClassificationTask(data.subset(torch.arange(48)), data.subset(torch.arange(48, 64)), batch_size=8), data


def test_best_lr_takes_the_highest_accuracy_and_breaks_ties_by_loss():
    rows = [{"lr": 1e-3, "val_accuracy": 0.5, "val_loss": 0.7}, {"lr": 3e-3, "val_accuracy": 0.9, "val_loss": 0.4},
            {"lr": 1e-2, "val_accuracy": 0.9, "val_loss": 0.3}, {"lr": 3e-2, "val_accuracy": 0.9, "val_loss": math.nan}]
    assert best_lr(rows) == 1e-2
    assert best_lr(rows[:2]) == 3e-3


@pytest.mark.parametrize("rows", [[], "abc", [{"lr": 1e-3, "val_accuracy": 0.5}]])
def test_best_lr_refuses_empty_or_incomplete_rows(rows):
    with pytest.raises(ValueError, match="rows"):
        best_lr(rows)


@pytest.mark.parametrize("lrs", [[], [0.0], [-1e-3], [1e-3, 1e-3], "0.001", [math.inf]])
def test_learning_rates_must_be_distinct_positive_numbers(lrs):
    with pytest.raises(ValueError, match="lrs"):
        require_learning_rates(lrs)


def test_mean_std_is_the_sample_standard_deviation():
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)
    assert mean_std([0.4]) == (0.4, 0.0)
    with pytest.raises(ValueError, match="values"):
        mean_std([])


def test_sweep_records_one_run_per_learning_rate_with_the_same_initial_weights():
    task, data = tiny_task()
    config = TrainConfig(steps=30, warmup=0, schedule="constant", eval_every=30, seed=0)
    rows = lr_sweep(TinyClassifier, task, config, [1e-4, 1e-1])
    assert [row["lr"] for row in rows] == [1e-4, 1e-1] and all(row["steps"] == 30 for row in rows)
    assert "test_accuracy" not in rows[0]  # the sweep never looks at a test split
    assert rows[0]["losses"][0] == pytest.approx(rows[1]["losses"][0])  # same seed: same weights, same first batch
    assert rows[1]["val_accuracy"] == 1.0 and rows[1]["val_loss"] < rows[0]["val_loss"]
    assert best_lr(rows) == 1e-1
    scored = train_and_score(TinyClassifier, task, TrainConfig(steps=30, lr=1e-1, warmup=0, eval_every=30), data)
    assert scored["test_accuracy"] == 1.0 and scored["lr"] == 1e-1


def test_sweep_with_a_test_split_scores_every_run_but_chooses_on_validation():
    task, data = tiny_task()
    config = TrainConfig(steps=10, warmup=0, schedule="constant", eval_every=10, seed=0)
    rows = lr_sweep(TinyClassifier, task, config, [1e-4, 1e-1], test=data)
    assert all("test_accuracy" in row for row in rows)
    changed = [dict(row, test_accuracy=1.0 - row["test_accuracy"]) for row in rows]
    assert best_lr(changed) == best_lr(rows)
