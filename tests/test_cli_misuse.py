"""Every misuse of the three command lines ends the argparse way: one line naming the option, exit status 2.

`python -m tnn_ref.train`, `python -m tnn_ref.evaluate` and `python -m tnn_ref.bench` are run in this
process (their main functions take argv), on a small text folder written here, so the file stays fast.
A misuse must be found before the first update: no run trains for a while and then dies on an argument.
"""

import argparse
import json
import math
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tnn_ref.bench.__main__ import main as bench_main
from tnn_ref.training.cli import (
    beta_float,
    evaluate_main,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    seed_int,
    train_main,
)
from tnn_ref.training.loop import load_checkpoint

TRAIN = "python -m tnn_ref.train"
EVALUATE = "python -m tnn_ref.evaluate"
BENCH = "python -m tnn_ref.bench"
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present here")
# 4 samples of 16 tokens per update, tiny model: a run of 2 updates takes about a second
SMALL_RUN = ["--model", "tiny", "--context", "16", "--tokens-per-update", "64", "--batch-size", "4", "--steps", "2",
             "--warmup", "1", "--lr", "3e-3", "--eval-every", "1", "--eval-tokens", "64", "--checkpoint-every", "1",
             "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A text folder (~22K characters: 20K train, 1.1K valid, 1.1K test tokens), its cache and a finished run."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "text"
    data.mkdir()
    words = torch.randint(0, 40, (6_000,), generator=torch.Generator().manual_seed(0)).tolist()
    (data / "corpus.txt").write_text(" ".join(f"w{w}" for w in words) + "\n")
    base = ["--data", str(data), "--cache-dir", str(root / "cache")]
    train_main(base + SMALL_RUN + ["--out", str(root / "run")])
    return {"root": root, "data": data, "base": base, "run": root / "run"}


def refused(main, argv, capsys, prog=TRAIN) -> str:
    """Run a command that must refuse argv: exit status 2 and one stderr line `prog: error: ...`; that line."""
    capsys.readouterr()  # drop what came before
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]


def train_args(world, *extra, out=None):
    return world["base"] + SMALL_RUN + ["--out", str(out or world["root"] / "fresh")] + list(extra)


# --- one option at a time: wrong types, zero, negative, NaN and infinity -------------------------------------------

NUMBER_TYPES = [(positive_int, lambda v: isinstance(v, int) and v >= 1),
                (nonnegative_int, lambda v: isinstance(v, int) and v >= 0),
                (seed_int, lambda v: isinstance(v, int) and 0 <= v < 2**32),
                (positive_float, lambda v: math.isfinite(v) and v > 0),
                (nonnegative_float, lambda v: math.isfinite(v) and v >= 0),
                (beta_float, lambda v: 0 <= v < 1)]
TEXTS = st.one_of(st.text(max_size=12), st.integers().map(str), st.floats().map(str),
                  st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "0x10", " 3 ", "1_000", "True"]))


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_option_types_accept_only_what_they_say(text):
    """Whatever is typed, each type either returns a value inside its range or refuses with argparse's error."""
    for parse, allowed in NUMBER_TYPES:
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as error:
            assert str(error).startswith("must be ") and repr(text) in str(error)
        else:
            assert allowed(value), (parse, text, value)


@pytest.mark.parametrize("option, values", [
    ("--steps", ["0", "-3", "2.5", "ten", "1e3"]),
    ("--context", ["0", "-16"]),
    ("--tokens-per-update", ["0", "-64"]),
    ("--batch-size", ["0", "-1"]),
    ("--vocab-size", ["0", "-1"]),
    ("--pad-vocab-to", ["-1", "x"]),
    ("--warmup", ["-1", "0.5"]),
    ("--lr", ["nan", "inf", "-inf", "-1", "0", "fast"]),
    ("--weight-decay", ["-0.1", "nan", "inf"]),
    ("--clip", ["-1", "nan", "inf"]),
    ("--seed", ["-1", str(2**32), "1.5"]),
    ("--eval-every", ["0", "-1"]),
    ("--eval-tokens", ["0", "-5"]),
    ("--checkpoint-every", ["0", "-1"]),
    ("--time-budget", ["0", "-5", "nan", "inf"]),
    ("--device", ["tpu", "cuda:-1", "", "gpu"]),
    ("--model", ["huge"]),
    ("--schedule", ["linear"]),
    ("--tokenizer", ["words"]),
    ("--resume-override", ["model", "lr,nonsense", ","]),
])
def test_train_refuses_a_bad_value_of_each_option(world, capsys, option, values):
    for value in values:
        line = refused(train_main, train_args(world, option, value), capsys)
        assert f"argument {option}:" in line, line


@pytest.mark.parametrize("betas", [["0.9", "1.0"], ["nan", "0.98"], ["-0.1", "0.98"], ["0.9", "x"]])
def test_train_refuses_betas_outside_the_unit_interval(world, capsys, betas):
    line = refused(train_main, train_args(world, "--betas", *betas), capsys)
    assert "argument --betas: must be a number in [0, 1)" in line


