"""Your LoRA: your ``LinearWithLoRA`` (7.1) put into your GPT.

``lora_class(pieces)`` is your kept LoRA class where it passed, else gptlib's ``LoRALinear`` (the same
signature: ``(base, rank, alpha)``). ``add_lora`` freezes a GPT and wraps the linear layers that
``gptlib.lora.apply_lora`` wraps, under the same names and in the same order, with that class; in your
GPT your attention and feed-forward then call the wrapped layers.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..lora import LoRALinear
from .yours import pieces_line
from .yours_sample import EVERY as SAMPLED

EVERY = SAMPLED + ("7.1",)                      # your GPT's pieces by the end of day 7
TARGETS = ("att.qkv", "att.out_proj", "ff.layers.0", "ff.layers.2")  # apply_lora's, by gptlib's names


def lora_class(pieces: dict[str, Any]) -> type:
    """Your LoRA class (7.1) where kept (it passed), else gptlib's ``LoRALinear``."""
    return pieces.get("7.1", LoRALinear)


def lora_line(pieces: dict[str, Any]) -> str:
    """One line: which of your GPT's pieces (day 3 to day 7's) are yours."""
    return pieces_line(pieces, EVERY)


def add_lora(model: nn.Module, lora_cls: type, rank: int, alpha: float) -> list[str]:
    """Freeze ``model`` and wrap each of its blocks' ``TARGETS`` in ``lora_cls(layer, rank, alpha)``;
    return the wrapped layers' names (as ``apply_lora`` names them)."""
    chosen = [f"trf_blocks.{name}" for name, m in model.trf_blocks.named_modules()
              if type(m) is nn.Linear and name.split(".", 1)[-1] in TARGETS]
    if not chosen:
        raise ValueError("no layer named att.qkv, att.out_proj or ff.layers.0/2 in trf_blocks: is it a GPT?")
    model.requires_grad_(False)
    for name in chosen:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, lora_cls(model.get_submodule(name), rank, alpha))
    return chosen
