"""The bonus day's exercises: RMSNorm, rotary position embeddings (Llama's half-split layout) and causal
grouped-query attention, each written as a plain function.

Each check compares the learner's answer with the reference (``F.rms_norm``, ``gptlib.modern.apply_rope``,
``F.scaled_dot_product_attention(enable_gqa=True)``) on inputs of several shapes chosen to tell the usual
mistakes apart, and when it disagrees recomputes the answer with each usual mistake made on purpose
(``_rms_norm``, ``_rotary``, ``_attention``), so the hint names the mistake that was made. Checks draw their
random inputs from their own seeded generators: running one leaves the notebook's random state as it was.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...modern import apply_rope, rope_cos_sin
from . import Text, Wrong, call, close, exercise, expect, expect_tensor, msg

TOL = 1e-4


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _first_match(got: torch.Tensor, mistakes: dict[str, Text], recompute, **values) -> None:
    """Raise the hint of the first mistake whose recomputed output equals ``got``, if one does."""
    for mistake, hint in mistakes.items():
        wrong = recompute(mistake)
        if wrong is not None and close(got, wrong, TOL):
            raise Wrong(hint, **values)


def _same_shape(got, want: tuple[int, ...], key: Text, dtype: torch.dtype = torch.float32) -> None:
    expect_tensor(got)
    expect(tuple(got.shape) == want, key, want=want, shape=tuple(got.shape))
    expect(got.dtype == dtype, msg("8.dtype"), got=str(got.dtype).removeprefix("torch."),
           want=str(dtype).removeprefix("torch."))


def _gradients(answer, reference, inputs: list[torch.Tensor], none: Text, wrong: Text) -> None:
    """Backpropagate the same random projection through ``answer(*inputs)`` and ``reference(*inputs)``:
    ``Wrong(none)`` unless gradients reach every input, ``Wrong(wrong)`` unless they equal the reference's."""
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = call(answer, *leaves)
    expect_tensor(out)
    expect(out.requires_grad, none)
    weights = _randn(*out.shape, seed=99)
    (out * weights).sum().backward()
    expect(all(t.grad is not None for t in leaves), none)
    want = [t.clone().requires_grad_() for t in inputs]
    (reference(*want) * weights).sum().backward()
    expect(all(close(a.grad, b.grad, TOL) for a, b in zip(leaves, want)), wrong)


# ---------------------------------------------------------------------------- 8.1 RMSNorm
RMS_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it (_rms_norm)
    "mean_subtracted": msg("8.1.mean_subtracted"), "std": msg("8.1.std"), "std_unbiased": msg("8.1.std"),
    "sum": msg("8.1.sum"), "eps_outside": msg("8.1.eps_outside"), "no_eps": msg("8.1.no_eps"),
    "no_sqrt": msg("8.1.no_sqrt"), "no_scale": msg("8.1.no_scale"), "eps_ignored": msg("8.1.eps_ignored"),
    "eps_clamps_square": msg("8.1.eps_clamps"), "eps_clamps_root": msg("8.1.eps_clamps"), "norm": msg("8.1.norm"),
    "one_plus_scale": msg("8.1.one_plus_scale"), "scale_first": msg("8.1.scale_first"), }


@torch.no_grad()
def _rms_norm(x: torch.Tensor, scale: torch.Tensor, eps: float, mistake: str | None = None,
              dim: int = -1) -> torch.Tensor:
    """RMSNorm written out over ``dim``, with one of ``RMS_MISTAKES`` made on purpose."""
    x = x.double() * (scale.double() if mistake == "scale_first" else 1)
    eps = 1e-5 if mistake == "eps_ignored" else eps
    if mistake == "mean_subtracted":
        x = x - x.mean(dim=dim, keepdim=True)
    if mistake in ("std", "std_unbiased"):
        square = x.var(dim=dim, keepdim=True, unbiased=mistake == "std_unbiased")
    elif mistake in ("sum", "norm"):
        square = x.pow(2).sum(dim=dim, keepdim=True)
    else:
        square = x.pow(2).mean(dim=dim, keepdim=True)
    if mistake in ("eps_outside", "norm"):                       # torch.norm(x) + eps: the length, eps outside
        normed = x / (square.sqrt() + eps)
    elif mistake == "no_eps":
        normed = x / square.sqrt()
    elif mistake == "no_sqrt":
        normed = x / (square + eps)
    elif mistake == "eps_clamps_square":                          # F.normalize's way: a floor, not an offset
        normed = x / square.clamp_min(eps).sqrt()
    elif mistake == "eps_clamps_root":
        normed = x / square.sqrt().clamp_min(eps)
    else:
        normed = x / (square + eps).sqrt()
    if mistake == "one_plus_scale":
        return normed * (1 + scale.double())
    return normed if mistake in ("no_scale", "scale_first") else normed * scale.double()


