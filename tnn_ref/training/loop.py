"""One small training loop that every experiment reuses.

AdamW with the paper's betas (0.9, 0.98), linear warmup then inverse-sqrt or cosine decay, weight
decay, gradient clipping, periodic evaluation, a tqdm progress bar, a JSON-lines metrics log,
atomic checkpoints loaded with weights_only=True, and a resume that continues exactly: the next
step after a resume draws the same batch and the same dropout masks as an uninterrupted run.

What is trained is described by a task object with three methods (see `LmTask`):
`batch(generator)`, `loss(model, batch)` and `evaluate(model)`. A task may instead offer
`micro_batches(step)`, this process's share of update `step` as a list (see
`tnn_ref.training.sharding.ShardedLmTask`): the loop accumulates their gradients, and under torchrun wraps
the model in DistributedDataParallel, reports and checkpoints from rank 0 only, and reseeds dropout
from (seed, step, rank) every update so a resume needs no random state from the other ranks.

`python -m tnn_ref.train --help`: the command-line trainer (`tnn_ref.training.cli`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tnn_ref.checks import require_positive_int
from tnn_ref.tasks.batches import random_chunks
from tnn_ref.training import distributed
from tnn_ref.training.evaluate import evaluate_lm

SCHEDULES = ("inverse_sqrt", "cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup: int = 100
    schedule: str = "inverse_sqrt"
    min_lr_ratio: float = 0.1  # the cosine schedule ends at lr * min_lr_ratio
    clip: float = 1.0
    eval_every: int = 100
    seed: int = 0
    time_budget_s: float | None = None  # stop early once this much training time is spent
    device: str = "auto"  # "auto": CUDA when present (with bf16 autocast), else CPU
    log_path: str | None = None  # JSON lines, one per evaluation
    checkpoint_path: str | None = None
    checkpoint_every: int | None = None  # also written at the end when checkpoint_path is set
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "eval_every"):
            require_positive_int(name, getattr(self, name))
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be None or positive, got {self.clip!r}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be None or a positive int, got {self.checkpoint_every!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be None or positive, got {self.time_budget_s!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate for update number `step` (0-based)."""
        if self.schedule == "constant":
            return self.lr
        t = step + 1
        if self.warmup and t <= self.warmup:
            return self.lr * t / self.warmup
        if self.schedule == "inverse_sqrt":
            return self.lr * math.sqrt(max(self.warmup, 1) / t)
        progress = (t - self.warmup) / max(self.steps - self.warmup, 1)  # cosine from lr to lr * min_lr_ratio
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on; a bare "cuda" becomes the current GPU (under torchrun: GPU LOCAL_RANK)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but torch sees no CUDA device")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # DDP needs the index it runs on
    return device


def mixed_precision(device: torch.device):
    """bf16 autocast on CUDA (the TNO's FFTs stay float32 inside it), nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def next_token_loss(model, batch) -> torch.Tensor:
    """Mean cross-entropy of the next-token logits (in float32, also under bf16 autocast)."""
    x, y = batch
    logits = model(x)  # (b, n, vocab)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


def step_seed(seed: int, step: int, rank: int) -> int:
    """A seed for the dropout masks of one update on one rank, a function of those three numbers only."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


class LmTask:
    """Next-token prediction on a token stream: random contiguous chunks for training,
    non-overlapping windows over the whole validation split for evaluation."""

    def __init__(self, train: torch.Tensor, val: torch.Tensor, batch_size: int, context: int,
                 eval_context: int | None = None, eval_tokens: int | None = None, eval_batch_size: int = 8):
        if batch_size < 1 or context < 1:
            raise ValueError(f"batch_size and context must be positive, got batch_size={batch_size}, context={context}")
        if batch_size * (context + 1) > len(train):
            raise ValueError(f"a batch of {batch_size} x {context + 1} tokens is larger than the training data "
                             f"({len(train)} tokens): lower batch_size or context")
        self.train, self.val = train, val
        self.batch_size, self.context = batch_size, context
        self.eval_context = eval_context or context
        self.eval_tokens, self.eval_batch_size = eval_tokens, eval_batch_size

    def batch(self, generator: torch.Generator):
        return random_chunks(self.train, self.batch_size, self.context, generator)

    def loss(self, model, batch) -> torch.Tensor:
        return next_token_loss(model, batch)

    def evaluate(self, model) -> dict:
        result = evaluate_lm(model, self.val, self.eval_context, self.eval_batch_size, self.eval_tokens)
        return {"val_loss": result["loss"], "val_bpc": result["bpc"]}


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per evaluation
    losses: list[float] = field(default_factory=list)  # training loss of every step run in this call
    steps_done: int = 0
    train_seconds: float = 0.0
    stopped_by_budget: bool = False


