"""The command lines: `python -m tnn_ref.train` and `python -m tnn_ref.evaluate`, also under torchrun.

    python -m tnn_ref.train --model small --data tinyshakespeare --tokens-per-update 4096 --steps 2000
    torchrun --nproc_per_node=8 -m tnn_ref.train --model paper_lm --data wikitext103 --tokenizer bpe
    python -m tnn_ref.evaluate runs/tnn/checkpoint.pt --split test --context 512 1024 2048 4096

A run folder holds checkpoint.pt (weights, optimiser, history, and the model configuration, tokenizer
and command-line arguments in `meta`, enough to rebuild all three), metrics.jsonl (one row per
evaluation) and args.json.

Every option is checked, against the others and against the data, before the first update: a misuse
ends in one line `python -m tnn_ref.train: error: ...` and exit status 2 (under torchrun every
process exits, rank 0 prints), never in a traceback minutes into a run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import torch

from tnn_ref import checks
from tnn_ref.baselines import TransformerConfig, TransformerLM
from tnn_ref.model import TnnConfig, TnnLM, count_parameters
from tnn_ref.tasks.bpe import PAPER_VOCAB_SIZE
from tnn_ref.tasks.corpus import TOKENIZERS, load_corpus, tokenizer_to_json
from tnn_ref.training import distributed
from tnn_ref.training.evaluate import evaluate_lm, require_eval_window
from tnn_ref.training.loop import (
    SCHEDULES,
    SEED_LIMIT,
    TrainConfig,
    load_checkpoint,
    mixed_precision,
    parse_device,
    pick_device,
    require_available,
    train,
)
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
NAMED_CORPORA = ("tinyshakespeare", "wikitext103")
BPE_MIN_VOCAB = 258  # 256 bytes + the end-of-text token, then at least one merge

# What --resume compares with the checkpoint's run. The weights' shapes and the meaning of the token ids
# depend on RESUME_FIXED, so these never change; RESUME_OVERRIDABLE change only when --resume-override
# names them (steps: under the cosine schedule only, whose decay it sets; else it may grow freely).
# Everything else may change: --batch-size (memory only: the same samples per update), --eval-every,
# --checkpoint-every, --time-budget (the total over all resumes), --device, --no-progress, the folders.
RESUME_FIXED = ("model", "tokenizer", "vocab_size", "pad_vocab_to")
RESUME_OVERRIDABLE = ("data", "context", "tokens_per_update", "lr", "betas", "warmup", "schedule", "weight_decay",
                      "clip", "seed", "eval_tokens", "steps")


class OneLineParser(checks.OneLineParser):
    """Under torchrun every process exits 2 but only rank 0 prints, so the line appears once."""

    def speaks(self) -> bool:
        return distributed.is_main_process()


_number = checks.argument_type
positive_int = checks.positive_int_argument
nonnegative_int = _number(int, "an int >= 0", lambda v: v >= 0)
seed_int = _number(int, "an int in [0, 2**32)", lambda v: 0 <= v < SEED_LIMIT)
positive_float = _number(float, "a positive finite number", lambda v: math.isfinite(v) and v > 0)
nonnegative_float = _number(float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)
beta_float = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)  # NaN fails both comparisons


def device_name(text: str) -> str:
    """An argparse type: 'auto', 'cpu', 'cuda' or 'cuda:N' (whether it exists is checked after parsing)."""
    try:
        parse_device(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {text!r}") from None
    return text


def resume_fields(text: str) -> list[str]:
    """An argparse type: comma-separated option names of RESUME_OVERRIDABLE (with or without dashes)."""
    names = [name.strip().lstrip("-").replace("-", "_") for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in RESUME_OVERRIDABLE]
    if unknown or not names:
        accepted = ",".join(name.replace("_", "-") for name in RESUME_OVERRIDABLE)
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of {accepted}; got {text!r}")
    return names


@contextlib.contextmanager
def _usage_errors(parser: argparse.ArgumentParser, option: str | None = None, also: tuple = ()):
    """Setup's refusals (a check's ValueError or TypeError, a missing file) as the parser's one-line error.

    Only around setup: an error inside training is a bug to see in full, not a usage message.
    """
    try:
        yield
    except (ValueError, TypeError, FileNotFoundError, *also) as error:
        parser.error(f"argument {option}: {error}" if option else str(error))


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
                       help="folder holding the data files (default: %(default)s: $TNN_DATA_DIR, then the cache, "
                            "then a download)")
    group.add_argument("--cache-dir", default=None,
                       help="where the tokenizer and token arrays are cached (default: %(default)s: beside the data if "
                            "writable, else ~/.cache/tnn_ref/tokens; Tiny Shakespeare always the latter)")


def _parser(module: str, description: str) -> argparse.ArgumentParser:
    return OneLineParser(prog=f"python -m {module}", description=description,
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
    parser.add_argument("--vocab-size", type=positive_int, default=PAPER_VOCAB_SIZE,
                        help=f"BPE vocabulary size (GPT-2's; at least {BPE_MIN_VOCAB})")
    parser.add_argument("--pad-vocab-to", type=nonnegative_int, default=0,
                        help="give the model exactly this many token rows, at least the tokenizer's size (e.g. 50265 "
                             "for the paper's parameter count when a small corpus's BPE stops short of it); "
                             "0: exactly the tokenizer's size")
    _data_arguments(parser)
    batch = parser.add_argument_group("batches")
    batch.add_argument("--context", type=positive_int, default=512, help="tokens per training sample")
    batch.add_argument("--tokens-per-update", type=positive_int, default=PAPER_TOKENS_PER_UPDATE,
                       help="tokens per optimiser update over all processes; gradient accumulation makes up the "
                            "difference: accumulation = tokens-per-update / (context x batch-size x processes), "
                            "a whole number")
    batch.add_argument("--batch-size", type=positive_int, default=8, help="samples per forward pass in each process")
    optim = parser.add_argument_group("optimiser (defaults: the paper's recipe)")
    optim.add_argument("--steps", type=positive_int, default=50_000, help="optimiser updates")
    optim.add_argument("--lr", type=positive_float, default=5e-4)
    optim.add_argument("--betas", type=beta_float, nargs=2, default=(0.9, 0.98))
    optim.add_argument("--warmup", type=nonnegative_int, default=4000,
                       help="linear warmup updates, at most --steps (unused by --schedule constant)")
    optim.add_argument("--schedule", choices=SCHEDULES, default="inverse_sqrt")
    optim.add_argument("--weight-decay", type=nonnegative_float, default=0.2)
    optim.add_argument("--clip", type=nonnegative_float, default=1.0, help="gradient-norm clipping (0: none)")
    optim.add_argument("--seed", type=seed_int, default=0)
    run = parser.add_argument_group("run")
    run.add_argument("--out", default="runs/tnn", help="run folder: checkpoint.pt, metrics.jsonl, args.json; a new "
                     "run refuses a folder that already holds a checkpoint (pass --resume, or another --out)")
    run.add_argument("--resume", action="store_true",
                     help="continue from OUT/checkpoint.pt if it exists (else start there). The checkpoint's settings "
                          "are compared with this command line's: --model, --tokenizer, --vocab-size and "
                          "--pad-vocab-to never change; a change of --data, --context, --tokens-per-update, --lr, "
                          "--betas, --warmup, --schedule, --weight-decay, --clip, --seed, --eval-tokens (or --steps "
                          "under the cosine schedule) is refused unless --resume-override names it; --steps may "
                          "grow, and the other options may change freely")
    run.add_argument("--resume-override", type=resume_fields, default=[], metavar="NAME[,NAME...]",
                     help="with --resume: continue with these changed settings, e.g. lr,tokens-per-update "
                          "(default: %(default)s)")
    run.add_argument("--eval-every", type=positive_int, default=1000, help="validate every this many updates")
    run.add_argument("--eval-tokens", type=positive_int, default=None,
                     help="validate on the first this many tokens, at least --context (default: %(default)s: all)")
    run.add_argument("--checkpoint-every", type=positive_int, default=1000,
                     help="write OUT/checkpoint.pt every this many updates (and at the end)")
    run.add_argument("--time-budget", type=positive_float, default=None,
                     help="stop after this many training seconds, in total over all resumes "
                          "(default: %(default)s: no limit)")
    run.add_argument("--device", type=device_name, default="auto",
                     help="auto (CUDA with bf16 autocast when present), cpu, cuda or cuda:N (not under torchrun: "
                          "there each process takes GPU LOCAL_RANK)")
    run.add_argument("--prepare-only", action="store_true", help="build the tokenizer and token caches, then exit")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _say(*parts) -> None:
    if distributed.place().is_main:
        print(*parts, flush=True)


def _resolved_data(data: str) -> str:
    return str(Path(data).resolve()) if Path(data).is_dir() else data


def _check_data_arguments(parser: argparse.ArgumentParser, args) -> None:
    """--data (when given) names a corpus or an existing folder; --data-dir exists; --cache-dir is no file."""
    if args.data is not None and args.data not in NAMED_CORPORA and not Path(args.data).is_dir():
        parser.error(f"argument --data: must be {' or '.join(NAMED_CORPORA)} or a folder of text files; "
                     f"{args.data!r} is neither")
    if args.data_dir is not None and not Path(args.data_dir).exists():
        parser.error(f"argument --data-dir: {args.data_dir!r} does not exist")
    if args.data_dir is not None and args.data is not None and args.data not in NAMED_CORPORA:
        parser.error(f"argument --data-dir: only for --data {' or '.join(NAMED_CORPORA)}; --data {args.data!r} is "
                     "already the folder to read")
    if args.cache_dir is not None and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        parser.error(f"argument --cache-dir: {args.cache_dir!r} is a file, not a folder")


def _check_device(parser: argparse.ArgumentParser, name: str) -> None:
    """The --device exists here, and names no one GPU for all the processes of a torchrun job."""
    device = parse_device(name)
    if device is None:
        return
    if device.index is not None and distributed.launched_by_torchrun():
        parser.error(f"argument --device: under torchrun each process takes GPU LOCAL_RANK: pass --device "
                     f"{device.type}, not {name}")
    with _usage_errors(parser, "--device"):
        require_available(device)


def _check_train_options(parser: argparse.ArgumentParser, args) -> None:
    """The checks that need neither the data nor the process group: options against each other."""
    if args.tokens_per_update % args.context:
        parser.error(f"argument --tokens-per-update: must be a multiple of --context ({args.context}), "
                     f"got {args.tokens_per_update}")
    if args.schedule != "constant" and args.warmup > args.steps:
        parser.error(f"argument --warmup: {args.warmup} updates of warmup is more than --steps ({args.steps}): the "
                     f"learning rate would never reach --lr; pass --warmup {args.steps} or less")
    if args.tokenizer == "bpe" and args.vocab_size < BPE_MIN_VOCAB:
        parser.error(f"argument --vocab-size: must be at least {BPE_MIN_VOCAB} for --tokenizer bpe (256 bytes, the "
                     f"end-of-text token and one merge), got {args.vocab_size}")
    if args.prepare_only and args.resume:
        parser.error("argument --prepare-only: builds the caches and exits, so it cannot be combined with --resume")
    if args.resume_override and not args.resume:
        parser.error("argument --resume-override: only means something with --resume")
    _check_data_arguments(parser, args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"argument --out: {args.out!r} is a file, not a run folder")
    if not (args.resume or args.prepare_only) and (out / "checkpoint.pt").exists():
        parser.error(f"argument --out: {args.out!r} already holds a run (checkpoint.pt), which a new run would "
                     "overwrite: pass --resume to continue it, or another --out")
    _check_device(parser, args.device)


def _check_world(parser: argparse.ArgumentParser, args, world: int) -> None:
    """An update's samples must split evenly into --batch-size samples on each of the `world` processes."""
    samples = args.tokens_per_update // args.context
    if samples % (args.batch_size * world):
        parser.error(f"argument --tokens-per-update: {args.tokens_per_update} tokens = {samples} samples of "
                     f"--context {args.context} per update, not a multiple of --batch-size x processes "
                     f"({args.batch_size} x {world}); change --tokens-per-update or --batch-size")


