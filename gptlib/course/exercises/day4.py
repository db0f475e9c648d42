"""Day 4's exercises: LayerNorm as an ``nn.Module``, GELU's tanh formula, the pre-LN block's forward,
where a block's parameters live, the feed-forward network, and the whole GPT's forward pass.

Each check compares the learner's code with the reference (``F.layer_norm``, ``F.gelu``,
``gptlib.model.TransformerBlock``, ``FeedForward``, ``GPTModel``) on several shapes and scales, and when it disagrees recomputes
the answer with each usual mistake made on purpose (``_first_match``), so the hint names the mistake
that was actually made. Checks draw their random inputs in a forked RNG (``_own_rng``): running one
leaves the notebook's random state as it was.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...model import FeedForward, GPTConfig, GPTModel, TransformerBlock
from . import NotDone, Text, Wrong, call, close, exercise, expect, expect_tensor, msg


def _own_rng(check: Callable[[Any], None]) -> Callable[[Any], None]:
    """Run ``check`` with its own seeded random state, restoring the caller's afterwards."""
    @functools.wraps(check)
    def run_check(answer: Any) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            check(answer)
    return run_check


def _first_match(got: torch.Tensor, mistakes: dict[str, Text], recompute: Callable[[str], torch.Tensor],
                 tol: float, **values: Any) -> None:
    """Raise the hint of the first mistake whose recomputed output equals ``got``, if one does."""
    for mistake, hint in mistakes.items():
        if close(got, recompute(mistake), tol):
            raise Wrong(hint, **values)


def _shape(value) -> tuple | str:
    """A tensor's shape, or the kind of anything else (a verdict then says "got list", never "got ()")."""
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


NO_GRADIENT = msg("4.1.no_gradient")


IN_PLACE = msg("4.1.in_place")


def _gradients_flow(out, x: torch.Tensor, *others: torch.Tensor, what: str = "") -> None:
    """Backpropagate a random projection of ``out``; ``Wrong`` unless finite gradients reach ``x`` and ``others``."""
    reached = isinstance(out, torch.Tensor) and out.requires_grad
    if reached:
        try:
            (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
        except RuntimeError as exc:
            if "inplace" not in str(exc):
                raise
            raise Wrong(IN_PLACE) from None
        reached = all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in (x, *others))
    expect(reached, NO_GRADIENT, what=what)


# ---------------------------------------------------------------------------- 4.1 LayerNorm
LAYER_NORM_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it (_layer_norm)
    "unbiased": msg("4.1.unbiased"), "std_plus_eps": msg("4.1.std_plus_eps"), "eps_outside": msg("4.1.eps_outside"),
    "no_eps": msg("4.1.no_eps"), "by_variance": msg("4.1.by_variance"), "whole_tensor": msg("4.1.whole_tensor"),
    "no_affine": msg("4.1.no_affine"), "no_scale": msg("4.1.no_scale"), "no_shift": msg("4.1.no_shift"), }
WRONG_DIMENSION = msg("4.1.wrong_dimension")


