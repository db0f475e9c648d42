"""After the seven days: GPT-2's parts replaced one at a time by those of today's LLMs (Llama, Qwen, the
NanoGPT speedrun), each behind its own switch in ``ModernConfig``.

- ``norm="rms"``: RMSNorm for LayerNorm (no mean, no shift: one statistic per token instead of two);
- ``positions="rope"``: rotary position embeddings for learned ones (positions turn q and k, so a score
  depends on how far apart two tokens are, not where they sit);
- ``ffn="swiglu"``: a gated SiLU feed-forward net for GELU's (same parameter count);
- ``n_kv_heads``: grouped-query attention, several query heads sharing one key/value head (a smaller
  KV cache: ``kv_cache_bytes_per_token``);
- ``qk_norm=True``: RMSNorm on every head's queries and keys, so no score can blow up;
- ``Muon``: an optimiser for the weight matrices that orthogonalises each update.

``MODERN`` is the combination that measured best on day 5's data at day 5's wall time on 2 CPU cores
(``benchmarks/modern_ablation.py``, ``notebooks/day8_modern.ipynb``): a ``Recipe`` like ``DAY5``, trained by
the same ``pretrain`` into the same checkpoint format (``python -m gptlib train --recipe modern``).

With every switch off ``ModernGPT`` is ``gptlib.model.GPTModel``: the same modules in the same order,
so the same seed gives the same weights and the same logits; each switch changes one part only.
``tests/test_modern.py`` proves every part equal to its reference (``torch.nn.RMSNorm``, Hugging
Face's Llama rotary embedding, ``F.scaled_dot_product_attention(enable_gqa=True)``) or to a
by-hand formula. Shapes: B batch, T tokens, C ``emb_dim``, H query heads, K key/value heads,
G = H / K queries per key/value head, D ``head_dim``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import positive_number, whole_number
from .checks import token_batch as _check_ids
from .generate import KVCache
from .model import GELU, FeedForward, GPTConfig, LayerNorm, causal_mask
from .recipes import DAY5, Recipe
from .train import TrainConfig, make_optimizer

__all__ = ["RMSNorm", "rope_cos_sin", "apply_rope", "SwiGLU", "GroupedQueryAttention", "ModernConfig",
           "ModernBlock", "ModernGPT", "kv_cache_bytes_per_token", "newton_schulz", "Muon", "muon_split", "MODERN"]

CHOICES = {"norm": ("layer", "rms"), "positions": ("learned", "rope"), "ffn": ("gelu", "swiglu")}


# ---------------------------------------------------------------------------- RMSNorm
class RMSNorm(nn.Module):
    """``scale * x / sqrt(mean(x^2) + eps)``: LayerNorm without the mean and the shift (Llama, Qwen).

    Centring barely helps once the size is fixed, and one reduction per token is cheaper than two.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.use_fused = True  # False: the explicit formula
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        if self.use_fused:
            return F.rms_norm(x, self.scale.shape, self.scale, self.eps)
        return self.explicit_forward(x)

    def explicit_forward(self, x: Tensor) -> Tensor:
        mean_square = x.pow(2).mean(dim=-1, keepdim=True)                  # (..., 1): per token
        return self.scale * x / torch.sqrt(mean_square + self.eps)

    def extra_repr(self) -> str:
        return f"{self.scale.numel()}, eps={self.eps}, use_fused={self.use_fused}"


