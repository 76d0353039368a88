"""The free-coefficient TNO (the RPE ablation): a table per offset, exact products, a clear refusal past max_len."""

import pytest
import torch

from tnn_ref.free_coefficients import FreeCoefficients
from tnn_ref.model import TnnConfig, TnnLM, count_parameters
from tnn_ref.tno import Tno
from tnn_ref.toeplitz import toeplitz_matrix


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("n", [1, 6, 10])
def test_kernel_reads_the_table_and_fft_matches_matrix(causal, n):
    torch.manual_seed(n)
    tno = Tno(3, causal=causal, decay=0.9, coefficients="free", max_len=10).double()
    table = tno.free.table
    c, r = tno.kernel(n)
    lags = torch.arange(n, dtype=torch.float64)[:, None]
    torch.testing.assert_close(c, table[:n] * 0.9**lags)
    if not causal:
        torch.testing.assert_close(r[1:], table[10:10 + n - 1] * 0.9**lags[1:])
    x = torch.randn(2, n, 3, dtype=torch.float64)
    expected = torch.einsum("dij,bjd->bid", toeplitz_matrix(c, r), x)
    torch.testing.assert_close(tno(x), expected, rtol=1e-10, atol=1e-10)


def test_parameters_grow_with_max_len_and_longer_input_is_refused():
    assert count_parameters(Tno(4, causal=True, decay=None, coefficients="free", max_len=16)) == 16 * 4
    assert count_parameters(Tno(4, causal=False, decay=None, coefficients="free", max_len=16)) == 31 * 4
    tno = Tno(4, causal=True, coefficients="free", max_len=16)
    with pytest.raises(ValueError, match="max_len=16.*cannot extrapolate"):
        tno(torch.randn(1, 17, 4))
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        FreeCoefficients(4, 0, causal=True)
    with pytest.raises(ValueError, match="coefficients must be 'rpe' or 'free'"):
        Tno(4, causal=True, coefficients="table")


def test_lm_with_free_coefficients_trains_and_decodes():
    cfg = TnnConfig(vocab_size=9, dim=8, layers=1, expand=2, tno_coefficients="free", max_len=12)
    model = TnnLM(cfg).double()
    tokens = torch.randint(0, 9, (2, 12))
    model(tokens).sum().backward()
    assert model.blocks[0].token_mixer.toep.free.table.grad.abs().sum() > 0
    ssm = model.blocks[0].token_mixer.toep.ssm(12)
    x = torch.randn(1, 12, 16, dtype=torch.float64)
    torch.testing.assert_close(ssm.run(x), model.blocks[0].token_mixer.toep(x).detach(), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="needs a positive max_len"):
        TnnConfig(tno_coefficients="free")