@torch.no_grad()
def _layer_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, mistake: str | None = None,
                dim: int = -1, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm written out over ``dim``, with one of ``LAYER_NORM_MISTAKES`` made on purpose."""
    dims = tuple(range(x.dim())) if mistake == "whole_tensor" else (dim,)
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=mistake in ("unbiased", "std_plus_eps"))
    if mistake in ("eps_outside", "std_plus_eps"):
        x_hat = (x - mean) / (var.sqrt() + eps)
    elif mistake == "no_eps":
        x_hat = (x - mean) / var.sqrt()
    elif mistake == "by_variance":
        x_hat = (x - mean) / (var + eps)
    else:
        x_hat = (x - mean) / (var + eps).sqrt()
    if mistake == "no_affine":
        return x_hat
    if mistake == "no_scale":
        return x_hat + shift
    if mistake == "no_shift":
        return scale * x_hat
    return scale * x_hat + shift


def _layer_norm_cases(emb_dim: int, seed: int) -> list[tuple[torch.Tensor, str]]:
    """(input, what is special about it): tiny variances (where eps matters), typical tokens, a constant token."""
    g = torch.Generator().manual_seed(seed)
    typical = 1.0 + 3.0 * torch.randn(2, 5, emb_dim, generator=g)
    tiny = 0.001 * torch.randn(4, emb_dim, generator=g)
    constant = torch.randn(3, emb_dim, generator=g)
    constant[1] = 2.5                                         # variance 0: only eps keeps it finite
    return [(tiny, "tiny"), (typical, "typical"), (constant, "constant")]   # tiny first: there every eps mistake shows


@exercise("4.1", todo=msg("4.1.todo"), done=msg("4.1.done"))
@_own_rng
def _layer_norm_module(layer_norm_cls) -> None:
    for emb_dim, seed in ((6, 0), (16, 1)):
        ln = call(layer_norm_cls, emb_dim)
        expect(isinstance(ln, nn.Module), msg("4.1.not_module"))
        call(ln, torch.randn(2, emb_dim))                     # the untouched stub's forward returns None
        params = dict(ln.named_parameters())
        if "scale" not in params or "shift" not in params:
            plain = [n for n in ("scale", "shift")
                     if isinstance(getattr(ln, n, None), torch.Tensor) and not isinstance(getattr(ln, n), nn.Parameter)]
            if plain:
                raise Wrong(msg("4.1.not_parameter"), names=" and ".join(plain))
            raise Wrong(msg("4.1.parameter_names"), names=", ".join(params) or "none")
        scale, shift = params["scale"], params["shift"]
        expect(_shape(scale) == _shape(shift) == (emb_dim,),
               msg("4.1.parameter_shapes"), d=emb_dim, a=_shape(scale), b=_shape(shift))
        expect(bool((scale == 1).all() and (shift == 0).all()),
               msg("4.1.initial_values"))
        g = torch.Generator().manual_seed(seed + 10)
        with torch.no_grad():                                 # random values, so a forgotten one cannot hide
            scale.copy_(1 + 0.5 * torch.randn(emb_dim, generator=g))
            shift.copy_(0.5 * torch.randn(emb_dim, generator=g))
        for x, kind in _layer_norm_cases(emb_dim, seed):
            with torch.no_grad():
                got = call(ln, x.clone())
            expect(isinstance(got, torch.Tensor) and got.shape == x.shape,
                   msg("4.1.shape"), want=tuple(x.shape), shape=_shape(got))
            if not bool(torch.isfinite(got).all()):
                if kind == "constant":
                    raise Wrong(msg("4.1.constant_token"))
                raise Wrong(msg("4.1.nan"))
            expected = F.layer_norm(x, (emb_dim,), scale.detach(), shift.detach(), 1e-5)
            if close(got, expected, 1e-4):
                continue
            for dim in range(x.dim() - 1):                    # normalised across tokens or the batch
                if close(got, _layer_norm(x, scale, shift, dim=dim), 1e-4):
                    what = msg("4.1.across_batch" if dim == 0 else "4.1.across_tokens").format()
                    raise Wrong(WRONG_DIMENSION, dim=dim, what=what)
            _first_match(got, LAYER_NORM_MISTAKES, lambda m: _layer_norm(x, scale, shift, m), 1e-4)
            for eps in (1e-6, 1e-8, 1e-3):                    # another library's default eps
                if close(got, F.layer_norm(x, (emb_dim,), scale.detach(), shift.detach(), eps), 1e-4):
                    raise Wrong(msg("4.1.eps_value"), eps=eps)
            raise Wrong(msg("4.1.differs"), err=float((got - expected).abs().max()))
        x = torch.randn(3, 4, emb_dim, requires_grad=True)
        _gradients_flow(call(ln, x), x, scale, shift, what=msg("4.1.scale_or_shift").format())


# ---------------------------------------------------------------------------- 4.2 GELU
GELU_MISTAKES = {
    "relu": msg("4.2.relu"), "erf": msg("4.2.erf"), "no_cubic": msg("4.2.no_cubic"), "no_root": msg("4.2.no_root"),
    "no_sqrt": msg("4.2.no_sqrt"), "no_half": msg("4.2.no_half"), "sigmoid": msg("4.2.sigmoid"),
    "silu": msg("4.2.silu"), "squared": msg("4.2.squared"), "root_inverted": msg("4.2.root_inverted"),
    "no_x": msg("4.2.no_x"), "bracket": msg("4.2.bracket"), "two_pi": msg("4.2.two_pi"), }


@torch.no_grad()
def _gelu(x: torch.Tensor, mistake: str) -> torch.Tensor:
    """GELU with one of ``GELU_MISTAKES`` made on purpose."""
    if mistake == "relu":
        return F.relu(x)
    if mistake == "erf":
        return F.gelu(x)
    if mistake == "sigmoid":
        return x * torch.sigmoid(1.702 * x)
    if mistake == "silu":
        return F.silu(x)
    if mistake == "no_x":
        return 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if mistake == "bracket":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x + 0.044715 * x ** 3))
    inner = x if mistake == "no_cubic" else x + 0.044715 * x ** (2 if mistake == "squared" else 3)
    factor = {"no_root": 1.0, "no_sqrt": 2 / math.pi, "root_inverted": math.sqrt(math.pi / 2),
              "two_pi": math.sqrt(2 * math.pi)}.get(
        mistake, math.sqrt(2 / math.pi))
    return (1.0 if mistake == "no_half" else 0.5) * x * (1 + torch.tanh(factor * inner))


@exercise("4.2", todo=msg("4.2.todo"), done=msg("4.2.done"))
@_own_rng
def _gelu_fn(gelu_fn) -> None:
    g = torch.Generator().manual_seed(4)
    for x in (torch.linspace(-6, 6, 241), 3 * torch.randn(3, 4, 5, generator=g),
              torch.tensor([-20.0, -10.0, -0.5, 0.0, 0.5, 10.0, 20.0])):
        got = call(gelu_fn, x.clone())
        expect_tensor(got)
        expect(got.shape == x.shape,
               msg("4.2.shape"), want=tuple(x.shape), shape=_shape(got))
        expected = F.gelu(x, approximate="tanh")
        if close(got, expected):
            continue
        err = float((F.gelu(x) - expected).abs().max())
        _first_match(got, GELU_MISTAKES, lambda m: _gelu(x, m), 1e-5, err=err)
        where = int((got - expected).abs().flatten().argmax())
        raise Wrong(msg("4.2.differs"), err=float((got - expected).abs().max()), at=float(x.flatten()[where]))
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    _gradients_flow(call(gelu_fn, x.clone()), x)


# ---------------------------------------------------------------------------- 4.3 the block's forward
BLOCK_MISTAKES = {
    "post_ln": msg("4.3.post_ln"), "no_residuals": msg("4.3.no_residuals"),
    "no_residual_att": msg("4.3.no_residual_att"), "no_residual_ff": msg("4.3.no_residual_ff"),
    "whole_block": msg("4.3.whole_block"), "normed_residual": msg("4.3.normed_residual"),
    "norm1_twice": msg("4.3.norm1_twice"), "norm2_twice": msg("4.3.norm2_twice"),
    "norms_swapped": msg("4.3.norms_swapped"), "parallel": msg("4.3.parallel"), "ff_first": msg("4.3.ff_first"),
    "residual_from_input": msg("4.3.residual_from_input"), "norm_after_sublayer": msg("4.3.norm_after_sublayer"),
    "normed_output": msg("4.3.normed_output"), }


@torch.no_grad()
def _block(x: torch.Tensor, block: TransformerBlock, mistake: str) -> torch.Tensor:
    """The pre-LN block's forward from its sub-layers, with one of ``BLOCK_MISTAKES`` made on purpose."""
    att, ff, n1, n2 = block.att, block.ff, block.norm1, block.norm2
    if mistake == "post_ln":
        h = n1(x + att(x))
        return n2(h + ff(h))
    if mistake == "no_residuals":
        return ff(n2(att(n1(x))))
    if mistake == "no_residual_att":
        h = att(n1(x))
        return h + ff(n2(h))
    if mistake == "no_residual_ff":
        return ff(n2(x + att(n1(x))))
    if mistake == "whole_block":
        return x + ff(n2(att(n1(x))))
    if mistake == "normed_residual":
        h = n1(x) + att(n1(x))
        return n2(h) + ff(n2(h))
    if mistake == "parallel":
        return x + att(n1(x)) + ff(n2(x))
    if mistake == "ff_first":
        h = x + ff(n2(x))
        return h + att(n1(h))
    if mistake == "residual_from_input":
        return x + ff(n2(x + att(n1(x))))
    if mistake == "norm_after_sublayer":
        h = x + n1(att(x))
        return h + n2(ff(h))
    if mistake == "normed_output":
        h = x + att(n1(x))
        return n2(h + ff(n2(h)))
    first, second = {"norm1_twice": (n1, n1), "norm2_twice": (n2, n2), "norms_swapped": (n2, n1)}[mistake]
    h = x + att(first(x))
    return h + ff(second(h))