def train_main(argv=None) -> None:
    parser = train_parser()
    args = parser.parse_args(argv)
    _check_train_options(parser, args)
    with _usage_errors(parser, "--device"):
        here = distributed.setup(args.device)
    try:
        _train(parser, args, here)
    finally:
        distributed.teardown()


def _read_json(path: Path) -> dict:
    """A JSON object from a file; {} when it is missing or damaged (it only completes what is known)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _checkpoint_args(state: dict, out: Path) -> dict:
    """The command-line values of the run that wrote `state`: its meta["args"]; for a checkpoint written before
    those were stored, what its config and meta say, completed from OUT/args.json."""
    meta = state.get("meta") or {}
    if "args" in meta:
        return dict(meta["args"])
    config = state.get("config") or {}
    stored = _read_json(out / "args.json")
    stored.update({key: config[key] for key in ("lr", "betas", "warmup", "schedule", "weight_decay", "seed", "steps")
                   if key in config})
    if "clip" in config:
        stored["clip"] = config["clip"] or 0.0
    if "tokenizer" in meta:
        stored["tokenizer"] = json.loads(meta["tokenizer"])["kind"]
    stored.update({key: meta[name] for key, name in (("model", "preset"), ("data", "data"), ("context", "context"))
                   if name in meta})
    return stored


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value


def _resume_changes(stored: dict, now: dict) -> list[str]:
    """The compared options whose value on the command line differs from the checkpoint's run."""
    changed = []
    for name in RESUME_FIXED + RESUME_OVERRIDABLE:
        if name not in stored or (name == "vocab_size" and now["tokenizer"] != "bpe"):
            continue
        if name == "steps" and now["schedule"] != "cosine":
            continue  # checked apart: it may grow
        if _plain(stored[name]) != _plain(now[name]):
            changed.append(name)
    return changed


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_resume(parser: argparse.ArgumentParser, args, state: dict, now: dict) -> None:
    """Refuse a resume whose command line changes the run, naming each changed option (old -> new)."""
    stored = _checkpoint_args(state, Path(args.out))
    changed = _resume_changes(stored, now)
    fixed = [name for name in changed if name in RESUME_FIXED]
    refused = [name for name in changed if name not in RESUME_FIXED and name not in args.resume_override]
    if fixed or refused:
        where = f"the checkpoint in {args.out!r} was trained with other settings: "
        listed = "; ".join(f"{_option(name)} {_plain(stored[name])!r} -> {_plain(now[name])!r}"
                           for name in fixed + refused)
        advice = []
        if refused:
            advice.append(f"pass --resume-override {','.join(n.replace('_', '-') for n in refused)} to continue with "
                          "the new values")
        if fixed:
            advice.append(f"{', '.join(map(_option, fixed))} cannot change in a run (the weights depend on them): "
                          "start a new run in another --out")
        parser.error(f"argument --resume: {where}{listed}; {'; '.join(advice)}")
    done = state["step"]
    if args.steps < done:
        parser.error(f"argument --steps: the checkpoint in {args.out!r} has done {done} updates already, more than "
                     f"--steps {args.steps}: pass --steps {done} or more")
    if args.time_budget is not None and args.time_budget <= state["train_seconds"]:
        parser.error(f"argument --time-budget: the checkpoint's run has trained {state['train_seconds']:.1f} s "
                     f"already (the budget counts all of a run): pass more than that")


