"""Day 5: looking inside a trained model — what its attention heads do.

``model_attention_maps`` takes the queries and keys of one head of one block of a ``GPTModel``
and returns day 3's ``AttentionMaps`` (scores, mask, weights), so the explorer and the plots of
day 3 can show what a trained model really attends to.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .attention_explorer import AttentionMaps, attention_maps
from .model import GPTModel
from .runtime import evaluating

__all__ = ["model_attention_maps"]


def model_attention_maps(model: GPTModel, token_ids: Sequence[int] | Tensor, layer: int, head: int, *,
                         causal: bool = True, scale: bool = True,
                         padding_mask: Tensor | Sequence[bool] | None = None,
                         tokens: Sequence[str] | None = None) -> AttentionMaps:
    """``attention_maps`` for head ``head`` of block ``layer`` of ``model`` on ``token_ids``.

    A forward pre-hook catches the input of that block's attention (after ``norm1``), and the
    layer's own ``project_qkv`` turns it into queries and keys; with ``causal=True, scale=True``
    and no padding, ``weights`` are exactly the weights the model used.
    """
    n_layers, n_heads = len(model.trf_blocks), model.cfg.n_heads
    if not 0 <= layer < n_layers or not 0 <= head < n_heads:
        raise ValueError(f"layer must be in [0, {n_layers}) and head in [0, {n_heads}), got layer {layer}, head {head}")
    ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(1, -1)
    attention = model.trf_blocks[layer].att
    captured: list[Tensor] = []
    handle = attention.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        with evaluating(model):
            model(ids.to(next(model.parameters()).device))
            q, k, _ = attention.project_qkv(captured[0])
    finally:
        handle.remove()
    return attention_maps(q[0, head].float().cpu(), k[0, head].float().cpu(), causal=causal, scale=scale,
                          padding_mask=padding_mask, tokens=tokens)