@exercise("4.3", todo=msg("4.3.todo"), done=msg("4.3.done"))
@_own_rng
def _block_forward(block_fn) -> None:
    block = TransformerBlock(GPTConfig(vocab_size=16, context_length=16, emb_dim=16, n_heads=4, n_layers=1,
                                       drop_rate=0.0, qkv_bias=True)).eval()
    with torch.no_grad():                                     # every weight random, LayerNorms too: no mix-up can hide
        for name, param in block.named_parameters():
            param.copy_((1.0 if name.endswith("scale") else 0.0) + 0.5 * torch.randn_like(param))
    g = torch.Generator().manual_seed(5)
    for shape in ((2, 5, 16), (1, 1, 16), (3, 7, 16)):
        x = torch.randn(*shape, generator=g)
        with torch.no_grad():
            got = call(block_fn, x.clone(), block.att, block.ff, block.norm1, block.norm2)
            expected = block(x)
        expect(isinstance(got, torch.Tensor) and got.shape == x.shape,
               msg("4.3.shape"), want=shape, shape=_shape(got))
        if close(got, expected, 1e-4):
            continue
        _first_match(got, BLOCK_MISTAKES, lambda m: _block(x, block, m), 1e-4)
        raise Wrong(msg("4.3.differs"), err=float((got - expected).abs().max()))
    x = torch.randn(2, 3, 16, requires_grad=True)
    _gradients_flow(call(block_fn, x.clone(), block.att, block.ff, block.norm1, block.norm2), x)


