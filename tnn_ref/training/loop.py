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

from tnn_ref.checks import (
    require_bool,
    require_float_at_least,
    require_nonnegative_int,
    require_positive_int,
    require_positive_int_or_none,
)
from tnn_ref.tasks.batches import random_chunks
from tnn_ref.training import distributed
from tnn_ref.training.evaluate import evaluate_lm, require_eval_window, require_token_stream

SCHEDULES = ("inverse_sqrt", "cosine", "constant")
DEVICE_TYPES = ("cpu", "cuda")
SEED_LIMIT = 2**32  # numpy's global seed and SeedSequence entries must lie in [0, 2**32)
# what `save_checkpoint` writes, so what a resume needs ("meta" is optional: the command line's description)
CHECKPOINT_KEYS = ("model", "optimizer", "step", "batch_rng", "torch_rng", "cuda_rng", "history", "train_seconds",
                   "config")


def require_seed(name: str, value) -> int:
    """A random seed: an int in [0, 2**32), what numpy's global seed and SeedSequence accept. Returns it."""
    if require_nonnegative_int(name, value) >= SEED_LIMIT:
        raise ValueError(f"{name} must be an int in [0, 2**32), got {value!r}")
    return value


def _require_path_or_none(name: str, value) -> None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be None or a file path (str or os.PathLike), got {type(value).__name__}")


def parse_device(name) -> torch.device | None:
    """'auto' -> None (decided when training starts); 'cpu', 'cuda' or 'cuda:N' (or such a torch.device) -> it."""
    accepts = "'auto', 'cpu', 'cuda' or 'cuda:N'"
    if isinstance(name, torch.device):
        device = name
    elif not isinstance(name, str):
        raise TypeError(f"device must be {accepts}, got {type(name).__name__} {name!r}")
    elif name == "auto":
        return None
    else:
        try:
            device = torch.device(name)
        except RuntimeError:  # torch's message lists every backend it was built to know
            raise ValueError(f"device must be {accepts}, got {name!r}") from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"device must be {accepts}, got {name!r}")
    return device


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
        require_float_at_least("lr", self.lr, 0, strict=True)
        self._check_betas()
        require_float_at_least("weight_decay", self.weight_decay, 0)
        require_nonnegative_int("warmup", self.warmup)
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if require_float_at_least("min_lr_ratio", self.min_lr_ratio, 0) > 1:
            raise ValueError(f"min_lr_ratio must be at most 1 (the cosine ends at lr * min_lr_ratio), "
                             f"got {self.min_lr_ratio!r}")
        if self.clip is not None:
            require_float_at_least("clip", self.clip, 0, strict=True)
        require_seed("seed", self.seed)
        if self.time_budget_s is not None:
            require_float_at_least("time_budget_s", self.time_budget_s, 0, strict=True)
        parse_device(self.device)
        for name in ("log_path", "checkpoint_path"):
            _require_path_or_none(name, getattr(self, name))
        if require_positive_int_or_none("checkpoint_every", self.checkpoint_every) and self.checkpoint_path is None:
            raise ValueError("checkpoint_every needs checkpoint_path (where to write the checkpoints)")
        require_bool("progress", self.progress)

    def _check_betas(self) -> None:
        """AdamW's two averaging rates, each in [0, 1)."""
        if isinstance(self.betas, str) or not hasattr(self.betas, "__len__") or len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            if require_float_at_least(f"betas[{i}]", beta, 0) >= 1:
                raise ValueError(f"betas[{i}] must be below 1 (AdamW's averages would never forget), got {beta!r}")

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


def require_available(device: torch.device) -> None:
    """A CUDA device must exist on this machine (checked without starting CUDA on it)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but torch sees no CUDA device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} was asked for, but this machine has {torch.cuda.device_count()} "
                         "CUDA device(s)")


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on; a bare "cuda" becomes the current GPU (under torchrun: GPU LOCAL_RANK)."""
    device = parse_device(name) or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    require_available(device)
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
        """train, val: 1-D token ids (n,); eval_context: the evaluation windows' length (default: context);
        eval_tokens: evaluate on the first this many tokens of val (default: all of it)."""
        self.train, self.val = require_token_stream("train", train), require_token_stream("val", val)
        self.batch_size = require_positive_int("batch_size", batch_size)
        self.context = require_positive_int("context", context)
        if batch_size * (context + 1) > len(train):
            raise ValueError(f"a batch of {batch_size} x {context + 1} tokens is larger than the training data "
                             f"({len(train)} tokens): lower batch_size or context")
        self.eval_context = require_positive_int("eval_context", context if eval_context is None else eval_context)
        self.eval_batch_size = require_positive_int("eval_batch_size", eval_batch_size)
        # refused now rather than at the first evaluation, eval_every updates into the run
        require_eval_window(len(val), self.eval_context, eval_tokens, data_name="val", context_name="eval_context",
                            limit_name="eval_tokens")
        self.eval_tokens = eval_tokens

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


def _first_line(error: BaseException) -> str:
    """The start of an error's message (torch's run to many lines), for a one-line report."""
    return (str(error).strip().splitlines() or [""])[0][:300]


