"""The GPU paths against the CPU ones (skipped where torch sees no CUDA device; run on the device machine)."""

import pytest
import torch

from tnn_ref.decoding import generate
from tnn_ref.model import TnnConfig, TnnLM
from tnn_ref.tno import Tno
from tnn_ref.toeplitz import toeplitz_fft, toeplitz_fft_plain, toeplitz_matrix

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("n", [1, 7, 64, 1000])
def test_cuda_toeplitz_product_and_gradients_match_float64_dense(n, causal):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(3, n, 5, generator=g)  # (batch 3, n, 5 channels)
    c, r = torch.randn(n, 5, generator=g), torch.randn(n, 5, generator=g)  # (n, 5) column and row per channel
    r = None if causal else r
    dense = toeplitz_matrix(c.double(), None if r is None else r.double())  # (5, n, n): one matrix per channel
    want = torch.einsum("knm,bmk->bnk", dense, x.double())  # (3, n, 5)
    xc, cc = x.cuda().requires_grad_(), c.cuda().requires_grad_()
    y = toeplitz_fft(xc, cc, None if r is None else r.cuda())
    assert (y.double().cpu() - want).abs().max() <= 1e-4 * want.abs().max()
    y.square().sum().backward()
    xd, cd = x.detach().double().requires_grad_(), c.detach().double().requires_grad_()
    toeplitz_fft_plain(xd, cd, None if r is None else r.double()).square().sum().backward()
    for got, ref in ((xc.grad, xd.grad), (cc.grad, cd.grad)):
        assert (got.double().cpu() - ref).abs().max() <= 1e-3 * ref.abs().max()


@pytest.mark.parametrize("causal", [True, False])
def test_cuda_tno_matches_cpu_in_training_and_inference(causal):
    torch.manual_seed(0)
    tno = Tno(12, causal=causal, decay=0.99, rpe_dim=16, rpe_layers=2)
    x = torch.randn(2, 300, 12)
    want = tno(x)
    gpu = Tno(12, causal=causal, decay=0.99, rpe_dim=16, rpe_layers=2).cuda()
    gpu.load_state_dict(tno.state_dict())
    torch.testing.assert_close(gpu(x.cuda()).cpu(), want, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # the cached-spectrum path
        torch.testing.assert_close(gpu(x.cuda()).cpu(), want.detach(), rtol=1e-4, atol=1e-5)


def test_cuda_bf16_autocast_training_step_is_finite_and_close_to_float32():
    torch.manual_seed(0)
    model = TnnLM(TnnConfig(vocab_size=50, dim=32, layers=2, rpe_dim=16, rpe_layers=2)).cuda()
    tokens = torch.randint(0, 50, (2, 257), device="cuda")
    with torch.no_grad():
        full = model(tokens).float()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        mixed = model(tokens)
        loss = torch.nn.functional.cross_entropy(mixed.float().flatten(0, 1), tokens.flatten())
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert (mixed.float() - full).abs().max() < 0.1 * full.abs().max()  # bf16 keeps ~3 significant digits


def test_cuda_generation_modes_agree():
    torch.manual_seed(0)
    model = TnnLM(TnnConfig(vocab_size=30, dim=16, layers=2, rpe_dim=8, rpe_layers=1)).cuda().eval()
    prompt = torch.randint(0, 30, (2, 5), device="cuda")
    outputs = [generate(model, prompt, steps=20, temperature=0.0, mode=mode) for mode in ("fft", "cache")]
    assert torch.equal(outputs[0], outputs[1])
