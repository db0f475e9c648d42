"""Argument checks shared by every module: one line each, so they never drown the code they guard.

Each check returns the value it accepted (so it can be used inline) and raises ``ValueError``
naming the argument, what it must be and what it got. Checks on tensors that would need the
value of a tensor (``ids.max()``) cost a device-to-host synchronisation on a GPU, so they run
where ids enter the library (datasets, ``generate``, widgets), never inside ``forward``.
"""
from __future__ import annotations

import math
import numbers
import operator
from typing import Any

__all__ = ["whole_number", "positive_number", "fraction", "token_ids_in_range", "token_batch", "fits_in_memory"]


def whole_number(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is a whole number in [minimum, maximum] (NumPy's integers
    too, never a bool); else a one-line ValueError."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        upper = f" and <= {maximum:,}" if maximum is not None else ""
        raise ValueError(f"{name} must be a whole number >= {minimum}{upper}, got {value!r}")
    return number


def positive_number(name: str, value: Any) -> float:
    """``value`` if it is a finite real number > 0; else a one-line ValueError."""
    return fraction(name, value, high=math.inf, low_open=True, high_open=True)


def fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0,
             low_open: bool = False, high_open: bool = False) -> float:
    """``value`` if it is a real number in the interval [low, high] (ends open as asked)."""
    ok = _real(value) and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return value


def _real(value: Any) -> bool:
    """A finite real number (NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def token_ids_in_range(ids, vocab_size: int, name: str = "token id") -> None:
    """Raise ValueError naming the first id outside ``[0, vocab_size)``.

    ``ids`` is a sequence of ints or an integer tensor; call this where ids enter the library,
    not in a model's forward (on a GPU, reading a tensor's min/max waits for the device).
    """
    import torch

    if isinstance(ids, torch.Tensor):
        if ids.numel() == 0:
            return
        low, high = (int(x) for x in torch.aminmax(ids.detach().cpu()))  # on the CPU: MPS warns on int64
        bad = low if low < 0 else high if high >= vocab_size else None
    else:
        bad = next((i for i in ids if not 0 <= i < vocab_size), None)
    if bad is not None:
        raise ValueError(f"{name} {bad} is outside the vocabulary [0, {vocab_size}): use the model's own tokenizer")


def token_batch(in_idx, start: int, context_length: int) -> None:
    """Raise a one-line error unless ``in_idx`` is an integer tensor (B, T), T >= 1, whose tokens fit
    the context after ``start`` cached ones. Shapes only, so a model's forward can call it with no
    wait for a GPU (whether every id is in the vocabulary: ``token_ids_in_range``)."""
    import torch

    if not isinstance(in_idx, torch.Tensor) or in_idx.dtype not in (torch.int64, torch.int32):
        what = f"dtype {in_idx.dtype}" if isinstance(in_idx, torch.Tensor) else type(in_idx).__name__
        raise TypeError(f"in_idx must be an integer tensor of token ids (B, T), got {what}; use torch.tensor([ids])")
    if in_idx.dim() != 2 or in_idx.size(1) == 0:
        hint = ": add a batch dimension with in_idx.unsqueeze(0)" if in_idx.dim() == 1 else ""
        raise ValueError(f"in_idx must be (batch, tokens) with at least one token, got {tuple(in_idx.shape)}{hint}")
    if start + in_idx.size(1) > context_length:
        cached = f"{start} cached + " if start else ""
        raise ValueError(f"{cached}{in_idx.size(1)} tokens exceed context_length {context_length}: keep the last ones")


def fits_in_memory(what: str, counts: dict[str, int], bytes_each: int = 4) -> None:
    """Raise ValueError if ``counts`` numbers of ``bytes_each`` bytes (4: float32) would not fit in this
    machine's memory, so a config too big to build says so at once, not as an allocator error later.

    ``counts`` maps the setting to lower to the numbers it adds; the error names the largest. At
    least 16 GiB is assumed, so every GPT-2 preset passes on any machine."""
    import os

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): catch only absurd sizes
        memory = 1 << 40
    need = bytes_each * sum(counts.values())
    if need > max(memory, 16 << 30):
        raise ValueError(f"{what} too big: its weights alone would need {need / 1e9:,.1f} GB, more than this "
                         f"machine's {memory / 1e9:,.0f} GB of memory; lower {max(counts, key=counts.get)}")
