"""Misuse of decoding, the SSM conversion and the task modules: a clear ValueError/TypeError naming the
argument, never a silent wrong answer or an error from deep inside torch or numpy.

No network: the download is tested with file:// addresses.
"""

import hashlib
import json
import math
import random
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tnn_ref.baselines import TransformerConfig, TransformerLM
from tnn_ref.decoding import CacheTno, LmDecoder, SsmTno, generate, next_token
from tnn_ref.model import TnnConfig, TnnEncoder, TnnLM
from tnn_ref.ssm import DiagonalSsm, decay_horizon, ssm_kernel, toeplitz_to_ssm
from tnn_ref.tasks.batches import random_chunks, windows
from tnn_ref.tasks.characters import CharVocab, split_by_position
from tnn_ref.tasks.classify import ClassificationTask, LabelledData, pad_sequences, padding_mask, split_indices
from tnn_ref.tasks.corpus import load_corpus, tokenizer_from_json, tokenizer_to_json
from tnn_ref.tasks.digits import pixel_sequences, quantise_pixels
from tnn_ref.tasks.download import ChecksumError, download, find_or_download, verify
from tnn_ref.tasks.listops import (
    CLOSE,
    DIGITS,
    OPERATORS,
    ListOpsConfig,
    _TooLong,
    decode_listops,
    draw_expression,
    encode_listops,
    generate_listops,
    listops_splits,
    longest_expression,
    parse_expression,
)
from tnn_ref.tasks.mlm import IGNORE, MlmTask, evaluate_mlm, mask_tokens, mlm_loss_and_accuracy
from tnn_ref.tasks.recall import RecallConfig, associative_recall, query_blind_accuracy, recall_answer
from tnn_ref.tasks.wikitext import text_folder_splits

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONFIG = TnnConfig(vocab_size=11, dim=8, layers=2, expand=2, rpe_dim=8, rpe_layers=1)


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    return TnnLM(CONFIG).double().eval()


def prompt(n=3, batch=2):
    return torch.arange(batch * n).reshape(batch, n) % CONFIG.vocab_size


# ------------------------------------------------------------------------------------------------
# Cache mode needs a fixed kernel (item 6)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("features", ["normalized", "exp"])
def test_cache_mode_refuses_length_dependent_rpe_features(features):
    torch.manual_seed(0)
    model = TnnLM(CONFIG.with_(rpe_features=features)).double().eval()
    for mode in ("cache", "ssm"):
        with pytest.raises(ValueError, match="features='index'"):
            generate(model, prompt(), 4, mode=mode, temperature=0)
        with pytest.raises(ValueError, match="features='index'"):
            LmDecoder(model, 2, 8, mode)
    with pytest.raises(ValueError, match="features='index'"):
        CacheTno(model.blocks[0].token_mixer.toep, 1, 8)
    generate(model, prompt(), 2, mode="fft", temperature=0)  # re-reading the prefix is right for any features


@pytest.mark.parametrize("changes", [{}, {"tno_coefficients": "free", "max_len": 16}])
def test_fixed_kernels_decode_in_cache_mode_as_fft(changes):
    torch.manual_seed(1)
    model = TnnLM(CONFIG.with_(**changes)).double().eval()
    outputs = [generate(model, prompt(), 9, mode=mode, temperature=0) for mode in ("fft", "cache", "ssm")]
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_cache_tno_refuses_a_bidirectional_tno():
    encoder = TnnEncoder(CONFIG)
    with pytest.raises(ValueError, match="causal"):
        CacheTno(encoder.blocks[0].token_mixer.toep, 1, 4)


# ------------------------------------------------------------------------------------------------
# generate's arguments (item 8)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("context", [0, -1, 2.0, True])
def test_context_must_be_none_or_a_positive_int(lm, context):
    with pytest.raises(ValueError, match="context"):
        generate(lm, prompt(), 2, context=context)


@pytest.mark.parametrize("mode", ["cache", "ssm"])
def test_context_is_refused_outside_fft_mode(lm, mode):
    with pytest.raises(ValueError, match="context"):
        generate(lm, prompt(), 2, mode=mode, context=2)


