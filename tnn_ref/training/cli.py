"""The command lines: `python -m tnn_ref.train` and `python -m tnn_ref.evaluate`, also under torchrun.

    python -m tnn_ref.train --model small --data tinyshakespeare --tokens-per-update 4096 --steps 2000
    torchrun --nproc_per_node=8 -m tnn_ref.train --model paper_lm --data wikitext103 --tokenizer bpe
    python -m tnn_ref.evaluate runs/tnn/checkpoint.pt --split test --context 512 1024 2048 4096

A run folder holds checkpoint.pt (weights, optimiser, history, and the model configuration and
tokenizer in `meta`, enough to rebuild both), metrics.jsonl (one row per evaluation) and args.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import torch

from tnn_ref.baselines import TransformerConfig, TransformerLM
from tnn_ref.model import TnnConfig, TnnLM, count_parameters
from tnn_ref.tasks.bpe import PAPER_VOCAB_SIZE
from tnn_ref.tasks.corpus import TOKENIZERS, load_corpus, tokenizer_to_json
from tnn_ref.training import distributed
from tnn_ref.training.evaluate import evaluate_lm
from tnn_ref.training.loop import SCHEDULES, TrainConfig, load_checkpoint, mixed_precision, pick_device, train
from tnn_ref.training.sharding import ShardedLmTask

# name -> (kind, configuration for a vocabulary of V tokens)
PRESETS = {
    "paper_lm": ("tnn", lambda v: TnnConfig.paper_lm().with_(vocab_size=v)),
    "paper_lm_transformer": ("transformer", lambda v: TransformerConfig.paper_lm().with_(vocab_size=v)),
    "small": ("tnn", lambda v: TnnConfig(vocab_size=v, dim=128, layers=4, expand=3, glu_dim=128, rpe_dim=32,
                                         rpe_layers=3, decay=0.99)),  # notebook 06's model
    "small_transformer": ("transformer", lambda v: TransformerConfig(vocab_size=v, dim=128, layers=4, heads=4)),
    "tiny": ("tnn", lambda v: TnnConfig(vocab_size=v, dim=32, layers=2, expand=2, glu_dim=32, rpe_dim=16,
                                        rpe_layers=1, decay=0.99)),  # for smoke tests
    "tiny_transformer": ("transformer", lambda v: TransformerConfig(vocab_size=v, dim=32, layers=2, heads=2)),
}
# 128 samples of 512 tokens per update, as the TNN family's WikiText-103 scripts use (SKI-TNN's alm script:
# UPDATE_FREQ = 128 / MAX_SENTENCES / GPUS); the paper states 512-token samples but not the batch
PAPER_TOKENS_PER_UPDATE = 128 * 512


def build_model(kind: str, config: dict) -> torch.nn.Module:
    """A language model from the (kind, configuration) a checkpoint's meta holds."""
    if kind == "tnn":
        return TnnLM(TnnConfig(**config))
    if kind == "transformer":
        return TransformerLM(TransformerConfig(**config))
    raise ValueError(f"model kind must be 'tnn' or 'transformer', got {kind!r}")


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data-dir", default=None,
                       help="folder holding the data files (default: $TNN_DATA_DIR, then the cache, then a download)")
    group.add_argument("--cache-dir", default=None,
                       help="where the tokenizer and token arrays are cached (default: beside the data if writable, "
                            "else ~/.cache/tnn_ref/tokens; Tiny Shakespeare always the latter)")