# ---------------------------------------------------------------------------- 4.4 a block's parameters
def _block_parameters(d: int, qkv_bias: bool) -> int:
    """Counted on PyTorch's meta device: shapes only, no memory."""
    with torch.device("meta"):
        block = TransformerBlock(GPTConfig(vocab_size=2, context_length=2, emb_dim=d, n_heads=1, n_layers=1,
                                           qkv_bias=qkv_bias))
    return sum(p.numel() for p in block.parameters())


COUNT_MISTAKES = {  # a usual miscount: (its count for width d, qkv_bias; the right count) and its hint
    "weights_only": (lambda d, qkv, right: 12 * d * d,
                     msg("4.4.weights_only")), "no_biases": (lambda d, qkv, right: 12 * d * d + 4 * d,
                  msg("4.4.no_biases")), "no_layernorm": (lambda d, qkv, right: right - 4 * d, msg("4.4.no_layernorm")),
    "qkv_bias_always": (lambda d, qkv, right: right if qkv else right + 3 * d,
                        msg("4.4.qkv_bias_always")),
    "qkv_bias_never": (lambda d, qkv, right: right - 3 * d if qkv else right,
                       msg("4.4.qkv_bias_never")), "no_expansion": (lambda d, qkv, right: right - 6 * d * d - 3 * d,
                     msg("4.4.no_expansion")), "no_out_proj": (lambda d, qkv, right: right - d * d - d,
                    msg("4.4.no_out_proj")), "final_norm": (lambda d, qkv, right: right + 2 * d, msg("4.4.final_norm")),
}


@exercise("4.4", todo=msg("4.4.todo"), done=msg("4.4.done"))
def _count(count_fn) -> None:
    answers = {}                                              # (d, qkv_bias) -> (the learner's count, the right one)
    for d in (8, 64, 768):
        for qkv_bias in (True, False):
            got = call(count_fn, d, qkv_bias=qkv_bias)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            expect(isinstance(got, (int, float)) and not isinstance(got, bool),
                   msg("4.4.not_number"), kind=type(got).__name__)
            answers[d, qkv_bias] = got, _block_parameters(d, qkv_bias)
    if all(got == right for got, right in answers.values()):
        kind = next((type(got).__name__ for got, _ in answers.values() if not isinstance(got, int)), None)
        expect(kind is None, msg("4.4.not_int"), kind=kind)
        return
    for count, hint in COUNT_MISTAKES.values():             # the miscount that explains every answer
        if all(got == count(d, qkv, right) for (d, qkv), (got, right) in answers.items()):
            raise Wrong(hint)
    (d, qkv_bias), (got, right) = next((key, pair) for key, pair in answers.items() if pair[0] != pair[1])
    raise Wrong(msg("4.4.differs"), d=d, bias=qkv_bias, got=got, right=right, diff=got - right)


