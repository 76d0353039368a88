"""The classification task: padding and masks, splits, a tiny training run that lowers the loss, measured runs."""

import functools
import os

import pytest
import torch

from tnn_ref.baselines import TransformerConfig, TransformerEncoder
from tnn_ref.bench.peak_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss, run_in_fresh_process
from tnn_ref.experiments.long_range import format_results, measured_training
from tnn_ref.model import TnnConfig, TnnEncoder, TnnImageClassifier
from tnn_ref.tasks.classify import (
    ClassificationTask,
    LabelledData,
    class_logits,
    pad_sequences,
    padding_mask,
    split_indices,
)
from tnn_ref.training.loop import TrainConfig, train


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""


def first_token_data(count: int, seed: int) -> LabelledData:
    """Sequences of 4-12 ids in [1, 4) padded with 0; the label is the first id minus 1."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 13, (count,), generator=gen)
    sequences = [torch.randint(1, 4, (int(n),), generator=gen).tolist() for n in lengths]
    return LabelledData.from_sequences(sequences, [s[0] - 1 for s in sequences], pad_id=0)


def test_padding_and_batches():
    ids, lengths = pad_sequences([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    assert padding_mask(lengths, 3).tolist() == [[True, True, True], [True, False, False]]
    data = LabelledData(ids, torch.tensor([0, 1]), lengths)
    tokens, labels, mask = data.batch(torch.tensor([1, 1]))
    assert tokens.shape == (2, 1) and mask.all() and labels.tolist() == [1, 1]  # cut to the batch's longest
    with pytest.raises(ValueError, match="non-empty"):
        pad_sequences([[1], []])
    with pytest.raises(ValueError, match="labels"):
        LabelledData(ids, torch.tensor([0, 1, 2]), lengths)


def test_split_indices():
    train_idx, test_idx = split_indices(100, 20, seed=0)
    assert len(test_idx) == 20 and len(train_idx) == 80
    assert sorted(train_idx.tolist() + test_idx.tolist()) == list(range(100))
    assert torch.equal(split_indices(100, 20, seed=0)[1], test_idx)
    assert not torch.equal(split_indices(100, 20, seed=1)[1], test_idx)
    with pytest.raises(ValueError, match="test_size"):
        split_indices(10, 10, seed=0)


@pytest.mark.parametrize("make", [
    lambda: TnnEncoder(TnnConfig(vocab_size=4, dim=16, layers=1, expand=2, rpe_dim=8, rpe_layers=1, decay=0.9,
                                 num_classes=3)),
    lambda: TransformerEncoder(TransformerConfig(vocab_size=4, dim=16, layers=1, heads=2, num_classes=3)),
])
def test_training_lowers_the_loss(make):
    torch.manual_seed(0)
    model = make()
    task = ClassificationTask(first_token_data(400, 0), first_token_data(100, 1), batch_size=16)
    before = task.evaluate(model)
    result = train(model, task, TrainConfig(steps=80, lr=1e-2, warmup=5, eval_every=80, progress=False))
    after = result.history[-1]
    assert sum(result.losses[-10:]) / 10 < sum(result.losses[:10]) / 10 - 0.3
    assert after["val_loss"] < before["val_loss"] and after["val_accuracy"] > before["val_accuracy"]
    assert 0.0 <= after["val_accuracy"] <= 1.0
    assert task.evaluate(model) == task.evaluate(model)  # evaluation is deterministic


def test_image_task_and_class_logits():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 8, 8, generator=gen)
    labels = (images[:, 0, :4].mean((1, 2)) > images[:, 0, 4:].mean((1, 2))).long()  # brighter top half
    data = LabelledData(images, labels)
    torch.manual_seed(0)
    model = TnnImageClassifier(TnnConfig(dim=8, layers=1, expand=2, rpe_dim=8, rpe_layers=1, decay=0.9, num_classes=2,
                                         image_size=8, patch_size=2, channels=1))
    task = ClassificationTask(data, data, batch_size=8)
    inputs, batch_labels = task.batch(torch.Generator().manual_seed(0))
    assert inputs.shape == (8, 1, 8, 8) and task.positions_drawn == 8 * 64  # pixels, not patches
    assert class_logits(model, inputs).shape == (8, 2)
    with pytest.raises(ValueError, match="has no classify"):
        class_logits(model, inputs, torch.ones(8, 16, dtype=torch.bool))
    metrics = task.evaluate(model)
    assert set(metrics) == {"val_loss", "val_accuracy"} and 0.0 <= metrics["val_accuracy"] <= 1.0


def test_measured_training_reports_speed_and_memory():
    data = first_token_data(200, 0)
    task = ClassificationTask(data, data, batch_size=8)
    make = functools.partial(TnnEncoder, TnnConfig(vocab_size=4, dim=8, layers=1, expand=2, rpe_dim=8, rpe_layers=1,
                                                   decay=0.9, num_classes=3))
    row = measured_training(make, task, TrainConfig(steps=5, warmup=1, progress=False), data, threads=1)
    assert row["steps"] == 5 and len(row["losses"]) == 5
    assert row["tokens_per_second"] > 0 and row["training_memory_mib"] >= 0
    assert row["memory_batch_positions"] == 8 * 12  # the 8 longest examples, all of length 12
    assert 0.0 <= row["test_accuracy"] <= 1.0
    assert "TNN" in format_results([{**row, "task": "toy", "model": "TNN"}])


def _peak_of_a_64_mib_tensor() -> int | None:
    """In a fresh process: how much the peak RSS rises while a 64 MiB tensor is alive (None without /proc)."""
    before = current_rss_bytes()
    if before is None or not reset_peak_rss():
        return None
    block = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB, touched
    rise = peak_rss_bytes() - before
    del block
    return rise


def test_peak_rss_sees_torch_allocations():
    # a fresh process: this one may hold freed blocks (tnn_ref.bench.allocator) that would absorb the tensor
    rise = run_in_fresh_process(_peak_of_a_64_mib_tensor)
    if rise is None:
        pytest.skip("no /proc: peak RSS cannot be reset here")
    assert rise > 60 << 20


def test_run_in_fresh_process():
    assert run_in_fresh_process(os.getpid) != os.getpid()
