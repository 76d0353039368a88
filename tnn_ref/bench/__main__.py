"""Benchmarks, measured side by side in one run, from the command line.

    python -m tnn_ref.bench {toeplitz,tno,layers,all} [--device cuda [--autocast bf16]] [--out FILE] [--sizes 256 1024 ...]
        [--bidirectional]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from tnn_ref import checks
from tnn_ref.bench.allocator import reuse_freed_memory
from tnn_ref.bench.harness import environment
from tnn_ref.bench.layers import LAYER_SIZES, MEMORY_SIZES, bench_layer_memory, bench_layers, format_layers
from tnn_ref.bench.tno import TNO_SIZES, bench_tno, format_tno
from tnn_ref.bench.toeplitz import TOEPLITZ_SIZES, add_untuned, bench_toeplitz, fft_times_untuned, format_toeplitz


def device_name(text: str) -> torch.device:
    """An argparse type: cpu, cuda or cuda:N (whether it exists is checked after parsing)."""
    try:
        device = torch.device(text)
    except RuntimeError:  # torch's message lists every backend it was built to know
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return device


def _parser() -> argparse.ArgumentParser:
    parser = checks.OneLineParser(prog="python -m tnn_ref.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["toeplitz", "tno", "layers", "all"], help="which benchmark to run")
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--out", help="write the results as JSON to this file (its folder must exist)")
    parser.add_argument("--sizes", type=checks.positive_int_argument, nargs="+",
                        help="sequence lengths to measure (default: the full sweep)")
    parser.add_argument("--autocast", choices=["none", "bf16"], default="none",
                        help="tno and layers: run under CUDA bf16 autocast (linear layers in bf16; the TNO's FFTs "
                             "stay float32); needs --device cuda")
    parser.add_argument("--bidirectional", action="store_true",
                        help="layers: bidirectional blocks (the encoder's TNN block against non-causal attention) "
                             "instead of causal ones")
    parser.add_argument("--no-reuse-freed-memory", action="store_true",
                        help="leave glibc's malloc at its defaults (see tnn_ref.bench.allocator)")
    return parser


def _check(parser: argparse.ArgumentParser, args) -> None:
    """Options against each other and against this machine, before any measuring."""
    device = args.device
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"argument --device: {device} was asked for, but torch sees no CUDA device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        parser.error(f"argument --device: {device} was asked for, but this machine has {torch.cuda.device_count()} "
                     "CUDA device(s)")
    if args.autocast != "none" and device.type != "cuda":
        parser.error("argument --autocast: bf16 is for --device cuda")
    if args.autocast != "none" and args.what == "toeplitz":
        parser.error("argument --autocast: the toeplitz benchmark is float32 only; use it with tno, layers or all")
    if args.bidirectional and args.what in ("toeplitz", "tno"):
        parser.error(f"argument --bidirectional: it chooses the blocks of the layers benchmark; {args.what} has "
                     "no such choice (use it with layers or all)")
    if args.out is not None and (Path(args.out).is_dir() or not Path(args.out).resolve().parent.is_dir()):
        parser.error(f"argument --out: {args.out!r} must be a file path in an existing folder (checked now, not "
                     "after the benchmarks)")


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    device = args.device
    mixed = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.autocast == "bf16")  # noqa: E731

    tuned = False if args.no_reuse_freed_memory else reuse_freed_memory()
    results = {"environment": {**environment(device), "reuse_freed_memory": tuned, "autocast": args.autocast}}
    if args.what in ("toeplitz", "all"):
        rows = bench_toeplitz(args.sizes or TOEPLITZ_SIZES, device=device)
        if tuned:  # what a user who never calls reuse_freed_memory gets, beside it (a fresh process)
            add_untuned(rows, fft_times_untuned(args.sizes or TOEPLITZ_SIZES, device=device))
        results["toeplitz"] = rows
        print("Toeplitz product, d = 64 channels, batch 1, float32, bidirectional (median of repeats"
              + ("; 'untuned': glibc's default malloc, in a fresh process)" if tuned else ")"))
        print(format_toeplitz(rows))
    if args.what in ("tno", "all"):
        with mixed():
            rows = bench_tno(args.sizes or TNO_SIZES, device=device)
        results["tno"] = rows
        print("TNO, batch 8, 768 channels, causal: against the FFT floor and the reference transcription")
        print(format_tno(rows))
    if args.what in ("layers", "all"):
        with mixed():
            rows = bench_layers(args.sizes or LAYER_SIZES, device=device, causal=not args.bidirectional)
            memory = bench_layer_memory(args.sizes or MEMORY_SIZES, device=device, causal=not args.bidirectional)
        results["layers"] = rows
        print(f"TNN block vs Transformer blocks (SDPA; materialised attention), "
              f"{'bidirectional' if args.bidirectional else 'causal'}, d = 256, batch 1, forward+backward "
              "(median ± IQR of repeats)")
        print(format_layers(rows))
        results["layer_memory"] = memory
        print("peak extra memory of one forward+backward (MiB; CPU: peak RSS in a fresh process)")
        for row in memory:
            materialised = row.get("materialised_bytes")
            print(f"{row['n']:>6} tnn {row['tnn_bytes'] / 2**20:>9.1f}  sdpa {row['transformer_bytes'] / 2**20:>9.1f}"
                  f"  materialised {'-' if materialised is None else f'{materialised / 2**20:.1f}':>9}"
                  f"  tnn/sdpa {row['tnn_bytes'] / max(row['transformer_bytes'], 1):.2f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
