"""One measured training run per (model, task): accuracy, training speed and peak memory from the same run.

This is what the paper's Figure 1 (left) plots for Long-Range Arena: each model's accuracy against its
training speed, with its memory footprint as the size of the point. Here a run is `tnn_ref.train.train`
on a `ClassificationTask`, in a fresh process (`run_measured`) so that its peak memory is its own:

- speed: input positions per second of training time (tokens, padding included, or pixels for images),
  the loop's own `train_seconds` (evaluation not counted);
- memory: peak RSS during training minus the RSS just before the first step (weights, data and the
  torch library are already resident then), i.e. what training itself adds: activations, gradients,
  optimizer state, FFT and attention buffers. A throwaway warm-up step on a tiny batch runs first, so
  one-time costs (lazily imported modules, library code paged in: ~150 MiB) are not counted.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from typing import Callable

import torch

from tnn_ref.allocator import reuse_freed_memory
from tnn_ref.classify import ClassificationTask, LabelledData
from tnn_ref.model import count_parameters
from tnn_ref.peak_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss, run_in_fresh_process
from tnn_ref.train import TrainConfig, train

MIB = 1 << 20


class _PeakBeforeEvaluation:
    """The task, unchanged, except that the peak RSS is read when the loop first evaluates (after the last
    step when eval_every = steps), so the evaluation's own buffers are not counted as training memory."""

    def __init__(self, task: ClassificationTask):
        self.task = task
        self.peak: int | None = None

    def batch(self, generator):
        return self.task.batch(generator)

    def loss(self, model, batch):
        return self.task.loss(model, batch)

    def evaluate(self, model) -> dict:
        if self.peak is None:
            self.peak = peak_rss_bytes()
        return self.task.evaluate(model)


class _TinyBatch:
    """A task that always returns one short batch: for a warm-up step that touches every code path cheaply."""

    def __init__(self, task: ClassificationTask, positions: int = 16):
        inputs, labels, *mask = task.train.batch(torch.tensor([0]))
        if inputs.ndim == 2:
            inputs, mask = inputs[:, :positions], [m[:, :positions] for m in mask]  # (1, <= positions)
        self.task, self.fixed = task, (inputs, labels, *mask)

    def batch(self, generator):
        return self.fixed

    def loss(self, model, batch):
        return self.task.loss(model, batch)

    def evaluate(self, model) -> dict:
        return {}


def warm_up(make_model: Callable[[], torch.nn.Module], task: ClassificationTask, config: TrainConfig) -> None:
    """One training step of a throwaway model on a tiny batch: pays the process's one-time costs (modules that
    torch imports on first use, library code paged in) before anything is measured."""
    train(make_model(), _TinyBatch(task), replace(config, steps=1, warmup=0, eval_every=1, progress=False,
                                                  time_budget_s=None, log_path=None, checkpoint_path=None))
    gc.collect()


def measured_training(make_model: Callable[[], torch.nn.Module], task: ClassificationTask, config: TrainConfig,
                      test: LabelledData, threads: int = 1) -> dict:
    """Train make_model() on `task`, then score it on `test`; meant to run alone in its process (`run_measured`).

    Returns a dict: steps, train_seconds, tokens_per_second, training_memory_mib, peak_rss_mib,
    peak_reset (False: the peak covers the whole process, not only training), test_accuracy, test_loss,
    held_out (the task's held-out metrics), parameters, losses (training loss per step).
    """
    reuse_freed_memory()  # the same allocator settings as the notebooks, so speeds compare
    torch.set_num_threads(threads)
    warm_up(make_model, task, config)
    torch.manual_seed(config.seed)
    model = make_model()
    watched = _PeakBeforeEvaluation(task)
    task.positions_drawn = 0
    gc.collect()
    before = current_rss_bytes() or 0
    peak_reset = reset_peak_rss()
    result = train(model, watched, replace(config, eval_every=config.steps, progress=False))
    peak = watched.peak if watched.peak is not None else peak_rss_bytes()
    test_metrics = task.evaluate(model, test)
    return {
        "steps": result.steps_done,
        "train_seconds": result.train_seconds,
        "tokens_per_second": task.positions_drawn / result.train_seconds,
        "training_memory_mib": max(peak - before, 0) / MIB,
        "peak_rss_mib": peak / MIB,
        "peak_reset": peak_reset,
        "test_accuracy": test_metrics["val_accuracy"],
        "test_loss": test_metrics["val_loss"],
        "held_out": result.history[-1],
        "parameters": count_parameters(model),
        "losses": result.losses,
        "threads": threads,
    }


def run_measured(make_model: Callable[[], torch.nn.Module], task: ClassificationTask, config: TrainConfig,
                 test: LabelledData, threads: int = 1) -> dict:
    """`measured_training` in a newly spawned process. make_model must be picklable, e.g.
    functools.partial(TnnEncoder, config)."""
    return run_in_fresh_process(measured_training, make_model, task, config, test, threads)


def format_results(rows: list[dict]) -> str:
    """A fixed-width table of rows holding task, model, test_accuracy, tokens_per_second, training_memory_mib,
    peak_rss_mib, train_seconds, steps, parameters."""
    header = (f"{'task':20s} {'model':12s} {'params':>8s} {'steps':>6s} {'train s':>8s} {'tokens/s':>9s} "
              f"{'train MiB':>10s} {'peak MiB':>9s} {'test acc':>9s}")
    lines = [header]
    for row in rows:
        lines.append(f"{row['task']:20s} {row['model']:12s} {row['parameters']:>8,} {row['steps']:>6d} "
                     f"{row['train_seconds']:>8.1f} {row['tokens_per_second']:>9,.0f} {row['training_memory_mib']:>10.0f} "
                     f"{row['peak_rss_mib']:>9.0f} {row['test_accuracy']:>9.3f}")
    return "\n".join(lines)
