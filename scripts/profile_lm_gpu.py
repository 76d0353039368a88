"""Where a training step of the paper's LM spends its GPU time: step times of TNN and Transformer, one block,
one TNO against its FFT floor, then a torch.profiler table of the TNN step.

Run on a CUDA machine from the repository root: PYTHONPATH=. python3 scripts/profile_lm_gpu.py
(its H200 output: results/h200/profile_paper_lm_step.txt).
"""
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from tnn_ref.baselines import TransformerConfig, TransformerLM
from tnn_ref.bench.harness import time_call
from tnn_ref.model import TnnConfig, TnnLM
from tnn_ref.toeplitz import fft_length

torch.manual_seed(0)
B, N = 32, 512
tokens = torch.randint(0, 50265, (B, N + 1), device="cuda")
x, y = tokens[:, :-1], tokens[:, 1:]

def make_step(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).float().flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step

models = {"tnn": TnnLM(TnnConfig.paper_lm().with_(dropout=0.0)).cuda(),
          "transformer": TransformerLM(TransformerConfig.paper_lm().with_(dropout=0.0)).cuda()}
steps = {k: make_step(m) for k, m in models.items()}
for k, s in steps.items():
    t = time_call(s, "cuda", warmup=3, repeats=10)
    print(f"{k}: step {t.median*1e3:.1f} ms -> {B*N/t.median:,.0f} tokens/s", flush=True)

# one block and one TNO at the LM's shapes
tnn_block = models["tnn"].blocks[0]
h = torch.randn(B, N, 512, device="cuda", requires_grad=True)
with torch.autocast("cuda", dtype=torch.bfloat16):
    t = time_call(lambda: tnn_block(h).sum().backward(), "cuda", warmup=3, repeats=10)
print(f"TNN block f+b {t.median*1e3:.2f} ms", flush=True)
tr_block = models["transformer"].blocks[0]
with torch.autocast("cuda", dtype=torch.bfloat16):
    t = time_call(lambda: tr_block(h).sum().backward(), "cuda", warmup=3, repeats=10)
print(f"Transformer block f+b {t.median*1e3:.2f} ms", flush=True)
tno = tnn_block.token_mixer.toep
v = torch.randn(B, N, 1536, device="cuda", requires_grad=True)
m = fft_length(N)
t = time_call(lambda: tno(v).sum().backward(), "cuda", warmup=3, repeats=10)
vt = v.detach().transpose(1, 2).contiguous()
f = time_call(lambda: torch.fft.irfft(torch.fft.rfft(vt, n=m, dim=-1), n=m, dim=-1), "cuda", warmup=3, repeats=10)
f2 = time_call(lambda: torch.fft.irfft(torch.fft.rfft(v.detach(), n=m, dim=-2), n=m, dim=-2), "cuda", warmup=3, repeats=10)
print(f"TNO (32x512x1536) f+b {t.median*1e3:.2f} ms; floor last-axis {f.median*1e3:.2f} ms; floor dim=-2 {f2.median*1e3:.2f} ms", flush=True)

step = steps["tnn"]
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for _ in range(3):
        step()
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=70))
