"""The one-node GTU and GLU (lean=True, the default for training) against the module-by-module ones,
and the padding mask: what follows a sequence cannot change its real positions."""

import pytest
import torch

from tnn_ref.blocks import Glu, Gtu, TnnBlock
from tnn_ref.model import TnnConfig, TnnEncoder
from tnn_ref.tno import Tno


def outputs_and_grads(module, x, *args):
    y = module(x, *args)
    return [y, *torch.autograd.grad((y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).pow(2).sum(),
                                     [x, *module.parameters()])]


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("n, batch", [(1, 3), (6, 2), (7, 2), (300, 1)])
@pytest.mark.parametrize("masked", [False, True])
def test_lean_gtu_equals_module_by_module(causal, n, batch, masked):
    torch.manual_seed(n)
    gtu = Gtu(8, 5, Tno(40, causal=causal, decay=0.9, rpe_dim=8, rpe_layers=2)).double()
    x = torch.randn(batch, n, 8, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(batch, n) > 0.3,) if masked else ()
    lean = outputs_and_grads(gtu, x, *mask)
    gtu.lean = False
    plain = outputs_and_grads(gtu, x, *mask)
    for a, b in zip(lean, plain):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
def test_lean_gtu_works_through_several_channel_chunks(monkeypatch, causal):
    import tnn_ref.blocks as blocks

    chunks = []

    def chunks_of_32(positions, channels):  # what a long sequence gets: several narrow chunks
        chunks.append(channels)
        return [slice(start, min(start + 32, channels)) for start in range(0, channels, 32)]

    monkeypatch.setattr(blocks, "_channel_chunks", chunks_of_32)
    torch.manual_seed(0)
    gtu = Gtu(8, 12, Tno(96, causal=causal, decay=0.8, rpe_dim=8, rpe_layers=1)).double()  # 96 channels: 3 chunks
    x = torch.randn(2, 9, 8, dtype=torch.float64, requires_grad=True)
    lean = outputs_and_grads(gtu, x)
    assert chunks == [96, 96]  # forward and backward each ran over 3 chunks of 32
    gtu.lean = False
    for a, b in zip(lean, outputs_and_grads(gtu, x)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_the_kernel_takes_its_own_gradient_only_when_it_is_the_nodes_to_overwrite():
    from tnn_ref.blocks import _GatedToeplitz, _own_channel_major
    from tnn_ref.toeplitz import fft_length

    torch.manual_seed(2)
    gtu = Gtu(4, 3, Tno(12, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1)).double()
    x = torch.randn(2, 7, 4, dtype=torch.float64)
    weights = (gtu.u_proj.weight, gtu.u_proj.bias, gtu.v_proj.weight, gtu.v_proj.bias, gtu.o.weight, gtu.o.bias)
    fresh, _ = gtu.toep.kernel(7)  # (7, 12): the TNO's decayed kernel, a channel-major result of the graph
    assert _own_channel_major(fresh)
    leaf = fresh.detach().clone().T.contiguous().T.requires_grad_()  # the same values and layout, but a leaf
    assert not _own_channel_major(leaf) and not _own_channel_major(fresh[:5])  # and a view is not the node's either
    kept = leaf.detach().clone()
    (grad_leaf,) = torch.autograd.grad(_GatedToeplitz.apply(x, *weights, leaf, fft_length(7), None).sum(), leaf)
    assert torch.equal(leaf.detach(), kept)  # a leaf keeps its values
    fresh_copy = fresh.detach().clone()
    (grad_fresh,) = torch.autograd.grad(_GatedToeplitz.apply(x, *weights, fresh, fft_length(7), None).sum(), fresh)
    assert not torch.equal(fresh.detach(), fresh_copy)  # the fresh kernel's buffer took its gradient
    torch.testing.assert_close(grad_fresh, grad_leaf, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
def test_lean_block_equals_module_by_module_under_a_broadcast_gradient(causal):
    # y.sum().backward() hands every node an expanded gradient (stride 0), which the lean nodes write around
    torch.manual_seed(3)
    config = TnnConfig(dim=8, expand=3, glu_dim=6, rpe_dim=4, rpe_layers=2)
    block = config.block(config.tno(causal=causal)).double()
    x = torch.randn(2, 9, 8, dtype=torch.float64, requires_grad=True)

    def grads(lean):
        for module in block.modules():
            if hasattr(module, "lean"):
                module.lean = lean
        return torch.autograd.grad(block(x).sum(), [x, *block.parameters()])

    for a, b in zip(grads(True), grads(False)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_lean_glu_equals_module_by_module():
    torch.manual_seed(1)
    glu = Glu(6, 10).double()
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    lean = outputs_and_grads(glu, x)
    glu.lean = False
    for a, b in zip(lean, outputs_and_grads(glu, x)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_second_derivative_through_the_lean_gtu_is_refused_and_the_plain_one_works():
    gtu = Gtu(4, 2, Tno(8, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1)).double()
    x = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(gtu(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()
    gtu.lean = False
    assert torch.autograd.gradgradcheck(lambda x: gtu(x), (x,))


def test_lean_training_of_a_whole_block_matches():
    torch.manual_seed(2)
    block = TnnBlock(8, Gtu(8, 3, Tno(24, causal=True, decay=0.99, rpe_dim=8, rpe_layers=2)), glu_dim=8).double()
    x = torch.randn(2, 33, 8, dtype=torch.float64, requires_grad=True)
    lean = outputs_and_grads(block, x)
    block.token_mixer.lean = block.feature_mixer.lean = False
    for a, b in zip(lean, outputs_and_grads(block, x)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("grad", [False, True])
def test_tnn_classification_ignores_any_amount_of_padding(grad):
    torch.manual_seed(3)
    model = TnnEncoder(TnnConfig(vocab_size=12, num_classes=4, dim=8, layers=2, expand=2, glu_dim=8, rpe_dim=8,
                                 rpe_layers=1, decay=0.9)).double()
    real = torch.randint(1, 12, (1, 13))
    with torch.set_grad_enabled(grad):
        reference = model.classify(real, torch.ones(1, 13, dtype=torch.bool))
        for padding in (1, 2, 7, 50):
            tokens = torch.cat([real, torch.randint(0, 12, (1, padding))], dim=1)  # any ids after the end
            mask = torch.arange(13 + padding)[None] < 13
            torch.testing.assert_close(model.classify(tokens, mask), reference, rtol=1e-8, atol=1e-8)
    unmasked = model.classify(torch.cat([real, torch.zeros(1, 7, dtype=torch.long)], dim=1))
    assert (unmasked - reference).abs().max() > 1e-6  # without the mask, padding does leak in


def test_mask_is_checked():
    gtu = Gtu(4, 2, Tno(8, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1))
    x = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="mask must be a boolean tensor of shape"):
        gtu(x, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a boolean tensor"):
        gtu(x, torch.ones(2, 5))


@pytest.mark.parametrize("make", [lambda: Gtu(8, 2, Tno(16, causal=True, decay=0.9, rpe_dim=4, rpe_layers=1)),
                                  lambda: Glu(8, 6)], ids=["gtu", "glu"])
def test_a_second_backward_through_a_lean_node_raises_instead_of_reading_overwritten_buffers(make):
    module = make().double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    y = module(x)
    y.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
