"""Handwritten digits as LRA's image task does CIFAR: a 32 x 32 grey image read pixel by pixel.

The images are scikit-learn's bundled 8 x 8 digits (1,797 of them, 16 grey levels, shipped with the
package: no download), upsampled bilinearly to 32 x 32 and quantised to 256 intensity levels. As in
LRA's "Image" task the sequential model sees each image as 1,024 tokens, one per pixel in raster
order, whose ids are the intensities 0-255; the 2-D models see the same quantised pixels as a
(1, 32, 32) image in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tnn_ref.checks import require_finite, require_float_tensor

PIXEL_LEVELS = 256  # the token vocabulary of the sequential task: one id per intensity
NUM_CLASSES = 10
DIGITS_SCALE = 16.0  # load_digits' pixels are counts 0..16


def load_digit_images(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (1797, 1, size, size) float in [0, 1], quantised to 256 levels; labels (1797,) long in 0-9)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8 (the digits are 8 x 8), got {size!r}")
    try:
        from sklearn.datasets import load_digits  # imported late: only this task needs scikit-learn
    except ImportError as error:
        raise ImportError("the digits task needs scikit-learn: pip install scikit-learn "
                          "(it comes with pip install -e '.[notebooks]')") from error

    digits = load_digits()
    small = torch.tensor(digits.images, dtype=torch.float32)[:, None] / DIGITS_SCALE  # (N, 8, 8) -> (N, 1, 8, 8)
    large = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)  # (N, 1, size, size)
    images = quantise_pixels(large).float() / (PIXEL_LEVELS - 1)  # the 2-D models see exactly the tokens' levels
    return images, torch.tensor(digits.target, dtype=torch.long)


def quantise_pixels(images: torch.Tensor) -> torch.Tensor:
    """Intensities in [0, 1] -> integer levels 0..255 (long), the nearest of 256 evenly spaced values.

    images: a float tensor (values outside [0, 1] are clipped); integer images (0..255) are refused, since
    clipping them to [0, 1] would leave two levels. NaN would become an arbitrary level and is refused.
    """
    require_float_tensor("images", images)
    require_finite("images", images)
    return torch.round(images.clamp(0.0, 1.0) * (PIXEL_LEVELS - 1)).long()


def pixel_sequences(images: torch.Tensor) -> torch.Tensor:
    """Grey images (N, 1, H, W) in [0, 1] -> token ids (N, H*W) in [0, 256), row by row (raster order)."""
    require_float_tensor("images", images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
    return quantise_pixels(images).flatten(1)  # (N, 1, H, W) -> (N, H*W)