def save_checkpoint(path, model, optimizer, step, generator, history, train_seconds, config, meta=None) -> None:
    """Write atomically (temporary file, then rename), so an interruption never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "batch_rng": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": history,
        "train_seconds": train_seconds,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "meta": meta or {},  # what rebuilds the model and its data (tnn_ref.training.cli): plain types only
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by `train`, loaded without executing any pickled code."""
    return torch.load(path, map_location=map_location, weights_only=True)


def _batch_to(batch, device):
    return tuple(t.to(device, non_blocking=True) for t in batch)


def _micro_batches(task, step: int, generator: torch.Generator) -> list:
    if hasattr(task, "micro_batches"):
        return task.micro_batches(step)
    return [task.batch(generator)]


def train(model: torch.nn.Module, task, config: TrainConfig, resume: bool = False, meta: dict | None = None) -> TrainResult:
    """Train `model` on `task` for config.steps updates (or until config.time_budget_s).

    resume=True continues from config.checkpoint_path when that file exists. Under torchrun (after
    `tnn_ref.training.distributed.setup()`) every process calls this with the same arguments.
    """
    here = distributed.place()
    device = pick_device(config.device)
    seed_everything(config.seed)  # the same initial weights in every process (DDP also broadcasts rank 0's)
    model.to(device)
    model.train()
    ddp = None
    if here.world > 1:
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    forward = ddp or model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult()
    start = 0
    if resume:
        if config.checkpoint_path is None:
            raise ValueError("resume=True needs config.checkpoint_path")
        if Path(config.checkpoint_path).is_file():
            state = load_checkpoint(config.checkpoint_path, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["batch_rng"])
            torch.set_rng_state(state["torch_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            start = state["step"]
            result.history = list(state["history"])
            result.train_seconds = state["train_seconds"]
    seconds_before = result.train_seconds
    autocast = mixed_precision(device)
    log = open(config.log_path, "a") if config.log_path and here.is_main else None
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps,
               disable=not (config.progress and here.is_main), mininterval=2.0, desc="train")
    step = start
    try:
        for step in bar:
            tick = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
            if here.world > 1:
                torch.manual_seed(step_seed(config.seed, step, here.rank))
            batches = _micro_batches(task, step, generator)
            optimizer.zero_grad(set_to_none=True)
            step_loss = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: one sync per update
            for i, batch in enumerate(batches):
                # DDP averages gradients across processes once per update, on the last micro-batch
                sync = ddp.no_sync() if ddp is not None and i + 1 < len(batches) else contextlib.nullcontext()
                with sync:
                    with autocast:
                        loss = task.loss(forward, _batch_to(batch, device)) / len(batches)
                    loss.backward()
                step_loss += loss.detach().double()
            if config.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            step_loss = step_loss.item()  # waits for the GPU, so the clock below counts its work
            elapsed = time.perf_counter() - tick
            # one collective: the loss averaged over ranks, and rank 0's clock (so every rank stops together)
            loss_sum, elapsed = distributed.sum_across_ranks([step_loss, elapsed if here.is_main else 0.0], device)
            loss_value = loss_sum / here.world
            result.train_seconds += elapsed
            result.losses.append(loss_value)
            result.steps_done = step + 1
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
            out_of_time = config.time_budget_s is not None and result.train_seconds >= config.time_budget_s
            last = step + 1 == config.steps or out_of_time
            if (step + 1) % config.eval_every == 0 or last:
                with autocast:
                    metrics = task.evaluate(model)
                row = {"step": step + 1, "train_loss": loss_value, "lr": config.lr_at(step),
                       "train_seconds": result.train_seconds, **metrics}
                if hasattr(task, "tokens_per_update"):  # all ranks together, over this call's updates
                    row["tokens_per_s"] = (step + 1 - start) * task.tokens_per_update / (result.train_seconds - seconds_before)
                result.history.append(row)
                if log:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
            if config.checkpoint_path and (last or (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0)):
                if here.is_main:
                    save_checkpoint(config.checkpoint_path, model, optimizer, step + 1, generator, result.history,
                                    result.train_seconds, config, meta)
                distributed.barrier()  # nobody runs ahead of (or resumes before) a complete checkpoint
            if out_of_time:
                result.stopped_by_budget = True
                break
    finally:
        bar.close()
        if log:
            log.close()
    return result