def _read_resume_state(parser: argparse.ArgumentParser, args) -> dict | None:
    """OUT/checkpoint.pt's contents (tensors memory-mapped, not read) when resuming and it exists."""
    path = Path(args.out) / "checkpoint.pt"
    if not (args.resume and path.exists()):
        return None
    with _usage_errors(parser, "--resume"):
        state = load_checkpoint(path, mmap=True)
    lacks = [key for key in ("step", "train_seconds", "config", "meta") if key not in state]
    if lacks or "tokenizer" not in state["meta"]:
        parser.error(f"argument --resume: {str(path)!r} was not written by python -m tnn_ref.train (it lacks "
                     f"{', '.join(lacks) or 'meta tokenizer'})")
    return state


def _check_corpus(parser: argparse.ArgumentParser, args, corpus) -> None:
    """The options that the data decides: the vocabulary padding and the validation window."""
    if 0 < args.pad_vocab_to < len(corpus.tokenizer):
        parser.error(f"argument --pad-vocab-to: {args.pad_vocab_to} is fewer rows than the tokenizer's "
                     f"{len(corpus.tokenizer):,} tokens: pass 0 (the tokenizer's size) or at least "
                     f"{len(corpus.tokenizer)}")
    with _usage_errors(parser):
        require_eval_window(len(corpus.valid), args.context, args.eval_tokens, context_name="--context",
                            limit_name="--eval-tokens",
                            data_name=f"the validation split of {corpus.name}")


