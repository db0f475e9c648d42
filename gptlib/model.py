"""The GPT in one file, in the order the course builds it: the causal mask and attention (day 3), then
LayerNorm, GELU, the feed-forward net, the Transformer block and the whole model (day 4); the config's
checks and presets close the file.

token ids (B, T) -> token + position embeddings (B, T, C) -> n_layers x TransformerBlock
-> final LayerNorm -> output head -> logits (B, T, vocab_size): position t scores every possible token t+1.

The architecture and every weight's shape are GPT-2's; the module and parameter names are our own
(``trf_blocks.0.att.qkv`` for GPT-2's ``h.0.attn.c_attn``, ``norm1.scale`` for ``ln_1.weight``, ...):
``gptlib.weights`` holds the renaming table, so ``load_hf_gpt2`` loads OpenAI's weights and the logits
equal Hugging Face's. Each layer has a fused fast path (``F.scaled_dot_product_attention``,
``F.layer_norm``, ``F.gelu``) and the hand-written formula next to it: ``use_fused = False`` on a layer,
or ``model.set_use_fused(False)`` on all of them, runs the formulas, which ``tests/`` prove equal up to
float rounding. Shapes: B batch, T tokens, C ``emb_dim``, H heads, D ``head_dim = C // H``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import fits_in_memory, fraction, whole_number
from .checks import token_batch as _check_ids  # GPTModel.forward's one-line errors for a wrong batch

__all__ = ["causal_mask", "MultiHeadAttention", "LayerNorm", "GELU", "FeedForward",
           "TransformerBlock", "GPTConfig", "GPTModel", "PRESETS"]


# ---------------------------------------------------------------------------- day 3: attention
def causal_mask(num_queries: int, num_keys: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Boolean (num_queries, num_keys) mask, True where a query must NOT look (a future key).

    The queries are the *last* ``num_queries`` of ``num_keys`` positions (default: as many keys as queries),
    so query i sits at ``num_keys - num_queries + i``: the upper triangle, shifted right by extra keys."""
    num_keys = num_queries if num_keys is None else num_keys
    if num_keys < num_queries:
        raise ValueError(f"{num_keys} keys cannot cover {num_queries} queries: there must be at least as many keys")
    ones = torch.ones(num_queries, num_keys, dtype=torch.bool, device=device)
    return torch.triu(ones, diagonal=num_keys - num_queries + 1)


class MultiHeadAttention(nn.Module):
    """Causal self-attention with ``num_heads`` heads: (B, T, d_in) -> (B, T, d_out).

    Every token asks a question (its query), offers a label (its key) and a content (its value);
    its output is the average of the values, weighted by ``softmax(q @ k^T / sqrt(D))`` over the
    tokens it may see (itself and earlier ones). Each head does this in its own D = d_out / H
    dimensions; ``out_proj`` mixes their outputs. One ``qkv`` Linear holds W_query, W_key and
    W_value stacked row-wise (GPT-2's ``c_attn`` layout: one big matmul instead of three).
    """

    def __init__(self, d_in: int, d_out: int, dropout: float, num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.dropout_p = dropout
        self.use_fused = True  # False: the explicit formula (_explicit), same result up to float rounding
        self.qkv = nn.Linear(d_in, 3 * d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)  # on the attention weights

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.project_qkv(x)                                       # each (B, H, T, D)
        return self.attend(q, k, v)                                         # (B, T, d_out)

    def project_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values of ``x`` (B, T, d_in), split into heads: three (B, H, T, D)."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split(self.d_out, dim=2)                     # each (B, T, H*D)
        return tuple(z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Attention of queries (B, H, T_q, D) over keys and values (B, H, T_k, D), heads merged: (B, T_q, d_out)."""
        b, _, t, _ = q.shape
        context = self._fused(q, k, v) if self.use_fused else self._explicit(q, k, v)  # (B, H, T_q, D)
        context = context.transpose(1, 2).reshape(b, t, self.d_out)        # (B, T_q, H*D): heads side by side
        return self.out_proj(context)

    def _explicit(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The textbook formula, one step per line (the day 3 notebook's version, batched)."""
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)         # (B, H, T_q, T_k)
        scores = scores.masked_fill(causal_mask(q.size(2), k.size(2), q.device), float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))               # each row sums to 1
        return weights @ v                                                  # (B, H, T_q, D)

    def _fused(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The same maths in PyTorch's fused kernel."""
        dropout_p = self.dropout_p if self.training else 0.0
        t_q, t_k = q.size(2), k.size(2)
        # is_causal draws the triangle from the top-left corner: right when T_q == T_k. Fewer queries
        # than keys are the last T_q positions and need causal_mask's shifted triangle (True = may look);
        # a single query may look at every key and needs none.
        allowed = None if t_q in (1, t_k) else ~causal_mask(t_q, t_k, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p,
                                              is_causal=t_q == t_k and t_q > 1)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, use_fused={self.use_fused}"


# ---------------------------------------------------------------------------- day 4: the layers
class LayerNorm(nn.Module):
    """Each token vector to mean 0 and variance 1, then ``scale * x_hat + shift`` (learned).

    Activations that drift in size from layer to layer make training unstable; normalising every
    token keeps gradients well behaved. The variance is the biased one (divide by n), as GPT-2
    and ``nn.LayerNorm`` compute it; ``eps`` keeps the division safe.
    """

    def __init__(self, emb_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.use_fused = True  # False: the explicit formula
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: Tensor) -> Tensor:
        if self.use_fused:
            return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)
        return self.explicit_forward(x)

    def explicit_forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=-1, keepdim=True)                                 # (..., 1): per token
        var = x.var(dim=-1, keepdim=True, unbiased=False)                   # (..., 1)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift

    def extra_repr(self) -> str:
        return f"{self.scale.numel()}, eps={self.eps}, use_fused={self.use_fused}"


