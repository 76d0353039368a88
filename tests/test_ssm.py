"""The SSM path against the FFT path: kernels, single TNOs, whole models, and generation in three modes."""

import pytest
import torch

from tnn_ref.decoding import CacheTno, LmDecoder, generate
from tnn_ref.model import TnnConfig, TnnEncoder, TnnLM
from tnn_ref.ssm import decay_horizon, ssm_kernel, toeplitz_to_ssm
from tnn_ref.tno import Tno
from tnn_ref.toeplitz import toeplitz_fft


def decayed(s, rates):
    lags = torch.arange(s.shape[0], dtype=torch.float64)[:, None]
    return s * torch.as_tensor(rates, dtype=torch.float64) ** lags


@pytest.mark.parametrize("n", [1, 2, 7, 8, 64, 129])
@pytest.mark.parametrize("rates", [0.9, [0.5, 0.99, 1.0], None])
def test_ssm_reproduces_the_kernel_and_the_product(n, rates):
    gen = torch.Generator().manual_seed(n)
    s = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    kernel = s if rates is None else decayed(s, rates)
    ssm = toeplitz_to_ssm(s, rates)
    J = (n + 1) // 2 + 1
    assert ssm.weights.shape == (3, J)
    assert ssm.poles.shape == ((1, J) if rates is None or isinstance(rates, float) else (3, J))  # shared for one rate
    torch.testing.assert_close(ssm_kernel(ssm, n), kernel, rtol=1e-10, atol=1e-10)
    x = torch.randn(2, n, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ssm.run(x), toeplitz_fft(x, kernel), rtol=1e-10, atol=1e-10)


def test_past_lag_n_the_kernel_repeats_times_lambda():
    s = torch.randn(6, 1, dtype=torch.float64)
    ssm = toeplitz_to_ssm(s, 0.8)
    k = ssm_kernel(ssm, 3 * 7)  # L = n + 1 = 7
    torch.testing.assert_close(k[6], torch.zeros(1, dtype=torch.float64), atol=1e-12, rtol=0)  # s_n = 0
    torch.testing.assert_close(k[7:14], 0.8**7 * k[:7], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [5, 16, 33])
@pytest.mark.parametrize("learnable", [False, True, "sigmoid"])
def test_tno_ssm_equals_fft_path(n, learnable):
    torch.manual_seed(n)
    tno = Tno(4, causal=True, decay=0.95, learnable_decay=learnable, rpe_dim=8, rpe_layers=2).double()
    if learnable:
        with torch.no_grad():
            tno.decay.logit.copy_(torch.tensor([-2.0, 0.0, 1.0, 3.0]))
    x = torch.randn(2, n, 4, dtype=torch.float64)
    torch.testing.assert_close(tno.ssm(n).run(x), tno(x).detach(), rtol=1e-10, atol=1e-10)
    x32 = x.float()
    tno32 = tno.float()
    ref = tno32(x32).detach()
    err = (tno32.ssm(n).run(x32) - ref).abs().max() / ref.abs().max()
    assert err < 1e-4


@pytest.mark.parametrize("mode", ["cache", "ssm"])
@pytest.mark.parametrize("prenorm", [True, False])
@pytest.mark.parametrize("n", [1, 12, 31])
def test_lm_decoder_equals_forward(mode, prenorm, n):
    torch.manual_seed(0)
    model = TnnLM(TnnConfig(vocab_size=13, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=2, prenorm=prenorm)).double().eval()
    tokens = torch.randint(0, 13, (2, n))
    decoder = LmDecoder(model, 2, n, mode, horizon=None)  # exact at every position, up to max_len
    stepped = torch.stack([decoder.step(tokens[:, t]) for t in range(n)], dim=1)
    torch.testing.assert_close(stepped, model(tokens), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="max_len"):
        decoder.step(tokens[:, 0])