# ---------------------------------------------------------------------------- rotary positions
def rope_cos_sin(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Cosines and sines of the rotation angles at ``positions`` (T,): two (T, D) float32 tensors.

    Dimensions i and i + D/2 form a pair (Llama's layout) that turns by ``position * base^(-2i/D)``:
    the first pairs spin fast (local order), the last ones slowly (long distances).
    """
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    angles = positions.float()[:, None] * inv_freq                          # (T, D/2)
    angles = torch.cat([angles, angles], dim=-1)                            # (T, D): both halves of each pair
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate every pair (x_i, x_{i+D/2}) of ``x`` (..., T, D) by its angle: a 2-D rotation per pair.

    Since rotations compose, q_m . k_n after rotating depends on m - n only: attention sees distances.
    """
    x1, x2 = x.chunk(2, dim=-1)                                             # (..., T, D/2) each
    rotated_half = torch.cat([-x2, x1], dim=-1)                             # the pair turned by 90 degrees
    return x * cos.to(x.dtype) + rotated_half * sin.to(x.dtype)


# ---------------------------------------------------------------------------- SwiGLU
class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``: C -> hidden -> C, where one projection gates the other (Llama).

    Each hidden unit multiplies a SiLU-shaped gate by a plain linear value, so the net can switch
    features on and off per token. Three matrices instead of two, so hidden is 8C/3 (rounded up to a
    multiple of 8) to keep the parameter count of GPT-2's 4C MLP; no biases, as Llama and Qwen.
    """

    def __init__(self, emb_dim: int) -> None:
        super().__init__()
        self.hidden = 8 * math.ceil(8 * emb_dim / 3 / 8)
        self.gate_up = nn.Linear(emb_dim, 2 * self.hidden, bias=False)    # gate and up, one matmul
        self.down = nn.Linear(self.hidden, emb_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:                                 # (B, T, C) -> (B, T, C)
        gate, up = self.gate_up(x).chunk(2, dim=-1)                         # (B, T, hidden) each
        return self.down(F.silu(gate) * up)


# ---------------------------------------------------------------------------- grouped-query attention
class GroupedQueryAttention(nn.Module):
    """Causal self-attention whose H query heads share K key/value heads, G = H / K each: (B, T, C) -> (B, T, C).

    K = H is GPT-2's multi-head attention (the same ``qkv`` and ``out_proj`` weights), K = 1 is
    multi-query attention. Generation caches only K heads of keys and values, H / K times fewer bytes.
    ``qk_norm`` puts an RMSNorm (over D, shared by the heads) on queries and keys before the rotation.
    """

    def __init__(self, cfg: ModernConfig) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.dropout_p = cfg.drop_rate
        self.use_fused = True  # False: the explicit grouped formula (_explicit)
        kv_dim = self.num_kv_heads * self.head_dim
        self.split = [cfg.emb_dim, kv_dim, kv_dim]
        self.qkv = nn.Linear(cfg.emb_dim, sum(self.split), bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(cfg.emb_dim, cfg.emb_dim)
        self.dropout = nn.Dropout(cfg.drop_rate)  # on the attention weights
        self.q_norm = RMSNorm(self.head_dim) if cfg.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim) if cfg.qk_norm else None

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None, kv_cache=None) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(self.split, dim=2)                      # (B, T, H*D), (B, T, K*D) x2
        q = q.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)      # (B, H, T, D)
        k, v = (z.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2) for z in (k, v))  # (B, K, T, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if kv_cache is not None:  # (cache, layer): day 6's cache, storing K heads only
            k, v = kv_cache[0].append(kv_cache[1], k, v)                    # (B, K, cached + T, D)
        context = self._fused(q, k, v) if self.use_fused else self._explicit(q, k, v)  # (B, H, T, D)
        return self.out_proj(context.transpose(1, 2).reshape(b, t, c))

    def _explicit(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Day 3's formula with the query heads grouped by the key/value head they share (no copies)."""
        b, _, t_q, d = q.shape
        q = q.view(b, self.num_kv_heads, -1, t_q, d)                        # (B, K, G, T_q, D): head h in group h // G
        scores = q @ k.unsqueeze(2).transpose(-2, -1) / math.sqrt(d)        # (B, K, G, T_q, T_k)
        scores = scores.masked_fill(causal_mask(t_q, k.size(2), q.device), float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return (weights @ v.unsqueeze(2)).view(b, self.num_heads, t_q, d)  # (B, H, T_q, D)

    def _fused(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """The same maths in PyTorch's fused kernel (the mask as in ``MultiHeadAttention._fused``)."""
        t_q, t_k = q.size(2), k.size(2)
        allowed = None if t_q in (1, t_k) else ~causal_mask(t_q, t_k, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=t_q == t_k and t_q > 1,
                                              dropout_p=self.dropout_p if self.training else 0.0,
                                              enable_gqa=self.num_kv_heads != self.num_heads)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}, head_dim={self.head_dim}"


def kv_cache_bytes_per_token(cfg: GPTConfig, bytes_per_number: int = 4) -> int:
    """Bytes day 6's KV cache holds per token: keys and values, every layer, K heads of D numbers.

    ``replace(cfg, n_kv_heads=None)`` gives multi-head attention's, H / K times more.
    """
    kv_heads = getattr(cfg, "kv_heads", cfg.n_heads)
    return 2 * cfg.n_layers * kv_heads * cfg.head_dim * bytes_per_number


# ---------------------------------------------------------------------------- the model
@dataclass
class ModernConfig(GPTConfig):
    """``GPTConfig`` plus one switch per modern part; the defaults are GPT-2's choices.

    ``ModernConfig(**gpt_config.to_dict(), norm="rms")`` turns one switch on for a day 5 model.
    """

    norm: str = "layer"          # "layer" (GPT-2) or "rms"
    positions: str = "learned"   # "learned" (GPT-2) or "rope"
    ffn: str = "gelu"            # "gelu" (GPT-2) or "swiglu"
    n_kv_heads: int | None = None  # key/value heads; None: n_heads (GPT-2's multi-head attention)
    qk_norm: bool = False        # RMSNorm on queries and keys
    rope_base: float = 10000.0   # the slowest pair turns once in about 2 * pi * rope_base positions
    muon_lr: float | None = None  # Muon for the blocks' matrices at this peak lr; None: AdamW (GPT-2)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {getattr(self, name)!r}")
        if self.n_kv_heads is not None and self.n_heads % whole_number("ModernConfig.n_kv_heads", self.n_kv_heads):
            raise ValueError(f"ModernConfig.n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads})")
        if not isinstance(self.qk_norm, bool):
            raise ValueError(f"ModernConfig.qk_norm must be True or False, got {self.qk_norm!r}")
        positive_number("ModernConfig.rope_base", self.rope_base)
        if self.muon_lr is not None:
            positive_number("ModernConfig.muon_lr", self.muon_lr)
        if self.positions == "rope" and self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for rotary positions: change emb_dim or n_heads")

    @classmethod
    def preset(cls, name: str, **overrides) -> ModernConfig:
        """A named ``GPTConfig`` preset with switches: ``ModernConfig.preset("cpu-small", norm="rms")``."""
        return cls(**{**GPTConfig.preset(name).to_dict(), **overrides})

    def build(self) -> ModernGPT:
        """A new ``ModernGPT`` (``pretrain`` and checkpoints build a model from its config)."""
        return ModernGPT(self)

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads


def make_norm(cfg: ModernConfig) -> nn.Module:
    return RMSNorm(cfg.emb_dim) if cfg.norm == "rms" else LayerNorm(cfg.emb_dim)


class ModernBlock(nn.Module):
    """Day 4's pre-norm block, each of its parts chosen by the config (same names, same order)."""

    def __init__(self, cfg: ModernConfig) -> None:
        super().__init__()
        self.att = GroupedQueryAttention(cfg)
        self.ff = SwiGLU(cfg.emb_dim) if cfg.ffn == "swiglu" else FeedForward(cfg.emb_dim)
        self.norm1, self.norm2 = make_norm(cfg), make_norm(cfg)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None, kv_cache=None) -> Tensor:
        x = x + self.drop_shortcut(self.att(self.norm1(x), rope, kv_cache))  # (B, T, C)
        return x + self.drop_shortcut(self.ff(self.norm2(x)))

    @property
    def residual_projections(self) -> list[nn.Linear]:
        """The two layers that write into the residual stream (initialised smaller, see GPTModel)."""
        return [self.att.out_proj, self.ff.down if isinstance(self.ff, SwiGLU) else self.ff.layers[2]]


class ModernGPT(nn.Module):
    """``GPTModel`` with switchable parts: token ids (B, T) -> logits (B, T, vocab_size).

    Initialised as GPT-2 (``GPTModel.reset_parameters``); works with day 6's ``generate`` and ``KVCache``.
    """

    def __init__(self, cfg: ModernConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim) if cfg.positions == "learned" else None
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.ModuleList(ModernBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = make_norm(cfg)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.out_head.weight = self.tok_emb.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Weights ~ N(0, 0.02), biases 0, norms 1 (and 0), residual projections 0.02 / sqrt(2 * n_layers)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (LayerNorm, RMSNorm)):
                nn.init.ones_(module.scale)
                if isinstance(module, LayerNorm):
                    nn.init.zeros_(module.shift)
        for block in self.trf_blocks:
            for layer in block.residual_projections:
                nn.init.normal_(layer.weight, mean=0.0, std=0.02 / math.sqrt(2 * self.cfg.n_layers))

    def forward(self, in_idx: Tensor, kv_cache=None) -> Tensor:
        start = 0 if kv_cache is None else kv_cache.length
        _check_ids(in_idx, start, self.cfg.context_length)
        positions = torch.arange(start, start + in_idx.size(1), device=in_idx.device)  # (T,)
        x = self.tok_emb(in_idx)                                            # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)
        x = self.drop_emb(x)
        rope = None if self.pos_emb is not None else rope_cos_sin(positions, self.cfg.head_dim, self.cfg.rope_base)
        for i, block in enumerate(self.trf_blocks):
            x = block(x, rope, None if kv_cache is None else (kv_cache, i))
        return self.out_head(self.final_norm(x))                           # (B, T, vocab_size)

    def set_use_fused(self, use_fused: bool) -> ModernGPT:
        """Set ``use_fused`` on every layer: True (the default) the fused kernels, False the hand-written formulas."""
        for module in self.modules():
            if isinstance(module, (GroupedQueryAttention, LayerNorm, RMSNorm, GELU)):
                module.use_fused = use_fused
        return self

    def make_optimizer(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        """Day 5's AdamW (``train`` asks the model first); with ``muon_lr`` set, ``Muon``: the blocks' matrices
        at ``muon_lr``, the rest with AdamW at ``cfg.lr``, both with ``cfg.weight_decay`` (decoupled: the weights
        shrink by lr * weight_decay a step; without it Muon's matrices over-fit day 5's text). The schedule scales both."""
        if self.cfg.muon_lr is None:
            return make_optimizer(self, cfg.lr, cfg.weight_decay, cfg.betas)
        matrices, rest = muon_split(self)
        adamw = dict(use_muon=False, lr=cfg.lr, betas=cfg.betas)
        groups = [dict(params=[p for p in rest if p.dim() >= 2], weight_decay=cfg.weight_decay, **adamw),
                  dict(params=[p for p in rest if p.dim() < 2], weight_decay=0.0, **adamw),  # as day 5: not 1-D
                  dict(params=matrices, lr=self.cfg.muon_lr, weight_decay=cfg.weight_decay)]
        return Muon([g for g in groups if g["params"]])

    def new_kv_cache(self) -> ModernKVCache:
        """An empty KV cache for this model (``generate`` asks for one)."""
        return ModernKVCache(self)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # a tied head counts once


# ---------------------------------------------------------------------------- Muon
def newton_schulz(g: Tensor, steps: int = 5) -> Tensor:
    """About the orthogonal matrix nearest to ``g`` (..., M, N), U V^T of its SVD U S V^T, in a few matmuls
    (a stack of matrices at once).

    Each step maps every singular value s to ``a s + b s^3 + c s^5``; Keller Jordan's coefficients
    push all of them from (0, 1] into about [0.7, 1.2] fast (no need for exactly 1).
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = g.size(-2) > g.size(-1)
    x = g / (g.norm(dim=(-2, -1), keepdim=True) + 1e-7)                    # singular values <= 1
    wide = x.mT if tall else x                                             # (min, max): the small Gram matrix
    for _ in range(steps):
        gram = wide @ wide.mT
        wide = a * wide + (b * gram + c * gram @ gram) @ wide
    return wide.mT if tall else wide


class Muon(torch.optim.Optimizer):
    """Muon for the weight matrices and AdamW for the rest, in one optimizer (one schedule, one state to save).

    A group with ``use_muon=True`` (the default) takes SGD steps with Nesterov momentum whose update for
    each matrix is ``newton_schulz``'d: the raw update of a matrix is dominated by a few directions, and
    orthogonalising it gives every direction the same step. A group with ``use_muon=False`` takes
    AdamW's steps: embeddings, head, norms and biases (``muon_split``), as in the NanoGPT speedrun.
    ``weight_decay`` is decoupled in both (the weights shrink by ``lr * weight_decay`` each step).
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
                 betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8, weight_decay: float = 0.0):
        positive_number("Muon lr", lr)
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, betas=betas,
                                      eps=eps, weight_decay=weight_decay, use_muon=True))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                p.mul_(1 - group["lr"] * group["weight_decay"])
            if group["use_muon"]:
                self._muon_steps(params, group)
            else:
                for p in params:
                    self._adamw_step(p, group)
        return loss

    def _muon_steps(self, params: list[Tensor], group: dict) -> None:
        """Momentum per matrix, then one ``newton_schulz`` per shape for every matrix of that shape at once."""
        updates = []
        for p in params:
            buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
            buf.lerp_(p.grad, 1 - group["momentum"])                       # running mean of the gradients
            updates.append(p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf)
        for shape in dict.fromkeys(p.shape for p in params):
            same = [i for i, p in enumerate(params) if p.shape == shape]
            orthogonal = newton_schulz(torch.stack([updates[i] for i in same]), group["ns_steps"])
            scale = max(1.0, shape[0] / shape[1]) ** 0.5                      # tall matrices: same RMS step
            for i, update in zip(same, orthogonal):
                params[i].add_(update, alpha=-group["lr"] * scale)

    def _adamw_step(self, p: Tensor, group: dict) -> None:
        """Day 5's AdamW step (``torch.optim.AdamW``'s maths, written out; ``tests/test_modern.py`` compares)."""
        state, (beta1, beta2) = self.state[p], group["betas"]
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        state["step"] += 1
        state["exp_avg"].lerp_(p.grad, 1 - beta1)                          # mean of the gradients
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)  # mean of their squares
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2 ** state["step"])).add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1 ** state["step"]))


