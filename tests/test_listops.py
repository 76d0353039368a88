"""ListOps: the evaluator on hand-written expressions, the generator's procedure, lengths, duplicates, seeds, errors."""

import random
import statistics

import pytest

from tnn_ref.tasks.listops import (
    CLOSE,
    OPERATORS,
    PAD_ID,
    VOCAB,
    ListOpsConfig,
    apply_operator,
    decode_listops,
    encode_listops,
    evaluate_listops,
    generate_listops,
    listops_splits,
    longest_expression,
    parse_expression,
)


@pytest.mark.parametrize("text, value", [
    ("7", 7),
    ("[MAX 2 9 ]", 9),
    ("[MIN 3 [MAX 1 5 ] 2 ]", 2),
    ("[MED 1 5 3 ]", 3),  # odd count: the middle value
    ("[MED 1 2 ]", 1),  # even count: mean 1.5, truncated
    ("[MED 4 1 9 6 ]", 5),  # sorted 1 4 6 9: (4 + 6) / 2
    ("[MED 0 9 ]", 4),  # 4.5 truncated
    ("[MED 7 7 8 8 ]", 7),  # 7.5 truncated
    ("[SM 3 9 ]", 2),  # 12 mod 10
    ("[SM 7 [SM 8 9 ] 5 ]", 9),  # inner 17 mod 10 = 7; 7 + 7 + 5 = 19 mod 10
    ("[SM [SM 9 9 ] [SM 9 9 ] [SM 9 9 ] ]", 4),  # 8 + 8 + 8 = 24 mod 10
    ("[MAX 4 3 [MIN 2 3 ] 1 0 [MED 1 5 8 9 2 ] ]", 5),  # the LRA paper's example
    ("[MIN [MAX [MED 1 2 3 4 ] 0 ] [SM 5 5 ] 9 ]", 0),  # MED = 2, MAX = 2, SM = 0, MIN = 0
])
def test_evaluator_on_hand_written_expressions(text, value):
    assert evaluate_listops(parse_expression(text)) == value


def test_median_matches_statistics_truncated():
    rng = random.Random(0)
    for _ in range(500):
        args = [rng.randrange(10) for _ in range(rng.randint(1, 10))]
        assert apply_operator("[MED", args) == int(statistics.median(args))


@pytest.mark.parametrize("text, match", [
    ("]", "unmatched"),
    ("[MAX 1 2", "incomplete"),
    ("[MAX ]", "no arguments"),
    ("1 2", "continue after"),
    ("[MAX 1 x ]", "unknown token"),
    ("", "empty"),
])
def test_evaluator_refuses_malformed_expressions(text, match):
    with pytest.raises(ValueError, match=match):
        evaluate_listops(parse_expression(text))


def depth_and_widest(tokens):
    """(depth with the root at 1 and digits counted as a level, most arguments of any operator)."""
    stack, depth, widest = [], 0, 0
    for token in tokens:
        if stack and token != CLOSE:
            stack[-1] += 1  # one more argument for the open operator
        if token in OPERATORS:
            stack.append(0)
            depth = max(depth, len(stack))
        elif token == CLOSE:
            widest = max(widest, stack.pop())
        else:
            depth = max(depth, len(stack) + 1)
    return depth, widest


def test_generated_expressions_follow_the_procedure():
    config = ListOpsConfig(min_length=30, max_length=80, max_depth=4, max_args=5)
    expressions = generate_listops(200, config, seed=3)
    assert len(expressions) == 200
    assert len({tuple(e) for e in expressions}) == 200  # no duplicates
    for tokens in expressions:
        assert config.min_length <= len(tokens) <= config.max_length
        depth, widest = depth_and_widest(tokens)
        assert depth <= config.max_depth and 2 <= widest <= config.max_args
        assert 0 <= evaluate_listops(tokens) <= 9


def test_generation_is_deterministic_under_a_seed():
    config = ListOpsConfig(min_length=20, max_length=60)
    assert generate_listops(50, config, seed=1) == generate_listops(50, config, seed=1)
    assert generate_listops(50, config, seed=1) != generate_listops(50, config, seed=2)


def test_lra_setting_reaches_its_lengths():
    config = ListOpsConfig.lra()
    assert (config.min_length, config.max_length, config.max_depth, config.max_args) == (500, 2000, 10, 10)
    assert all(500 <= len(e) <= 2000 for e in generate_listops(5, config, seed=0))


def test_splits_are_disjoint_and_labelled():
    train, val, test = listops_splits([60, 20, 20], ListOpsConfig(min_length=10, max_length=40), seed=0)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    keys = [{tuple(e) for e in split.expressions} for split in (train, val, test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert test.labels == [evaluate_listops(e) for e in test.expressions]


def test_tokenizer_round_trip():
    tokens = parse_expression("[SM 3 [MED 9 0 ] [MIN 1 2 ] [MAX 4 5 ] ]")
    ids = encode_listops(tokens)
    assert PAD_ID not in ids and all(0 < i < len(VOCAB) for i in ids)
    assert decode_listops(ids + [PAD_ID, PAD_ID]) == tokens
    assert len(VOCAB) == 16 and VOCAB[PAD_ID] == "<pad>"
    with pytest.raises(ValueError, match="not in the ListOps vocabulary"):
        encode_listops(["[FIRST"])


def test_longest_expression():
    assert longest_expression(1, 10) == 1
    assert longest_expression(2, 3) == 5  # [OP d d d ]
    assert longest_expression(3, 2) == 2 + 2 * 4


@pytest.mark.parametrize("changes, match", [
    ({"min_length": 10, "max_length": 5}, "min_length"),
    ({"max_depth": 0}, "max_depth"),
    ({"max_args": 1}, "max_args"),
    ({"min_length": 0}, "min_length"),
    ({"operator_probability": 1.5}, "operator_probability"),
    ({"min_length": 6, "max_length": 50, "max_depth": 2, "max_args": 3}, "min_length=6 is longer than any expression"),
    ({"min_length": 2, "max_length": 3}, "no expression has 2 or 3 tokens"),
    ({"min_length": 5, "max_length": 9, "operator_probability": 0.0}, "operator_probability"),
])
def test_impossible_settings_name_the_argument(changes, match):
    with pytest.raises(ValueError, match=match):
        ListOpsConfig(**changes)


def test_too_few_distinct_expressions_stop_with_a_clear_error():
    # length 4 means one operator and two digits: only 4 * 100 distinct expressions exist
    config = ListOpsConfig(min_length=4, max_length=4, max_depth=2, max_args=2, operator_probability=1.0)
    assert len(generate_listops(50, config, seed=0)) == 50
    with pytest.raises(ValueError, match="found only .* max_tries"):
        generate_listops(401, config, seed=0, max_tries=20_000)
    with pytest.raises(ValueError, match="count"):
        generate_listops(-1, config)