class GELU(nn.Module):
    """GPT-2's activation, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Like ReLU it passes large positive inputs and silences large negative ones, but it is smooth
    and lets a little of small negative inputs through. GPT-2 was trained with this tanh
    approximation, so its weights need it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.use_fused = True  # False: the explicit formula

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate="tanh") if self.use_fused else self.explicit_forward(x)

    def explicit_forward(self, x: Tensor) -> Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class FeedForward(nn.Module):
    """The per-token MLP of a block: C -> 4C -> GELU -> C (GPT-2's ``mlp.c_fc`` / ``mlp.c_proj``).

    Attention moves information between tokens; this net then transforms each token on its own.
    """

    def __init__(self, emb_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(emb_dim, 4 * emb_dim), GELU(), nn.Linear(4 * emb_dim, emb_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)                                               # (B, T, C) -> (B, T, 4C) -> (B, T, C)


# ---------------------------------------------------------------------------- day 4: the model
class TransformerBlock(nn.Module):
    """One pre-LayerNorm block: ``x = x + drop(att(norm1(x)))``, then ``x = x + drop(ff(norm2(x)))``.

    The residual sums (``x + ...``) give gradients a straight path through a deep stack;
    normalising *before* each sub-layer (GPT-2's choice) keeps that path clean.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.att = MultiHeadAttention(cfg.emb_dim, cfg.emb_dim, cfg.drop_rate, cfg.n_heads, cfg.qkv_bias)
        self.ff = FeedForward(cfg.emb_dim)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x: Tensor) -> Tensor:                                 # (B, T, C) -> (B, T, C)
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x


@dataclass
class GPTConfig:
    """Every size of a GPT model, in one place (checked on creation; presets at the end of the file)."""

    vocab_size: int = 50257      # number of token ids
    context_length: int = 1024   # the most tokens the model sees at once
    emb_dim: int = 768           # width C of every token vector (the residual stream)
    n_heads: int = 12            # attention heads per block (must divide emb_dim)
    n_layers: int = 12           # Transformer blocks
    drop_rate: float = 0.1       # dropout probability (training only)
    qkv_bias: bool = False       # biases in the query/key/value projection (GPT-2 has them)
    tie_weights: bool = False    # the output head reuses the token embedding (GPT-2 does; fewer weights)

    def __post_init__(self) -> None:
        _check_config(self)

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """A named configuration, optionally changed: ``GPTConfig.preset("gpt2-small", drop_rate=0.0)``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Inverse of ``to_dict``; unknown keys are an error (a checkpoint for another model?). The fields of
        a subclass (the bonus day's ``ModernConfig``, once its module is imported) pick that subclass."""
        own = {f.name for f in fields(cls)}
        for sub in cls.__subclasses__() if isinstance(data, dict) and set(data) - own else ():
            if set(data) <= {f.name for f in fields(sub)}:
                return sub.from_dict(data)
        return cls(**_known_fields(cls, data))

    def build(self) -> nn.Module:
        """A new model of this configuration (``GPTModel``; a subclass's config builds its own model)."""
        return GPTModel(self)


class GPTModel(nn.Module):
    """A GPT-2-style language model: token ids (B, T) -> logits (B, T, vocab_size).

    ``out_head`` is its own matrix unless ``cfg.tie_weights``: then it *is* ``tok_emb``'s, as in
    GPT-2 (the row that reads a token in also scores it out); ``load_hf_gpt2`` copies GPT-2's
    embedding into both. Initialisation follows GPT-2: weights ~ N(0, 0.02), biases 0, and the two
    projections that write into the residual stream (``att.out_proj``, ``ff.layers[2]``) get
    std 0.02 / sqrt(2 * n_layers): the stream sums 2 * n_layers of them, so its size stays
    independent of depth.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = LayerNorm(cfg.emb_dim)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.out_head.weight = self.tok_emb.weight  # one (vocab_size, C) matrix, two uses
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """(Re-)initialise every weight as GPT-2 does (see the class docstring)."""
        if self.tok_emb.weight.is_meta:  # built on the meta device (shapes only): nothing to fill
            return
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, LayerNorm):
                nn.init.ones_(module.scale)
                nn.init.zeros_(module.shift)
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for block in self.trf_blocks:
            nn.init.normal_(block.att.out_proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.ff.layers[2].weight, mean=0.0, std=residual_std)

    def forward(self, in_idx: Tensor) -> Tensor:
        """Logits for every position of ``in_idx`` (B, T)."""
        _check_ids(in_idx, 0, self.cfg.context_length)
        positions = torch.arange(in_idx.size(1), device=in_idx.device)     # (T,)
        x = self.drop_emb(self.tok_emb(in_idx) + self.pos_emb(positions))  # (B, T, C)
        for block in self.trf_blocks:
            x = block(x)                                                    # (B, T, C)
        return self.out_head(self.final_norm(x))                           # (B, T, vocab_size)

    def set_use_fused(self, use_fused: bool) -> GPTModel:
        """Set ``use_fused`` on every layer: True (the default) runs the fused kernels, False the
        hand-written formulas."""
        for module in self.modules():
            if isinstance(module, (MultiHeadAttention, LayerNorm, GELU)):
                module.use_fused = use_fused
        return self

    def num_parameters(self, count_out_head: bool = True) -> int:
        """Number of parameters; ``count_out_head=False`` gives the count with the head tied to
        the token embedding, as GPT-2 ships (124,439,808 for gpt2-small). A tied head counts once."""
        total = sum(p.numel() for p in self.parameters())  # parameters() yields a shared tensor once
        separate_head = 0 if self.out_head.weight is self.tok_emb.weight else self.out_head.weight.numel()
        return total if count_out_head else total - separate_head


# ---------------------------------------------------------------------------- the config's checks and presets
def _check_config(cfg: GPTConfig) -> None:
    """One-line errors for sizes a GPTConfig cannot have, or that would not fit in memory."""
    for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
        whole_number(f"GPTConfig.{name}", getattr(cfg, name))
    if cfg.emb_dim % cfg.n_heads:
        raise ValueError(f"GPTConfig.emb_dim ({cfg.emb_dim}) must be divisible by n_heads ({cfg.n_heads}); "
                         "pick n_heads among its divisors")
    fraction("GPTConfig.drop_rate", cfg.drop_rate, high_open=True)
    for name in ("qkv_bias", "tie_weights"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"GPTConfig.{name} must be True or False, got {getattr(cfg, name)!r}")
    c = cfg.emb_dim  # too big to build? The weights (an upper bound on their count), by what to lower:
    fits_in_memory("GPTConfig", {"vocab_size": 2 * cfg.vocab_size * c,  # token embedding and output head
                                 "context_length": cfg.context_length * c,  # position embedding
                                 "emb_dim or n_layers": cfg.n_layers * (12 * c * c + 16 * c) + 2 * c})


def _known_fields(cls: type, data: Any) -> dict[str, Any]:
    """``data`` if it is a dict of ``cls``'s fields (``GPTConfig.from_dict``'s one-line errors)."""
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} is stored as a dict of its fields, got {type(data).__name__}")
    if unknown := sorted(set(data) - {f.name for f in fields(cls)}):
        raise ValueError(f"unknown {cls.__name__} field(s) {', '.join(map(str, unknown))} (another model's? "
                         "import the module that defines it, e.g. gptlib.modern)")
    return data


GPT2 = dict(vocab_size=50257, context_length=1024, drop_rate=0.1, qkv_bias=True)
PRESETS: dict[str, GPTConfig] = {
    # OpenAI's four GPT-2 shapes; parameters with the output head tied to the embedding, as GPT-2 ships.
    "gpt2-small": GPTConfig(**GPT2, emb_dim=768, n_heads=12, n_layers=12),     # 124,439,808
    "gpt2-medium": GPTConfig(**GPT2, emb_dim=1024, n_heads=16, n_layers=24),   # 354,823,168
    "gpt2-large": GPTConfig(**GPT2, emb_dim=1280, n_heads=20, n_layers=36),    # 774,030,080
    "gpt2-xl": GPTConfig(**GPT2, emb_dim=1600, n_heads=25, n_layers=48),       # 1,557,611,200
    # For quick experiments on a laptop: 13,673,984 parameters (separate head), most in the embedding and head.
    "cpu-small": GPTConfig(vocab_size=50257, context_length=128, emb_dim=128, n_heads=4, n_layers=4,
                           drop_rate=0.0, qkv_bias=False),
}
