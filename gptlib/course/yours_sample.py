"""Your sampler: text from your GPT with your one-token sampler (6.4) and your generation loop (6.5).

``generate_with`` samples with your kept ``sample_token`` and ``generate_loop`` where they passed, gptlib's
stand-ins (``library_sample``, ``library_loop``: the same signatures) elsewhere; with the stand-ins it gives
exactly ``gptlib.generate.generate(..., use_cache=False)``'s tokens.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..generate import sample_next
from ..runtime import evaluating
from .yours import pieces_line
from .yours_train import EVERY as TRAINED

SAMPLING = ("6.4", "6.5")                       # one sampling step, the generation loop
EVERY = TRAINED + SAMPLING                      # your GPT's pieces by the end of day 6


def library_sample(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """gptlib's answer to 6.4: (B, V) logits -> (B,) ids; T = 0 is the argmax."""
    return sample_next(logits, temperature, None, None, generator).squeeze(-1)


@torch.no_grad()
def library_loop(model: nn.Module, ids: Tensor, max_new_tokens: int, context_length: int,
                 pick: Callable[[Tensor], Tensor]) -> Tensor:
    """gptlib's answer to 6.5: crop to the context, predict, pick, append; (B, T) -> (B, T + n)."""
    for _ in range(max_new_tokens):
        logits = model(ids[:, -context_length:])                           # (B, <= context, V)
        ids = torch.cat([ids, pick(logits[:, -1, :]).unsqueeze(1)], dim=1)
    return ids


STAND_INS = {"6.4": library_sample, "6.5": library_loop}


def sampler_line(pieces: dict[str, Any]) -> str:
    """One line: which of your GPT's pieces (day 3 to day 6's) are yours."""
    return pieces_line(pieces, EVERY)


def generate_with(pieces: dict[str, Any], model: nn.Module, ids: Tensor, max_new_tokens: int,
                  temperature: float, generator: torch.Generator | None = None) -> Tensor:
    """Continue ``ids`` (B, T) by ``max_new_tokens`` with your generation loop (6.5) and your token
    sampler (6.4) where kept, gptlib's stand-ins elsewhere, in eval mode; (B, T + max_new_tokens). A
    generator on another device than the model (a seeded CPU one) gets the logits there for the draw."""
    sample_fn, loop_fn = (pieces.get(ex, STAND_INS[ex]) for ex in SAMPLING)

    def pick(logits: Tensor) -> Tensor:  # (B, V) -> (B,), drawn where the generator is, as sample_next does
        here = logits if generator is None else logits.to(generator.device)
        return sample_fn(here, temperature, generator).to(logits.device)

    with evaluating(model):
        return loop_fn(model, ids, max_new_tokens, model.cfg.context_length, pick)
