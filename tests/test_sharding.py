"""The sampler behind multi-process training: every window at most once per epoch, whatever the world size."""

import numpy as np
import pytest
import torch

from tnn_ref.tasks.batches import windows
from tnn_ref.training.sharding import ShardedLmTask, WindowSampler


def epoch_windows(num_tokens, context, per_update, micro, world, seed=0, epoch=0):
    """Every window each rank reads in one epoch: {rank: [update arrays (accumulation, micro)]}."""
    samplers = [WindowSampler(num_tokens, context, per_update, micro, world, rank, seed) for rank in range(world)]
    upe = samplers[0].updates_per_epoch
    return {rank: [s.indices(epoch * upe + u) for u in range(upe)] for rank, s in enumerate(samplers)}


@pytest.mark.parametrize("world,micro", [(1, 2), (2, 2), (4, 1), (2, 4)])
def test_no_window_is_read_twice_in_an_epoch_across_ranks(world, micro):
    num_tokens, context, per_update = 10_001, 16, 8  # 625 windows, 78 updates per epoch, 1 window left over
    reads = epoch_windows(num_tokens, context, per_update, micro, world)
    every = np.concatenate([a.ravel() for arrays in reads.values() for a in arrays])
    assert len(every) == 78 * per_update
    assert len(np.unique(every)) == len(every)  # no window twice, by any rank
    assert every.min() >= 0 and every.max() < (num_tokens - 1) // context
    for arrays in reads.values():
        assert all(a.shape == (per_update // (world * micro), micro) for a in arrays)


def test_an_update_reads_the_same_windows_whatever_the_world_size():
    alone = WindowSampler(5_000, 10, 8, 2, world=1, rank=0, seed=3)
    pair = [WindowSampler(5_000, 10, 8, 4, world=2, rank=r, seed=3) for r in range(2)]
    for update in (0, 1, 17, alone.updates_per_epoch + 5):  # also in the second epoch
        together = np.concatenate([s.indices(update).ravel() for s in pair])
        assert np.array_equal(alone.indices(update).ravel(), together)


def test_batches_depend_on_the_update_number_only():
    a = WindowSampler(5_000, 10, 8, 2, seed=7)
    b = WindowSampler(5_000, 10, 8, 2, seed=7)
    for update in (40, 3, 100, 3):  # any order: a resumed run asks for update k first
        assert np.array_equal(a.indices(update), b.indices(update))
    assert not np.array_equal(a.indices(0), a.indices(a.updates_per_epoch))  # a new order each epoch


@pytest.mark.parametrize("kwargs,match", [
    (dict(sequences_per_update=6, micro_batch=4, world=1), "multiple of world size"),
    (dict(sequences_per_update=8, micro_batch=2, world=3, rank=0), "multiple of world size"),
    (dict(sequences_per_update=8, micro_batch=2, world=2, rank=2), r"rank must be below world \(2\)"),
    (dict(sequences_per_update=0, micro_batch=2), "sequences_per_update must be a positive int"),
    (dict(sequences_per_update=8, micro_batch=2, num_tokens=50), "fewer than one update"),
    (dict(sequences_per_update=8, micro_batch=2, seed=-1), "seed must be a non-negative int"),  # numpy refuses it
    (dict(sequences_per_update=8, micro_batch=True), "micro_batch must be a positive int"),
])
def test_bad_settings_are_refused_with_the_argument_named(kwargs, match):
    settings = dict(num_tokens=5_000, context=10, world=1, rank=0, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        WindowSampler(**settings)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(eval_tokens=10), ValueError, "eval_tokens=10 is shorter than one window of eval_context=20"),
    (dict(eval_tokens=-5), ValueError, "eval_tokens must be None or a positive int"),
    (dict(eval_context=0), ValueError, "eval_context must be a positive int"),
    (dict(eval_context=600), ValueError, "eval_context=600 needs at least 601 tokens, but the validation split"),
    (dict(eval_batch_size=0), ValueError, "eval_batch_size must be a positive int"),
    (dict(valid_tokens=np.zeros(500)), TypeError, "valid_tokens must hold integer token ids"),
    (dict(valid_tokens=list(range(500))), TypeError, "valid_tokens must be a 1-D numpy array"),
    (dict(train_tokens=np.zeros((2, 3_001), dtype=np.int64)), ValueError, r"train_tokens must have shape \(n,\)"),
])
def test_sharded_task_refuses_what_would_fail_later(kwargs, error, match):
    """Above all an evaluation window the validation split cannot serve: refused before the first update."""
    tokens = np.random.default_rng(0).integers(0, 300, 3_001).astype(np.uint16)
    settings = dict(train_tokens=tokens, valid_tokens=tokens[:500], context=20, sequences_per_update=6,
                    micro_batch=3) | kwargs
    with pytest.raises(error, match=match):
        ShardedLmTask(**settings)


def test_micro_batches_are_windows_of_the_stream_with_shifted_targets():
    tokens = np.random.default_rng(0).integers(0, 300, 3_001).astype(np.uint16)  # stored as in the cache
    task = ShardedLmTask(tokens, tokens[:500], context=20, sequences_per_update=6, micro_batch=3, seed=1)
    inputs, targets = windows(torch.from_numpy(tokens.astype(np.int64)), 20)  # (150, 20) each
    rows = task.sampler.indices(4)  # (2, 3)
    batches = task.micro_batches(4)
    assert len(batches) == 2
    for (x, y), picked in zip(batches, rows):
        assert x.dtype == torch.int64 and x.shape == (3, 20)
        assert torch.equal(x, inputs[picked]) and torch.equal(y, targets[picked])
    assert task.tokens_per_update == 120