def muon_split(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(the blocks' trainable weight matrices, for Muon; every other trainable parameter, for AdamW)."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    matrices = [p for name, p in trainable if p.dim() == 2 and name.startswith("trf_blocks.")]
    chosen = {id(p) for p in matrices}
    return matrices, [p for _, p in trainable if id(p) not in chosen]


class ModernKVCache(KVCache):
    """Day 6's KV cache for a ``ModernGPT``: the same store of keys and values, the modern forward pass."""

    def __init__(self, model: ModernGPT) -> None:  # day 6's __init__ admits a GPTModel only: the same empty store
        self.model, self.keys, self.values = model, [], []

    def forward(self, new_ids: Tensor) -> Tensor:
        """The model's logits for ``new_ids`` (B, T_new), the tokens after the cached ones."""
        return self.model(new_ids, kv_cache=self)


# ---------------------------------------------------------------------------- the recipe
# Chosen by a one-seed screen at 1,000 steps (bits/byte; day 5's parts 2.384): RoPE + Muon 2.181, + QK-norm 2.151;
# + RMSNorm 2.184 or + SwiGLU 2.182 instead of QK-norm. Measured by benchmarks/pretrain.py on 2 CPU cores at day 5's
# training time: 2.120 and 2.114 in two runs against day 5's 2.240; without weight decay on Muon's matrices it
# over-fitted (2.212).
MODERN = Recipe(  # day 5's recipe with the parts that measured better on its data at equal time (the bonus day)
    name="modern", version=1,
    model=ModernConfig(**DAY5.model.to_dict(), positions="rope", qk_norm=True, muon_lr=0.02),
    train=replace(DAY5.train, max_steps=1750))  # day 5's training time on 2 cores (benchmarks/pretrain.py fitted 1,743 and 1,781)
