"""Multi-query associative recall: a perfect solver exists, the layout is what the module says, the power law
prefers short distances, and a causal LM trains and is scored at the query positions."""

import math

import pytest
import torch

from tnn_ref.model import TnnConfig, TnnLM
from tnn_ref.tasks import mqar
from tnn_ref.tasks.mqar import (
    IGNORE,
    MqarConfig,
    MqarData,
    MqarTask,
    mqar_accuracy,
    mqar_elimination_accuracy,
    mqar_loss,
    mqar_reference_accuracy,
    multi_query_recall,
    query_distance_weights,
)
from tnn_ref.training.loop import TrainConfig, train

CONFIGS = [MqarConfig(), MqarConfig(length=12, pairs=4, vocab_size=9), MqarConfig(length=64, pairs=5, vocab_size=31),
           MqarConfig(length=40, pairs=1, vocab_size=3, power_a=1.0)]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""


def lookup_answers(tokens: torch.Tensor, targets: torch.Tensor) -> list[tuple[int, int, int]]:
    """(row, position, answer) for every query, found by hand: the query key's first earlier occurrence,
    and the token after it. Knows nothing of the layout beyond "the answer follows the key's first copy"."""
    answers = []
    for row, (seq, tgt) in enumerate(zip(tokens.tolist(), targets.tolist())):
        for t, target in enumerate(tgt):
            if target != IGNORE:
                first = seq.index(seq[t])
                assert first < t, f"row {row}: the query at {t} has no earlier copy of its key"
                answers.append((row, t, seq[first + 1]))
    return answers


@pytest.mark.parametrize("config", CONFIGS)
def test_shapes_and_a_perfect_solver(config):
    tokens, targets = multi_query_recall(config, 200, 0)
    assert tokens.shape == targets.shape == (200, config.length)
    assert tokens.dtype == targets.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < config.vocab_size
    answers = lookup_answers(tokens, targets)
    assert len(answers) == 200 * config.pairs
    assert all(targets[row, t] == answer for row, t, answer in answers)