def test_float32_model_decoder_within_tolerance():
    torch.manual_seed(1)
    model = TnnLM(TnnConfig(vocab_size=13, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=2)).eval()
    tokens = torch.randint(0, 13, (1, 40))
    decoder = LmDecoder(model, 1, 40, "ssm")
    stepped = torch.stack([decoder.step(tokens[:, t]) for t in range(40)], dim=1)
    reference = model(tokens).detach()
    assert ((stepped - reference).abs().max() / reference.abs().max()) < 1e-4


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generation_is_identical_across_modes(temperature):
    torch.manual_seed(2)
    model = TnnLM(TnnConfig(vocab_size=11, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=1)).double()
    prompt = torch.randint(0, 11, (2, 4))
    outputs = [generate(model, prompt, 15, mode=mode, temperature=temperature,
                        generator=torch.Generator().manual_seed(5)) for mode in ("fft", "cache", "ssm")]
    assert outputs[0].shape == (2, 19)
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_bad_input():
    s = torch.randn(5, 2)
    with pytest.raises(ValueError, match=r"decay must lie in \(0, 1\]"):
        toeplitz_to_ssm(s, 1.5)
    with pytest.raises(ValueError, match=r"decay must lie in \(0, 1\]"):
        toeplitz_to_ssm(s, [0.9, 0.0])
    with pytest.raises(ValueError, match="one rate per channel"):
        toeplitz_to_ssm(s, [0.9, 0.9, 0.9])
    with pytest.raises(ValueError, match="kernel must be causal"):
        toeplitz_to_ssm(s, 0.9, r=torch.ones(5, 2))
    with pytest.raises(ValueError, match=r"c must have shape \(n, d\)"):
        toeplitz_to_ssm(torch.randn(5), 0.9)
    with pytest.raises(ValueError, match="c contains NaN"):
        toeplitz_to_ssm(torch.full((3, 1), float("nan")), 0.9)
    with pytest.raises(ValueError, match="only a causal TNO"):
        Tno(4, causal=False).ssm(8)
    with pytest.raises(ValueError, match="features='index'"):
        Tno(4, causal=True, rpe_features="normalized").ssm(8)
    with pytest.raises(TypeError, match="model must be a TnnLM"):
        LmDecoder(TnnEncoder(TnnConfig(vocab_size=5, dim=8, layers=1)), 1, 4)
    with pytest.raises(ValueError, match="mode must be one of"):
        generate(TnnLM(TnnConfig(vocab_size=5, dim=8, layers=1)), torch.zeros(1, 1, dtype=torch.long), 2, mode="rnn")


def test_decay_horizon_and_truncated_ssm():
    from tnn_ref.ssm import decay_horizon

    assert decay_horizon(0.5, tol=1e-3) == 10  # 0.5^10 < 1e-3 < 0.5^9
    assert decay_horizon([0.5, 0.9], tol=1e-3) == 66
    assert decay_horizon(1.0) is None and decay_horizon(None) is None
    torch.manual_seed(3)
    model = TnnLM(TnnConfig(vocab_size=11, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=1, decay=0.5)).double().eval()
    tokens = torch.randint(0, 11, (1, 60))
    horizon = decay_horizon(0.5, tol=1e-13)
    decoder = LmDecoder(model, 1, 10, "ssm", horizon=horizon)  # may run past max_len: the horizon bounds the state
    stepped = torch.stack([decoder.step(tokens[:, t]) for t in range(60)], dim=1)
    torch.testing.assert_close(stepped, model(tokens), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="horizon"):
        LmDecoder(model, 1, 10, "ssm", horizon=0)


@pytest.mark.parametrize("T", [1, 5, 6, 7, 13, 30])  # below, at and past the period L = n + 1 = 7
@pytest.mark.parametrize("rates", [0.8, [0.5, 0.9, 1.0], None])
def test_state_after_a_prompt_equals_stepping(T, rates):
    gen = torch.Generator().manual_seed(T)
    ssm = toeplitz_to_ssm(torch.randn(6, 3, generator=gen, dtype=torch.float64), rates)
    x = torch.randn(2, T, 3, generator=gen, dtype=torch.float64)
    stepped = ssm.initial_state(2)
    for t in range(T):
        stepped, _ = ssm.step(stepped, x[:, t])
    torch.testing.assert_close(ssm.state_after(x), stepped, rtol=1e-10, atol=1e-10)