def test_context_feeds_the_last_tokens(lm):
    out = generate(lm, prompt(4), 5, temperature=0, context=2)
    for t in range(4, 9):
        assert torch.equal(out[:, t], lm(out[:, t - 2 : t])[:, -1].argmax(-1))


@FAST
@given(steps=st.one_of(st.booleans(), st.floats(allow_nan=True), st.integers(max_value=-1), st.text(max_size=2)))
def test_steps_must_be_an_int_at_least_zero(lm, steps):
    with pytest.raises(ValueError, match="steps"):
        generate(lm, prompt(), steps)


@FAST
@given(temperature=st.one_of(st.booleans(), st.text(max_size=2), st.just(float("nan")), st.just(float("inf")),
                             st.floats(max_value=-1e-300)))
def test_temperature_must_be_a_finite_number_at_least_zero(lm, temperature):
    with pytest.raises((ValueError, TypeError), match="temperature"):
        generate(lm, prompt(), 1, temperature=temperature)


@pytest.mark.parametrize("top_k", [True, 2.0, 0, 12, "3"])
def test_top_k_must_be_an_int_within_the_vocabulary(lm, top_k):
    with pytest.raises(ValueError, match="top_k"):
        generate(lm, prompt(), 1, top_k=top_k)


@pytest.mark.parametrize("mode, horizon", [("fft", 4), ("fft", None), ("cache", 0), ("ssm", 0), ("ssm", 2.5),
                                           ("ssm", True), ("ssm", "full")])
def test_horizon_only_with_step_modes_and_positive(lm, mode, horizon):
    with pytest.raises(ValueError, match="horizon"):
        generate(lm, prompt(), 0, mode=mode, horizon=horizon)  # refused even when no token is drawn


def test_tiny_temperature_is_greedy(lm):
    # logits / 1e-37 overflows float32 to inf, and softmax(inf, inf, 0) is NaN
    logits = torch.tensor([[100.0, 50.0, 0.0], [0.0, 50.0, 100.0]])
    sample = next_token(logits, 1e-37, None, torch.Generator().manual_seed(0))
    assert sample.tolist() == [[0], [2]]
    greedy = generate(lm, prompt(), 5, temperature=0)
    assert torch.equal(generate(lm, prompt(), 5, temperature=1e-37, generator=torch.Generator().manual_seed(0)), greedy)


def test_nan_logits_are_refused_not_argmaxed():
    logits = torch.tensor([[float("nan"), 0.0, 1.0]])
    with pytest.raises(ValueError, match="logits hold NaN"):
        next_token(logits, 0.0, None, None)
    with pytest.raises(ValueError, match="logits"):
        next_token(torch.zeros(3), 0.0, None, None)  # (vocab,) is not (batch, vocab)


def test_generate_refuses_models_it_cannot_decode(lm):
    with pytest.raises(TypeError, match="bidirectional"):
        generate(TnnEncoder(CONFIG), prompt(), 1)
    transformer = TransformerLM(TransformerConfig(vocab_size=11, dim=8, layers=1, heads=2))
    with pytest.raises(TypeError, match="mode='fft'"):
        generate(transformer, prompt(), 0, mode="cache")
    with pytest.raises(TypeError, match="generator"):
        generate(lm, prompt(), 1, generator=0)


# ------------------------------------------------------------------------------------------------
# Step-by-step decoders and the SSM
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["cache", "ssm"])
def test_one_token_for_a_batch_of_two_is_refused(lm, mode):
    decoder = LmDecoder(lm, 2, 4, mode)
    with pytest.raises(ValueError, match=r"shape \(batch,\) with batch = 2"):
        decoder.step(torch.tensor([3]))  # would broadcast into both sequences' states
    with pytest.raises(ValueError, match=r"shape \(batch,\) with batch = 2"):
        decoder.step(torch.tensor([[3], [4]]))


