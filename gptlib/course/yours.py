"""Your GPT: the model built from the pieces you wrote, where they passed, and gptlib's pieces elsewhere.

The pieces are your kept answers (``exercises.keep``: ``mygpt/day3.py``, ``mygpt/day4.py``): the attention
class (3.3), LayerNorm (4.1), GELU (4.2), the block's forward (4.3), the feed-forward network (4.5) and the
GPT's forward (4.6). ``your_gpt(cfg)`` builds a ``GPTModel`` whose parts are yours where kept; its
``state_dict`` has exactly gptlib's names and shapes, so it loads a gptlib model's weights (and gptlib's
checkpoints), and with the same seed it starts from the same weights. Your attention keeps its own
``W_query``/``W_key``/``W_value`` layers, and your feed-forward its own two layers: they read their weights
from gptlib-named parameters (``qkv``, ``layers.0``, ``layers.2``) at every call, so training updates those.
``pieces_line`` says in one line which pieces are whose. Later days add their pieces the same way
(``yours_train``, ``yours_sample``, ``yours_lora``); your LoRA layers may wrap ``qkv``, ``out_proj`` and the
feed-forward's layers, and your attention and feed-forward then call the wrapped layers.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..checks import token_batch
from ..model import GELU, GPTConfig, GPTModel, TransformerBlock
from .exercises import msg
from .exercises.keep import load

PIECES = ("3.3", "4.1", "4.2", "4.3", "4.5", "4.6")  # attention, LayerNorm, GELU, block forward, FF, forward


def kept_pieces(exercises: tuple[str, ...], folder: Path | None = None) -> dict[str, Any]:
    """Your kept answers to ``exercises``: exercise -> function or class (only those kept: they passed)."""
    kept: dict[str, Any] = {}
    for day in sorted({int(ex.split(".")[0]) for ex in exercises}):
        kept.update(load(day, folder))
    return {ex: kept[ex] for ex in exercises if ex in kept}


def your_pieces(folder: Path | None = None, every: tuple[str, ...] = PIECES) -> dict[str, Any]:
    """Your kept answers that go into the GPT (day 4's, or ``every``): exercise -> function or class."""
    return kept_pieces(every, folder)


def _borrow(layer: nn.Linear, weight: Tensor, bias: Tensor | None) -> None:
    """Let ``layer`` compute with ``weight`` and ``bias`` (someone else's parameters) instead of its own."""
    for name in ("weight", "bias"):
        if name in layer._parameters:
            delattr(layer, name)
    layer.weight = weight.view_as(weight)                                   # a view: not registered again
    layer.bias = None if bias is None else bias.view_as(bias)


class _Routed(nn.Module):
    """Stands in for one of your linear layers once gptlib's layer was wrapped (LoRA): calls ``fn``."""

    def __init__(self, fn: Callable[[Tensor], Tensor], layer: nn.Linear) -> None:
        super().__init__()
        self.fn = fn                    # a method of the layer's owner: no weights; deepcopy follows it
        self.in_features, self.out_features = layer.in_features, layer.out_features  # as your code may read

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


def _plain(layer: nn.Module) -> bool:
    """True for an ``nn.Linear`` itself; False once it was wrapped (a LoRA layer in its place)."""
    return type(layer) is nn.Linear


def _route(root: nn.Module, layer: nn.Module, fn: Callable[[Tensor], Tensor]) -> _Routed:
    """Put ``_Routed(fn)`` where ``layer`` sits inside ``root``; return it."""
    name = next(name for name, module in root.named_modules() if module is layer)
    parent, _, child = name.rpartition(".")
    routed = _Routed(fn, layer)
    setattr(root.get_submodule(parent) if parent else root, child, routed)
    return routed


class YourGELU(nn.Module):
    """Your ``gelu`` function (4.2) as a layer."""

    def __init__(self, gelu: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.gelu = gelu

    def forward(self, x: Tensor) -> Tensor:
        return self.gelu(x)


def _use_gelu(module: nn.Module, gelu: Callable[[Tensor], Tensor]) -> None:
    """Put your ``gelu`` in place of every GELU layer inside ``module`` (a feed-forward network that calls
    ``F.gelu`` itself keeps it: your GELU then runs only where you call it)."""
    for name, child in list(module.named_children()):
        if isinstance(child, (GELU, nn.GELU)):
            setattr(module, name, YourGELU(gelu))
        else:
            _use_gelu(child, gelu)


class YourAttention(nn.Module):
    """Your attention class (3.3) under gptlib's parameter names: ``qkv`` holds W_query, W_key and W_value
    stacked row-wise, as ``MultiHeadAttention``'s does; ``out_proj`` is the output projection."""

    def __init__(self, attention_cls: type, cfg: GPTConfig) -> None:
        super().__init__()
        c = cfg.emb_dim
        self.qkv = nn.Linear(c, 3 * c, bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(c, c)
        self.width = c
        self.yours = attention_cls(d_in=c, d_out=c, num_heads=cfg.n_heads)
        self.yours._non_persistent_buffers_set.update(self.yours._buffers)  # a mask buffer is not a weight
        self._lend()

    def _lend(self) -> None:
        """Point your layers at ``qkv`` and ``out_proj`` (again after ``.to(device)`` moved them); once
        one of those is wrapped (LoRA), your layers call it instead."""
        c = self.width
        names = ("W_query", "W_key", "W_value")
        if _plain(self.qkv):
            weights = self.qkv.weight.split(c)                              # three (C, C)
            biases = self.qkv.bias.split(c) if self.qkv.bias is not None else (None, None, None)
            for name, weight, bias in zip(names, weights, biases):
                _borrow(getattr(self.yours, name), weight, bias)
        else:
            for i, name in enumerate(names):
                if not isinstance(getattr(self.yours, name), _Routed):
                    _route(self.yours, getattr(self.yours, name), partial(self._qkv_part, i))
        if _plain(self.out_proj):
            _borrow(self.yours.out_proj, self.out_proj.weight, self.out_proj.bias)
        elif not isinstance(self.yours.out_proj, _Routed):
            _route(self.yours, self.yours.out_proj, self._out)

    def _qkv_part(self, i: int, x: Tensor) -> Tensor:                      # (B, T, C) -> the i-th third of qkv(x)
        return self.qkv(x)[..., i * self.width:(i + 1) * self.width]

    def _out(self, x: Tensor) -> Tensor:
        return self.out_proj(x)

    def forward(self, x: Tensor) -> Tensor:                                 # (B, T, C) -> (B, T, C)
        self._lend()
        return self.yours(x)


class YourFeedForward(nn.Module):
    """Your feed-forward network (4.5) under gptlib's names: ``layers.0`` widens C -> 4C, ``layers.2``
    projects back (``layers.1``, the activation, runs inside yours)."""

    def __init__(self, ff_cls: type, cfg: GPTConfig) -> None:
        super().__init__()
        c = cfg.emb_dim
        self.layers = nn.Sequential(nn.Linear(c, 4 * c), nn.Identity(), nn.Linear(4 * c, c))
        self.yours = ff_cls(c)
        linears = [m for m in self.yours.modules() if isinstance(m, nn.Linear)]
        self.linears = sorted(linears, key=lambda m: m.in_features != c)  # widen, narrow: as the 4.5 check finds them
        self._lend()

    def _lend(self) -> None:
        """Point your two layers at ``layers.0`` and ``layers.2`` (again after ``.to(device)`` moved them)."""
        for i, (yours, ours) in enumerate(zip(self.linears, (self.layers[0], self.layers[2]))):
            if _plain(ours):
                _borrow(yours, ours.weight, ours.bias)
            elif not isinstance(yours, _Routed):                           # wrapped (LoRA): call it instead
                self.linears[i] = _route(self.yours, yours, partial(self._layer, 2 * i))

    def _layer(self, index: int, x: Tensor) -> Tensor:
        return self.layers[index](x)

    def forward(self, x: Tensor) -> Tensor:                                 # (B, T, C) -> (B, T, C)
        self._lend()
        return self.yours(x)


class YourBlock(TransformerBlock):
    """A Transformer block whose parts, and forward, are yours where kept."""

    def __init__(self, cfg: GPTConfig, pieces: dict[str, Any]) -> None:
        super().__init__(cfg)
        if "3.3" in pieces:
            self.att = YourAttention(pieces["3.3"], cfg)
        if "4.5" in pieces:
            self.ff = YourFeedForward(pieces["4.5"], cfg)
        if "4.1" in pieces:
            self.norm1, self.norm2 = pieces["4.1"](cfg.emb_dim), pieces["4.1"](cfg.emb_dim)
        if "4.2" in pieces:
            _use_gelu(self.ff, pieces["4.2"])
        self.block_forward = pieces.get("4.3")

    def forward(self, x: Tensor) -> Tensor:                                 # (B, T, C) -> (B, T, C)
        if self.block_forward is None:
            return super().forward(x)
        return self.block_forward(x, self.att, self.ff, self.norm1, self.norm2)


class YourGPT(GPTModel):
    """``GPTModel`` with your pieces in it (``your_gpt`` builds one)."""

    def __init__(self, cfg: GPTConfig, pieces: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.trf_blocks = nn.ModuleList(YourBlock(cfg, pieces) for _ in range(cfg.n_layers))
        if "4.1" in pieces:
            self.final_norm = pieces["4.1"](cfg.emb_dim)
        self.gpt_forward = pieces.get("4.6")
        self.pieces = tuple(pieces)

    def forward(self, in_idx: Tensor) -> Tensor:                            # (B, T) -> (B, T, vocab_size)
        if self.gpt_forward is None:
            return super().forward(in_idx)
        token_batch(in_idx, 0, self.cfg.context_length)
        return self.gpt_forward(in_idx, self)


def your_gpt(cfg: GPTConfig, pieces: dict[str, Any] | None = None) -> YourGPT:
    """Your GPT for ``cfg``: your kept pieces (or ``pieces``), gptlib's for the rest. It starts from the
    weights ``GPTModel(cfg)`` would have under the same seed, and leaves the random stream where that would."""
    pieces = your_pieces() if pieces is None else pieces
    start = GPTModel(cfg).state_dict()                                      # gptlib's draws, in gptlib's order
    with torch.random.fork_rng(devices=[]):
        model = YourGPT(cfg, pieces)
    model.load_state_dict(start)
    return model


NAMES = {"3.3": msg("yours.attention"), "4.1": msg("yours.layer_norm"), "4.2": msg("yours.gelu"),
         "4.3": msg("yours.block_forward"), "4.5": msg("yours.feed_forward"), "4.6": msg("yours.forward"),
         "5.3": msg("yours.training_loop"), "5.4": msg("yours.lr_schedule"), "6.4": msg("yours.sample"),
         "6.5": msg("yours.generation_loop"), "7.1": msg("yours.lora")}  # later days' pieces too


def _join(names: list[str]) -> str:
    if len(names) < 2:
        return "".join(names)
    return msg("yours.and").format(first=msg("yours.comma").format().join(names[:-1]), last=names[-1])


def pieces_line(pieces: dict[str, Any] | tuple[str, ...], every: tuple[str, ...] = PIECES) -> str:
    """One line: how many of ``every`` piece (day 4's by default) are yours, and which are still the library's."""
    mine = [ex for ex in every if ex in pieces]
    library = [NAMES[ex].format() for ex in every if ex not in pieces]
    values = dict(mine=len(mine), total=len(every), rest=_join(library), todo=", ".join(
        ex for ex in every if ex not in pieces))
    if not library:
        return msg("yours.all").format(**values)
    if not mine:
        return msg("yours.none").format(**values)
    return msg("yours.some").format(**values)
