"""A small recorded learning-rate sweep, and seeded repeats, the same procedure for every model.

Notebook 08 picks each model's learning rate per task the same way: `lr_sweep` trains one run per learning
rate (seed 0, the same steps and batches for every value) and records the held-out (validation) accuracy
after the last step; `best_lr` takes the highest, a tie going to the lower final validation loss. Then
`train_and_score` repeats the run at that learning rate for the other seeds and scores it on the test
split. The test split never enters the choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from tnn_ref.checks import require_float_at_least
from tnn_ref.training.loop import TrainConfig, train


def train_and_score(make_model: Callable[[], torch.nn.Module], task, config: TrainConfig, test=None) -> dict:
    """Train make_model() on `task` in this process; score it on task's held-out split and on `test`.

    task: a ClassificationTask or MqarTask (batch, loss, evaluate(model, data=None)); test: data of the
    task's kind, or None (no test score). Returns {"lr", "seed", "steps", "train_seconds", "val_accuracy",
    "val_loss", "test_accuracy", "test_loss" (the last two only with test), "losses" (one per step),
    "history" (the loop's evaluation rows)}.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    torch.manual_seed(config.seed)  # the initial weights: the same for every learning rate of a seed
    model = make_model()
    result = train(model, task, replace(config, progress=False))
    held_out = task.evaluate(model)
    row = {"lr": config.lr, "seed": config.seed, "steps": result.steps_done, "train_seconds": result.train_seconds,
           "val_accuracy": held_out["val_accuracy"], "val_loss": held_out["val_loss"]}
    if test is not None:
        scores = task.evaluate(model, test)
        row.update(test_accuracy=scores["val_accuracy"], test_loss=scores["val_loss"])
    return {**row, "losses": result.losses, "history": result.history}


def require_learning_rates(lrs: Sequence[float]) -> list[float]:
    """A non-empty sequence of distinct positive learning rates, as a list of floats."""
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence) or len(lrs) == 0:
        raise ValueError(f"lrs must be a non-empty sequence of positive learning rates, got {lrs!r}")
    values = [float(require_float_at_least(f"lrs[{i}]", lr, 0.0, strict=True)) for i, lr in enumerate(lrs)]
    if len(set(values)) != len(values):
        raise ValueError(f"lrs must be distinct, got {list(lrs)!r}")
    return values


def lr_sweep(make_model: Callable[[], torch.nn.Module], task, config: TrainConfig, lrs: Sequence[float],
             test=None) -> list[dict]:
    """One `train_and_score` run per learning rate, config's other settings (seed included) unchanged.

    With `test` each run is also scored on it, so the chosen learning rate's run can serve as that seed's
    result; `best_lr` reads only the validation numbers."""
    return [train_and_score(make_model, task, replace(config, lr=lr), test) for lr in require_learning_rates(lrs)]


def best_lr(rows: Sequence[dict]) -> float:
    """The learning rate of the row with the highest val_accuracy; a tie goes to the lower val_loss
    (a non-finite loss counts as the worst)."""
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError("rows must be a non-empty sequence of sweep rows (dicts with lr, val_accuracy, val_loss)")
    for i, row in enumerate(rows):
        lacks = [key for key in ("lr", "val_accuracy", "val_loss") if key not in row]
        if lacks:
            raise ValueError(f"rows[{i}] lacks {', '.join(lacks)}")

    def loss(row):
        return row["val_loss"] if math.isfinite(row["val_loss"]) else math.inf

    return max(rows, key=lambda row: (row["val_accuracy"], -loss(row)))["lr"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with n - 1; 0.0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must hold at least one number")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