@pytest.mark.parametrize("make", [CacheTno, SsmTno])
def test_tno_states_refuse_a_step_of_the_wrong_shape(lm, make):
    tno = lm.blocks[0].token_mixer.toep
    state = make(tno, 2, 4)
    with pytest.raises(ValueError, match="v must have shape"):
        state.step(torch.zeros(tno.dim, dtype=torch.float64))


@pytest.mark.parametrize("batch, max_len", [(True, 4), (2.0, 4), (1, 0), (1, 3.5)])
def test_decoder_sizes_must_be_positive_ints(lm, batch, max_len):
    with pytest.raises(ValueError, match="batch|max_len"):
        LmDecoder(lm, batch, max_len, "cache")


def test_diagonal_ssm_refuses_a_step_that_would_broadcast():
    ssm = toeplitz_to_ssm(torch.randn(5, 3, dtype=torch.float64), 0.9)
    state = ssm.initial_state(2)
    with pytest.raises(ValueError, match="x must have shape"):
        ssm.step(state, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive sequence length"):
        ssm.run(torch.zeros(2, 0, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="poles"):
        DiagonalSsm(ssm.poles, ssm.weights[:, :-1], 5)


@pytest.mark.parametrize("r, match", [
    (torch.zeros(5), "r must be None or the first row"),
    (torch.zeros(4, 2), "r must be None or the first row"),
    (torch.zeros(5, 3), "r must be None or the first row"),
    (np.zeros((5, 2)), "r must be None or a tensor"),
])
def test_toeplitz_to_ssm_checks_the_first_row_shape(r, match):
    with pytest.raises((ValueError, TypeError), match=match):
        toeplitz_to_ssm(torch.randn(5, 2, dtype=torch.float64), 0.9, r=r)


def test_a_causal_first_row_changes_nothing():
    c = torch.randn(6, 2, dtype=torch.float64)
    r = torch.zeros(6, 2, dtype=torch.float64)
    r[0] = 7.0  # r[0] is the diagonal's other name: ignored
    torch.testing.assert_close(ssm_kernel(toeplitz_to_ssm(c, 0.9, r=r), 6), ssm_kernel(toeplitz_to_ssm(c, 0.9), 6))


@pytest.mark.parametrize("decay, error", [(True, TypeError), ("fast", TypeError), ([], ValueError)])
def test_toeplitz_to_ssm_decay_types(decay, error):
    with pytest.raises(error, match="decay"):
        toeplitz_to_ssm(torch.randn(5, 2, dtype=torch.float64), decay)


def test_toeplitz_to_ssm_needs_a_channel():
    with pytest.raises(ValueError, match="at least one channel"):
        toeplitz_to_ssm(torch.zeros(5, 0, dtype=torch.float64))


@pytest.mark.parametrize("lags", [2.5, True, 0, -1])
def test_ssm_kernel_lags_must_be_a_positive_int(lags):
    ssm = toeplitz_to_ssm(torch.randn(4, 1, dtype=torch.float64), 0.9)
    with pytest.raises(ValueError, match="lags"):
        ssm_kernel(ssm, lags)


@pytest.mark.parametrize("rates, tol, error", [
    (0.9, 0.0, ValueError), (0.9, float("nan"), ValueError), (0.9, 1.5, ValueError), (0.9, True, ValueError),
    ([], 1e-6, ValueError), (True, 1e-6, TypeError), ([0.5, 2.0], 1e-6, ValueError),
])
def test_decay_horizon_arguments(rates, tol, error):
    with pytest.raises(error, match="tol|rates"):
        decay_horizon(rates, tol)


# ------------------------------------------------------------------------------------------------
# Vocabularies and token ids
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ids, error, match", [
    ([-1], ValueError, "-1"),
    ([0, 3], ValueError, "found id 3"),
    ([1.5], TypeError, "integer ids"),
    ([True], TypeError, "integer ids"),
    ([[0, 1]], ValueError, "1-D"),
    (torch.tensor([0.0]), TypeError, "integer ids"),
])
def test_char_vocab_decode_refuses_bad_ids(ids, error, match):
    with pytest.raises(error, match=match):
        CharVocab("abc").decode(ids)


