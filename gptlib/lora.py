"""Day 7: LoRA — low-rank adaptation (低秩适配) of a pretrained model, written by hand.

Full finetuning updates every weight matrix ``W`` (d_out x d_in). LoRA (Hu et al., 2021)
keeps ``W`` frozen and learns only a *low-rank* update ``ΔW = B @ A`` with ``A`` (r x d_in)
and ``B`` (d_out x r), r small (4, 8, 16):

    y = x W^T + scale * (x A^T) B^T,        scale = alpha / r

Why it works: the change a finetuning task needs is far simpler than the pretrained weights
themselves; measured updates of full finetuning have a low "intrinsic rank", so a rank-r
product captures most of it with r * (d_in + d_out) numbers instead of d_in * d_out.

- ``A`` starts random (Kaiming-uniform, as ``nn.Linear`` initialises its weight) and ``B``
  starts at zero, so ``B @ A = 0``: the adapted model is *exactly* the pretrained one at step 0,
  and training moves it away smoothly.
- ``alpha / r`` keeps the size of the update roughly independent of the rank you pick.
- After training, ``merge_lora`` folds ``scale * B @ A`` into ``W`` and gives back plain
  ``nn.Linear`` layers: no extra cost at inference, same outputs (up to float rounding).
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from .checks import positive_number, whole_number
from .finetune import freeze  # day 7's first idea; this module, the last, builds on it (never the reverse)

__all__ = ["LoRALinear", "apply_lora", "merge_lora", "lora_layers"]


class LoRALinear(nn.Module):
    """An ``nn.Linear`` with a trainable low-rank update beside its frozen weight.

    Args:
        base: the pretrained linear layer; it is kept (``self.base``) and frozen.
        rank: r >= 1, the rank of the update ``B @ A``.
        alpha: scaling numerator; the update is multiplied by ``alpha / rank``.

    ``forward(x) == base(x)`` right after construction, because ``B`` starts at zero.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 16.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        self.rank = whole_number("LoRA rank", rank)
        self.alpha = float(positive_number("LoRA alpha", alpha))
        self.scale = self.alpha / rank
        self.base = freeze(base)
        # A is drawn on the CPU, from torch's global generator, then moved: the same seed gives the
        # same adapter on a CPU, a GPU or a Mac. Kaiming-uniform is the init nn.Linear gives its weight.
        a = nn.init.kaiming_uniform_(torch.empty(rank, base.in_features), a=math.sqrt(5))
        weight = base.weight
        self.A = nn.Parameter(a.to(device=weight.device, dtype=weight.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, device=weight.device, dtype=weight.dtype))

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> Tensor:
        """The learned update ``scale * B @ A``, shaped like ``base.weight`` (d_out x d_in)."""
        return (self.B @ self.A) * self.scale

    def forward(self, x: Tensor) -> Tensor:
        # Two thin matmuls (d_in -> r -> d_out) instead of forming the d_out x d_in update.
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` whose weight is ``W + scale * B @ A`` (same outputs, no adapter)."""
        base = self.base
        # skip_init: no random init that the copy below would overwrite (and no random numbers drawn)
        out = nn.utils.skip_init(nn.Linear, base.in_features, base.out_features, bias=base.bias is not None,
                                 device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}"


def _set_child(root: nn.Module, qualified_name: str, new: nn.Module) -> None:
    parent_name, _, child = qualified_name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0,
               targets: Iterable[str] | None = None, freeze_base: bool = True) -> list[str]:
    """Replace linear layers of ``model`` (in place) by ``LoRALinear`` adapters; return their names.

    Args:
        rank, alpha: as in ``LoRALinear`` (rank >= 1).
        targets: which ``nn.Linear`` modules to adapt. ``None`` (default) adapts every linear
            layer inside the Transformer blocks (``trf_blocks``): the attention projections
            (``att.qkv``, the fused query/key/value matrix, and ``att.out_proj``) and both
            feed-forward layers (``ff.layers.0``, ``ff.layers.2``), but not the output head.
            Otherwise an iterable of name fragments: a linear layer is adapted when its
            qualified name ends with one of them (e.g. ``("att.qkv", "att.out_proj")``).
        freeze_base: freeze *every* parameter of the model first (default), so that only the
            adapters train. Unfreeze extra parts yourself (e.g. a new class head) with
            ``gptlib.finetune.unfreeze``.

    Raises ValueError for rank < 1, or when no linear layer matches ``targets``.
    """
    whole_number("LoRA rank", rank)  # checked before anything is frozen or replaced
    positive_number("LoRA alpha", alpha)
    if targets is None:
        if not hasattr(model, "trf_blocks"):
            raise ValueError("model has no trf_blocks; pass targets=(...) naming the linear layers to adapt")
        chosen = [f"trf_blocks.{name}" for name, m in model.trf_blocks.named_modules()
                  if isinstance(m, nn.Linear)]
    else:
        fragments = tuple(targets)
        chosen = [name for name, m in model.named_modules()
                  if isinstance(m, nn.Linear) and any(name == f or name.endswith("." + f) for f in fragments)]
    if not chosen:
        raise ValueError(f"no nn.Linear layer matches targets={targets!r} (already adapted, or wrong names?)")
    if freeze_base:
        freeze(model)
    for name in chosen:
        _set_child(model, name, LoRALinear(model.get_submodule(name), rank, alpha))
    return chosen


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The ``LoRALinear`` modules of ``model`` by qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight, in place: each ``LoRALinear`` becomes a plain
    ``nn.Linear`` with ``W + scale * B @ A``. Returns ``model``; its outputs are unchanged up to
    float rounding. The merged layers keep the adapter's trainability off (frozen)."""
    for name, layer in list(lora_layers(model).items()):
        merged = layer.merged()
        merged.requires_grad_(False)
        _set_child(model, name, merged)
    return model

