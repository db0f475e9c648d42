"""Day 4: the GPT model — configuration, Transformer block, and the whole stack.

token ids -> token embedding + position embedding -> dropout -> n_layers x TransformerBlock
-> final LayerNorm -> linear output head -> logits (one score per vocabulary entry, for
every position: position t predicts token t+1).

The shapes and parameter names follow GPT-2 closely enough that ``gptlib.weights.load_hf_gpt2``
can load OpenAI's weights, and the model's logits then equal Hugging Face's.

Every layer runs a fast fused path by default (``F.scaled_dot_product_attention``,
``F.layer_norm``, ``F.gelu``); ``model.use_explicit_paths()`` switches all of them to their
hand-written formulas, which give the same logits to float precision.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from .attention import KVCache, MultiHeadAttention
from .layers import GELU, FeedForward, LayerNorm

__all__ = ["GPTConfig", "PRESETS", "TransformerBlock", "GPTModel"]


@dataclass
class GPTConfig:
    """Every size of a GPT model, in one place.

    vocab_size: number of token ids (50257 for GPT-2's BPE).
    context_length: the most tokens the model can see at once (positions 0 .. context_length-1).
    emb_dim: width of every token vector (the residual stream).
    n_heads: attention heads per layer; must divide ``emb_dim``.
    n_layers: number of Transformer blocks.
    drop_rate: dropout probability (embeddings, attention weights, residual branches), training only.
    qkv_bias: biases in the query/key/value projections (GPT-2: True).
    """

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a whole number >= 1, got {value!r}")
        if self.emb_dim % self.n_heads != 0:
            raise ValueError(f"GPTConfig.emb_dim ({self.emb_dim}) must be divisible by n_heads ({self.n_heads}); "
                             "pick n_heads among its divisors")
        if isinstance(self.drop_rate, bool) or not isinstance(self.drop_rate, (int, float)) \
                or not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"GPTConfig.drop_rate must be in [0, 1), got {self.drop_rate!r}")
        if not isinstance(self.qkv_bias, bool):
            raise ValueError(f"GPTConfig.qkv_bias must be True or False, got {self.qkv_bias!r}")

    @property
    def head_dim(self) -> int:
        """Size of one attention head: ``emb_dim // n_heads``."""
        return self.emb_dim // self.n_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "GPTConfig":
        """A named configuration, optionally changed: ``GPTConfig.preset("gpt2-small", drop_rate=0.0)``.

        ``gpt2-small/medium/large/xl`` are OpenAI's four GPT-2 shapes (124M to 1.5B parameters).
        ``cpu-small`` is a tiny model (about 13.7M parameters, most of them the 50257-token
        embedding and output head) for quick experiments and training on a laptop CPU.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly), e.g. to store inside a checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GPTConfig":
        """Inverse of ``to_dict``; unknown keys are an error (a checkpoint for another model?)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown GPTConfig field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
        return cls(**data)


PRESETS: dict[str, GPTConfig] = {
    "gpt2-small": GPTConfig(50257, 1024, 768, 12, 12, 0.1, True),
    "gpt2-medium": GPTConfig(50257, 1024, 1024, 16, 24, 0.1, True),
    "gpt2-large": GPTConfig(50257, 1024, 1280, 20, 36, 0.1, True),
    "gpt2-xl": GPTConfig(50257, 1024, 1600, 25, 48, 0.1, True),
    "cpu-small": GPTConfig(vocab_size=50257, context_length=128, emb_dim=128, n_heads=4, n_layers=4,
                           drop_rate=0.0, qkv_bias=False),
}


class TransformerBlock(nn.Module):
    """One GPT-2 block, pre-LayerNorm: ``x = x + drop(att(norm1(x))); x = x + drop(ff(norm2(x)))``.

    The residual connections (``x + ...``) give gradients a straight path through a deep
    stack; normalising *before* each sub-layer (GPT-2's choice, unlike the original
    Transformer) keeps that path clean and trains more stably.
    """

    def __init__(self, cfg: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.att = MultiHeadAttention(d_in=cfg.emb_dim, d_out=cfg.emb_dim, context_length=cfg.context_length,
                                      dropout=cfg.drop_rate, num_heads=cfg.n_heads, qkv_bias=cfg.qkv_bias,
                                      layer_idx=layer_idx)
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        x = x + self.drop_shortcut(self.att(self.norm1(x), kv_cache))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x


class GPTModel(nn.Module):
    """A GPT-2-style language model: token ids (batch, tokens) -> logits (batch, tokens, vocab_size).

    ``out_head`` is its own matrix (not tied to ``tok_emb``); GPT-2 ties the two, so
    ``load_hf_gpt2`` copies the token embedding into both.

    Initialisation follows GPT-2: every Linear and Embedding weight ~ N(0, 0.02), biases 0,
    LayerNorm scale 1 / shift 0, and the two projections that write into the residual stream
    in each block (``att.out_proj``, ``ff.layers[2]``) get std 0.02 / sqrt(2 * n_layers):
    the stream sums 2 * n_layers such contributions, so this keeps its size independent of depth.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.ModuleList(TransformerBlock(cfg, layer_idx=i) for i in range(cfg.n_layers))
        self.final_norm = LayerNorm(cfg.emb_dim)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """(Re-)initialise every weight as GPT-2 does (see the class docstring)."""
        if self.tok_emb.weight.is_meta:  # built on the meta device (shapes only): nothing to fill
            return
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, LayerNorm):
                nn.init.ones_(module.scale)
                nn.init.zeros_(module.shift)
        for block in self.trf_blocks:
            nn.init.normal_(block.att.out_proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.ff.layers[2].weight, mean=0.0, std=residual_std)

    def forward(self, in_idx: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """Logits for every position. With ``kv_cache``, ``in_idx`` holds only the *new* tokens:
        their positions start at ``kv_cache.length`` and their keys/values are appended to it."""
        start = 0 if kv_cache is None else kv_cache.length
        self._check_input(in_idx, start)
        num_tokens = in_idx.size(1)
        positions = torch.arange(start, start + num_tokens, device=in_idx.device)
        x = self.tok_emb(in_idx) + self.pos_emb(positions)
        x = self.drop_emb(x)
        for block in self.trf_blocks:
            x = block(x, kv_cache)
        x = self.final_norm(x)
        return self.out_head(x)

    def _check_input(self, in_idx: Tensor, start: int) -> None:
        """One-line errors for the usual mistakes, before they become an index error deep inside."""
        if not isinstance(in_idx, Tensor):
            raise TypeError(f"in_idx must be a LongTensor of token ids (batch, tokens), got {type(in_idx).__name__}; "
                            "use torch.tensor([ids])")
        if in_idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"in_idx must hold integer token ids (torch.long), got dtype {in_idx.dtype}; use in_idx.long()")
        if in_idx.dim() != 2:
            hint = " (add a batch dimension: in_idx.unsqueeze(0))" if in_idx.dim() == 1 else ""
            raise ValueError(f"in_idx must have shape (batch, tokens), got {tuple(in_idx.shape)}{hint}")
        num_tokens = in_idx.size(1)
        if num_tokens == 0:
            raise ValueError("in_idx has no tokens; the model needs at least one to predict the next")
        limit = self.cfg.context_length
        if start + num_tokens > limit:
            if start:
                raise ValueError(f"{start} cached + {num_tokens} new tokens exceed context_length {limit}; "
                                 f"reset the KV cache and feed only the last {limit} tokens")
            raise ValueError(f"{num_tokens} tokens exceed context_length {limit}: "
                             f"crop the input to the last {limit} tokens (in_idx[:, -{limit}:])")
        low, high = int(in_idx.min()), int(in_idx.max())
        if low < 0 or high >= self.cfg.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.cfg.vocab_size})")

    def use_explicit_paths(self, explicit: bool = True) -> "GPTModel":
        """Run every layer's hand-written formula (True) or its fast fused path (False, the default).

        Explicit: attention's scores/mask/softmax written out, LayerNorm's mean/variance, GELU's
        tanh formula. Same results to float precision, several times slower; for teaching and tests.
        """
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module.use_sdpa = not explicit
            elif isinstance(module, (LayerNorm, GELU)):
                module.use_fused = not explicit
        return self

    def new_kv_cache(self, batch_size: int = 1) -> KVCache:
        """An empty ``KVCache`` for this model (one entry per layer, at most ``context_length`` tokens)."""
        return KVCache(self.cfg.n_layers, batch_size=batch_size, max_length=self.cfg.context_length)

    def num_parameters(self, count_out_head: bool = True) -> int:
        """Number of parameters. ``count_out_head=False`` leaves out ``out_head``, i.e. the count
        when it is tied to the token embedding, as in GPT-2 (124,439,808 for gpt2-small)."""
        total = sum(p.numel() for p in self.parameters())
        return total if count_out_head else total - self.out_head.weight.numel()
