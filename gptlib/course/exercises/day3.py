"""Day 3's exercises: attention scores, the causal softmax, the whole causal multi-head attention, and
dropout on the attention weights.

Each check recognises the usual mistakes by recomputing the answer with that mistake made on
purpose (``_causal_mistakes``, ``_diagnose``), so its hint names what went wrong instead of guessing.
Checks that draw random numbers do so inside ``torch.random.fork_rng``: they never move the
learner's own random stream.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...model import MultiHeadAttention, causal_mask
from . import NotDone, Text, Wrong, call, close, exercise, expect, expect_tensor, msg


def _qk(t: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, d, generator=g), torch.randn(t, d, generator=g)


# ---------------------------------------------------------------------------- 3.1 scaled scores
@exercise("3.1", todo=msg("3.1.todo"), done=msg("3.1.done"))
def _scaled_scores(scores_fn) -> None:
    for t, d in ((4, 8), (6, 64), (1, 16)):  # T != d_k, so sqrt(T) and sqrt(d_k) tell apart
        q, k = _qk(t, d, seed=t * d)
        got = call(scores_fn, q.clone(), k.clone())
        expected = q @ k.T / math.sqrt(d)
        expect_tensor(got)
        expect(isinstance(got, torch.Tensor) and got.shape == (t, t),
               msg("3.1.shape"), t=t, shape=tuple(getattr(got, "shape", ())))
        if close(got, expected):
            continue
        if close(got, q @ k.T):
            raise Wrong(msg("3.1.no_scale"), d=d)
        if close(got, q @ k.T * math.sqrt(d)):
            raise Wrong(msg("3.1.times_root"), d=d)
        if close(got, q @ k.T / d):
            raise Wrong(msg("3.1.by_d_k"), d=d, root=math.sqrt(d))
        if close(got, q @ k.T / math.sqrt(t)):
            raise Wrong(msg("3.1.by_sqrt_t"), t=t)
        if close(got, k @ q.T / math.sqrt(d)):
            raise Wrong(msg("3.1.k_q"))
        if close(got, torch.softmax(expected, dim=-1)):
            raise Wrong(msg("3.1.softmax"))
        raise Wrong(msg("3.1.differs"), err=float((got - expected).abs().max()))


# ---------------------------------------------------------------------------- 3.2 causal softmax
def _causal_mistakes(scores: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    """The usual wrong causal softmaxes of ``scores``, each with its hint."""
    t = scores.shape[-1]
    future = causal_mask(t)
    inf = float("-inf")
    return {
        "zero": (torch.softmax(scores.masked_fill(future, 0.0), dim=-1),
                 msg("3.2.zero")), "none": (torch.softmax(scores, dim=-1), msg("3.2.none")),
        "past": (torch.softmax(scores.masked_fill(future.T, inf), dim=-1),
                 msg("3.2.past")), "after": (torch.softmax(scores, dim=-1).masked_fill(future, 0.0), msg("3.2.after")),
        "columns": (torch.softmax(scores.masked_fill(future, inf), dim=0),
                    msg("3.2.columns")), }


@exercise("3.2", todo=msg("3.2.todo"), done=msg("3.2.done"))
def _causal_weights(weights_fn) -> None:
    for t in (5, 1, 9):
        scores = torch.randn(t, t, generator=torch.Generator().manual_seed(t)) * 2
        got = call(weights_fn, scores.clone())
        expect_tensor(got)
        expect(got.shape == (t, t), msg("3.2.shape"), t=t, shape=tuple(got.shape))
        if not bool(torch.isfinite(got).all()):
            inverted = torch.softmax(scores.masked_fill(~causal_mask(t), float("-inf")), dim=-1)
            expect(not torch.allclose(got.detach().double(), inverted.double(), atol=1e-5, equal_nan=True),
                   msg("3.2.inverted"))
            raise Wrong(msg("3.2.nan"))
        expected = torch.softmax(scores.masked_fill(causal_mask(t), float("-inf")), dim=-1)
        future = got.masked_select(causal_mask(t))
        if close(got, expected) and not bool((future != 0).any()):  # close, and the future exactly 0
            continue
        sums = got.sum(-1)
        values = dict(w=float(future.abs().max()) if future.numel() else 0.0, low=float(sums.min()),
                      high=float(sums.max()))
        for wrong, hint in _causal_mistakes(scores).values():
            if close(got, wrong):
                raise Wrong(hint, **values)
        if future.numel() and 0 < float(future.abs().max()) < 1e-6:
            raise Wrong(msg("3.2.finite_mask"), **values)
        expect(not future.numel() or float(future.abs().max()) == 0,
               msg("3.2.future_weight"), **values)
        expect(close(sums, torch.ones(t)), msg("3.2.row_sums"), **values)
        raise Wrong(msg("3.2.differs"), err=float((got - expected).abs().max()))


# ---------------------------------------------------------------------------- 3.3 the attention class
@exercise("3.3", todo=msg("3.3.todo"), done=msg("3.3.done"))
def _attention_class(attention_cls) -> None:
    # d_in != d_out, so sqrt(d_in), sqrt(d_out) and sqrt(head_dim) are all different; two head counts
    for d_in, d_out, heads in ((10, 12, 3), (6, 8, 2)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(d_out)
            _check_attention(attention_cls, d_in, d_out, heads)


def _check_attention(attention_cls, d_in: int, d_out: int, heads: int) -> None:
    ours = call(attention_cls, d_in=d_in, d_out=d_out, num_heads=heads)
    expect(isinstance(ours, nn.Module), msg("3.3.not_module"))
    if not list(ours.children()):  # the untouched stub builds no layers
        raise NotDone
    linears = {name: m for name, m in ours.named_modules() if isinstance(m, nn.Linear)}
    projections = [linears.get(n) for n in ("W_query", "W_key", "W_value", "out_proj")]
    expect(all(p is not None for p in projections),
           msg("3.3.layer_names"), names=", ".join(linears) or "none")
    sizes = [(p.in_features, p.out_features) for p in projections]
    expect(sizes == [(d_in, d_out)] * 3 + [(d_out, d_out)],
           msg("3.3.layer_sizes"), d_in=d_in, d_out=d_out, sizes=", ".join(f"{i}->{o}" for i, o in sizes))
    expect(projections[3].bias is not None, msg("3.3.out_proj_bias"))
    with_bias = {p.bias is not None for p in projections[:3]}
    expect(len(with_bias) == 1, msg("3.3.bias_setting"))
    reference = MultiHeadAttention(d_in, d_out, dropout=0.0, num_heads=heads, qkv_bias=with_bias.pop()).eval()
    with torch.no_grad():  # the library's qkv holds W_query, W_key, W_value stacked row-wise
        reference.qkv.weight.copy_(torch.cat([p.weight for p in projections[:3]]))
        if reference.qkv.bias is not None:
            reference.qkv.bias.copy_(torch.cat([p.bias for p in projections[:3]]))
        reference.out_proj.weight.copy_(projections[3].weight)
        reference.out_proj.bias.copy_(projections[3].bias if projections[3].bias is not None else 0.0)
    ours.eval()
    for b, t in ((2, 5), (1, 1), (3, 7)):
        x = torch.randn(b, t, d_in, requires_grad=True)
        got = call(ours, x)
        expect_tensor(got)
        expect(got.shape == (b, t, d_out),
               msg("3.3.shape"), want=(b, t, d_out), shape=tuple(getattr(got, "shape", ())))
        if not bool(torch.isfinite(got).all()):
            for mistake, hint in (("inverted", msg("3.3.inverted")), ("mask_after_inf", msg("3.3.mask_after_inf")),
                                  ("softmax_heads", msg("3.3.softmax_heads"))):
                wrong = _attention(x.detach(), projections, heads, mistake).double()
                if torch.allclose(got.detach().double(), wrong, rtol=1e-4, atol=1e-4, equal_nan=True):
                    raise Wrong(hint)
            raise Wrong(msg("3.3.nan"))
        expected = reference(x)
        if not close(got, expected, 1e-4):
            _diagnose(got.detach(), x.detach(), projections, heads)
            raise Wrong(msg("3.3.differs"), err=float((got - expected).detach().abs().max()))
        got.sum().backward()
        expect(x.grad is not None and bool(torch.isfinite(x.grad).all()),
               msg("3.3.no_gradient"))


MISTAKES = {  # a usual mistake -> its hint; _diagnose recognises each by recomputing it
    "no_mask": msg("3.3.no_mask"), "no_scale": msg("3.3.no_scale"), "times_scale": msg("3.3.times_scale"),
    "mask_after": msg("3.3.mask_after"), "scale_d_out": msg("3.3.scale_d_out"), "scale_d_in": msg("3.3.scale_d_in"),
    "softmax_keys_dim": msg("3.3.softmax_keys_dim"), "no_transpose": msg("3.3.no_transpose"),
    "merge_no_transpose": msg("3.3.merge_no_transpose"), "no_out_proj": msg("3.3.no_out_proj"),
    "scale_after_softmax": msg("3.3.scale_after_softmax"), }


def _diagnose(got: torch.Tensor, x: torch.Tensor, projections: list[nn.Linear], heads: int) -> None:
    """Raise the hint of the usual mistake whose output equals ``got``, if one does."""
    for mistake, hint in MISTAKES.items():
        if close(got, _attention(x, projections, heads, mistake), 1e-4):
            raise Wrong(hint)


@torch.no_grad()
def _attention(x: torch.Tensor, projections: list[nn.Linear], heads: int, mistake: str) -> torch.Tensor:
    """Multi-head attention written out, with one of ``MISTAKES`` made on purpose."""
    b, t, d_in = x.shape
    w_q, w_k, w_v, out = projections
    d_out = w_q.out_features
    head_dim = d_out // heads

    def split(z: torch.Tensor) -> torch.Tensor:
        if mistake == "no_transpose":
            return z.reshape(b, heads, t, head_dim)
        return z.view(b, t, heads, head_dim).transpose(1, 2)

    q, k, v = split(w_q(x)), split(w_k(x)), split(w_v(x))
    scale = {"no_scale": 1.0, "times_scale": 1 / math.sqrt(head_dim), "scale_d_out": math.sqrt(d_out), "scale_d_in": math.sqrt(d_in)}.get(
        mistake, math.sqrt(head_dim))
    scores = q @ k.transpose(-2, -1) / (1.0 if mistake == "scale_after_softmax" else scale)
    mask = ~causal_mask(t) if mistake == "inverted" else causal_mask(t)
    if mistake not in ("no_mask", "mask_after", "mask_after_inf"):
        scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim={"softmax_keys_dim": -2, "softmax_heads": 1}.get(mistake, -1))
    if mistake == "scale_after_softmax":
        weights = weights / scale
    if mistake in ("mask_after", "mask_after_inf"):
        weights = weights.masked_fill(mask, 0.0 if mistake == "mask_after" else float("-inf"))
    context = weights @ v
    if mistake in ("no_transpose", "merge_no_transpose"):
        context = context.reshape(b, t, d_out)
    else:
        context = context.transpose(1, 2).reshape(b, t, d_out)
    return context if mistake == "no_out_proj" else out(context)


# ---------------------------------------------------------------------------- 3.4 dropout
@exercise("3.4", todo=msg("3.4.todo"), done=msg("3.4.done"))
def _attention_dropout(dropout_fn) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        # 2 sentences x 4 heads of 32 x 32 attention weights: 8192 entries, all > 0, each row summing to 1
        weights = torch.softmax(torch.randn(2, 4, 32, 32), dim=-1)
        for p in (0.1, 0.3):  # not 0.5: there p = 1 - p, and "drop with probability 1 - p" would pass
            _check_dropout(dropout_fn, weights, p)
        try:
            got = call(dropout_fn, weights.clone(), 0.1, False)
        except NotDone:
            raise Wrong(msg("3.4.eval_none")) from None
        if not (isinstance(got, torch.Tensor) and got.shape == weights.shape and torch.equal(got, weights)):
            raise Wrong(msg("3.4.eval_changed"))


def _check_dropout(dropout_fn, weights: torch.Tensor, p: float) -> None:
    got = call(dropout_fn, weights.clone(), p, True)
    expect(isinstance(got, torch.Tensor) and got.shape == weights.shape,
           msg("3.4.shape"), want=tuple(weights.shape), shape=tuple(getattr(got, "shape", ())))
    got = got.detach()
    kept = got != 0
    dropped = 1 - float(kept.float().mean())
    # 8192 independent draws: the dropped fraction's standard deviation is at most 0.0055; 0.03 is 5.5 of them
    if not bool((~kept).any()):
        raise Wrong(msg("3.4.nothing_dropped"), p=p)
    if abs(dropped - (1 - p)) < 0.03:
        raise Wrong(msg("3.4.keep_probability"), frac=dropped, p=p)
    expect(abs(dropped - p) < 0.03, msg("3.4.drop_fraction"), frac=dropped, p=p)
    survivors, before = got[kept], weights[kept]
    if close(survivors, before / (1 - p)):
        return
    if close(survivors, before):
        raise Wrong(msg("3.4.not_rescaled"), s=1 / (1 - p))
    if close(survivors, before * (1 - p)):
        raise Wrong(msg("3.4.times_keep"), k=1 - p)
    if close(survivors, before / p):
        raise Wrong(msg("3.4.divided_by_p"), p=p, k=1 - p)
    ratio = survivors / before
    raise Wrong(msg("3.4.rescale"), s=1 / (1 - p), low=float(ratio.min()), high=float(ratio.max()))