def load_checkpoint(path, map_location="cpu", mmap: bool = False) -> dict:
    """A checkpoint written by `train`, loaded without executing any pickled code.

    FileNotFoundError when there is no such file; ValueError when it is not a checkpoint (a damaged
    or foreign file). mmap=True maps the tensors instead of reading them (a cheap look at the rest).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except OSError:
        raise
    except Exception as error:  # a damaged file raises EOFError, KeyError, RuntimeError or UnpicklingError
        reason = f"{type(error).__name__}: {_first_line(error)}"
        raise ValueError(f"{str(path)!r} is not a readable checkpoint ({reason})") from error
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a checkpoint of tnn_ref.training (no 'model' weights in it)")
    return state


def _batch_to(batch, device):
    return tuple(t.to(device, non_blocking=True) for t in batch)


def _micro_batches(task, step: int, generator: torch.Generator) -> list:
    if hasattr(task, "micro_batches"):
        return task.micro_batches(step)
    return [task.batch(generator)]


def _check_train_arguments(model, task, config, resume) -> None:
    """Everything `train` can refuse before its first update."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    lacks = [name for name in ("loss", "evaluate") if not callable(getattr(task, name, None))]
    if not any(callable(getattr(task, name, None)) for name in ("batch", "micro_batches")):
        lacks.append("batch (or micro_batches)")
    if lacks:
        raise TypeError(f"task must have the methods loss, evaluate and batch (or micro_batches); "
                        f"{type(task).__name__} lacks {', '.join(lacks)}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be a bool, got {type(resume).__name__}")
    if resume and config.checkpoint_path is None:
        raise ValueError("resume=True needs config.checkpoint_path")
    for name in ("checkpoint_path", "log_path"):
        path = getattr(config, name)
        if path is not None and Path(path).is_dir():  # found now, not when the first write fails
            raise ValueError(f"config.{name}={str(path)!r} is a folder: give the path of a file")


def _restore(state: dict, path, model, optimizer, generator: torch.Generator, steps: int) -> int:
    """Load a checkpoint's weights, optimiser and random states into this run; returns its finished updates."""
    lacks = [key for key in CHECKPOINT_KEYS if key not in state]
    if lacks:
        raise ValueError(f"{str(path)!r} lacks {', '.join(lacks)}: it was not written by tnn_ref.training.train")
    if state["step"] > steps:
        raise ValueError(f"{str(path)!r} holds {state['step']} finished updates, more than config.steps={steps}: "
                         f"pass steps >= {state['step']} to continue it")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError) as error:  # size mismatches, missing or unexpected weights
        raise ValueError(f"{str(path)!r} holds another model than the one given ({_first_line(error)})") from error
    generator.set_state(state["batch_rng"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"]


def _open_log(path, history: list[dict], resumed: bool):
    """The metrics log, for appending; a resumed run first rewrites it to the checkpoint's history, so the
    rows logged after the last checkpoint (and about to be recomputed) do not appear twice."""
    log = open(path, "w" if resumed else "a")
    for row in history if resumed else []:
        log.write(json.dumps(row) + "\n")
    log.flush()
    return log


def train(model: torch.nn.Module, task, config: TrainConfig, resume: bool = False, meta: dict | None = None) -> TrainResult:
    """Train `model` on `task` for config.steps updates (or until config.time_budget_s).

    resume=True continues from config.checkpoint_path when that file exists. Under torchrun (after
    `tnn_ref.training.distributed.setup()`) every process calls this with the same arguments.
    If task.evaluate raises, the finished updates are checkpointed first (when checkpoint_path is set).
    """
    _check_train_arguments(model, task, config, resume)
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
    if resume and Path(config.checkpoint_path).is_file():
        state = load_checkpoint(config.checkpoint_path, map_location=device)
        start = _restore(state, config.checkpoint_path, model, optimizer, generator, config.steps)
        result.history, result.train_seconds, result.steps_done = list(state["history"]), state["train_seconds"], start
    seconds_before = result.train_seconds
    autocast = mixed_precision(device)

    def checkpoint(done: int, sync: bool = True) -> None:
        if config.checkpoint_path and here.is_main:
            save_checkpoint(config.checkpoint_path, model, optimizer, done, generator, result.history,
                            result.train_seconds, config, meta)
        if config.checkpoint_path and sync:
            distributed.barrier()  # nobody runs ahead of (or resumes before) a complete checkpoint

    log = _open_log(config.log_path, result.history, resume) if config.log_path and here.is_main else None
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
                try:
                    with autocast:
                        metrics = task.evaluate(model)
                except Exception as error:
                    checkpoint(step + 1, sync=False)  # the finished updates survive a failing evaluation
                    if config.checkpoint_path:
                        error.add_note(f"the {step + 1} finished updates were checkpointed to "
                                       f"{config.checkpoint_path} before this error (resume=True continues them)")
                    raise
                row = {"step": step + 1, "train_loss": loss_value, "lr": config.lr_at(step),
                       "train_seconds": result.train_seconds, **metrics}
                if hasattr(task, "tokens_per_update"):  # all ranks together, over this call's updates
                    row["tokens_per_s"] = (step + 1 - start) * task.tokens_per_update / (result.train_seconds - seconds_before)
                result.history.append(row)
                if log:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
            if last or (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0):
                checkpoint(step + 1)
            if out_of_time:
                result.stopped_by_budget = True
                break
    finally:
        bar.close()
        if log:
            log.close()
    return result