def test_state_after_without_pole_structure_steps():
    ssm = toeplitz_to_ssm(torch.randn(5, 2, dtype=torch.float64), 0.9)
    plain = type(ssm)(ssm.poles, ssm.weights, ssm.length)  # no rates/period: the generic path
    x = torch.randn(1, 9, 2, dtype=torch.float64)
    torch.testing.assert_close(plain.state_after(x), ssm.state_after(x), rtol=1e-10, atol=1e-10)


def test_float32_tno_gets_a_complex64_state_within_tolerance():
    torch.manual_seed(3)
    tno = Tno(6, causal=True, decay=0.99, rpe_dim=8, rpe_layers=2)
    ssm = tno.ssm(300)
    assert ssm.weights.dtype == ssm.poles.dtype == torch.complex64 and ssm.poles.shape[0] == 1
    assert tno.double().ssm(300).weights.dtype == torch.complex128
    tno = tno.float()
    x = torch.randn(2, 300, 6)
    reference = tno(x).detach()
    err = (tno.ssm(300).run(x) - reference).abs().max() / reference.abs().max()
    assert err < 1e-4


@pytest.mark.parametrize("mode", ["cache", "ssm"])
@pytest.mark.parametrize("T", [1, 9, 20])
def test_prefill_then_steps_equal_the_forward(mode, T):
    torch.manual_seed(0)
    model = TnnLM(TnnConfig(vocab_size=11, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=2)).double().eval()
    tokens = torch.randint(0, 11, (2, T + 6))
    reference = model(tokens)
    decoder = LmDecoder(model, 2, T + 6, mode, horizon=None)
    torch.testing.assert_close(decoder.prefill(tokens[:, :T]), reference[:, T - 1], rtol=1e-10, atol=1e-10)
    for t in range(T, T + 6):
        torch.testing.assert_close(decoder.step(tokens[:, t]), reference[:, t], rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="prefill"):
        decoder.prefill(tokens[:, :T])


def test_trimmed_cache_drops_exactly_the_lags_past_its_horizon():
    torch.manual_seed(1)
    tno = Tno(3, causal=True, decay=0.9, rpe_dim=8, rpe_layers=1).double()
    v = torch.randn(2, 23, 3, dtype=torch.float64)
    c, _ = tno.kernel(23)
    truncated = c.clone()
    truncated[5:] = 0  # horizon 5: lags 0..4 kept
    expected = toeplitz_fft(v, truncated)
    for prompt in (0, 3, 12):  # part read by prefill (wrapping the ring buffer), the rest stepped
        cache = CacheTno(tno, 2, 23, horizon=5)
        if prompt:
            cache.prefill(v[:, :prompt])
        outputs = torch.stack([cache.step(v[:, t]) for t in range(prompt, 23)], dim=1)
        torch.testing.assert_close(outputs, expected[:, prompt:], rtol=1e-10, atol=1e-10)


def test_default_horizon_follows_the_decay():
    from tnn_ref.decoding import default_horizon

    assert default_horizon(Tno(2, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1), 10_000) == decay_horizon(0.9)
    assert default_horizon(Tno(2, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1), 50) is None  # max_len is shorter: exact
    assert default_horizon(Tno(2, causal=True, decay=None, rpe_dim=4, rpe_layers=1), 77) is None  # no decay: exact


def test_auto_horizon_ssm_runs_past_max_len_close_to_the_forward():
    torch.manual_seed(2)
    model = TnnLM(TnnConfig(vocab_size=11, dim=16, layers=2, expand=2, rpe_dim=8, rpe_layers=2, decay=0.8)).double().eval()
    tokens = torch.randint(0, 11, (1, 300))
    decoder = LmDecoder(model, 1, 100, "ssm")  # auto: decay_horizon(0.8) = 124 > 100, so exact up to 100
    decoder.prefill(tokens[:, :50])
    with pytest.raises(ValueError, match="max_len"):
        [decoder.step(tokens[:, t]) for t in range(50, 101)]
    decoder = LmDecoder(model, 1, 100, "ssm", horizon=40)  # a shorter horizon: no end, error ~ 0.8^41
    decoder.prefill(tokens[:, :50])
    stepped = torch.stack([decoder.step(tokens[:, t]) for t in range(50, 300)], dim=1)
    reference = model(tokens)[:, 50:]
    assert ((stepped - reference).abs().max() / reference.abs().max()) < 1e-3