@pytest.mark.parametrize("config", CONFIGS)
def test_layout(config):
    tokens, targets = multi_query_recall(config, 300, 1)
    p = config.pairs
    keys, values = tokens[:, 0 : 2 * p : 2], tokens[:, 1 : 2 * p : 2]  # (N, P) each
    assert (keys < config.vocab_size // 2).all() and (values >= config.vocab_size // 2).all()
    assert all(len(set(row)) == p for row in keys.tolist()) and all(len(set(row)) == p for row in values.tolist())
    query = targets != IGNORE
    assert not query[:, : 2 * p].any() and (query.sum(dim=1) == p).all()  # exactly P queries, all after the pairs
    rest = tokens[:, 2 * p :]  # (N, n - 2P)
    for row in range(len(tokens)):
        asked = tokens[row][query[row]]
        assert sorted(asked.tolist()) == sorted(keys[row].tolist())  # each key asked once
        # a key occurs only at its query; a bound value never occurs after the pairs (the filler is unbound)
        assert (torch.isin(rest[row], keys[row]) == query[row, 2 * p :]).all()
        assert not torch.isin(rest[row], values[row]).any()
    assert (targets[query] >= config.vocab_size // 2).all()


def test_queries_never_reveal_their_value_before_the_query():
    config = MqarConfig(length=48, pairs=6, vocab_size=20)
    tokens, targets = multi_query_recall(config, 300, 2)
    for row, t, answer in lookup_answers(tokens, targets):
        seen = tokens[row, : t + 1].tolist()
        assert seen.count(answer) == 1 and seen.index(answer) < 2 * config.pairs  # only in its pair
        assert tokens[row, t] != answer


def test_drawn_in_chunks(monkeypatch):
    config = MqarConfig(length=20, pairs=3, vocab_size=12)
    tokens, targets = multi_query_recall(config, 10, 9)
    monkeypatch.setattr(mqar, "ROWS_PER_CHUNK", 4)  # 4 + 4 + 2 rows
    chunked = multi_query_recall(config, 10, 9)
    assert chunked[0].shape == chunked[1].shape == (10, 20) and not torch.equal(chunked[0], tokens)
    assert all(chunked[1][row, t] == answer for row, t, answer in lookup_answers(*chunked))
    assert ((chunked[1] != IGNORE).sum(dim=1) == 3).all()  # every row complete, the last chunk too
    assert torch.equal(multi_query_recall(config, 10, 9)[0], chunked[0])  # deterministic for a chunk size


def test_deterministic_for_a_seed_and_a_generator_advances():
    config = MqarConfig(length=30, pairs=3, vocab_size=16)
    a, b, c = (multi_query_recall(config, 50, seed) for seed in (7, 7, 8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    generator = torch.Generator().manual_seed(7)
    first = multi_query_recall(config, 50, generator)
    second = multi_query_recall(config, 50, generator)
    assert torch.equal(first[0], a[0]) and not torch.equal(second[0], first[0])


def test_the_power_law_prefers_short_distances():
    config = MqarConfig(length=42, pairs=1, vocab_size=8)  # one query: its distance is one draw from P(d)
    weights = query_distance_weights(config)
    assert weights.sum().item() == pytest.approx(1.0) and bool((weights[1:] < weights[:-1]).all())
    _, targets = multi_query_recall(config, 20000, 3)
    distance = (targets != IGNORE).long().argmax(dim=1) - 2 * config.pairs + 1  # (N,) in 1..40
    observed = torch.bincount(distance - 1, minlength=config.query_slots).double() / len(distance)
    assert (observed - weights).abs().max() < 0.02  # the empirical histogram is the power law
    # with many queries (without replacement): far more of them close to the pairs than a uniform draw gives
    near, uniform = MqarConfig(length=264, pairs=8, vocab_size=64), MqarConfig(length=264, pairs=8, vocab_size=64,
                                                                               power_a=1.0)
    gaps = [(multi_query_recall(c, 500, 4)[1] != IGNORE).nonzero()[:, 1].double() - 16 for c in (near, uniform)]
    assert gaps[0].mean() < 0.6 * gaps[1].mean() and gaps[1].mean() == pytest.approx(124, rel=0.1)
    assert (gaps[0] < 24).double().mean() > 0.3 > (gaps[1] < 24).double().mean()  # first tenth of the slots


def test_reference_accuracies_are_what_blind_guesses_get():
    config = MqarConfig(length=60, pairs=5, vocab_size=40)
    tokens, targets = multi_query_recall(config, 4000, 5)
    p = config.pairs
    values = tokens[:, 1 : 2 * p : 2]  # (N, P)
    query = targets != IGNORE
    # a fixed guess, the value of the first pair: right exactly once per sequence
    first_pair = (values[:, :1].expand_as(targets)[query] == targets[query]).double().mean().item()
    assert first_pair == pytest.approx(mqar_reference_accuracy(config)) == pytest.approx(1 / 5)
    # elimination: the first pair whose key was not asked earlier (never reading the key at the query itself)
    right = 0
    for row in range(len(tokens)):
        keys, asked = tokens[row, 0 : 2 * p : 2].tolist(), set()
        for t in query[row].nonzero()[:, 0].tolist():
            guess = next(i for i, k in enumerate(keys) if k not in asked)
            right += int(values[row, guess] == targets[row, t])
            asked.add(int(tokens[row, t]))
    expected = mqar_elimination_accuracy(config)
    assert expected == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 5)
    assert right / query.sum().item() == pytest.approx(expected, abs=0.02)  # queries ask the pairs in random order


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(length=8, pairs=3, vocab_size=16), "length"),
    (dict(length=0, pairs=1, vocab_size=16), "length"),
    (dict(length=30, pairs=0, vocab_size=16), "pairs"),
    (dict(length=30, pairs=4, vocab_size=8), "vocab_size"),
    (dict(length=30, pairs=4, vocab_size=9.0), "vocab_size"),
    (dict(length=30, pairs=4, vocab_size=16, power_a=0.0), "power_a"),
    (dict(length=30, pairs=4, vocab_size=16, power_a=float("nan")), "power_a"),
    (dict(length=30, pairs=4, vocab_size=16, power_a=True), "power_a"),
])
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MqarConfig(**kwargs)


