"""Benchmarks, measured side by side in one run, from the command line.

    python -m tnn_ref.bench {toeplitz,tno,layers,all} [--device cuda [--autocast bf16]] [--out FILE] [--sizes 256 1024 ...]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from tnn_ref.bench.allocator import reuse_freed_memory
from tnn_ref.bench.harness import environment
from tnn_ref.bench.layers import LAYER_SIZES, bench_layer_memory, bench_layers, format_layers
from tnn_ref.bench.tno import TNO_SIZES, bench_tno, format_tno
from tnn_ref.bench.toeplitz import TOEPLITZ_SIZES, bench_toeplitz, format_toeplitz


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tnn_ref.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["toeplitz", "tno", "layers", "all"], help="which benchmark to run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--sizes", type=int, nargs="+", help="sequence lengths to measure (default: the full sweep)")
    parser.add_argument("--autocast", choices=["none", "bf16"], default="none",
                        help="tno and layers: run under CUDA bf16 autocast (linear layers in bf16; the TNO's FFTs "
                             "stay float32)")
    parser.add_argument("--no-reuse-freed-memory", action="store_true",
                        help="leave glibc's malloc at its defaults (see tnn_ref.bench.allocator)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but torch sees no CUDA device")
    if args.sizes and min(args.sizes) < 1:
        parser.error("--sizes must be positive sequence lengths")
    if args.autocast != "none" and device.type != "cuda":
        parser.error("--autocast bf16 is for --device cuda")
    mixed = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.autocast == "bf16")  # noqa: E731

    tuned = False if args.no_reuse_freed_memory else reuse_freed_memory()
    results = {"environment": {**environment(device), "reuse_freed_memory": tuned, "autocast": args.autocast}}
    if args.what in ("toeplitz", "all"):
        rows = bench_toeplitz(args.sizes or TOEPLITZ_SIZES, device=device)
        results["toeplitz"] = rows
        print("Toeplitz product, d = 64 channels, batch 1, float32, bidirectional (median of repeats)")
        print(format_toeplitz(rows))
    if args.what in ("tno", "all"):
        with mixed():
            rows = bench_tno(args.sizes or TNO_SIZES, device=device)
        results["tno"] = rows
        print("TNO, batch 8, 768 channels, causal: against the FFT floor and the reference transcription")
        print(format_tno(rows))
    if args.what in ("layers", "all"):
        with mixed():
            rows = bench_layers(args.sizes or LAYER_SIZES, device=device)
            memory = bench_layer_memory(args.sizes or LAYER_SIZES, device=device)
        results["layers"] = rows
        print("TNN block vs Transformer block (SDPA), d = 256, batch 1 (median of repeats)")
        print(format_layers(rows))
        results["layer_memory"] = memory
        print("peak extra memory of one forward+backward (MiB; CPU: peak RSS in a fresh process)")
        for row in memory:
            print(f"{row['n']:>6} tnn {row['tnn_bytes'] / 2**20:>9.1f}  transformer {row['transformer_bytes'] / 2**20:>9.1f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
