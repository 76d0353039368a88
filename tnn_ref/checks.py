"""Argument checks shared by the package: each raises an error that names the argument.

The goal is that a user who passes the wrong thing reads *which* argument is wrong and what was
expected, instead of a traceback from deep inside torch or numpy.
"""

from __future__ import annotations

import argparse
import math

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
    """No NaN or infinity anywhere in `value` (numpy array or torch tensor), checked element by element.

    One pass (`isfinite(...).all()`); only when it fails is the first offending element looked up, so the
    error can say what it is (NaN, inf or -inf) and where. Large finite values (4e38 in float64) pass.
    """
    if isinstance(value, torch.Tensor):
        if bool(torch.isfinite(value).all()):
            return
        flat = value.detach().reshape(-1)  # (numel,)
        first = int(torch.nonzero(~torch.isfinite(flat))[0, 0])
        bad = flat[first].item()
    else:
        value = np.asarray(value)
        if bool(np.isfinite(value).all()):
            return
        first = int(np.flatnonzero(~np.isfinite(value))[0])
        bad = value.reshape(-1)[first].item()
    index = tuple(int(i) for i in np.unravel_index(first, tuple(value.shape)))
    raise ValueError(f"{name} contains {_non_finite_name(bad)} (first at index {index}); it must hold finite values only")


def _non_finite_name(value: float | complex) -> str:
    """'NaN', 'inf' or '-inf': what a non-finite number is, for an error message."""
    if isinstance(value, complex):
        return f"a non-finite complex value {value}"
    if value != value:
        return "NaN"
    return "inf" if value > 0 else "-inf"


def require_ndim(name: str, value, allowed: tuple[int, ...], meaning: str) -> None:
    """`value.ndim` must be one of `allowed`; `meaning` describes the expected shape(s)."""
    if value.ndim not in allowed:
        raise ValueError(f"{name} must have shape {meaning}, got shape {tuple(value.shape)}")


def require_positive_int(name: str, value) -> int:
    """A count or size: an int (not a bool) of at least 1. Returns it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def require_positive_int_or_none(name: str, value) -> int | None:
    """An optional size: None, or an int (not a bool) of at least 1. Returns it."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be None or a positive int, got {value!r}")
    return value


def require_nonnegative_int(name: str, value) -> int:
    """A count that may be zero: an int (not a bool) of at least 0. Returns it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def require_bool(name: str, value) -> bool:
    """A switch: True or False, not a truthy stand-in such as "no" or 0. Returns it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def require_float_at_least(name: str, value, low: float, *, strict: bool = False) -> float:
    """A finite real number (an int or float, not a bool) >= low, or > low when strict. Returns it as a float."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        bound = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def require_dropout(name: str, value) -> float:
    """A dropout probability: a real number in [0, 1) (1 would zero every activation)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= value < 1.0
    if not ok:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def require_features(name: str, x, dim: int) -> torch.Tensor:
    """x must be a floating-point tensor whose last axis holds `dim` features: (..., dim)."""
    require_float_tensor(name, x)
    if x.ndim < 1 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have {dim} features in its last axis, shape (..., {dim}), got shape {tuple(x.shape)}")
    return x


def require_module_device(name: str, value: torch.Tensor, module: torch.nn.Module) -> None:
    """`value` must sit on the device of `module`'s parameters (a module without parameters accepts any)."""
    parameter = next(module.parameters(), None)
    if parameter is not None and value.device != parameter.device:
        raise ValueError(f"{name} is on {value.device} but the model's parameters are on {parameter.device}; "
                         "move them to one device")


def require_positive_length(name: str, n: int) -> None:
    """Sequences must hold at least one position."""
    if n < 1:
        raise ValueError(f"{name} must have a positive sequence length, got length {n}")


def require_same_device(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    if value.device != other.device:
        raise ValueError(f"{name} is on {value.device} but {other_name} is on {other.device}; move them to one device")


def require_tokens(name: str, tokens, vocab_size: int, *, allow_empty_batch: bool = False) -> None:
    """Token ids: an integer tensor of shape (batch, n), n >= 1, every id in [0, vocab_size).

    batch must be >= 1 unless allow_empty_batch (a model maps a batch of 0 sequences to an empty result,
    as torch's layers do; a prompt to continue must hold at least one).
    """
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(tokens).__name__}")
    if tokens.dtype == torch.bool or tokens.is_floating_point() or tokens.is_complex():
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {tokens.dtype}")
    require_ndim(name, tokens, (2,), "(batch, n)")
    require_positive_length(name, tokens.shape[1])
    if tokens.shape[0] < 1:
        if allow_empty_batch:
            return
        raise ValueError(f"{name} must hold at least one sequence, got shape {tuple(tokens.shape)}")
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"{name} must be ids in [0, {vocab_size}) (the vocabulary size), found {bad}")


# ----------------------------------------------------------------------------------------------
# The command lines' side of the same rule: one line naming the option, exit status 2
# ----------------------------------------------------------------------------------------------

class OneLineParser(argparse.ArgumentParser):
    """argparse that answers a misuse with one line, `prog: error: ...`, and exit status 2.

    `speaks()` decides whether this process prints it (a subclass for torchrun lets rank 0 alone speak);
    every process exits 2 either way.
    """

    def speaks(self) -> bool:
        return True

    def error(self, message: str):
        line = " ".join(str(message).split())  # one line, whatever the message held
        self.exit(2, f"{self.prog}: error: {line}\n" if self.speaks() else None)


def argument_type(convert, accepts: str, ok):
    """An argparse type: `convert` the text, then refuse it unless ok(value), saying what is accepted."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {accepts}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {accepts}, got {text!r}")
        return value
    return parse


positive_int_argument = argument_type(int, "a positive int", lambda v: v >= 1)
