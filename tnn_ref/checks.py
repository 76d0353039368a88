"""Argument checks shared by the package: each raises an error that names the argument.

The goal is that a user who passes the wrong thing reads *which* argument is wrong and what was
expected, instead of a traceback from deep inside torch or numpy.
"""

from __future__ import annotations

import numpy as np
import torch


def require_float_tensor(name: str, value) -> torch.Tensor:
    """`value` must be a real floating-point torch tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32/float64/...), got dtype {value.dtype}")
    return value


def require_float_array(name: str, value) -> np.ndarray:
    """`value` converted to a real floating-point numpy array (ints are converted, complex is refused)."""
    if isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array (this is the numpy path); got a torch.Tensor")
    arr = np.asarray(value)
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def require_finite(name: str, value) -> None:
    """No NaN or infinity anywhere in `value` (numpy array or torch tensor).

    Torch tensors are checked through their sum: one reduction, no tensor-sized temporary, and any
    NaN or infinity makes the sum non-finite. It also refuses values so large that their sum
    overflows, which an FFT of them would turn into infinities anyway.
    """
    if isinstance(value, torch.Tensor):
        finite = torch.isfinite(value.sum(dtype=torch.float64 if value.dtype == torch.float64 else torch.float32))
    else:
        finite = np.isfinite(value).all()
    if not bool(finite):
        raise ValueError(f"{name} contains NaN or infinite values (or values so large that their sum overflows)")


def require_ndim(name: str, value, allowed: tuple[int, ...], meaning: str) -> None:
    """`value.ndim` must be one of `allowed`; `meaning` describes the expected shape(s)."""
    if value.ndim not in allowed:
        raise ValueError(f"{name} must have shape {meaning}, got shape {tuple(value.shape)}")


def require_positive_int(name: str, value) -> int:
    """A count or size: an int (not a bool) of at least 1. Returns it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def require_positive_length(name: str, n: int) -> None:
    """Sequences must hold at least one position."""
    if n < 1:
        raise ValueError(f"{name} must have a positive sequence length, got length {n}")


def require_same_device(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    if value.device != other.device:
        raise ValueError(f"{name} is on {value.device} but {other_name} is on {other.device}; move them to one device")


def require_tokens(name: str, tokens, vocab_size: int) -> None:
    """Token ids: an integer tensor of shape (batch, n), n >= 1, every id in [0, vocab_size)."""
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(tokens).__name__}")
    if tokens.dtype == torch.bool or tokens.is_floating_point() or tokens.is_complex():
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {tokens.dtype}")
    require_ndim(name, tokens, (2,), "(batch, n)")
    require_positive_length(name, tokens.shape[1])
    if tokens.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sequence, got shape {tuple(tokens.shape)}")
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"{name} must be ids in [0, {vocab_size}) (the vocabulary size), found {bad}")
