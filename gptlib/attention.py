"""Day 3: causal multi-head self-attention, and the KV cache that makes generation fast.

Every token asks a question (its *query*), every token offers a label (its *key*) and a
content (its *value*). A token's output is the average of the values, weighted by how well
its query matches each key: ``softmax(q @ k^T / sqrt(d_head)) @ v``. "Causal" means a token
may only look at itself and earlier tokens — the future is masked with -inf before the
softmax, so its weight is exactly 0 — which is what lets a model trained on whole sentences
predict the *next* token.

Two implementations of the same maths live in ``MultiHeadAttention``:

- the fast path, ``F.scaled_dot_product_attention`` (fused kernels, no (T, T) matrix kept
  for backward on most back-ends), used by default;
- the explicit path (``use_sdpa=False``): scores, mask, softmax, dropout, weighted sum,
  written out as in the day 3 notebook. ``tests/test_attention.py`` proves them equal.

Design choice: one fused ``qkv`` Linear (d_in -> 3 * d_out) instead of three separate
``W_query`` / ``W_key`` / ``W_value`` layers. It is the same maths (the three weight matrices
are stacked row-wise: ``qkv.weight[:d_out]`` is W_query, then W_key, then W_value), it is
GPT-2's own layout (``attn.c_attn``), and one big matrix multiply is faster than three small
ones: ``benchmarks/train_step.py`` measured the projections' forward + backward about 1.7x
faster fused than separate at GPT-2 small's width on 2 CPU cores.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["causal_mask", "KVCache", "MultiHeadAttention"]


def causal_mask(num_queries: int, num_keys: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Boolean (num_queries, num_keys) mask, True where a query must NOT look (a future key).

    The queries are the *last* ``num_queries`` positions of ``num_keys`` (default: as many
    keys as queries). With a KV cache the keys include ``offset = num_keys - num_queries``
    earlier tokens, so query ``i`` sits at position ``offset + i`` and may see keys
    ``0 .. offset + i``: the mask is the upper triangle shifted right by ``offset``.
    """
    num_keys = num_queries if num_keys is None else num_keys
    if num_keys < num_queries:
        raise ValueError(f"{num_keys} keys cannot cover {num_queries} queries: there must be at least as many keys")
    offset = num_keys - num_queries
    ones = torch.ones(num_queries, num_keys, dtype=torch.bool, device=device)
    return torch.triu(ones, diagonal=offset + 1)