@FAST
@given(ids=st.lists(st.integers(-5, 8), max_size=12))
def test_char_vocab_decode_is_exact_or_names_the_id(ids):
    vocab = CharVocab("abcd")
    bad = [i for i in ids if not 0 <= i < 4]
    if bad:
        with pytest.raises(ValueError, match=f"found id {bad[0]} "):
            vocab.decode(ids)
    else:
        assert vocab.decode(ids) == "".join("abcd"[i] for i in ids)
        assert vocab.decode(torch.tensor(ids, dtype=torch.long)) == vocab.decode(np.asarray(ids, dtype=np.uint16))


def test_char_vocab_arguments():
    with pytest.raises(ValueError, match="sorted order"):
        CharVocab.from_chars(["b", "a"])  # would silently give "a" the id of "b"
    with pytest.raises(ValueError, match="sorted order"):
        CharVocab.from_chars(["a", "a", "b"])
    with pytest.raises(ValueError, match="single characters"):
        CharVocab.from_chars(["ab"])
    with pytest.raises(TypeError, match="text must be a str"):
        CharVocab(["ab", "c"])
    with pytest.raises(TypeError, match="text must be a str"):
        CharVocab("abc").encode(5)
    assert CharVocab.from_chars(["a", "b"]).chars == ["a", "b"]


ANY_FRACTION = st.one_of(st.floats(-1, 2), st.sampled_from([math.nan, math.inf]))
SUMMING_TO_ONE = st.tuples(*[st.floats(0.01, 1.0)] * 3).map(lambda w: tuple(x / sum(w) for x in w))


@FAST
@given(n=st.integers(0, 60), fractions=st.one_of(st.tuples(*[ANY_FRACTION] * 3), SUMMING_TO_ONE))
def test_split_by_position_is_complete_or_refused(n, fractions):
    sequence = list(range(n))
    try:
        parts = split_by_position(sequence, fractions)
    except ValueError as error:
        assert "fractions" in str(error)
        return
    assert sum(parts, []) == sequence and all(len(p) > 0 for p in parts)


def test_split_by_position_refuses_an_empty_part_and_nan():
    with pytest.raises(ValueError, match="too short"):
        split_by_position("abcdefghij")  # 9 / 0 / 1: no validation text at all
    with pytest.raises(ValueError, match="fractions"):
        split_by_position("x" * 100, (float("nan"), 0.5, 0.5))
    with pytest.raises(ValueError, match="fractions"):
        split_by_position("x" * 100, "abc")


# ------------------------------------------------------------------------------------------------
# Downloads and corpora
# ------------------------------------------------------------------------------------------------

def test_download_arguments(tmp_path):
    source = tmp_path / "source.txt"
    source.write_bytes(b"tnn\n")
    digest = hashlib.sha256(b"tnn\n").hexdigest()
    assert download(source.as_uri(), str(tmp_path / "a" / "f.txt"), digest.upper()).read_bytes() == b"tnn\n"
    assert verify(str(tmp_path / "a" / "f.txt"), digest.upper()) == tmp_path / "a" / "f.txt"
    with pytest.raises(ValueError, match="sha256 must be 64 hexadecimal digits"):
        verify(source, "abc")
    with pytest.raises(ValueError, match="sha256 must be 64"):
        download(source.as_uri(), tmp_path / "b.txt", "not-a-digest")
    for timeout in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="timeout"):
            download(source.as_uri(), tmp_path / "b.txt", digest, timeout=timeout)
    with pytest.raises(TypeError, match="url"):
        download(None, tmp_path / "b.txt", digest)
    with pytest.raises(ChecksumError, match=re.escape(f"{source.as_uri()} served a file")):
        download(source.as_uri(), tmp_path / "b.txt", "0" * 64)
    with pytest.raises(ValueError, match="filename"):
        find_or_download("sub/f.txt", source.as_uri(), digest, tmp_path)