def _parser(module: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m {module}", description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def train_parser() -> argparse.ArgumentParser:
    parser = _parser("tnn_ref.train", "Train a TNN (or Transformer) language model; the same command runs under "
                     "`torchrun --nproc_per_node=N -m tnn_ref.train ...` on N GPUs (NCCL) or CPU processes (gloo).")
    parser.add_argument("--model", choices=sorted(PRESETS), default="small",
                        help="paper_lm: the paper's 48.7M WikiText-103 TNN; paper_lm_transformer: its Transformer "
                             "baseline; small*: notebook 06's models; tiny*: smoke tests")
    parser.add_argument("--data", default="tinyshakespeare",
                        help="'tinyshakespeare', 'wikitext103', or a folder of text files (wiki.{train,valid,test}.raw, "
                             "{train,valid,test}.txt, or any *.txt cut 90/5/5)")
    parser.add_argument("--tokenizer", choices=TOKENIZERS, default="char",
                        help="char: the corpus's characters; bpe: byte-level BPE learned on the training split")
    parser.add_argument("--vocab-size", type=int, default=PAPER_VOCAB_SIZE, help="BPE vocabulary size (GPT-2's)")
    parser.add_argument("--pad-vocab-to", type=int, default=0,
                        help="give the model at least this many token rows (e.g. 50265 for the paper's parameter "
                             "count when a small corpus's BPE stops short of it); 0: exactly the tokenizer's size")
    _data_arguments(parser)
    batch = parser.add_argument_group("batches")
    batch.add_argument("--context", type=int, default=512, help="tokens per training sample")
    batch.add_argument("--tokens-per-update", type=int, default=PAPER_TOKENS_PER_UPDATE,
                       help="tokens per optimiser update over all processes; gradient accumulation makes up the "
                            "difference: accumulation = tokens-per-update / (context x batch-size x processes)")
    batch.add_argument("--batch-size", type=int, default=8, help="samples per forward pass in each process")
    optim = parser.add_argument_group("optimiser (defaults: the paper's recipe)")
    optim.add_argument("--steps", type=int, default=50_000, help="optimiser updates")
    optim.add_argument("--lr", type=float, default=5e-4)
    optim.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.98))
    optim.add_argument("--warmup", type=int, default=4000)
    optim.add_argument("--schedule", choices=SCHEDULES, default="inverse_sqrt")
    optim.add_argument("--weight-decay", type=float, default=0.2)
    optim.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping (0: none)")
    optim.add_argument("--seed", type=int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--out", default="runs/tnn", help="run folder: checkpoint.pt, metrics.jsonl, args.json")
    run.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    run.add_argument("--eval-every", type=int, default=1000, help="validate every this many updates")
    run.add_argument("--eval-tokens", type=int, default=None, help="validate on the first this many tokens (default: all)")
    run.add_argument("--checkpoint-every", type=int, default=1000)
    run.add_argument("--time-budget", type=float, default=None, help="stop after this many training seconds")
    run.add_argument("--device", default="auto", help="auto (CUDA with bf16 autocast when present), cuda or cpu")
    run.add_argument("--prepare-only", action="store_true", help="build the tokenizer and token caches, then exit")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _say(*parts) -> None:
    if distributed.place().is_main:
        print(*parts, flush=True)


def train_main(argv=None) -> None:
    args = train_parser().parse_args(argv)
    here = distributed.setup(args.device)
    try:
        _train(args, here)
    finally:
        distributed.teardown()


def _train(args, here: distributed.Place) -> None:
    for name in ("context", "tokens_per_update", "batch_size", "vocab_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.tokens_per_update % args.context:
        raise SystemExit(f"--tokens-per-update ({args.tokens_per_update}) must be a multiple of --context ({args.context})")
    data = str(Path(args.data).resolve()) if Path(args.data).is_dir() else args.data
    corpus = distributed.first_on_each_machine(
        lambda: load_corpus(data, args.tokenizer, args.vocab_size, args.data_dir, args.cache_dir))
    _say(f"{corpus.name}: {len(corpus.train):,} / {len(corpus.valid):,} / {len(corpus.test):,} tokens "
         f"(train / valid / test), {args.tokenizer} vocabulary of {len(corpus.tokenizer):,}")
    if args.prepare_only:
        return
    kind, make_config = PRESETS[args.model]
    config = make_config(max(len(corpus.tokenizer), args.pad_vocab_to))
    torch.manual_seed(args.seed)  # the initial weights depend on the seed alone (DDP then copies rank 0's)
    model = build_model(kind, asdict(config))
    try:
        task = ShardedLmTask(corpus.train, corpus.valid, args.context, args.tokens_per_update // args.context,
                             args.batch_size, seed=args.seed, eval_tokens=args.eval_tokens)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    out = Path(args.out)
    if here.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "args.json").write_text(json.dumps(vars(args), indent=1))
    _say(f"{args.model}: {count_parameters(model):,} parameters | {here.world} process(es) x {args.batch_size} samples "
         f"x {task.sampler.accumulation} accumulation = {task.sampler.sequences_per_update} samples of {args.context} "
         f"tokens per update | {task.sampler.updates_per_epoch:,} updates per epoch")
    config_train = TrainConfig(steps=args.steps, lr=args.lr, betas=tuple(args.betas), weight_decay=args.weight_decay,
                               warmup=args.warmup, schedule=args.schedule, clip=args.clip or None,
                               eval_every=args.eval_every, seed=args.seed, time_budget_s=args.time_budget,
                               device=args.device, log_path=str(out / "metrics.jsonl"),
                               checkpoint_path=str(out / "checkpoint.pt"), checkpoint_every=args.checkpoint_every,
                               progress=not args.no_progress)
    meta = {"preset": args.model, "kind": kind, "model_config": asdict(config), "data": data,
            "tokenizer": tokenizer_to_json(corpus.tokenizer), "context": args.context}
    result = train(model, task, config_train, resume=args.resume, meta=meta)
    last = result.history[-1] if result.history else {}
    _say(f"done: {result.steps_done} updates, {result.train_seconds:.1f} s training, "
         f"valid loss {last.get('val_loss', math.nan):.4f} (ppl {last.get('val_ppl', math.nan):.2f}), "
         f"{last.get('tokens_per_s', math.nan):,.0f} tokens/s; checkpoint {out / 'checkpoint.pt'}")


def evaluate_parser() -> argparse.ArgumentParser:
    parser = _parser("tnn_ref.evaluate", "Perplexity of a `python -m tnn_ref.train` checkpoint on one split at one "
                     "or more context lengths (the length-extrapolation table); runs under torchrun too.")
    parser.add_argument("checkpoint", help="a checkpoint.pt written by python -m tnn_ref.train")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--context", type=int, nargs="+", default=None,
                        help="evaluation lengths (default: the training context)")
    parser.add_argument("--batch-size", type=int, default=1, help="windows per forward pass")
    parser.add_argument("--max-tokens", type=int, default=None, help="score only the first this many tokens")
    parser.add_argument("--data", default=None, help="override the data the checkpoint was trained on")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    _data_arguments(parser)
    return parser


