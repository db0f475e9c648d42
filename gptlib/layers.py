"""Day 4: the small layers of a Transformer block — LayerNorm, GELU and the feed-forward net.

LayerNorm and GELU each have their formula written out by hand (``explicit_forward``), so the
maths is on the page, and a fast path (``F.layer_norm`` / ``F.gelu``: one fused kernel instead
of about eight element-wise passes over memory, several times faster on a CPU) used by
default, as nanoGPT does. Set ``use_fused = False`` on an instance (or
``GPTModel.use_explicit_paths()``) to run the hand-written formula. ``tests/test_layers.py``
proves the hand-written formula equal to ``nn.LayerNorm`` / ``F.gelu``, values and gradients.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # only for the type hint; model.py imports this module
    from .model import GPTConfig

__all__ = ["LayerNorm", "GELU", "FeedForward"]


class LayerNorm(nn.Module):
    """Normalise each token's vector to mean 0 and variance 1, then rescale: ``scale * x_hat + shift``.

    Why: activations that drift in size from layer to layer make training unstable; putting
    every token vector on the same footing keeps gradients well behaved. ``scale`` and
    ``shift`` (GPT-2's ``ln.weight`` / ``ln.bias``) let the model undo the normalisation
    where that helps.

    The variance is the *biased* one (divide by n, ``unbiased=False``), as GPT-2 and
    ``nn.LayerNorm`` compute it; ``eps`` keeps the division safe when the variance is ~0.
    ``use_fused`` (default True) computes the same with ``F.layer_norm``.
    """

    def __init__(self, emb_dim: int, eps: float = 1e-5, *, use_fused: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.use_fused = use_fused
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: Tensor) -> Tensor:
        if self.use_fused:
            return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)
        return self.explicit_forward(x)

    def explicit_forward(self, x: Tensor) -> Tensor:
        """The formula, step by step."""
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * x_hat + self.shift

    def extra_repr(self) -> str:
        return f"{self.scale.numel()}, eps={self.eps}, use_fused={self.use_fused}"


class GELU(nn.Module):
    """Gaussian Error Linear Unit, GPT-2's tanh approximation.

    ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``. Like ReLU it lets large
    positive values through and silences large negative ones, but it is smooth and lets a
    little of small negative inputs through, so no neuron gets a zero gradient everywhere
    ("dead ReLU"). GPT-2 was trained with this approximation, so loading its weights needs it
    (``F.gelu(x, approximate="tanh")``, which ``use_fused`` runs, default True).
    """

    def __init__(self, *, use_fused: bool = True) -> None:
        super().__init__()
        self.use_fused = use_fused

    def forward(self, x: Tensor) -> Tensor:
        if self.use_fused:
            return F.gelu(x, approximate="tanh")
        return self.explicit_forward(x)

    def explicit_forward(self, x: Tensor) -> Tensor:
        """The formula, as GPT-2's code writes it."""
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class FeedForward(nn.Module):
    """The position-wise MLP of a block: ``emb_dim -> 4 * emb_dim -> GELU -> emb_dim``.

    Attention mixes information *between* tokens; this net then transforms each token on its
    own. The 4x wider hidden layer is GPT-2's choice (``mlp.c_fc`` / ``mlp.c_proj``).
    ``layers[0]`` expands, ``layers[2]`` projects back into the residual stream.
    """

    def __init__(self, cfg: "GPTConfig") -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
