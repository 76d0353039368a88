"""A small recorded learning-rate sweep, and seeded repeats, the same procedure for every model.

`lr_sweep` trains one run per learning rate (seed 0, the same steps and batches for every value) and records
the held-out (validation) numbers after the last step; `best_lr` takes the best value of one metric
(the highest validation accuracy for the classification tasks of notebook 08, the lowest validation bpc for
the language models of notebooks 06, 07 and 10), a tie going to the lower validation loss. Then
`train_and_score` repeats the run at that learning rate for the other seeds and scores it on the test
split. The test split never enters the choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from scipy import stats

from tnn_ref.checks import require_bool, require_float_at_least
from tnn_ref.training.loop import TrainConfig, train


def train_and_score(make_model: Callable[[], torch.nn.Module], task, config: TrainConfig, test=None,
                    score: Callable[[torch.nn.Module], dict] | None = None) -> dict:
    """Train make_model() on `task` in this process; score it on task's held-out split and on `test`.

    task: anything `train` takes whose evaluate(model) returns held-out numbers ("val_loss" and the metric
    `best_lr` reads), e.g. a ClassificationTask, MqarTask or LmTask; test: data of a classification task's
    kind, scored by task.evaluate(model, test), or None; score: a function of the trained model whose dict
    joins the row (how the language-model notebooks score their test lengths). Returns {"lr", "seed",
    "steps", "train_seconds", every key of task.evaluate(model), "test_accuracy", "test_loss" (with test),
    the keys of score(model) (with score), "losses" (one per step), "history" (the loop's evaluation rows)}.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    torch.manual_seed(config.seed)  # the initial weights: the same for every learning rate of a seed
    model = make_model()
    result = train(model, task, replace(config, progress=False))
    held_out = task.evaluate(model)
    row = {"lr": config.lr, "seed": config.seed, "steps": result.steps_done, "train_seconds": result.train_seconds,
           **held_out}
    if test is not None:
        scores = task.evaluate(model, test)
        row.update(test_accuracy=scores["val_accuracy"], test_loss=scores["val_loss"])
    if score is not None:
        row.update(score(model))
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
             test=None, score: Callable[[torch.nn.Module], dict] | None = None) -> list[dict]:
    """One `train_and_score` run per learning rate, config's other settings (seed included) unchanged.

    With `test` or `score` each run is also scored on the test split, so the chosen learning rate's run can
    serve as that seed's result; `best_lr` reads only the validation numbers."""
    return [train_and_score(make_model, task, replace(config, lr=lr), test, score) for lr in require_learning_rates(lrs)]


def best_lr(rows: Sequence[dict], metric: str = "val_accuracy", maximise: bool = True) -> float:
    """The learning rate of the row with the best `metric` (highest with maximise, else lowest); a tie goes
    to the lower val_loss. A non-finite value (a diverged run) counts as the worst."""
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError(f"rows must be a non-empty sequence of sweep rows (dicts with lr, {metric}, val_loss)")
    require_bool("maximise", maximise)
    for i, row in enumerate(rows):
        lacks = [key for key in ("lr", metric, "val_loss") if key not in row]
        if lacks:
            raise ValueError(f"rows[{i}] lacks {', '.join(lacks)}")

    def finite(value, worst):
        return value if math.isfinite(value) else worst

    def goodness(row):  # larger is better
        value = finite(row[metric], -math.inf if maximise else math.inf)
        return (value if maximise else -value, -finite(row["val_loss"], math.inf))

    return max(rows, key=goodness)["lr"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with n - 1; 0.0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must hold at least one number")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of a_i - b_i over paired runs (the same seed for both) and its confidence interval.

    The interval is the paired t-test's (scipy.stats.ttest_rel): with 3-5 seeds a bootstrap over seeds has
    too few distinct resamples, while the t interval widens honestly with few pairs. Returns {"mean", "low",
    "high", "pairs", "verdict"}: "lower" or "higher" when the interval excludes 0, else "no difference".
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a and b must be paired runs, at least 2 of each and as many of one as of the other, "
                         f"got {len(a)} and {len(b)}")
    interval = stats.ttest_rel(a, b).confidence_interval(confidence)
    low, high = float(interval.low), float(interval.high)
    verdict = "lower" if high < 0 else "higher" if low > 0 else "no difference"
    return {"mean": sum(x - y for x, y in zip(a, b)) / len(a), "low": low, "high": high, "pairs": len(a),
            "verdict": verdict}
