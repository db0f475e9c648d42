"""Argument checks shared by every module: one line each, so they never drown the code they guard.

Each check returns the value it accepted (so it can be used inline) and raises ``ValueError``
naming the argument, what it must be and what it got. Checks on tensors that would need the
value of a tensor (``ids.max()``) cost a device-to-host synchronisation on a GPU, so they run
where ids enter the library (datasets, ``generate``, widgets), never inside ``forward``.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["whole_number", "positive_number", "fraction", "token_ids_in_range"]


def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an ``int`` (not a bool) >= ``minimum``; else a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def positive_number(name: str, value: Any) -> float:
    """``value`` if it is a finite real number > 0; else a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0,
             low_open: bool = False, high_open: bool = False) -> float:
    """``value`` if it is a real number in the interval [low, high] (ends open as asked)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return value


def token_ids_in_range(ids, vocab_size: int, name: str = "token id") -> None:
    """Raise ValueError naming the first id outside ``[0, vocab_size)``.

    ``ids`` is a sequence of ints or an integer tensor; call this where ids enter the library,
    not in a model's forward (on a GPU, reading a tensor's min/max waits for the device).
    """
    import torch

    if isinstance(ids, torch.Tensor):
        if ids.numel() == 0:
            return
        low, high = int(ids.min()), int(ids.max())
        bad = low if low < 0 else high if high >= vocab_size else None
    else:
        bad = next((i for i in ids if not 0 <= i < vocab_size), None)
    if bad is not None:
        raise ValueError(f"{name} {bad} is outside the vocabulary [0, {vocab_size}): "
                         "encode the text with the tokenizer the model was trained with")
