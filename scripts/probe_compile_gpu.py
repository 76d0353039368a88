"""Does fusing help the TNN block on a GPU? Eager vs torch.compile vs torch.compile with CUDA graphs.

Run on a CUDA machine from the repository root: PYTHONPATH=. python3 scripts/probe_compile_gpu.py
(its H200 output: results/h200/probe_ddp_nccl_and_compile.txt). A probe, not a benchmark of the package:
tnn_ref does not compile anything itself.
"""
import time

import torch

from tnn_ref.bench.harness import time_call
from tnn_ref.bench.layers import layer_pair

torch.backends.cuda.matmul.allow_tf32 = True
tnn, att = (m.cuda() for m in layer_pair(256))
modes = {"eager": lambda b: b, "compile": lambda b: torch.compile(b, dynamic=False),
         "compile_cudagraphs": lambda b: torch.compile(b, mode="reduce-overhead", dynamic=False)}
for n in (1024, 16384):
    x = torch.randn(1, n, 256, device="cuda", requires_grad=True)
    for mode, wrap in modes.items():
        for name, block in (("tnn", tnn), ("attn", att)):
            try:
                t0 = time.perf_counter()
                f = wrap(block)
                def fb():
                    f(x).sum().backward()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    fb()
                    torch.cuda.synchronize()
                    first = time.perf_counter() - t0
                    t = time_call(fb, "cuda", warmup=3, repeats=10)
                print(f"n={n} {mode:20s} {name:5s} f+b {t.median*1e3:7.2f} ms (first call {first:5.1f} s)", flush=True)
            except Exception as e:
                print(f"n={n} {mode} {name} FAILED: {type(e).__name__}: {str(e)[:300]}", flush=True)
            torch._dynamo.reset()
