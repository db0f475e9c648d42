"""Day 5: looking inside a trained model — what its attention heads do.

``model_attention_maps`` takes the queries and keys of one head of one block of a ``GPTModel``
and returns day 3's ``AttentionMaps`` (scores, mask, weights), so day 3's plots show what a
trained model really attends to; ``model_attention_explorer`` is day 3's widget with layer and
head sliders over such a model.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .attention_explorer import DEFAULT_SENTENCES, AttentionExplorer, AttentionMaps, attention_maps
from .model import GPTModel
from .runtime import evaluating

__all__ = ["model_attention_maps", "hidden_states", "ModelAttentionExplorer", "model_attention_explorer"]


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


def hidden_states(model: GPTModel, token_ids: Sequence[int] | Tensor) -> list[Tensor]:
    """The residual stream of one sequence, layer by layer: ``[embeddings, after block 1, ...,
    after the last block]``, each (T, C), in eval mode.

    Entry 0 is token + position embedding, the same for a token wherever it stands (up to its
    position); the later entries are what attention made of it in this context.
    """
    ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(1, -1).to(next(model.parameters()).device)
    states: list[Tensor] = []
    hooks = [model.drop_emb.register_forward_hook(lambda module, args, out: states.append(out[0]))]
    hooks += [block.register_forward_hook(lambda module, args, out: states.append(out[0]))
              for block in model.trf_blocks]
    try:
        with evaluating(model):
            model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    return [state.float().cpu() for state in states]


class ModelAttentionExplorer(AttentionExplorer):
    """Day 3's explorer over a trained ``GPTModel``: sliders pick the block and the head."""

    def __init__(self, model: GPTModel, tokenizer: Any, sentences: Sequence[str], pad_to: int | None,
                 pad_id: int | None) -> None:
        self.model = model
        super().__init__(tokenizer, sentences, pad_to, pad_id, seed=0)

    def extra_controls(self) -> list:
        import ipywidgets as widgets

        self.layer = widgets.IntSlider(value=0, min=0, max=len(self.model.trf_blocks) - 1, description="layer")
        self.head = widgets.IntSlider(value=0, min=0, max=self.model.cfg.n_heads - 1, description="head")
        return [widgets.HBox([self.layer, self.head])]

    def compute(self) -> AttentionMaps:
        labels, ids, pad = self.padded()
        keep = self.model.cfg.context_length  # the model sees at most this many tokens
        labels, ids, pad = labels[-keep:], ids[-keep:], pad[-keep:]
        return model_attention_maps(self.model, ids, self.layer.value, self.head.value, causal=self.causal.value,
                                    scale=self.scale.value, padding_mask=pad if self.mask_padding.value else None,
                                    tokens=labels)

    def title(self) -> str:
        return f"layer {self.layer.value}, head {self.head.value}"


def model_attention_explorer(model: GPTModel, tokenizer: Any, sentences: Sequence[str] | None = None, *,
                             pad_to: int | None = None, pad_id: int | None = None) -> ModelAttentionExplorer:
    """Day 3's attention explorer over ``model`` and the ``tokenizer`` that made its ids."""
    return ModelAttentionExplorer(model, tokenizer, list(sentences) if sentences else list(DEFAULT_SENTENCES),
                                  pad_to, pad_id)