def test_random_chunks_and_windows_arguments():
    data = torch.arange(50)
    with pytest.raises(TypeError, match="torch.from_numpy"):
        random_chunks(np.arange(50), 2, 4, None)
    with pytest.raises(ValueError, match="1-D"):
        windows(data.reshape(5, 10), 2)
    for batch_size, context in ((2.5, 4), (True, 4), (0, 4), (2, 4.0), (2, -3)):
        with pytest.raises(ValueError, match="batch_size|context"):
            random_chunks(data, batch_size, context, torch.Generator())
    with pytest.raises(ValueError, match="context"):
        windows(data, 2.0)
    with pytest.raises(TypeError, match="generator"):
        random_chunks(data, 2, 4, 0)


def test_tokenizer_json_and_data_arguments(tmp_path):
    saved = tokenizer_to_json(CharVocab("abc"))
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "a.txt").write_text("abc" * 100)
    with pytest.raises(ValueError, match="contradicts tokenizer_json"):
        load_corpus(str(folder), "bpe", tokenizer_json=saved, cache=tmp_path / "cache")
    corpus = load_corpus(str(folder), tokenizer_json=saved, cache=tmp_path / "cache")
    assert corpus.tokenizer.chars == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not JSON"):
        tokenizer_from_json("{not json")
    with pytest.raises(ValueError, match="kind 'char'"):
        tokenizer_from_json(json.dumps({"kind": "words"}))
    with pytest.raises(TypeError, match="CharVocab or a Bpe"):
        tokenizer_to_json("abc")
    with pytest.raises(FileNotFoundError, match="neither 'tinyshakespeare'"):
        load_corpus("tiny-shakespeare", cache=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="is a file"):
        text_folder_splits(folder / "a.txt")


def test_bpe_arguments():
    pytest.importorskip("tokenizers")
    from tnn_ref.tasks.bpe import Bpe, line_chunks

    lines = ["hello world, hello tnn\n"] * 20
    bpe = Bpe.train(lines, vocab_size=270)
    with pytest.raises(ValueError, match=f"found id {len(bpe)}"):
        bpe.decode([1, len(bpe)])  # the library would drop the unknown id without a word
    with pytest.raises(ValueError, match="found id -1"):
        bpe.decode([-1])
    with pytest.raises(TypeError, match="not one string"):
        Bpe.train("hello world", vocab_size=270)
    with pytest.raises(ValueError, match="min_frequency"):
        Bpe.train(lines, vocab_size=270, min_frequency=-1)
    with pytest.raises(ValueError, match="lines_per_chunk"):
        line_chunks("a\nb\n", 0)  # at the call, not at the first chunk
    with pytest.raises(TypeError, match="text must be a str"):
        bpe.encode_array(b"bytes")


# ------------------------------------------------------------------------------------------------
# Masked LM
# ------------------------------------------------------------------------------------------------

def test_mask_tokens_arguments():
    tokens = torch.randint(0, 10, (2, 8))
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(tokens, -1, 10, torch.Generator())
    with pytest.raises(ValueError, match=r"ids in \[0, 10\)"):
        mask_tokens(tokens + 5, 10, 10, torch.Generator())
    with pytest.raises(ValueError, match=r"\(batch, n\)"):
        mask_tokens(tokens[0], 10, 10, torch.Generator())
    with pytest.raises(ValueError, match="vocab_size"):
        mask_tokens(tokens, 10, 0, torch.Generator())


def test_a_batch_without_masked_positions_has_zero_loss_not_nan():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss, correct, count = mlm_loss_and_accuracy(logits, torch.full((2, 3), IGNORE))
    assert count == 0 and int(correct) == 0 and loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError, match="targets"):
        mlm_loss_and_accuracy(logits, torch.zeros(2, 4, dtype=torch.long))