def test_bad_arguments():
    config = MqarConfig(length=12, pairs=2, vocab_size=8)
    with pytest.raises(ValueError, match="count"):
        multi_query_recall(config, 0, 0)
    with pytest.raises(TypeError, match="seed_or_generator"):
        multi_query_recall(config, 2, 1.5)
    with pytest.raises(TypeError, match="config must be an MqarConfig"):
        multi_query_recall(2, config)
    tokens, targets = multi_query_recall(config, 3, 0)
    with pytest.raises(ValueError, match="one shape"):
        MqarData(tokens, targets[:, :-1])
    with pytest.raises(ValueError, match="targets must be a"):
        MqarData(tokens, targets.float())
    blank = targets.clone()
    blank[1] = IGNORE
    with pytest.raises(ValueError, match="row 1 has no query"):
        MqarData(tokens, blank)


class Oracle(torch.nn.Module):
    """Per-position logits from the hand lookup: a large logit on the token after the key's first copy,
    `shift` positions later than where it belongs (shift=0: the right place)."""

    def __init__(self, vocab_size: int, shift: int = 0):
        super().__init__()
        self.vocab_size, self.shift = vocab_size, shift
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, tokens):
        logits = torch.zeros(*tokens.shape, self.vocab_size)
        for row, seq in enumerate(tokens.tolist()):
            for t, token in enumerate(seq):
                first = seq.index(token)
                if first < t and t + self.shift < len(seq):
                    logits[row, t + self.shift, seq[first + 1]] = 1.0
        return logits * self.scale


def test_scores_are_read_at_the_query_positions():
    config = MqarConfig(length=24, pairs=3, vocab_size=12)
    tokens, targets = multi_query_recall(config, 40, 6)
    assert mqar_accuracy(Oracle(12), tokens, targets, batch_size=7) == 1.0
    assert mqar_accuracy(Oracle(12, shift=1), tokens, targets) == 0.0  # right answers, one position late
    task = MqarTask(MqarData(tokens, targets), MqarData(tokens, targets), batch_size=4, eval_batch_size=9)
    scores = task.evaluate(Oracle(12))
    assert scores["val_accuracy"] == 1.0 and scores["val_loss"] < 1e-3


def test_a_tiny_tnn_lm_trains_on_the_task():
    config = MqarConfig(length=32, pairs=4, vocab_size=24)
    train_data, val_data = (MqarData(*multi_query_recall(config, count, seed)) for count, seed in ((64, 0), (16, 1)))
    torch.manual_seed(0)
    model = TnnLM(TnnConfig(vocab_size=24, dim=16, layers=1, rpe_dim=8, rpe_layers=1))
    task = MqarTask(train_data, val_data, batch_size=8)
    batch = task.batch(torch.Generator().manual_seed(0))
    assert batch[0].shape == batch[1].shape == (8, 32) and task.positions_drawn == 8 * 32
    loss = task.loss(model, batch)
    logits = model(batch[0])  # (8, 32, 24)
    query = batch[1] != IGNORE
    by_hand = torch.nn.functional.cross_entropy(logits[query], batch[1][query])  # only the 32 query positions
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5) and query.sum() == 8 * 4
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    scores = task.evaluate(model)
    assert set(scores) == {"val_loss", "val_accuracy"} and 0.0 <= scores["val_accuracy"] <= 1.0
    assert math.isfinite(scores["val_loss"]) and model.training  # evaluate restores the training mode
    assert scores["val_accuracy"] == mqar_accuracy(model, val_data.tokens, val_data.targets)
    result = train(model, task, TrainConfig(steps=3, warmup=0, eval_every=3, progress=False, device="cpu"))
    assert result.steps_done == 3 and "val_accuracy" in result.history[-1]


def test_a_model_of_the_wrong_kind_is_refused():
    config = MqarConfig(length=16, pairs=2, vocab_size=10)
    tokens, targets = multi_query_recall(config, 4, 0)
    with pytest.raises(ValueError, match="per-position logits"):
        mqar_loss(lambda x: torch.zeros(len(x), 10), tokens, targets)  # a classifier's (b, classes)
    with pytest.raises(ValueError, match="does not cover target id"):
        mqar_loss(lambda x: torch.zeros(*x.shape, 6), tokens, targets)
    with pytest.raises(TypeError, match="held_out must be an MqarData"):
        MqarTask(MqarData(tokens, targets), (tokens, targets), batch_size=2)
