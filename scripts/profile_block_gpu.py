"""Why the TNN block is slow on a GPU at short lengths: wall times and a torch.profiler table.

Run on a CUDA machine from the repository root: PYTHONPATH=. python3 scripts/profile_block_gpu.py
(its H200 output: results/h200/profile_tnn_block.txt).
"""
import time

import torch
from torch.profiler import ProfilerActivity, profile

from tnn_ref.bench.layers import layer_pair

torch.backends.cuda.matmul.allow_tf32 = True
tnn, att = (m.cuda() for m in layer_pair(256))
for n in (1024, 16384):
    x = torch.randn(1, n, 256, device="cuda", requires_grad=True)
    for name, block in (("tnn", tnn), ("attn", att)):
        for ac in (False, True):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=ac):
                for _ in range(3):
                    block(x).sum().backward()
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(10):
                    block(x).sum().backward()
                torch.cuda.synchronize()
                wall = (time.perf_counter() - t) / 10
                t = time.perf_counter()
                for _ in range(10):
                    y = block(x)
                torch.cuda.synchronize()
                fwd = (time.perf_counter() - t) / 10
            print(f"n={n} {name} autocast={ac}: f+b wall {wall*1e3:.2f} ms, fwd wall {fwd*1e3:.2f} ms", flush=True)
x = torch.randn(1, 4096, 256, device="cuda", requires_grad=True)
with torch.autocast("cuda", dtype=torch.bfloat16):
    for _ in range(3):
        tnn(x).sum().backward()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            tnn(x).sum().backward()
        torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60))
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60))