def test_mlm_task_checks_evaluation_settings_before_training():
    train, val = torch.randint(0, 5, (400,)), torch.randint(0, 5, (20,))
    with pytest.raises(ValueError, match="eval_context"):
        MlmTask(train, val, 5, batch_size=2, context=8, eval_context=0)  # 0 used to mean "context"
    with pytest.raises(ValueError, match="validation tokens"):
        MlmTask(train, val, 5, batch_size=2, context=32)  # val holds 20 tokens: the first evaluation would fail
    with pytest.raises(ValueError, match="validation tokens"):
        MlmTask(train, val, 5, batch_size=2, context=8, eval_tokens=4)
    with pytest.raises(ValueError, match="1-D torch.Tensor"):
        MlmTask(train.numpy(), val, 5, batch_size=2, context=8)
    task = MlmTask(train, val, 5, batch_size=2, context=8)
    model = TnnEncoder(TnnConfig(vocab_size=6, dim=8, layers=1, expand=2, rpe_dim=4, rpe_layers=1))
    with pytest.raises(ValueError, match="context"):
        task.evaluate(model, context=0)


def test_evaluate_mlm_arguments():
    model = TnnEncoder(TnnConfig(vocab_size=6, dim=8, layers=1, expand=2, rpe_dim=4, rpe_layers=1))
    data = torch.randint(0, 5, (100,))
    with pytest.raises(ValueError, match="max_tokens"):
        evaluate_mlm(model, data, 8, 5, 5, max_tokens=-5)  # data[:-4] would silently drop the end
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_mlm(model, data, 8, 5, 5, batch_size=0)
    with pytest.raises(TypeError, match="seed"):
        evaluate_mlm(model, data, 8, 5, 5, seed=None)
    with pytest.raises(ValueError, match="no position"):
        evaluate_mlm(model, data[:2], 1, 5, 5, seed=0)  # one token, and seed 0 does not mask it


# ------------------------------------------------------------------------------------------------
# ListOps
# ------------------------------------------------------------------------------------------------

def recursive_draw(config, rng):
    """LRA's procedure as its recursive definition reads: the reference for the stack-based generator."""
    tokens = []

    def grow(depth):
        if depth < config.max_depth and rng.random() < config.operator_probability:
            tokens.append(rng.choice(OPERATORS))
            for _ in range(rng.randint(2, config.max_args)):
                grow(depth + 1)
            tokens.append(CLOSE)
        else:
            tokens.append(rng.choice(DIGITS))
        if len(tokens) > config.max_length:
            raise OverflowError

    grow(1)
    return tokens


@FAST
@given(seed=st.integers(0, 10**6), depth=st.integers(1, 8), args=st.integers(2, 6), p=st.floats(0.0, 0.6))
def test_stack_generator_draws_what_the_recursive_definition_draws(seed, depth, args, p):
    config = ListOpsConfig(min_length=1, max_length=200, max_depth=depth, max_args=args, operator_probability=p)
    try:
        expected = recursive_draw(config, random.Random(seed))
    except OverflowError:
        expected = None
    try:
        drawn = draw_expression(config, random.Random(seed))
    except _TooLong:
        drawn = None
    assert drawn == expected


def test_deep_trees_do_not_exhaust_the_recursion_limit():
    config = ListOpsConfig(min_length=1, max_length=2500, max_depth=3000, max_args=2, operator_probability=1.0)
    with pytest.raises(ValueError, match="found only 0"):
        generate_listops(1, config, seed=0, max_tries=3)  # every tree is too long: refused by count, not by recursion


def test_listops_arguments():
    with pytest.raises(TypeError, match="parse_expression"):
        encode_listops("[MAX 1 2 ]")
    with pytest.raises(ValueError, match="<pad>"):
        encode_listops(["[MAX", "<pad>", "]"])
    with pytest.raises(ValueError, match="found id -1"):
        decode_listops([-1])  # VOCAB[-1] would read "]"
    with pytest.raises(TypeError, match="integer ids"):
        decode_listops([1.7])
    with pytest.raises(TypeError, match="text must be a str"):
        parse_expression(["[MAX"])
    with pytest.raises(ValueError, match="operator_probability"):
        ListOpsConfig(operator_probability=True)
    with pytest.raises(TypeError, match="seed"):
        generate_listops(2, ListOpsConfig(min_length=5, max_length=40), seed=None)  # would seed from the clock
    with pytest.raises(ValueError, match="max_tries"):
        generate_listops(2, ListOpsConfig(min_length=5, max_length=40), max_tries=2.5)
    with pytest.raises(TypeError, match="ListOpsConfig"):
        generate_listops(2, {"min_length": 5})
    with pytest.raises(TypeError, match="sizes must be a sequence"):
        listops_splits(5)
    assert longest_expression(10**6, 10, at_most=100) > 100  # a bound, in a few steps