def _check_same_model(parser: argparse.ArgumentParser, state: dict, kind: str, config: dict) -> None:
    """A resumed run must build the model whose weights the checkpoint holds."""
    stored_kind, stored = state["meta"].get("kind"), state["meta"].get("model_config", {})
    differ = [f"{key} {stored.get(key)!r} -> {config.get(key)!r}" for key in sorted(set(stored) | set(config))
              if stored.get(key) != config.get(key)]
    if stored_kind != kind or differ:
        parser.error(f"argument --resume: the checkpoint holds another model ({stored_kind} -> {kind}; "
                     f"{', '.join(differ) or 'same configuration'}): start a new run in another --out")


def _train(parser: argparse.ArgumentParser, args, here: distributed.Place) -> None:
    _check_world(parser, args, here.world)
    data = _resolved_data(args.data)
    run_args = {**vars(args), "data": data}  # stored in the checkpoint, for the next --resume to compare
    state = _read_resume_state(parser, args)
    if state is not None:
        _check_resume(parser, args, state, run_args)
    # a resumed run keeps the checkpoint's tokenizer: its token ids are what the weights learned
    saved_tokenizer = state["meta"]["tokenizer"] if state is not None else None
    with _usage_errors(parser, "--data"):
        corpus = distributed.first_on_each_machine(
            lambda: load_corpus(data, args.tokenizer, args.vocab_size, args.data_dir, args.cache_dir,
                                tokenizer_json=saved_tokenizer))
    _say(f"{corpus.name}: {len(corpus.train):,} / {len(corpus.valid):,} / {len(corpus.test):,} tokens "
         f"(train / valid / test), {args.tokenizer} vocabulary of {len(corpus.tokenizer):,}")
    if args.prepare_only:
        return
    _check_corpus(parser, args, corpus)
    kind, make_config = PRESETS[args.model]
    config = make_config(max(len(corpus.tokenizer), args.pad_vocab_to))
    if state is not None:
        _check_same_model(parser, state, kind, asdict(config))
    torch.manual_seed(args.seed)  # the initial weights depend on the seed alone (DDP then copies rank 0's)
    with _usage_errors(parser, "--model", also=(RuntimeError, MemoryError)):  # RuntimeError: torch's failed allocation
        model = build_model(kind, asdict(config))
    with _usage_errors(parser, "--tokens-per-update"):
        task = ShardedLmTask(corpus.train, corpus.valid, args.context, args.tokens_per_update // args.context,
                             args.batch_size, seed=args.seed, eval_tokens=args.eval_tokens)
    out = Path(args.out)
    with _usage_errors(parser):
        config_train = TrainConfig(steps=args.steps, lr=args.lr, betas=tuple(args.betas),
                                   weight_decay=args.weight_decay, warmup=args.warmup, schedule=args.schedule,
                                   clip=args.clip or None, eval_every=args.eval_every, seed=args.seed,
                                   time_budget_s=args.time_budget, device=args.device,
                                   log_path=str(out / "metrics.jsonl"), checkpoint_path=str(out / "checkpoint.pt"),
                                   checkpoint_every=args.checkpoint_every, progress=not args.no_progress)
    if here.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "args.json").write_text(json.dumps(run_args, indent=1))
    _say(f"{args.model}: {count_parameters(model):,} parameters | {here.world} process(es) x {args.batch_size} samples "
         f"x {task.sampler.accumulation} accumulation = {task.sampler.sequences_per_update} samples of {args.context} "
         f"tokens per update | {task.sampler.updates_per_epoch:,} updates per epoch")
    if args.resume:
        _say(f"resuming from update {state['step']:,}" if state is not None
             else f"no checkpoint in {out} yet: a new run")
    meta = {"preset": args.model, "kind": kind, "model_config": asdict(config), "data": data,
            "tokenizer": tokenizer_to_json(corpus.tokenizer), "context": args.context, "args": run_args}
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
    parser.add_argument("--context", type=positive_int, nargs="+", default=None,
                        help="evaluation lengths (default: %(default)s: the training context)")
    parser.add_argument("--batch-size", type=positive_int, default=1, help="windows per forward pass")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="score only the first this many tokens, at least the largest --context "
                             "(default: %(default)s: all)")
    parser.add_argument("--data", default=None, help="override the data the checkpoint was trained on")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    _data_arguments(parser)
    return parser


