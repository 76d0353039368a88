"""The digits pipeline: 8 x 8 -> 32 x 32, 256 levels, 1,024 tokens in raster order."""

import pytest
import torch

from tnn_ref.tasks.digits import PIXEL_LEVELS, load_digit_images, pixel_sequences, quantise_pixels


@pytest.fixture(scope="module")
def digits():
    return load_digit_images(32)


def test_images_and_labels(digits):
    images, labels = digits
    assert images.shape == (1797, 1, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.long
    assert set(labels.tolist()) == set(range(10))
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    levels = images * (PIXEL_LEVELS - 1)
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)  # on the 256-level grid
    assert float(images.max()) > 0.9  # the darkest strokes survive the upsampling


def test_pixel_sequences_are_raster_order_tokens(digits):
    images, _ = digits
    tokens = pixel_sequences(images)
    assert tokens.shape == (1797, 1024) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < PIXEL_LEVELS
    row, col = 13, 21
    expected = torch.round(images[:, 0, row, col] * (PIXEL_LEVELS - 1)).long()
    assert torch.equal(tokens[:, row * 32 + col], expected)  # pixel (row, col) is token row * W + col
    torch.testing.assert_close(tokens.view(-1, 1, 32, 32).float() / (PIXEL_LEVELS - 1), images)


def test_quantise_clamps_and_rounds():
    assert quantise_pixels(torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]


def test_smaller_size_and_bad_arguments():
    images, _ = load_digit_images(16)
    assert images.shape == (1797, 1, 16, 16)
    with pytest.raises(ValueError, match="size"):
        load_digit_images(4)
    with pytest.raises(ValueError, match="images must have shape"):
        pixel_sequences(torch.rand(2, 3, 8, 8))
