"""One measured training run per (model, task): accuracy, training speed and memory, from the same process.

This is what the paper's Figure 1 (left) plots for Long-Range Arena: each model's accuracy against its
training speed, with its memory footprint as the size of the point. `run_measured` runs
`measured_training` in a fresh process, in two phases:

1. memory (`training_memory`): with `return_freed_memory` the process's RSS follows the live tensors; a
   throwaway step on the task's largest batch (its `batch_size` longest examples) pays the one-time costs
   (modules torch imports on first use, library code paged in); then the peak RSS over two steps of a
   fresh model, minus the RSS before them, is what training adds: activations kept for the backward pass,
   gradients, optimizer state, FFT and attention buffers. On a GPU, torch.cuda.max_memory_allocated minus
   the weights would show the same quantity.
2. speed and accuracy: with `reuse_freed_memory` (the faster allocator setting every notebook uses),
   `tnn_ref.training.loop.train` on the task; speed is input positions per second of the loop's own training time
   (tokens, padding included, or pixels for images; evaluation not counted); then the test accuracy.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import replace

import torch

from tnn_ref.bench.allocator import return_freed_memory, reuse_freed_memory
from tnn_ref.bench.peak_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss, run_in_fresh_process
from tnn_ref.model import count_parameters
from tnn_ref.tasks.classify import ClassificationTask, LabelledData, input_positions
from tnn_ref.training.loop import TrainConfig, train

MIB = 1 << 20


class _FixedBatch:
    """The task's loss on one fixed batch, drawn every step; no evaluation."""

    def __init__(self, task: ClassificationTask, batch: tuple[torch.Tensor, ...]):
        self.task, self.fixed = task, batch

    def batch(self, generator):
        return self.fixed

    def loss(self, model, batch):
        return self.task.loss(model, batch)

    def evaluate(self, model) -> dict:
        return {}


def largest_batch(task: ClassificationTask) -> tuple[torch.Tensor, ...]:
    """The task's `batch_size` longest training examples as one batch (any batch_size of them when all are equal)."""
    data = task.train
    count = min(task.batch_size, len(data))
    if data.lengths is None:
        return data.batch(torch.arange(count))
    return data.batch(data.lengths.argsort(descending=True, stable=True)[:count])


def _steps_only(config: TrainConfig, steps: int) -> TrainConfig:
    return replace(config, steps=steps, warmup=0, eval_every=steps, progress=False, time_budget_s=None,
                   log_path=None, checkpoint_path=None, checkpoint_every=None)


def training_memory(make_model: Callable[[], torch.nn.Module], task: ClassificationTask, config: TrainConfig,
                    steps: int = 2) -> dict:
    """MiB that training steps on the task's largest batch add to the RSS, freed memory returned at once.

    Changes this process's allocator settings: meant for a fresh process (`measured_training` does it first).
    """
    returned = return_freed_memory()
    fixed = _FixedBatch(task, largest_batch(task))
    train(make_model(), fixed, _steps_only(config, 1))  # throwaway: one-time costs are paid here
    gc.collect()
    model = make_model()
    before = current_rss_bytes() or 0
    peak_reset = reset_peak_rss()
    train(model, fixed, _steps_only(config, steps))
    peak = peak_rss_bytes()
    return {"training_memory_mib": max(peak - before, 0) / MIB, "memory_batch_positions": input_positions(fixed.fixed[0]),
            "memory_exact": returned and peak_reset}


def measured_training(make_model: Callable[[], torch.nn.Module], task: ClassificationTask, config: TrainConfig,
                      test: LabelledData, threads: int = 1) -> dict:
    """Memory, then speed and accuracy, of make_model() trained on `task` and scored on `test`.

    Meant to run alone in its process (`run_measured`): it sets the thread count and the allocator.
    Returns a dict: training_memory_mib, memory_batch_positions, memory_exact (False: the peak could not be
    reset or the allocator not switched, so the number is an upper bound), steps, train_seconds,
    tokens_per_second, test_accuracy, test_loss, held_out (the task's held-out metrics after the last step),
    parameters, losses (training loss per step), threads.
    """
    torch.set_num_threads(threads)
    memory = training_memory(make_model, task, config)
    reuse_freed_memory()  # from here on the allocator keeps freed blocks: the speed every notebook sees
    torch.manual_seed(config.seed)
    model = make_model()
    task.positions_drawn = 0
    result = train(model, task, replace(config, eval_every=config.steps, progress=False))
    test_metrics = task.evaluate(model, test)
    return {
        **memory,
        "steps": result.steps_done,
        "train_seconds": result.train_seconds,
        "tokens_per_second": task.positions_drawn / result.train_seconds,
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
    """A fixed-width table of rows holding task, model, parameters, steps, train_seconds, tokens_per_second,
    training_memory_mib and test_accuracy."""
    header = (f"{'task':20s} {'model':12s} {'params':>8s} {'steps':>6s} {'train s':>8s} {'tokens/s':>9s} "
              f"{'memory MiB':>11s} {'test acc':>9s}")
    lines = [header]
    for row in rows:
        lines.append(f"{row['task']:20s} {row['model']:12s} {row['parameters']:>8,} {row['steps']:>6d} "
                     f"{row['train_seconds']:>8.1f} {row['tokens_per_second']:>9,.0f} "
                     f"{row['training_memory_mib']:>11.0f} {row['test_accuracy']:>9.3f}")
    return "\n".join(lines)