def test_train_refuses_unknown_options(world, capsys):
    assert "unrecognized arguments: --epochs" in refused(train_main, train_args(world, "--epochs", "3"), capsys)


# --- options against each other, against this machine, against the data -----------------------------------------

@pytest.mark.parametrize("extra, says", [
    (["--tokens-per-update", "100"], ["argument --tokens-per-update", "multiple of --context (16)"]),
    (["--batch-size", "3"], ["argument --tokens-per-update", "--batch-size x processes (3 x 1)"]),
    (["--steps", "5", "--warmup", "10"], ["argument --warmup", "more than --steps (5)"]),
    (["--tokenizer", "bpe", "--vocab-size", "100"], ["argument --vocab-size", "at least 258"]),
    (["--prepare-only", "--resume"], ["argument --prepare-only", "--resume"]),
    (["--resume-override", "lr"], ["argument --resume-override", "with --resume"]),
    (["--eval-tokens", "8"], ["--eval-tokens=8 is shorter than one window of --context=16"]),
    (["--pad-vocab-to", "5"], ["argument --pad-vocab-to", "fewer rows than the tokenizer's 13 tokens"]),
    # 2,000-token windows: the training split holds 10 of them, the validation split (1,124 tokens) none
    (["--context", "2000", "--tokens-per-update", "8000", "--eval-tokens", "4000"],
     ["--context=2000 needs at least 2001 tokens", "validation split"]),
    # 1,000-token windows: the training split holds 20, fewer than the 32 of one update
    (["--context", "1000", "--tokens-per-update", "32000", "--eval-tokens", "1000"],
     ["argument --tokens-per-update", "fewer than one update's 32"]),
])
def test_train_refuses_options_that_contradict(world, capsys, extra, says):
    line = refused(train_main, train_args(world, *extra), capsys)
    for text in says:
        assert text in line, line


