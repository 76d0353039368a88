"""`python -m tnn_ref.train` under torchrun: 2 gloo processes train like 1 process with the same global batch.

Each run is a real subprocess (torchrun starts the two workers), on a small text folder written here.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from tnn_ref.tasks.corpus import load_corpus
from tnn_ref.training.cli import load_model
from tnn_ref.training.evaluate import evaluate_lm

STEPS = 6
# 8 samples of 64 tokens per update: 1 process x 4 x 2 accumulation, or 2 processes x 4 x 1
COMMON = ["--data", None, "--model", "tiny", "--context", "64", "--tokens-per-update", "512", "--batch-size", "4",
          "--lr", "3e-3", "--warmup", "2", "--eval-every", "1", "--eval-tokens", "1024", "--checkpoint-every", "3",
          "--no-progress", "--device", "cpu"]


def run(args, processes=1, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = (launcher if processes > 1 else [sys.executable]) + ["-m", "tnn_ref.train", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def rows(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data = root / "text"
    data.mkdir()
    words = torch.randint(0, 40, (12_000,), generator=torch.Generator().manual_seed(0)).tolist()
    (data / "corpus.txt").write_text(" ".join(f"w{w}" for w in words) + "\n")  # ~50K characters
    args = [a if a is not None else str(data) for a in COMMON] + ["--cache-dir", str(root / "cache")]
    out = {}
    out["single"] = root / "single"
    run(args + ["--steps", str(STEPS), "--out", str(out["single"])])
    out["ddp"] = root / "ddp"
    out["ddp_stdout"] = run(args + ["--steps", str(STEPS), "--out", str(out["ddp"])], processes=2)
    out["resumed"] = root / "resumed"  # interrupted after 3 updates, then resumed to 6
    run(args + ["--steps", "3", "--out", str(out["resumed"])], processes=2)
    run(args + ["--steps", str(STEPS), "--out", str(out["resumed"]), "--resume"], processes=2)
    out["root"], out["data"] = root, data
    return out


def test_two_processes_match_one_with_the_same_global_batch(runs):
    single, ddp = rows(runs["single"]), rows(runs["ddp"])
    assert [r["step"] for r in ddp] == list(range(1, STEPS + 1))
    assert "2 process(es) x 4 samples x 1 accumulation = 8 samples" in runs["ddp_stdout"]
    # the same losses at every update (float32 sums in another order: within 1e-5 relative)
    for a, b in zip(single, ddp):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    assert ddp[-1]["train_loss"] < ddp[0]["train_loss"] - 0.5  # and it learned something
    # the same final weights
    w1 = torch.load(runs["single"] / "checkpoint.pt", weights_only=True)["model"]
    w2 = torch.load(runs["ddp"] / "checkpoint.pt", weights_only=True)["model"]
    assert w1.keys() == w2.keys()
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_ddp_checkpoint_loads_into_one_process_and_gives_the_same_outputs(runs):
    model, meta = load_model(runs["ddp"] / "checkpoint.pt")  # no "module." prefixes, config in the meta
    reference, _ = load_model(runs["single"] / "checkpoint.pt")
    corpus = load_corpus(meta["data"], tokenizer_json=meta["tokenizer"], cache=runs["root"] / "cache")
    tokens = torch.from_numpy(corpus.valid[:129].astype("int64"))[None]  # (1, 129)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), reference(tokens), rtol=1e-4, atol=1e-4)
    # and the validation loss the DDP run logged (split over 2 ranks) is what one process measures
    result = evaluate_lm(model, torch.from_numpy(corpus.valid.astype("int64")), 64, max_tokens=1024)
    assert result["loss"] == pytest.approx(rows(runs["ddp"])[-1]["val_loss"], rel=1e-5)


def test_resume_after_an_interruption_continues_with_the_same_losses(runs):
    uninterrupted, resumed = rows(runs["ddp"]), rows(runs["resumed"])
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    for a, b in zip(uninterrupted, resumed):
        assert b["train_loss"] == a["train_loss"], a["step"]  # exactly: same weights, state and batches
    final = torch.load(runs["resumed"] / "checkpoint.pt", weights_only=True)["model"]
    reference = torch.load(runs["ddp"] / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(final[k], reference[k]) for k in final)


def test_evaluate_command_reports_the_perplexity_of_a_checkpoint(runs, tmp_path):
    out = tmp_path / "eval.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "tnn_ref.evaluate", str(runs["ddp"] / "checkpoint.pt"), "--split",
                           "valid", "--context", "64", "256", "--max-tokens", "1024", "--cache-dir",
                           str(runs["root"] / "cache"), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads(out.read_text())
    assert [r["context"] for r in table] == [64, 256]
    assert table[0]["loss"] == pytest.approx(rows(runs["ddp"])[-1]["val_loss"], rel=1e-5)
    assert table[1]["ppl"] == pytest.approx(torch.tensor(table[1]["loss"]).exp().item(), rel=1e-6)


def test_command_line_refuses_bad_settings_clearly(runs, tmp_path):
    base = [sys.executable, "-m", "tnn_ref.train", "--data", str(runs["data"]), "--model", "tiny",
            "--cache-dir", str(runs["root"] / "cache"), "--out", str(tmp_path / "x"), "--steps", "1", "--warmup", "1"]
    cases = [(["--context", "64", "--tokens-per-update", "100"], "must be a multiple of --context"),
             (["--context", "64", "--tokens-per-update", "512", "--batch-size", "3"],
              "not a multiple of --batch-size x processes (3 x 1)"),
             (["--context", "0"], "argument --context: must be a positive int")]
    for extra, message in cases:
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
        assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr  # one line, no traceback


def test_under_torchrun_a_misuse_stops_every_process_and_is_said_once(runs, tmp_path):
    """8 samples per update fit --batch-size 8 in one process, not in two (2 x 8): found after joining the group."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = [a if a is not None else str(runs["data"]) for a in COMMON] + [
        "--cache-dir", str(runs["root"] / "cache"), "--out", str(tmp_path / "x"), "--steps", "2", "--batch-size", "8"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(launcher + ["-m", "tnn_ref.train", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "python -m tnn_ref.train: error:" in line]
    assert len(lines) == 1 and "(8 x 2)" in lines[0], done.stderr[-3000:]
    assert "exitcode  : 2" in done.stderr or "exitcode: 2" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "x" / "checkpoint.pt").exists()


def test_help_describes_the_torchrun_use():
    done = subprocess.run([sys.executable, "-m", "tnn_ref.train", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for text in ("torchrun", "--tokens-per-update", "paper_lm", "wikitext103", "--resume"):
        assert text in done.stdout