def _rms_cases(dim: int, seed: int) -> list[tuple[torch.Tensor, float]]:
    """(input, eps): tiny values (where eps matters; one token's root mean square below it), tokens far from
    zero mean, a zero token, a larger eps."""
    tiny = 0.001 * _randn(4, dim, seed=seed)
    tiny[0] *= 0.001                                              # root mean square below eps: a floor shows
    typical = 1.5 + 3.0 * _randn(2, 5, dim, seed=seed + 1)       # a mean far from 0: centring would show
    with_zero = _randn(3, dim, seed=seed + 2)
    with_zero[1] = 0.0                                            # mean square 0: only eps keeps it finite
    return [(tiny, 1e-5), (typical, 1e-5), (with_zero, 1e-5), (0.1 * _randn(2, 3, dim, seed=seed + 3), 0.5)]


@exercise("8.1", todo=msg("8.1.todo"), done=msg("8.1.done"))
def _rms_norm_fn(rms_norm) -> None:
    for dim, seed in ((16, 0), (6, 10)):
        scale = 1.0 + 0.5 * _randn(dim, seed=seed + 5)           # random, so a forgotten scale shows
        for x, eps in _rms_cases(dim, seed):
            got = call(rms_norm, x.clone(), scale.clone(), eps)
            _same_shape(got, tuple(x.shape), msg("8.1.shape"))
            if not bool(torch.isfinite(got).all()):
                raise Wrong(msg("8.1.not_finite"))
            expected = F.rms_norm(x, (dim,), scale, eps)
            if close(got, expected, TOL):
                continue
            for other in range(x.dim() - 1):                      # normalised across tokens or the batch
                if close(got, _rms_norm(x, scale, eps, dim=other), TOL):
                    raise Wrong(msg("8.1.wrong_dim"), dim=other)
            _first_match(got, RMS_MISTAKES, lambda m: _rms_norm(x, scale, eps, m), eps=eps)
            raise Wrong(msg("8.1.differs"), err=float((got.double() - expected.double()).abs().max()))
    _gradients(rms_norm, lambda x, scale: F.rms_norm(x, (8,), scale, 1e-5),
               [_randn(2, 3, 8, seed=20), 1.0 + 0.5 * _randn(8, seed=21)], msg("8.1.no_gradient"), msg("8.1.gradient"))


# ---------------------------------------------------------------------------- 8.2 rotary position embeddings
ROTARY_MISTAKES = {
    "interleaved": msg("8.2.interleaved"), "backwards": msg("8.2.backwards"), "exponent": msg("8.2.exponent"),
    "inverted": msg("8.2.inverted"), "from_one": msg("8.2.from_one"), "own_positions": msg("8.2.own_positions"),
    "first_half": msg("8.2.one_half"), "second_half": msg("8.2.one_half"), "base_ignored": msg("8.2.base_ignored"),
    "halves_swapped": msg("8.2.halves_swapped"), "cos_sin_swapped": msg("8.2.cos_sin_swapped"), }