def test_train_refuses_missing_or_wrong_folders(world, capsys, tmp_path):
    missing = str(tmp_path / "nowhere")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [(["--data", missing], "argument --data: must be tinyshakespeare or wikitext103 or a folder"),
             (["--data-dir", missing], "argument --data-dir:"),
             (["--data-dir", str(tmp_path)], "argument --data-dir: only for --data tinyshakespeare or wikitext103"),
             (["--cache-dir", str(a_file)], "argument --cache-dir: "),
             (["--out", str(a_file)], "argument --out: ")]
    for extra, says in cases:
        assert says in refused(train_main, train_args(world, *extra), capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no *.txt files" in refused(train_main, train_args(world, "--data", str(empty)), capsys)


def test_a_new_run_does_not_overwrite_a_finished_one(world, capsys):
    before = (world["run"] / "checkpoint.pt").read_bytes()
    line = refused(train_main, train_args(world, out=world["run"]), capsys)
    assert "argument --out:" in line and "pass --resume" in line
    assert (world["run"] / "checkpoint.pt").read_bytes() == before


@NO_CUDA
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_train_refuses_a_gpu_this_machine_lacks(world, capsys, device):
    assert "argument --device: " in refused(train_main, train_args(world, "--device", device), capsys)


def test_under_torchrun_only_rank_0_prints_but_every_rank_exits_2(world, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, prints in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            train_main(train_args(world, "--steps", "0"))
        assert exit_.value.code == 2
        assert ("argument --steps" in capsys.readouterr().err) == prints
    # and one GPU index for all the processes is refused (each takes GPU LOCAL_RANK)
    assert "under torchrun each process takes GPU LOCAL_RANK" in refused(
        train_main, train_args(world, "--device", "cuda:0"), capsys)


# --- --resume against the checkpoint's settings ---------------------------------------------------------------

def copy_run(world, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(world["run"], out)
    return out


def test_resume_names_every_changed_setting_old_and_new(world, capsys):
    line = refused(train_main, train_args(world, "--resume", "--lr", "1e-3", "--tokens-per-update", "128",
                                          out=world["run"]), capsys)
    assert "argument --resume:" in line
    assert "--lr 0.003 -> 0.001" in line and "--tokens-per-update 64 -> 128" in line
    assert "--resume-override tokens-per-update,lr" in line


def test_resume_refuses_another_model_whatever_the_override(world, capsys):
    line = refused(train_main, train_args(world, "--resume", "--model", "tiny_transformer", "--resume-override",
                                          "lr", out=world["run"]), capsys)
    assert "--model 'tiny' -> 'tiny_transformer'" in line and "cannot change" in line


@pytest.mark.parametrize("extra, says", [
    (["--steps", "1"], "argument --steps: the checkpoint in"),  # it has done 2 already: nothing would run
    (["--time-budget", "0.0001"], "argument --time-budget:"),
    (["--schedule", "cosine", "--steps", "3"], "--schedule 'inverse_sqrt' -> 'cosine'; --steps 2 -> 3"),
])
def test_resume_refuses_what_the_checkpoint_contradicts(world, capsys, extra, says):
    assert says in refused(train_main, train_args(world, "--resume", *extra, out=world["run"]), capsys)


def test_resume_with_an_override_or_a_free_change_continues(world, tmp_path, capsys):
    out = copy_run(world, tmp_path)
    # more steps, another micro-batch: free; another lr: named in --resume-override
    train_main(train_args(world, "--resume", "--steps", "3", "--batch-size", "2", "--lr", "1e-3",
                          "--resume-override", "lr", out=out))
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 3 and state["config"]["lr"] == 1e-3 and state["meta"]["args"]["lr"] == 1e-3
    assert "resuming from update 2" in capsys.readouterr().out
    assert [json.loads(row)["step"] for row in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_resume_refuses_a_damaged_or_foreign_checkpoint(world, capsys, tmp_path):
    out = copy_run(world, tmp_path)
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    line = refused(train_main, train_args(world, "--resume", out=out), capsys)
    assert "argument --resume:" in line and "is not a readable checkpoint" in line
    state = load_checkpoint(world["run"] / "checkpoint.pt")
    del state["meta"]  # as the Python API writes it without meta
    torch.save(state, out / "checkpoint.pt")
    assert "was not written by python -m tnn_ref.train" in refused(train_main, train_args(world, "--resume", out=out),
                                                                   capsys)


# --- python -m tnn_ref.evaluate -----------------------------------------------------------------------------------

def evaluate_args(world, *extra):
    return [str(world["run"] / "checkpoint.pt"), "--split", "valid", "--cache-dir", str(world["root"] / "cache"),
            *extra]


@pytest.mark.parametrize("extra, says", [
    (["--max-tokens", "-5"], "argument --max-tokens: must be a positive int"),  # was: scored data[:-4]
    (["--max-tokens", "0"], "argument --max-tokens: must be a positive int"),
    (["--max-tokens", "8", "--context", "16"], "--max-tokens=8 is shorter than one window of --context=16"),
    (["--context", "0"], "argument --context: must be a positive int"),
    (["--context", "16", "100000"], "--context=100000 needs at least 100001 tokens"),  # before the 16 is scored
    (["--batch-size", "0"], "argument --batch-size: must be a positive int"),
    (["--split", "train"], "argument --split: invalid choice"),
    (["--device", "tpu"], "argument --device: must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["--out", "/nonexistent-folder/rows.json"], "argument --out:"),
    (["--data", "/nonexistent-folder"], "argument --data:"),
])
def test_evaluate_refuses_bad_options(world, capsys, extra, says):
    line = refused(evaluate_main, evaluate_args(world, *extra), capsys, prog=EVALUATE)
    assert says in line, line
    assert "context " not in capsys.readouterr().out  # nothing was scored


def test_evaluate_refuses_a_missing_damaged_or_foreign_checkpoint(world, capsys, tmp_path):
    args = ["--cache-dir", str(world["root"] / "cache")]
    assert "argument checkpoint: no checkpoint file" in refused(
        evaluate_main, [str(tmp_path / "missing.pt"), *args], capsys, prog=EVALUATE)
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    assert "is not a readable checkpoint" in refused(evaluate_main, [str(tmp_path / "bad.pt"), *args], capsys,
                                                     prog=EVALUATE)
    state = load_checkpoint(world["run"] / "checkpoint.pt")
    torch.save({**state, "meta": {}}, tmp_path / "api.pt")
    assert "was not written by python -m tnn_ref.train" in refused(
        evaluate_main, [str(tmp_path / "api.pt"), *args], capsys, prog=EVALUATE)


def test_evaluate_scores_exactly_max_tokens(world, tmp_path):
    out = tmp_path / "rows.json"
    evaluate_main(evaluate_args(world, "--context", "16", "32", "--max-tokens", "64", "--out", str(out)))
    rows = json.loads(out.read_text())
    assert [row["tokens"] for row in rows] == [64, 64]


# --- python -m tnn_ref.bench ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, says", [
    (["toeplitz", "--sizes", "0"], "argument --sizes: must be a positive int"),
    (["toeplitz", "--sizes", "8", "-1"], "argument --sizes: must be a positive int"),
    (["toeplitz", "--sizes", "big"], "argument --sizes: must be a positive int"),
    (["toeplitz", "--device", "tpu"], "argument --device: must be cpu, cuda or cuda:N"),
    (["tno", "--autocast", "bf16"], "argument --autocast: bf16 is for --device cuda"),
    (["tno", "--autocast", "fp8"], "argument --autocast: invalid choice"),
    (["tno", "--bidirectional"], "argument --bidirectional: it chooses the blocks of the layers benchmark"),
    (["toeplitz", "--out", "/nonexistent-folder/bench.json"], "argument --out:"),
    (["everything"], "argument what: invalid choice"),
    ([], "the following arguments are required: what"),
])
def test_bench_refuses_bad_options(capsys, argv, says):
    assert says in refused(bench_main, argv, capsys, prog=BENCH)


@NO_CUDA
def test_bench_refuses_a_gpu_this_machine_lacks(capsys):
    assert "argument --device: cuda" in refused(bench_main, ["toeplitz", "--device", "cuda"], capsys, prog=BENCH)