def _check_evaluate_options(parser: argparse.ArgumentParser, args) -> None:
    """The checks that need no checkpoint contents: the files and folders, the device."""
    if not Path(args.checkpoint).is_file():
        parser.error(f"argument checkpoint: no checkpoint file at {args.checkpoint!r}")
    _check_data_arguments(parser, args)
    if args.out is not None and (Path(args.out).is_dir() or not Path(args.out).resolve().parent.is_dir()):
        parser.error(f"argument --out: {args.out!r} must be a file path in an existing folder (checked now, not after "
                     "the evaluation)")
    _check_device(parser, args.device)


def evaluate_main(argv=None) -> None:
    parser = evaluate_parser()
    args = parser.parse_args(argv)
    _check_evaluate_options(parser, args)
    with _usage_errors(parser, "--device"):
        here = distributed.setup(args.device)
    try:
        with _usage_errors(parser):
            prepared = _prepare_evaluation(args)
        rows = _evaluate_rows(args, *prepared)
        if here.is_main and args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
    finally:
        distributed.teardown()


def load_model(checkpoint: str | os.PathLike, device="cpu") -> tuple[torch.nn.Module, dict]:
    """The trained model of a `python -m tnn_ref.train` checkpoint (in eval mode) and the checkpoint's meta."""
    state = load_checkpoint(checkpoint, map_location="cpu")
    meta = state.get("meta") or {}
    if not {"kind", "model_config", "tokenizer", "data", "context"} <= set(meta):
        raise ValueError(f"{checkpoint} has no model description (meta): it was not written by python -m tnn_ref.train")
    model = build_model(meta["kind"], meta["model_config"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:  # missing, unexpected or misshapen weights
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(f"{checkpoint}: its weights do not fit the model its meta describes ({first_line})") from error
    return model.to(device).eval(), meta


def _prepare_evaluation(args) -> tuple[torch.nn.Module, torch.Tensor, list[int], torch.device]:
    """The model, the split's tokens (n,), the context lengths and the device; every length checked first."""
    device = pick_device(args.device)
    try:
        model, meta = load_model(args.checkpoint, device)
    except ValueError as error:
        raise ValueError(f"argument checkpoint: {error}") from error
    try:
        corpus = distributed.first_on_each_machine(
            lambda: load_corpus(args.data or meta["data"], data_dir=args.data_dir, cache=args.cache_dir,
                                tokenizer_json=meta["tokenizer"]))
    except (ValueError, FileNotFoundError) as error:
        hint = "" if args.data else " (the checkpoint's data: pass --data to point at it)"
        raise ValueError(f"argument --data: {error}{hint}") from error
    data = torch.from_numpy(corpus.split(args.split).astype("int64"))  # (n,)
    contexts = args.context or [meta["context"]]
    for context in contexts:  # all of them now, so no length fails after the others were computed
        require_eval_window(len(data), context, args.max_tokens, context_name="--context", limit_name="--max-tokens",
                            data_name=f"the {args.split} split")
    return model, data, contexts, device


def _evaluate_rows(args, model, data: torch.Tensor, contexts: list[int], device: torch.device) -> list[dict]:
    autocast = mixed_precision(device)
    rows = []
    _say(f"{'context':>8s} {'tokens':>11s} {'loss':>8s} {'ppl':>9s}")
    for context in contexts:
        with autocast:
            result = evaluate_lm(model, data, context, args.batch_size, args.max_tokens, device, distributed=True)
        rows.append({"split": args.split, "context": context, **result})
        _say(f"{context:8d} {result['tokens']:11,d} {result['loss']:8.4f} {result['ppl']:9.2f}")
    return rows


def evaluate_checkpoint(args) -> list[dict]:
    """The rows of `python -m tnn_ref.evaluate` for parsed arguments: one per context length."""
    return _evaluate_rows(args, *_prepare_evaluation(args))
