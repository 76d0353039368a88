"""Associative recall: the answer is recoverable from the tokens alone, and the layout is what it claims."""

import pytest
import torch

from tnn_ref.tasks.recall import RecallConfig, associative_recall, query_blind_accuracy, recall_answer


@pytest.mark.parametrize("config", [RecallConfig(), RecallConfig(length=64, pairs=3, keys=5, values=7, noise=2),
                                    RecallConfig(length=10, pairs=4, keys=4, values=4, noise=1)])
def test_answer_is_recoverable_from_the_tokens(config):
    tokens, labels = associative_recall(300, config, seed=0)
    assert tokens.shape == (300, config.length) and labels.shape == (300,)
    assert int(tokens.min()) >= 0 and int(tokens.max()) < config.vocab_size
    assert torch.equal(recall_answer(tokens, config), labels)  # read back without knowing the layout
    assert int(labels.min()) >= 0 and int(labels.max()) < config.values


def test_layout():
    config = RecallConfig(length=100, pairs=4, keys=8, values=4, noise=8)
    tokens, _ = associative_recall(200, config, seed=1)
    keys, values = tokens[:, 0:8:2], tokens[:, 1:8:2]
    assert ((keys >= config.key_offset) & (keys < config.value_offset)).all()
    assert ((values >= config.value_offset) & (values < config.query_marker)).all()
    assert all(len(set(row.tolist())) == 4 for row in keys) and all(len(set(row.tolist())) == 4 for row in values)
    assert (tokens[:, 8:-2] < config.noise).all()  # the gap holds distractors only
    assert (tokens[:, -2] == config.query_marker).all()
    assert ((tokens[:, -1:] == keys).sum(1) == 1).all()  # the query is one of the sequence's keys


def test_nothing_but_the_pairing_tells_the_answer():
    config = RecallConfig(length=40, pairs=4, keys=8, values=4)
    tokens, labels = associative_recall(4000, config, seed=2)
    assert query_blind_accuracy(tokens, config) == pytest.approx(1 / 4)  # every sequence holds every value once
    counts = torch.bincount(labels, minlength=4).float() / len(labels)
    assert (counts - 0.25).abs().max() < 0.03  # balanced classes


def test_deterministic_under_a_seed():
    a = associative_recall(20, RecallConfig(length=50), seed=5)
    b = associative_recall(20, RecallConfig(length=50), seed=5)
    c = associative_recall(20, RecallConfig(length=50), seed=6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


def test_a_broken_sequence_is_caught():
    config = RecallConfig(length=30)
    tokens, _ = associative_recall(3, config, seed=0)
    tokens[1, 15] = tokens[1, -1]  # the query key appears a second time, in the gap
    with pytest.raises(ValueError, match="row 1: the query key occurs 2 times"):
        recall_answer(tokens, config)


@pytest.mark.parametrize("changes, match", [
    ({"length": 9, "pairs": 4}, "length must be >= 2 \\* pairs \\+ 2"),
    ({"keys": 3, "pairs": 4}, "keys \\(3\\) must be >= pairs"),
    ({"values": 2, "pairs": 4}, "values \\(2\\) must be >= pairs"),
    ({"noise": 0}, "noise must be a positive int"),
])
def test_bad_settings_name_the_argument(changes, match):
    with pytest.raises(ValueError, match=match):
        RecallConfig(**changes)
    with pytest.raises(ValueError, match="count"):
        associative_recall(0)
