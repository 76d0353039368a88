"""Sequence and image classification as a task for `tnn_ref.training.loop.train`.

A `LabelledData` holds inputs and labels: token ids (N, n), padded token ids with their true
lengths (a batch is cut to its longest member and carries a boolean mask for mean pooling), or
images (N, C, H, W). `ClassificationTask` draws random training batches from one, scores the model
on another (loss and accuracy), and counts the input positions it has fed, for a tokens/s figure.
Sequence encoders are called through `.classify(tokens, mask)`, image classifiers through `forward`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tnn_ref.checks import require_positive_int


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length id lists -> (ids (N, longest) long, padded with pad_id at the end; lengths (N,) long)."""
    if len(sequences) == 0:
        raise ValueError("sequences must hold at least one sequence")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    if int(lengths.min()) < 1:
        raise ValueError(f"sequences must all be non-empty; sequence {int(lengths.argmin())} has length 0")
    ids = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return ids, lengths


def padding_mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    """(b, n) boolean mask, True at the first lengths[i] positions of row i (the real tokens)."""
    return torch.arange(n)[None, :] < lengths[:, None]  # (1, n) < (b, 1) -> (b, n)


def split_indices(count: int, test_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(count): (train indices, test indices), test_size of them held out."""
    if not 0 < test_size < count:
        raise ValueError(f"test_size must be between 1 and count - 1 = {count - 1}, got {test_size}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[test_size:].sort().values, order[:test_size].sort().values


@dataclass
class LabelledData:
    """inputs: token ids (N, n) long, or images (N, C, H, W) float; labels (N,) long;
    lengths (N,) long when `inputs` are sequences padded at the end (None: every position is real)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor | None = None

    def __post_init__(self):
        if self.labels.ndim != 1 or self.labels.dtype != torch.long:
            raise ValueError(f"labels must be a 1-D long tensor, got {self.labels.dtype} {tuple(self.labels.shape)}")
        if len(self.inputs) != len(self.labels):
            raise ValueError(f"inputs holds {len(self.inputs)} examples but labels {len(self.labels)}")
        if self.inputs.is_floating_point():
            if self.inputs.ndim != 4 or self.lengths is not None:
                raise ValueError(f"float inputs must be images (N, C, H, W) without lengths, got {tuple(self.inputs.shape)}")
        elif self.inputs.ndim != 2 or self.inputs.dtype != torch.long:
            raise ValueError(f"token inputs must be a (N, n) long tensor, got {self.inputs.dtype} {tuple(self.inputs.shape)}")
        if self.lengths is not None:
            if self.lengths.shape != self.labels.shape:
                raise ValueError(f"lengths must have shape {tuple(self.labels.shape)}, got {tuple(self.lengths.shape)}")
            if int(self.lengths.min()) < 1 or int(self.lengths.max()) > self.inputs.shape[1]:
                raise ValueError(f"lengths must lie in [1, {self.inputs.shape[1]}] (the padded width)")

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], labels: Sequence[int], pad_id: int = 0) -> LabelledData:
        ids, lengths = pad_sequences(sequences, pad_id)
        return cls(ids, torch.as_tensor(list(labels), dtype=torch.long), lengths)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> LabelledData:
        lengths = None if self.lengths is None else self.lengths[index]
        return LabelledData(self.inputs[index], self.labels[index], lengths)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(inputs, labels), or (tokens (b, longest), labels, mask (b, longest)) for padded sequences."""
        if self.lengths is None:
            return self.inputs[index], self.labels[index]
        lengths = self.lengths[index]
        n = int(lengths.max())
        return self.inputs[index, :n], self.labels[index], padding_mask(lengths, n)  # cut to the batch's longest


def class_logits(model: torch.nn.Module, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(b, classes): sequence encoders through .classify(tokens, mask), image classifiers through forward(images)."""
    if hasattr(model, "classify"):
        return model.classify(inputs, mask)
    if mask is not None:
        raise ValueError(f"a mask was given, but {type(model).__name__} has no classify(tokens, mask) method")
    return model(inputs)


def input_positions(inputs: torch.Tensor) -> int:
    """Positions a batch feeds the model: b * n tokens (padding included), or b * H * W pixels for images."""
    return inputs.numel() if inputs.ndim == 2 else inputs[:, 0].numel()  # (b, H, W) ignores channels


class ClassificationTask:
    """Training batches drawn at random (with replacement) from `train`; evaluation on `held_out`.

    `positions_drawn` counts the input positions of every training batch drawn so far (for tokens/s).
    """

    def __init__(self, train: LabelledData, held_out: LabelledData, batch_size: int, eval_batch_size: int = 64):
        require_positive_int("batch_size", batch_size)
        require_positive_int("eval_batch_size", eval_batch_size)
        self.train, self.held_out = train, held_out
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.positions_drawn = 0

    def batch(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(len(self.train), (self.batch_size,), generator=generator)
        batch = self.train.batch(index)
        self.positions_drawn += input_positions(batch[0])
        return batch

    def loss(self, model, batch) -> torch.Tensor:
        inputs, labels, *mask = batch
        return F.cross_entropy(class_logits(model, inputs, *mask).float(), labels)

    @torch.no_grad()
    def evaluate(self, model, data: LabelledData | None = None) -> dict:
        """{"val_loss": mean cross-entropy (nats), "val_accuracy": fraction right} on `data` (default: held_out)."""
        data = self.held_out if data is None else data
        device = next(model.parameters()).device
        # shortest first, so each batch is padded only to lengths close to its own
        order = torch.arange(len(data)) if data.lengths is None else data.lengths.argsort(stable=True)
        was_training = model.training
        model.eval()
        total_loss, correct = 0.0, 0
        try:
            for start in range(0, len(data), self.eval_batch_size):
                inputs, labels, *mask = (t.to(device) for t in data.batch(order[start : start + self.eval_batch_size]))
                logits = class_logits(model, inputs, *mask).float()  # (b, classes)
                total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
                correct += int((logits.argmax(-1) == labels).sum())
        finally:
            model.train(was_training)
        return {"val_loss": total_loss / len(data), "val_accuracy": correct / len(data)}
