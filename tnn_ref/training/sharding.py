"""Which training samples each process reads at each update, and the language-model task built on it.

The training stream is cut into W non-overlapping windows of context + 1 tokens (window i starts at
token i * context, as `tnn_ref.tasks.batches.windows` cuts evaluation data). Every epoch is one permutation of
the W windows, drawn from (seed, epoch) and so identical in every process. Update u of the epoch
takes the G = sequences_per_update windows at positions [u*G, (u+1)*G) of that permutation; rank r
of R takes the r-th of R equal slices of them, and reads them as `accumulation` micro-batches of
`micro_batch` sequences. So within an epoch no window is read twice, by any rank, and the set of
windows behind an update does not depend on R: one process with gradient accumulation and R
processes under DDP average the gradient of the same G sequences. Batches depend only on the update
number, so a resumed run reads exactly what an uninterrupted one would. The last W mod G windows of
each epoch's permutation are skipped in that epoch (they are different windows each epoch).
"""

from __future__ import annotations

import numpy as np
import torch

from tnn_ref.checks import require_nonnegative_int, require_positive_int
from tnn_ref.training.distributed import place
from tnn_ref.training.evaluate import evaluate_lm, require_eval_window
from tnn_ref.training.loop import next_token_loss, require_seed


def _require_token_array(name: str, tokens) -> np.ndarray | torch.Tensor:
    """A 1-D numpy array (or CPU tensor) of integer token ids, shape (n,); a memory map stays one."""
    if not isinstance(tokens, np.ndarray | torch.Tensor):
        raise TypeError(f"{name} must be a 1-D numpy array (or torch tensor) of token ids, got {type(tokens).__name__}")
    if tokens.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got shape {tuple(tokens.shape)}")
    if np.asarray(tokens[:0]).dtype.kind not in "iu":  # (0,): the dtype without reading the data
        raise TypeError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")
    return tokens


class WindowSampler:
    """Window indices for (update, rank): an array (accumulation, micro_batch)."""

    def __init__(self, num_tokens: int, context: int, sequences_per_update: int, micro_batch: int,
                 world: int = 1, rank: int = 0, seed: int = 0):
        self.context = require_positive_int("context", context)
        self.sequences_per_update = require_positive_int("sequences_per_update", sequences_per_update)
        self.micro_batch = require_positive_int("micro_batch", micro_batch)
        self.world = require_positive_int("world", world)
        if require_nonnegative_int("rank", rank) >= world:
            raise ValueError(f"rank must be below world ({world}), got {rank!r}")
        require_seed("seed", seed)
        require_nonnegative_int("num_tokens", num_tokens)
        if sequences_per_update % (world * micro_batch):
            raise ValueError(f"sequences_per_update ({sequences_per_update}) must be a multiple of world size x "
                             f"micro_batch ({world} x {micro_batch}); change --tokens-per-update or --batch-size")
        self.rank, self.seed = rank, seed
        self.accumulation = sequences_per_update // (world * micro_batch)
        self.windows = (num_tokens - 1) // context
        self.updates_per_epoch = self.windows // sequences_per_update
        if self.updates_per_epoch < 1:
            raise ValueError(f"the training split ({num_tokens:,} tokens) holds {self.windows} windows of "
                             f"{context} + 1 tokens, fewer than one update's {sequences_per_update}: lower "
                             "sequences_per_update (--tokens-per-update) or context (--context)")
        self._order_epoch, self._order = None, None

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of all windows for one epoch, the same in every process."""
        if self._order_epoch != epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.windows)
            self._order_epoch = epoch
        return self._order

    def indices(self, update: int) -> np.ndarray:
        epoch, u = divmod(update, self.updates_per_epoch)
        block = self.order(epoch)[u * self.sequences_per_update : (u + 1) * self.sequences_per_update]  # (G,)
        share = self.sequences_per_update // self.world
        mine = block[self.rank * share : (self.rank + 1) * share]  # (accumulation * micro_batch,)
        return mine.reshape(self.accumulation, self.micro_batch)  # (accumulation, micro_batch)


class ShardedLmTask:
    """Next-token prediction over a (memory-mapped) token array, sharded across the DDP processes.

    The `train` loop calls `micro_batches(step)` for this rank's share of an update, `loss`, and
    `evaluate`, which scores the validation windows split across ranks and summed over all of them.
    """

    def __init__(self, train_tokens: np.ndarray, valid_tokens, context: int, sequences_per_update: int,
                 micro_batch: int, seed: int = 0, eval_context: int | None = None, eval_tokens: int | None = None,
                 eval_batch_size: int | None = None):
        here = place()
        self.tokens = _require_token_array("train_tokens", train_tokens)
        self.sampler = WindowSampler(len(train_tokens), context, sequences_per_update, micro_batch,
                                     here.world, here.rank, seed)
        self.context = context
        self.tokens_per_update = sequences_per_update * context
        valid = _require_token_array("valid_tokens", valid_tokens)
        self.valid = torch.from_numpy(np.asarray(valid, dtype=np.int64))  # (n,) small: held in memory
        self.eval_context = require_positive_int("eval_context", context if eval_context is None else eval_context)
        self.eval_batch_size = require_positive_int("eval_batch_size",
                                                    micro_batch if eval_batch_size is None else eval_batch_size)
        # refused now rather than at the first evaluation, eval_every updates into the run
        require_eval_window(len(self.valid), self.eval_context, eval_tokens, data_name="the validation split",
                            context_name="eval_context", limit_name="eval_tokens")
        self.eval_tokens = eval_tokens

    def micro_batches(self, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batches = []
        for rows in self.sampler.indices(step):  # (micro_batch,) window numbers
            offsets = rows[:, None] * self.context + np.arange(self.context + 1)  # (micro_batch, context+1)
            chunk = torch.from_numpy(self.tokens[offsets].astype(np.int64))  # reads only these windows' pages
            batches.append((chunk[:, :-1], chunk[:, 1:]))
        return batches

    def loss(self, model, batch) -> torch.Tensor:
        return next_token_loss(model, batch)

    def evaluate(self, model) -> dict:
        result = evaluate_lm(model, self.valid, self.eval_context, self.eval_batch_size, self.eval_tokens,
                             distributed=True)
        return {"val_loss": result["loss"], "val_bpc": result["bpc"], "val_ppl": result["ppl"]}