# ---------------------------------------------------------------------------- 4.5 the feed-forward network
FF_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it (_feed_forward)
    "exact_gelu": msg("4.5.exact_gelu"), "relu": msg("4.5.relu"), "no_activation": msg("4.5.no_activation"),
    "gelu_after": msg("4.5.gelu_after"), "activation_first": msg("4.5.activation_first"),
    "residual": msg("4.5.residual"), "sigmoid": msg("4.2.sigmoid"), }


@torch.no_grad()
def _feed_forward(x: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear, mistake: str | None = None) -> torch.Tensor:
    """Linear(C, 4C) -> GELU (tanh) -> Linear(4C, C), with one of ``FF_MISTAKES`` made on purpose."""
    act = {"exact_gelu": F.gelu, "relu": F.relu, "no_activation": lambda h: h,
           "sigmoid": lambda h: h * torch.sigmoid(1.702 * h)}.get(
        mistake or "", lambda h: F.gelu(h, approximate="tanh"))
    if mistake == "activation_first":
        return fc2(fc1(act(x)))
    out = fc2(act(fc1(x)))
    if mistake == "gelu_after":
        out = act(out)
    return x + out if mistake == "residual" else out


@exercise("4.5", todo=msg("4.5.todo"), done=msg("4.5.done"))
@_own_rng
def _feed_forward_class(ff_cls) -> None:
    for emb_dim in (8, 12):
        ours = call(ff_cls, emb_dim)
        expect(isinstance(ours, nn.Module), msg("4.5.not_module"))
        linears = [m for m in ours.modules() if isinstance(m, nn.Linear)]
        if not linears:  # the untouched stub builds no layers
            raise NotDone
        linears.sort(key=lambda m: m.in_features != emb_dim)  # the widening layer first, in whatever order made
        sizes = [(m.in_features, m.out_features) for m in linears]
        expect(sizes == [(emb_dim, 4 * emb_dim), (4 * emb_dim, emb_dim)],
               msg("4.5.sizes"), c=emb_dim, c4=4 * emb_dim, sizes=", ".join(f"{i}->{o}" for i, o in sizes))
        expect(all(m.bias is not None for m in linears), msg("4.5.no_bias"))
        fc1, fc2 = linears
        with torch.no_grad():                                 # larger weights than the default: GELU's bend shows
            for param in (*fc1.parameters(), *fc2.parameters()):
                param.copy_(torch.randn_like(param))
        reference = FeedForward(emb_dim)
        reference.load_state_dict({"layers.0.weight": fc1.weight, "layers.0.bias": fc1.bias,
                                   "layers.2.weight": fc2.weight, "layers.2.bias": fc2.bias})
        ours.eval()
        for shape in ((2, 5, emb_dim), (1, 1, emb_dim)):
            x = 2 * torch.randn(*shape)
            got = call(ours, x.clone())
            expect_tensor(got)
            expect(got.shape == x.shape, msg("4.5.shape"), want=shape, shape=tuple(got.shape))
            with torch.no_grad():
                expected = reference(x)
            if close(got, expected, 1e-4):
                continue
            _first_match(got.detach(), FF_MISTAKES, lambda m: _feed_forward(x, fc1, fc2, m), 1e-4)
            raise Wrong(msg("4.5.differs"), err=float((got.detach() - expected).abs().max()))
        ours.train()                                          # no dropout in gptlib's FeedForward: same in training
        x = 2 * torch.randn(4, 9, emb_dim)
        got = call(ours, x.clone())
        with torch.no_grad():
            expected = reference(x)
        expect(isinstance(got, torch.Tensor) and close(got, expected, 1e-4), msg("4.5.train_mode"),
               err=float((got.detach() - expected).abs().max()) if isinstance(got, torch.Tensor) else float("nan"))
        x = torch.randn(2, 3, emb_dim, requires_grad=True)
        _gradients_flow(call(ours, x), x)


# ---------------------------------------------------------------------------- 4.6 the GPT's forward pass
GPT_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it (_gpt)
    "no_positions": msg("4.6.no_positions"), "no_final_norm": msg("4.6.no_final_norm"),
    "not_chained": msg("4.6.not_chained"), "softmax": msg("4.6.softmax"), "first_block": msg("4.6.first_block"),
    "norm_before_blocks": msg("4.6.norm_before_blocks"), "reversed": msg("4.6.reversed"),
    "norm_each_block": msg("4.6.norm_each_block"), "from_one": msg("4.6.from_one"), }


