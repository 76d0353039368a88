"""The pieces the language-model experiments (notebooks 06, 07, 10) are built from, each against a slow,
obviously correct version: same-target extrapolation scoring, n-gram references, the two-way learnable decay,
the block-structure ablations, the sweep's metric choice and the paired confidence interval."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from tnn_ref.blocks import Gtu, Mlp, TnnBlock
from tnn_ref.decay import Decay
from tnn_ref.decoding import LmDecoder
from tnn_ref.experiments.sweep import best_lr, paired_difference, train_and_score
from tnn_ref.model import TnnConfig, TnnLM
from tnn_ref.norm import SimpleRMSNorm
from tnn_ref.tasks.batches import target_ends, windows_ending_at
from tnn_ref.tasks.ngram import ngram_log_probs, ngram_loss
from tnn_ref.tno import Tno
from tnn_ref.training.evaluate import evaluate_lm_same_targets
from tnn_ref.training.loop import LmTask, TrainConfig

TINY = TnnConfig(vocab_size=11, dim=8, layers=2, expand=2, rpe_dim=4, rpe_layers=1, decay=0.9)


# same-target extrapolation scoring ------------------------------------------------------------------------

@pytest.mark.parametrize("tokens, longest, score, blocks", [(300, 40, 8, 3), (101, 20, 5, 1), (64, 31, 1, 4)])
def test_target_ends_fit_and_never_overlap(tokens, longest, score, blocks):
    ends = target_ends(tokens, longest, score, blocks)
    assert len(ends) == blocks and ends[0] == longest and ends[-1] <= tokens - 1
    assert all(b - a >= score for a, b in zip(ends, ends[1:]))


def test_target_ends_refuses_too_many_blocks():
    with pytest.raises(ValueError, match="lower blocks"):
        target_ends(100, 60, 20, 4)
    with pytest.raises(ValueError, match="score=9 must be at most longest=8"):
        target_ends(100, 8, 9, 1)


def test_windows_ending_at_share_their_tails():
    data = torch.arange(50)
    short, _ = windows_ending_at(data, [30, 45], 7)
    long, targets = windows_ending_at(data, [30, 45], 20)
    assert torch.equal(short[:, -3:], long[:, -3:]) and torch.equal(targets[:, -1], torch.tensor([30, 45]))
    with pytest.raises(ValueError, match="ends must lie in"):
        windows_ending_at(data, [5], 7)


@pytest.mark.parametrize("lengths, score", [([4, 8, 16, 41], 8), ([1, 3, 9, 10], 9)])
def test_same_targets_equals_one_forward_per_target(lengths, score):
    torch.manual_seed(0)
    model = TnnLM(TINY).double().eval()
    data = torch.randint(0, 11, (240,))
    result = evaluate_lm_same_targets(model, data, lengths, score=score, blocks=3)
    for length in lengths:
        losses = []
        for end in result["ends"]:
            for t in range(end - score + 1, end + 1):  # target data[t], from its own window's tokens before it
                window_end = end if length >= score else end - ((end - t) // length) * length
                start = window_end - length
                with torch.no_grad():
                    logits = model(data[start:t][None])[0, -1]
                losses.append(F.cross_entropy(logits[None], data[t : t + 1]).item())
        assert result["by_length"][length]["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-9)
    assert result["targets"] == 3 * score and len(result["block_losses"][lengths[0]]) == 3


def test_same_targets_refuses_lengths_that_cannot_tile():
    model = TnnLM(TINY)
    with pytest.raises(ValueError, match="each at least score=8 or a divisor of it"):
        evaluate_lm_same_targets(model, torch.zeros(100, dtype=torch.long), [3, 16], score=8, blocks=1)


# n-gram references ----------------------------------------------------------------------------------------

def test_ngram_tables_equal_explicit_counts():
    train = torch.tensor([0, 1, 1, 2, 0, 1, 2, 2, 0])
    uni = ngram_log_probs(train, 3, 1, alpha=0.5)
    counts = np.array([3, 3, 3]) + 0.5
    np.testing.assert_allclose(uni.exp().numpy(), counts / counts.sum())
    bi = ngram_log_probs(train, 3, 2, alpha=1.0)
    pairs = np.ones((3, 3))
    for a, b in zip(train[:-1].tolist(), train[1:].tolist()):
        pairs[a, b] += 1
    np.testing.assert_allclose(bi.exp().numpy(), pairs / pairs.sum(1, keepdims=True))
    data = torch.tensor([2, 0, 1, 1])
    expected = -np.mean([np.log(pairs[2, 0] / pairs[2].sum()), np.log(pairs[0, 1] / pairs[0].sum()),
                         np.log(pairs[1, 1] / pairs[1].sum())])
    assert ngram_loss(bi, data) == pytest.approx(expected)
    assert ngram_loss(uni, data, torch.tensor([3])) == pytest.approx(-math.log(counts[1] / counts.sum()))
    with pytest.raises(ValueError, match="order must be 1"):
        ngram_log_probs(train, 3, 3)
    with pytest.raises(ValueError, match="positions must be non-empty"):
        ngram_loss(uni, data, torch.tensor([0]))


# the two-way learnable decay ------------------------------------------------------------------------------

def test_sigmoid_decay_starts_at_the_base_rate_and_moves_both_ways():
    decay = Decay(3, 0.95, learnable="sigmoid")
    torch.testing.assert_close(decay.rates(torch.float64), torch.full((3,), 0.95, dtype=torch.float64))
    with torch.no_grad():
        decay.logit.copy_(torch.tensor([-3.0, 0.0, 5.0]))
    rates = decay.rates(torch.float64)
    assert rates[0] < 0.95 and rates[1] == 0.5 and rates[2] > 0.99  # below the base rate too, unlike "floor"
    factors = decay(6, dtype=torch.float64)
    torch.testing.assert_close(factors, rates[None, :] ** torch.arange(6.0, dtype=torch.float64)[:, None])
    factors.sum().backward()
    assert decay.logit.grad.abs().min() > 0
    floor = Decay(3, 0.95, learnable=True)
    with torch.no_grad():
        floor.logit.fill_(-30.0)
    assert floor.rates().min() >= 0.95  # today's form cannot go below its floor
    assert Decay(3, 0.9, learnable="floor").form == Decay(3, 0.9, learnable=True).form == "floor"


def test_model_with_sigmoid_decay_trains_its_rates():
    torch.manual_seed(0)
    model = TnnLM(TINY.with_(learnable_decay="sigmoid"))
    tokens = torch.randint(0, 11, (2, 9))
    F.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten()).backward()
    assert all(block.token_mixer.toep.decay.logit.grad.abs().sum() > 0 for block in model.blocks)


# block-structure ablations --------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("n", [1, 6, 7])
def test_ungated_gtu_equals_its_formula(causal, n):
    torch.manual_seed(n)
    tno = Tno(6, causal=causal, decay=0.9, rpe_dim=4, rpe_layers=1).double()
    gtu = Gtu(3, 2, tno, gate=False).double()
    assert gtu.u_proj is None
    x = torch.randn(2, n, 3, dtype=torch.float64, requires_grad=True)
    expected = gtu.o(tno(F.silu(gtu.v_proj(x))))
    torch.testing.assert_close(gtu(x), expected)
    assert torch.autograd.gradcheck(lambda x: gtu(x), (x,))


@pytest.mark.parametrize("prenorm", [True, False])
@pytest.mark.parametrize("mixer", ["mlp", "none"])
def test_block_channel_mixer_ablations_equal_their_formulas(prenorm, mixer):
    torch.manual_seed(1)
    gtu = Gtu(4, 2, Tno(8, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1)).double()
    block = TnnBlock(4, gtu, 6, prenorm=prenorm, channel_mixer=mixer).double()
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    norm = SimpleRMSNorm(4)
    mlp = block.feature_mixer
    assert (mixer == "none") == (mlp is None) and (mixer != "mlp" or isinstance(mlp, Mlp))

    def channel(h):
        return h if mlp is None else h + mlp.l2(F.silu(mlp.l1(norm(h) if prenorm else h)))

    if prenorm:
        expected = channel(x + gtu(norm(x)))
    else:
        h = norm(x + gtu(x))
        expected = h if mlp is None else norm(h + mlp.l2(F.silu(mlp.l1(h))))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("changes", [dict(gtu_gate=False), dict(channel_mixer="mlp"), dict(channel_mixer="none"),
                                     dict(learnable_decay="sigmoid")])
@pytest.mark.parametrize("mode", ["cache", "ssm"])
def test_decoders_follow_the_ablated_blocks(changes, mode):
    torch.manual_seed(2)
    model = TnnLM(TINY.with_(**changes)).double().eval()
    tokens = torch.randint(0, 11, (2, 9))
    decoder = LmDecoder(model, batch=2, max_len=9, mode=mode)
    steps = torch.stack([decoder.step(tokens[:, t]) for t in range(9)], dim=1)  # (2, 9, vocab)
    with torch.no_grad():
        torch.testing.assert_close(steps, model(tokens), rtol=1e-8, atol=1e-8)


# the sweep's choice and the paired interval ---------------------------------------------------------------

def test_best_lr_reads_the_metric_it_is_given():
    rows = [{"lr": 1e-3, "val_bpc": 2.5, "val_loss": 1.7, "val_accuracy": 0.2},
            {"lr": 2e-3, "val_bpc": 2.4, "val_loss": 1.6, "val_accuracy": 0.1},
            {"lr": 4e-3, "val_bpc": float("nan"), "val_loss": float("nan"), "val_accuracy": 0.0}]
    assert best_lr(rows, metric="val_bpc", maximise=False) == 2e-3
    assert best_lr(rows) == 1e-3
    with pytest.raises(ValueError, match="rows\\[0\\] lacks val_ppl"):
        best_lr(rows, metric="val_ppl")


def test_train_and_score_runs_a_language_model_and_its_scorer():
    torch.manual_seed(0)
    data = torch.randint(0, 11, (400,))
    task = LmTask(data[:300], data[300:], batch_size=2, context=8, eval_tokens=64)
    row = train_and_score(lambda: TnnLM(TINY), task, TrainConfig(steps=3, eval_every=3, progress=False),
                          score=lambda model: {"extra": sum(p.numel() for p in model.parameters())})
    assert row["steps"] == 3 and math.isfinite(row["val_bpc"]) and row["extra"] > 0


def test_paired_difference_is_the_paired_t_interval():
    a, b = [2.31, 2.35, 2.29, 2.33], [2.40, 2.41, 2.36, 2.45]
    result = paired_difference(a, b)
    d = np.subtract(a, b)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert result["mean"] == pytest.approx(d.mean())
    assert (result["low"], result["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert result["verdict"] == "lower" and paired_difference([1, 2, 3], [1.1, 1.9, 3.05])["verdict"] == "no difference"
    with pytest.raises(ValueError, match="paired runs"):
        paired_difference([1.0], [2.0])
