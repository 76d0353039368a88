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
from tnn_ref.tasks.batches import require_seed


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length id lists -> (ids (N, longest) long, padded with pad_id at the end; lengths (N,) long).

    sequences: non-empty 1-D sequences of ints (floats are refused: they would be truncated); pad_id: an int.
    """
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise TypeError(f"sequences must be a list of id sequences, got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("sequences must hold at least one sequence")
    if isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise TypeError(f"pad_id must be an int, got {pad_id!r}")
    rows = [_id_row(row, sequence) for row, sequence in enumerate(sequences)]
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    ids = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.long)
    for row, values in enumerate(rows):
        ids[row, : len(values)] = values
    return ids, lengths


def _id_row(row: int, sequence) -> torch.Tensor:
    """One sequence of pad_sequences as a 1-D long tensor: non-empty integers."""
    try:
        values = torch.as_tensor(sequence)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"sequence {row} must be a 1-D sequence of int ids, got {type(sequence).__name__}") from error
    if values.ndim != 1:
        raise ValueError(f"sequence {row} must be a 1-D sequence of ids, got shape {tuple(values.shape)}")
    if len(values) == 0:
        raise ValueError(f"sequences must all be non-empty; sequence {row} has length 0")
    if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
        raise TypeError(f"sequence {row} must hold int ids, got dtype {values.dtype}")
    return values.long()


def padding_mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    """(b, n) boolean mask, True at the first lengths[i] positions of row i (the real tokens).

    lengths: (b,) integer tensor with values in [1, n]; n: a positive int (a length above n would be cut silently).
    """
    _require_lengths("lengths", lengths)
    require_positive_int("n", n)
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > n):
        raise ValueError(f"lengths must lie in [1, n={n}], got values in [{int(lengths.min())}, {int(lengths.max())}]")
    return torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]  # (1, n) < (b, 1) -> (b, n)


def _require_lengths(name: str, lengths) -> None:
    if not isinstance(lengths, torch.Tensor) or lengths.ndim != 1 or lengths.dtype == torch.bool \
            or lengths.is_floating_point() or lengths.is_complex():
        what = f"{lengths.dtype} {tuple(lengths.shape)}" if isinstance(lengths, torch.Tensor) else type(lengths).__name__
        raise TypeError(f"{name} must be a 1-D integer tensor, got {what}")


def split_indices(count: int, test_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(count): (train indices, test indices), test_size of them held out."""
    require_positive_int("count", count)
    if isinstance(test_size, bool) or not isinstance(test_size, int) or not 0 < test_size < count:
        raise ValueError(f"test_size must be an int between 1 and count - 1 = {count - 1}, got {test_size!r}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(require_seed("seed", seed)))
    return order[test_size:].sort().values, order[:test_size].sort().values


@dataclass
class LabelledData:
    """inputs: token ids (N, n) long, or images (N, C, H, W) float; labels (N,) long;
    lengths (N,) long when `inputs` are sequences padded at the end (None: every position is real)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor | None = None

    def __post_init__(self):
        for name in ("inputs", "labels"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(getattr(self, name)).__name__}")
        if self.labels.ndim != 1 or self.labels.dtype != torch.long:
            raise ValueError(f"labels must be a 1-D long tensor, got {self.labels.dtype} {tuple(self.labels.shape)}")
        if len(self.labels) and int(self.labels.min()) < 0:
            raise ValueError(f"labels must be class indices >= 0, found {int(self.labels.min())}")
        if len(self.inputs) != len(self.labels):
            raise ValueError(f"inputs holds {len(self.inputs)} examples but labels {len(self.labels)}")
        if self.inputs.is_floating_point():
            if self.inputs.ndim != 4 or self.lengths is not None:
                raise ValueError(f"float inputs must be images (N, C, H, W) without lengths, got {tuple(self.inputs.shape)}")
        elif self.inputs.ndim != 2 or self.inputs.dtype != torch.long:
            raise ValueError(f"token inputs must be a (N, n) long tensor, got {self.inputs.dtype} {tuple(self.inputs.shape)}")
        if self.lengths is not None:
            _require_lengths("lengths", self.lengths)
            if self.lengths.shape != self.labels.shape:
                raise ValueError(f"lengths must have shape {tuple(self.labels.shape)}, got {tuple(self.lengths.shape)}")
            if len(self.lengths) and (int(self.lengths.min()) < 1 or int(self.lengths.max()) > self.inputs.shape[1]):
                raise ValueError(f"lengths must lie in [1, {self.inputs.shape[1]}] (the padded width)")

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], labels: Sequence[int], pad_id: int = 0) -> LabelledData:
        ids, lengths = pad_sequences(sequences, pad_id)
        return cls(ids, _label_tensor(labels), lengths)

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


def _label_tensor(labels) -> torch.Tensor:
    """Class indices as a 1-D long tensor; floats are refused (they would be truncated)."""
    values = torch.as_tensor(labels) if isinstance(labels, torch.Tensor) else torch.as_tensor(list(labels))
    if values.numel() and (values.dtype == torch.bool or values.is_floating_point() or values.is_complex()):
        raise TypeError(f"labels must be int class indices, got dtype {values.dtype}")
    return values.long()


def _require_data(name: str, data) -> None:
    if not isinstance(data, LabelledData):
        raise TypeError(f"{name} must be a LabelledData, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} must hold at least one example")


def _kind(data: LabelledData) -> str:
    if data.inputs.is_floating_point():
        return f"images of shape {tuple(data.inputs.shape[1:])}"
    return "padded sequences (with lengths)" if data.lengths is not None else "token sequences (without lengths)"


class ClassificationTask:
    """Training batches drawn at random (with replacement) from `train`; evaluation on `held_out`.

    `positions_drawn` counts the input positions of every training batch drawn so far (for tokens/s).
    """

    def __init__(self, train: LabelledData, held_out: LabelledData, batch_size: int, eval_batch_size: int = 64):
        _require_data("train", train)
        _require_data("held_out", held_out)
        if _kind(train) != _kind(held_out):
            raise ValueError(f"train holds {_kind(train)} but held_out {_kind(held_out)}: the model takes one kind")
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
        _require_data("data", data)
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