@torch.no_grad()
def _rotary(x: torch.Tensor, positions: torch.Tensor, base: float, mistake: str) -> torch.Tensor:
    """Rotary embeddings of ``x`` (..., T, D), with one of ``ROTARY_MISTAKES`` made on purpose."""
    x, d = x.double(), x.shape[-1]
    i = torch.arange(d // 2, dtype=torch.float64)
    base = 10000.0 if mistake == "base_ignored" else base
    inv_freq = {"exponent": base ** (-i / d), "inverted": base ** (2 * i / d)}.get(mistake, base ** (-2 * i / d))
    pos = {"from_one": positions + 1, "own_positions": torch.arange(x.shape[-2])}.get(mistake, positions)
    angles = pos.double()[:, None] * inv_freq                     # (T, D/2)
    cos, sin = angles.cos(), angles.sin() * (-1 if mistake == "backwards" else 1)
    if mistake == "cos_sin_swapped":
        cos, sin = sin, cos
    if mistake == "interleaved":                                  # pairs (2i, 2i + 1): GPT-J's layout
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    x1, x2 = x.chunk(2, dim=-1)
    first, second = x1 * cos - x2 * sin, x1 * sin + x2 * cos
    if mistake == "first_half":
        return torch.cat([first, x2], dim=-1)
    if mistake == "second_half":
        return torch.cat([x1, second], dim=-1)
    if mistake == "halves_swapped":
        return torch.cat([second, first], dim=-1)
    return torch.cat([first, second], dim=-1)


ROTARY_CASES = (  # (x shape, positions, base): positions that do not start at 0 in the second case, as in
    ((2, 3, 6, 8), torch.arange(6), 10000.0),            # generation with a KV cache; another base in the third
    ((5, 16), torch.arange(4, 9), 10000.0),
    ((1, 2, 7, 12), torch.arange(7), 100.0),
)


@exercise("8.2", todo=msg("8.2.todo"), done=msg("8.2.done"))
def _apply_rotary(apply_rotary) -> None:
    for n, (shape, positions, base) in enumerate(ROTARY_CASES):
        x = _randn(*shape, seed=30 + n)
        got = call(apply_rotary, x.clone(), positions.clone(), base)
        _same_shape(got, shape, msg("8.2.shape"))
        expected = apply_rope(x, *rope_cos_sin(positions, shape[-1], base))
        if close(got, expected, TOL):
            continue
        if close(got, x, TOL):
            raise Wrong(msg("8.2.unchanged"))
        _first_match(got, ROTARY_MISTAKES, lambda m: _rotary(x, positions, base, m),
                     start=int(positions[0]), base=f"{base:g}")
        raise Wrong(msg("8.2.differs"), err=float((got.double() - expected.double()).abs().max()))


# ---------------------------------------------------------------------------- 8.3 grouped-query attention
ATTENTION_MISTAKES = {
    "repeat": msg("8.3.repeat"), "no_mask": msg("8.3.no_mask"), "mask_zero": msg("8.3.mask_zero"),
    "mask_after": msg("8.3.mask_after"), "no_scale": msg("8.3.no_scale"), "scale_hd": msg("8.3.scale_hd"),
    "scale_d": msg("8.3.scale_d"), "diagonal": msg("8.3.diagonal"), "softmax_dim": msg("8.3.softmax_dim"),
    "scale_t": msg("8.3.scale_t"), }


@torch.no_grad()
def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mistake: str) -> torch.Tensor:
    """Causal grouped-query attention, with one of ``ATTENTION_MISTAKES`` made on purpose."""
    q, k, v = q.double(), k.double(), v.double()
    h, t, d = q.shape[1], q.shape[2], q.shape[3]
    group = h // k.shape[1]
    if mistake == "repeat":                                       # head h reads key/value head h % K
        k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
    else:                                                         # head h reads key/value head h // G
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    divisor = {"no_scale": 1.0, "scale_hd": math.sqrt(h * d), "scale_d": d, "scale_t": math.sqrt(t)}.get(
        mistake, math.sqrt(d))
    scores = q @ k.transpose(-2, -1) / divisor                    # (B, H, T, T)
    future = torch.ones(t, t, dtype=torch.bool).triu(0 if mistake == "diagonal" else 1)
    if mistake == "mask_zero":
        scores = scores.masked_fill(future, 0.0)
    elif mistake == "diagonal":                                   # a large finite fill: row 0, all masked, is uniform
        scores = scores.masked_fill(future, -1e30)
    elif mistake not in ("no_mask", "mask_after"):
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-2 if mistake == "softmax_dim" else -1)
    if mistake == "mask_after":
        weights = weights.masked_fill(future, 0.0)
    return weights @ v


ATTENTION_CASES = (  # (B, H, K, T, D): K > 1 and H != K first (repeat and repeat_interleave differ), then
    (2, 4, 2, 5, 8), (1, 6, 3, 7, 4), (2, 8, 2, 4, 16),  # other groupings, one key/value head (multi-query),
    (1, 4, 1, 6, 8), (2, 3, 3, 5, 4), (1, 2, 1, 1, 8),   # as many as the queries (multi-head), one token
)


@exercise("8.3", todo=msg("8.3.todo"), done=msg("8.3.done"))
def _grouped_query_attention(attention) -> None:
    for n, (b, h, kv, t, d) in enumerate(ATTENTION_CASES):
        q, k, v = _randn(b, h, t, d, seed=40 + n), _randn(b, kv, t, d, seed=50 + n), _randn(b, kv, t, d, seed=60 + n)
        got = call(attention, q.clone(), k.clone(), v.clone())
        _same_shape(got, (b, h, t, d), msg("8.3.shape"))
        finite = torch.isfinite(got.detach().cpu()).all(dim=-1)        # (B, H, T): which queries' outputs are
        if not bool(finite.all()):
            # the first query alone broken: its only key, itself, was masked (-inf everywhere: 0/0 in the softmax)
            raise Wrong(msg("8.3.diagonal") if bool(finite[..., 1:].all()) else msg("8.3.not_finite"))
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        if close(got, expected, TOL):
            continue
        _first_match(got, ATTENTION_MISTAKES, lambda m: _attention(q, k, v, m), h=h, k=kv, g=h // kv, d=d, t=t)
        raise Wrong(msg("8.3.differs"), h=h, k=kv, t=t, d=d, err=float((got.double() - expected.double()).abs().max()))
    _gradients(attention, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
               [_randn(1, 4, 3, 8, seed=70), _randn(1, 2, 3, 8, seed=71), _randn(1, 2, 3, 8, seed=72)],
               msg("8.3.no_gradient"), msg("8.3.gradient"))