# ------------------------------------------------------------------------------------------------
# Digits, recall, classification
# ------------------------------------------------------------------------------------------------

def test_pixels_must_be_finite_floats():
    with pytest.raises(TypeError, match="floating-point"):
        quantise_pixels(torch.full((1, 1, 2, 2), 200, dtype=torch.uint8))  # would clip to two levels
    with pytest.raises(ValueError, match="NaN"):
        pixel_sequences(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(TypeError, match="torch.Tensor"):
        pixel_sequences(np.zeros((1, 1, 2, 2)))
    assert pixel_sequences(torch.tensor([[[[0.0, 1.0]]]])).tolist() == [[0, 255]]


def test_recall_arguments():
    config = RecallConfig(length=20)
    tokens, labels = associative_recall(4, config, seed=1)
    with pytest.raises(TypeError, match="seed"):
        associative_recall(4, config, seed=None)
    with pytest.raises(TypeError, match="RecallConfig"):
        associative_recall(4, {"length": 20})
    with pytest.raises(ValueError, match=r"\(batch, n\)"):
        recall_answer(tokens[0], config)
    with pytest.raises(ValueError, match="ids in"):
        recall_answer(tokens + config.vocab_size, config)
    broken = tokens.clone()
    broken[:, 1] = 0  # a distractor where a value should be
    with pytest.raises(ValueError, match="value tokens"):
        query_blind_accuracy(broken, config)
    assert torch.equal(recall_answer(tokens, config), labels)


@FAST
@given(rows=st.lists(st.lists(st.integers(-3, 50), min_size=1, max_size=6), min_size=1, max_size=5))
def test_pad_sequences_round_trips(rows):
    ids, lengths = pad_sequences(rows, pad_id=-1)
    assert lengths.tolist() == [len(r) for r in rows]
    assert [ids[i, : len(r)].tolist() for i, r in enumerate(rows)] == rows
    mask = padding_mask(lengths, ids.shape[1])
    assert bool((ids[~mask] == -1).all())


def test_classification_arguments():
    with pytest.raises(TypeError, match="int ids"):
        pad_sequences([[1.5, 2.0]])  # would be truncated to [1, 2]
    with pytest.raises(TypeError, match="pad_id"):
        pad_sequences([[1, 2]], pad_id=0.5)
    with pytest.raises(ValueError, match="sequence 0 must be a 1-D"):
        pad_sequences([1, 2, 3])
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, n=3\]"):
        padding_mask(torch.tensor([2, 5]), 3)  # row 1 would be cut to 3 without a word
    with pytest.raises(TypeError, match="lengths must be a 1-D integer tensor"):
        padding_mask([2, 3], 3)
    with pytest.raises(ValueError, match="test_size"):
        split_indices(10, 2.5, 0)
    with pytest.raises(TypeError, match="seed"):
        split_indices(10, 2, None)
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor"):
        LabelledData(np.zeros((2, 3), dtype=np.int64), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be class indices"):
        LabelledData(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, -1]))
    with pytest.raises(TypeError, match="lengths must be a 1-D integer tensor"):
        LabelledData(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long), torch.tensor([1.5, 2.0]))
    with pytest.raises(TypeError, match="labels must be int"):
        LabelledData.from_sequences([[1], [2]], [0.5, 1.0])
    tokens = LabelledData(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    images = LabelledData(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long))
    empty = tokens.subset(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="train must hold at least one example"):
        ClassificationTask(empty, tokens, 2)
    with pytest.raises(ValueError, match="one kind"):
        ClassificationTask(tokens, images, 2)
    task = ClassificationTask(tokens, tokens, 2)
    with pytest.raises(ValueError, match="data must hold at least one example"):
        task.evaluate(torch.nn.Linear(1, 1), empty)  # would divide by zero