def evaluate_main(argv=None) -> None:
    args = evaluate_parser().parse_args(argv)
    here = distributed.setup(args.device)
    try:
        rows = evaluate_checkpoint(args)
        if here.is_main and args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
    finally:
        distributed.teardown()


def load_model(checkpoint: str | os.PathLike, device="cpu") -> tuple[torch.nn.Module, dict]:
    """The trained model of a `python -m tnn_ref.train` checkpoint (in eval mode) and the checkpoint's meta."""
    state = load_checkpoint(checkpoint, map_location="cpu")
    meta = state.get("meta") or {}
    if "kind" not in meta:
        raise ValueError(f"{checkpoint} has no model description (meta): it was not written by python -m tnn_ref.train")
    model = build_model(meta["kind"], meta["model_config"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), meta


def evaluate_checkpoint(args) -> list[dict]:
    device = pick_device(args.device)
    model, meta = load_model(args.checkpoint, device)
    corpus = distributed.first_on_each_machine(
        lambda: load_corpus(args.data or meta["data"], data_dir=args.data_dir, cache=args.cache_dir,
                            tokenizer_json=meta["tokenizer"]))
    data = torch.from_numpy(corpus.split(args.split).astype("int64"))
    autocast = mixed_precision(device)
    rows = []
    _say(f"{'context':>8s} {'tokens':>11s} {'loss':>8s} {'ppl':>9s}")
    for context in args.context or [meta["context"]]:
        with autocast:
            result = evaluate_lm(model, data, context, args.batch_size, args.max_tokens, device, distributed=True)
        rows.append({"split": args.split, "context": context, **result})
        _say(f"{context:8d} {result['tokens']:11,d} {result['loss']:8.4f} {result['ppl']:9.2f}")
    return rows