class KVCache:
    """Keys and values of the tokens seen so far, one entry per layer, for incremental decoding.

    Without a cache, generating token n+1 recomputes the keys and values of all n earlier
    tokens in every layer. They never change (a causal model never lets an old token see a
    new one), so we keep them: each step then feeds the model just the new token(s), and each
    ``MultiHeadAttention`` appends its new keys/values here and attends over all of them.

    ``GPTModel.new_kv_cache(batch_size)`` makes one sized for the model; ``KVCache(n_layers)``
    works for any stack of attention layers (layer ``i`` uses entry ``i``). ``length`` is how
    many tokens are cached; ``reset()`` empties the cache for a new prompt.
    Tensors are stored as (batch, heads, tokens, head_dim) and grown with ``torch.cat``.
    """

    def __init__(self, n_layers: int, batch_size: int | None = None, max_length: int | None = None) -> None:
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        self.batch_size = batch_size
        self.max_length = max_length
        self.keys: list[Tensor | None] = [None] * n_layers
        self.values: list[Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        """Number of tokens cached (in the first layer; all layers agree between forward calls)."""
        first = self.keys[0]
        return 0 if first is None else first.size(2)

    def reset(self) -> None:
        """Forget every cached token (start a new prompt)."""
        self.keys = [None] * self.n_layers
        self.values = [None] * self.n_layers

    def update(self, layer_idx: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append this layer's new ``keys``/``values`` (batch, heads, new_tokens, head_dim); return all of them."""
        if not 0 <= layer_idx < self.n_layers:
            raise IndexError(f"layer {layer_idx} is outside this cache's {self.n_layers} layers; "
                             "make the cache with model.new_kv_cache()")
        if self.batch_size is not None and keys.size(0) != self.batch_size:
            raise ValueError(f"this KV cache holds a batch of {self.batch_size} but the input has {keys.size(0)} rows; "
                             f"make a new one with model.new_kv_cache(batch_size={keys.size(0)})")
        old_k, old_v = self.keys[layer_idx], self.values[layer_idx]
        if old_k is not None:
            if old_k.size(0) != keys.size(0):
                raise ValueError(f"this KV cache holds a batch of {old_k.size(0)} but the input has {keys.size(0)} rows; "
                                 "call cache.reset() or make a new cache")
            keys = torch.cat([old_k, keys], dim=2)
            values = torch.cat([old_v, values], dim=2)
        if self.max_length is not None and keys.size(2) > self.max_length:
            raise ValueError(f"the KV cache would hold {keys.size(2)} tokens, more than the context length "
                             f"{self.max_length}; reset() it and feed the last {self.max_length} tokens again")
        self.keys[layer_idx], self.values[layer_idx] = keys, values
        return keys, values

    def __repr__(self) -> str:
        return f"KVCache(n_layers={self.n_layers}, length={self.length}, batch_size={self.batch_size})"


class MultiHeadAttention(nn.Module):
    """Causal self-attention with ``num_heads`` heads: (batch, tokens, d_in) -> (batch, tokens, d_out).

    Each head works in its own ``d_head = d_out // num_heads`` dimensions, so different heads
    can attend to different things (the previous word, the subject of the sentence...) for the
    cost of one. ``out_proj`` mixes the heads' outputs back together.

    Args:
        d_in, d_out: input and output sizes (both ``emb_dim`` in GPT).
        context_length: the longest sequence allowed (kept for checks; the mask is built per call).
        dropout: probability of dropping attention weights, applied in training only.
        num_heads: number of heads; must divide ``d_out``.
        qkv_bias: add biases to the query/key/value projections (GPT-2 has them).
        layer_idx: which entry of a ``KVCache`` this layer uses (set by ``GPTModel``).
        use_sdpa: True (default) uses ``F.scaled_dot_product_attention``; set the attribute to
            False to run the explicit math path instead. Both give the same result.
    """

    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float, num_heads: int,
                 qkv_bias: bool = False, *, layer_idx: int = 0, use_sdpa: bool = True) -> None:
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.context_length = context_length
        self.dropout_p = dropout
        self.layer_idx = layer_idx
        self.use_sdpa = use_sdpa
        self.qkv = nn.Linear(d_in, 3 * d_out, bias=qkv_bias)  # W_query, W_key, W_value stacked
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)  # on the attention weights (explicit path)

    def project_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values of ``x``, split into heads: three (batch, heads, tokens, head_dim)."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split(self.d_out, dim=2)
        return tuple(z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        b, t, _ = x.shape
        q, k, v = self.project_qkv(x)
        if kv_cache is not None:  # attend over the cached tokens too
            k, v = kv_cache.update(self.layer_idx, k, v)
        if self.use_sdpa:
            context = self._sdpa(q, k, v)
        else:
            context = self._explicit(q, k, v)
        context = context.transpose(1, 2).reshape(b, t, self.d_out)  # concatenate the heads
        return self.out_proj(context)

    def _explicit(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The textbook formula, one step per line (the day 3 notebook's version, batched)."""
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (b, h, t_q, t_k)
        scores = scores.masked_fill(causal_mask(q.size(2), k.size(2), device=q.device), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        weights = self.dropout(weights)
        return weights @ v

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The same maths in PyTorch's fused kernel."""
        t_q, t_k = q.size(2), k.size(2)
        dropout_p = self.dropout_p if self.training else 0.0
        if t_q == t_k:  # no cache (or an empty one): the plain causal triangle
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=t_q > 1)
        if t_q == 1:  # one new token may see every cached key: no mask needed
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        # several new tokens after a cache: is_causal would align the triangle top-left, which is
        # wrong here; pass the offset mask (SDPA's boolean mask means True = may attend).
        allowed = ~causal_mask(t_q, t_k, device=q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, use_sdpa={self.use_sdpa}"