@torch.no_grad()
def _gpt(ids: torch.Tensor, model: GPTModel, mistake: str | None = None) -> torch.Tensor:
    """``GPTModel.forward`` written out, with one of ``GPT_MISTAKES`` made on purpose."""
    x = model.tok_emb(ids)
    if mistake != "no_positions":
        x = x + model.pos_emb(torch.arange(ids.shape[1]) + (1 if mistake == "from_one" else 0))
    x = model.drop_emb(x)
    if mistake == "norm_before_blocks":
        x = model.final_norm(x)
    h = x
    blocks = {"first_block": model.trf_blocks[:1], "reversed": model.trf_blocks[::-1]}.get(mistake, model.trf_blocks)
    for block in blocks:
        h = block(x if mistake == "not_chained" else h)
        if mistake == "norm_each_block":
            h = model.final_norm(h)
    if mistake not in ("no_final_norm", "norm_before_blocks", "norm_each_block"):
        h = model.final_norm(h)
    logits = model.out_head(h)
    return torch.softmax(logits, dim=-1) if mistake == "softmax" else logits


def _random_gpt(drop_rate: float) -> GPTModel:
    """A small GPT whose every weight (LayerNorms too) is random and large enough that no mix-up can hide."""
    model = GPTModel(GPTConfig(vocab_size=40, context_length=12, emb_dim=16, n_heads=4, n_layers=3,
                               drop_rate=drop_rate, qkv_bias=True))
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_((1.0 if name.endswith("scale") else 0.0) + 0.3 * torch.randn_like(param))
    return model


class _WholeModelCalled(Exception):
    """Raised when the answer calls ``model(ids)`` itself instead of its parts."""


def _no_whole_call(model: GPTModel) -> GPTModel:
    """``model``, whose own forward refuses to run (its parts still do): 4.6 is that forward, written out."""
    def refuse(*args, **kwargs):
        raise _WholeModelCalled("model(ids) called")
    model.forward = refuse
    return model


def _call_forward(forward_fn, ids: torch.Tensor, model: GPTModel):
    try:
        return call(forward_fn, ids.clone(), _no_whole_call(model))
    except Wrong as wrong:
        if isinstance(wrong.__cause__, _WholeModelCalled):
            raise Wrong(msg("4.6.called_model")) from None
        raise
    finally:
        del model.forward                                     # the class's forward again, for the reference


@exercise("4.6", todo=msg("4.6.todo"), done=msg("4.6.done"))
@_own_rng
def _gpt_forward(forward_fn) -> None:
    model = _random_gpt(0.0).eval()
    g = torch.Generator().manual_seed(6)
    for b, t in ((2, 7), (1, 1), (3, 12)):                    # t = 12: the whole context
        ids = torch.randint(0, 40, (b, t), generator=g)
        with torch.no_grad():
            got = _call_forward(forward_fn, ids, model)
            expected = model(ids)
        expect_tensor(got)
        expect(got.shape == (b, t, 40), msg("4.6.shape"), want=(b, t, 40), shape=tuple(got.shape))
        if close(got, expected, 1e-4):
            continue
        _first_match(got, GPT_MISTAKES, lambda m: _gpt(ids, model, m), 1e-4)
        raise Wrong(msg("4.6.differs"), err=float((got - expected).abs().max()))
    model = _random_gpt(0.5).train()                          # dropout on: the same seed must draw the same masks
    ids = torch.randint(0, 40, (2, 6), generator=g)
    torch.manual_seed(1)
    got = _call_forward(forward_fn, ids, model)
    torch.manual_seed(1)
    expected = model(ids)
    expect_tensor(got)
    if not close(got, expected, 1e-4):
        torch.manual_seed(1)
        with torch.no_grad():                                 # the forward without the embeddings' dropout
            x = model.tok_emb(ids) + model.pos_emb(torch.arange(ids.shape[1]))
            for block in model.trf_blocks:
                x = block(x)
            skipped = model.out_head(model.final_norm(x))
        expect(not close(got, skipped, 1e-4), msg("4.6.no_dropout"))
        raise Wrong(msg("4.6.train_differs"))
    expect(got.requires_grad, NO_GRADIENT, what=" (tok_emb, pos_emb)")
    got.sum().backward()
    expect(model.tok_emb.weight.grad is not None and model.pos_emb.weight.grad is not None,
           NO_GRADIENT, what=" (tok_emb, pos_emb)")
