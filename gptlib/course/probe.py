"""Day 5: looking inside a trained model — what its attention heads do, where its tokens live.

``model_attention_maps`` takes the queries and keys of one head of one block of a ``GPTModel``
and returns day 3's ``AttentionMaps`` (scores, mask, weights), so day 3's plots show what a
trained model really attends to; ``model_attention_explorer`` is day 3's widget with layer and
head sliders over such a model. ``layer_attention_weights``, ``head_statistics`` and
``plot_layer_heads`` put all heads of a block side by side, each with numbers that say what it
does; ``nearest_tokens`` and ``cosine_similarity_matrix`` compare rows of the token embedding.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from .attention_explorer import (DEFAULT_SENTENCES, LABELS, AttentionExplorer, AttentionMaps, _label_fonts,
                                 attention_maps, displayable_label)
from ..model import GPTModel
from ..runtime import evaluating

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["model_attention_maps", "hidden_states", "layer_attention_weights", "head_statistics", "plot_layer_heads",
           "cosine_similarity_matrix", "nearest_tokens", "ModelAttentionExplorer", "model_attention_explorer"]


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


def layer_attention_weights(model: GPTModel, token_ids: Sequence[int] | Tensor, layer: int) -> Tensor:
    """The attention weights of every head of block ``layer`` on ``token_ids``: (heads, T, T), each row
    summing to 1, exactly the weights the model used (see ``model_attention_maps``)."""
    return torch.stack([model_attention_maps(model, token_ids, layer, head).weights
                        for head in range(model.cfg.n_heads)])


def head_statistics(weights: Tensor) -> dict[str, Tensor]:
    """What each head of ``weights`` (heads, T, T) does, as numbers: one (heads,) tensor per statistic.

    Averaged over the query positions t >= 1 (position 0 can only look at itself):
    ``previous`` the weight on the token just before, ``first`` the weight on position 0,
    ``itself`` the weight on its own position, ``distance`` how far back the weight sits on average
    (in tokens), ``entropy`` of the row in bits (0: one token gets all the weight; log2(t + 1):
    spread evenly over the t + 1 tokens it may see).
    """
    if weights.dim() != 3 or weights.shape[1] != weights.shape[2] or weights.shape[1] < 2:
        raise ValueError(f"weights must be (heads, T, T) with T >= 2, got {tuple(weights.shape)}")
    w = weights.detach().float().cpu()[:, 1:, :]                  # (H, T-1, T): row r is query r + 1
    t = w.shape[-1]
    rows, queries = torch.arange(t - 1), torch.arange(1, t)
    back = (queries[:, None] - torch.arange(t)[None, :]).clamp(min=0).float()  # query - key (0 for the future)
    logs = torch.where(w > 0, torch.log2(w.clamp(min=1e-30)), torch.zeros(()))  # 0 * log 0 counts as 0
    return {
        "previous": w[:, rows, queries - 1].mean(-1),
        "first": w[..., 0].mean(-1),
        "itself": w[:, rows, queries].mean(-1),
        "distance": (w * back).sum(-1).mean(-1),
        "entropy": -(w * logs).sum(-1).mean(-1),
    }


def plot_layer_heads(weights: Tensor, tokens: Sequence[str] | None = None, title: str = "") -> "Figure":
    """Every head of one block side by side: a heatmap of its (T, T) weights (rows: queries), titled
    with its ``head_statistics``."""
    import matplotlib.pyplot as plt

    stats = head_statistics(weights)
    heads, n = weights.shape[0], weights.shape[-1]
    families, _ = _label_fonts()
    fig, axes = plt.subplots(1, heads, figsize=(3.2 * heads, 3.9), squeeze=False)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.2, top=0.8, wspace=0.3)  # fixed: no layout engine
    for head, ax in enumerate(axes[0]):
        ax.imshow(weights[head].detach().float().cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"head {head}\nprevious {stats['previous'][head]:.2f}, first {stats['first'][head]:.2f}\n"
                     f"entropy {stats['entropy'][head]:.2f} bits", fontsize=9)
        if tokens is not None:
            labels = [displayable_label(token) for token in tokens]
            ax.set_xticks(range(n), labels, rotation=90, fontsize=7, fontfamily=families)
            ax.set_yticks(range(n), labels if head == 0 else [], fontsize=7, fontfamily=families)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


def cosine_similarity_matrix(vectors: Tensor) -> Tensor:
    """(N, C) -> (N, N): the cosine of the angle between every two rows (1: same direction)."""
    unit = torch.nn.functional.normalize(vectors.detach().float().cpu(), dim=-1)
    return unit @ unit.T


def nearest_tokens(embedding: Tensor, token_id: int, k: int = 5, exclude: Sequence[int] = ()) -> list[tuple[int, float]]:
    """The ``k`` rows of ``embedding`` (vocab, C) closest in cosine to row ``token_id`` (itself and
    ``exclude`` left out), as ``(token id, cosine)`` pairs, closest first."""
    unit = torch.nn.functional.normalize(embedding.detach().float().cpu(), dim=-1)
    cosines = unit @ unit[token_id]
    cosines[[token_id, *exclude]] = float("-inf")
    values, ids = cosines.topk(k)
    return [(int(i), float(v)) for i, v in zip(ids, values)]


class ModelAttentionExplorer(AttentionExplorer):
    """Day 3's explorer over a trained ``GPTModel``: sliders pick the block and the head."""

    def __init__(self, model: GPTModel, tokenizer: Any, sentences: Sequence[str], pad_to: int | None,
                 pad_id: int | None) -> None:
        self.model = model
        super().__init__(tokenizer, sentences, pad_to, pad_id, seed=0)

    def extra_controls(self) -> list:
        import ipywidgets as widgets

        self.layer = widgets.IntSlider(value=0, min=0, max=len(self.model.trf_blocks) - 1,
                                       description=LABELS["layer"].format())
        self.head = widgets.IntSlider(value=0, min=0, max=self.model.cfg.n_heads - 1,
                                      description=LABELS["head"].format())
        return [widgets.HBox([self.layer, self.head])]

    def compute(self) -> AttentionMaps:
        labels, ids, pad = self.padded()
        keep = self.model.cfg.context_length  # the model sees at most this many tokens
        labels, ids, pad = labels[-keep:], ids[-keep:], pad[-keep:]
        return model_attention_maps(self.model, ids, self.layer.value, self.head.value, causal=self.causal.value,
                                    scale=self.scale.value, padding_mask=pad if self.mask_padding.value else None,
                                    tokens=labels)

    def title(self) -> str:
        return LABELS["layer_head"].format(layer=self.layer.value, head=self.head.value)


def model_attention_explorer(model: GPTModel, tokenizer: Any, sentences: Sequence[str] | None = None, *,
                             pad_to: int | None = None, pad_id: int | None = None) -> ModelAttentionExplorer:
    """Day 3's attention explorer over ``model`` and the ``tokenizer`` that made its ids."""
    return ModelAttentionExplorer(model, tokenizer, list(sentences) if sentences else list(DEFAULT_SENTENCES),
                                  pad_to, pad_id)
