"""Day 4's exercises: LayerNorm as an ``nn.Module``, GELU's tanh formula, the pre-LN block's forward, and
where a block's parameters live.

Each check compares the learner's code with the reference (``F.layer_norm``, ``F.gelu``,
``gptlib.model.TransformerBlock``) on several shapes and scales, and when it disagrees recomputes
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

from ...model import GPTConfig, TransformerBlock
from . import Text, Wrong, call, close, exercise, expect


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


def _shape(value) -> tuple:
    return tuple(getattr(value, "shape", ()))


NO_GRADIENT = Text("no gradient reaches the input{what}: is something detached or computed under torch.no_grad()?",
                   "梯度没有传回输入{what_zh}：是不是 detach 了，或者在 torch.no_grad() 下计算？")


IN_PLACE = Text("the forward pass works but backward fails: an in-place update (x += ...) overwrote a tensor that "
                "autograd still needs; write x = x + ...",
                "前向计算没问题，但反向传播失败：原地更新（x += ...）覆盖了 autograd 还需要的张量；请写成 x = x + ...")


def _gradients_flow(out, x: torch.Tensor, *others: torch.Tensor, what: str = "", what_zh: str = "") -> None:
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
    expect(reached, NO_GRADIENT, what=what, what_zh=what_zh)


# ---------------------------------------------------------------------------- 4.1 LayerNorm
LAYER_NORM_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it (_layer_norm)
    "unbiased": Text("the variance is divided by n-1 (unbiased, the default of torch.var and torch.std): "
                     "LayerNorm divides by n, as nn.LayerNorm and GPT-2 do; use unbiased=False or ((x - mean)**2).mean(-1)",
                     "方差除以了 n-1（无偏估计，torch.var 和 torch.std 的默认）：LayerNorm 除以 n，nn.LayerNorm 和 "
                     "GPT-2 都如此；用 unbiased=False 或 ((x - mean)**2).mean(-1)"),
    "std_plus_eps": Text("x.std() divides by n-1 and eps is added outside the square root (as in some tutorials): "
                         "use the biased variance and sqrt(var + eps)",
                         "x.std() 除以的是 n-1，而且 eps 加在了平方根外面（一些教程这样写）：应该用有偏方差，并写成 sqrt(var + eps)"),
    "eps_outside": Text("eps is added outside the square root: use sqrt(var + eps). It matters when a token's "
                        "variance is small (this input was scaled by 0.001)",
                        "eps 加在了平方根外面：应写成 sqrt(var + eps)。词元的方差很小时差别很明显（这个输入被缩小到了 0.001 倍）"),
    "no_eps": Text("eps is missing: divide by sqrt(var + eps). Without it, tiny variances blow up (this input was "
                   "scaled by 0.001) and a constant vector gives 0/0",
                   "缺少 eps：应除以 sqrt(var + eps)。没有它，很小的方差会被放大（这个输入被缩小到了 0.001 倍），"
                   "常数向量还会得到 0/0"),
    "by_variance": Text("divided by the variance: divide by the standard deviation, sqrt(var + eps)",
                        "除以了方差：应除以标准差 sqrt(var + eps)"),
    "whole_tensor": Text("normalised over the whole tensor: each token gets its own mean and variance, over its "
                         "features (dim=-1, keepdim=True)",
                         "对整个张量做了归一化：每个词元应按自己的特征（dim=-1, keepdim=True）求均值和方差"),
    "no_affine": Text("scale and shift are not applied: return scale * x_hat + shift",
                      "没有用上 scale 和 shift：应返回 scale * x_hat + shift"),
    "no_scale": Text("scale is not applied: return scale * x_hat + shift", "没有乘 scale：应返回 scale * x_hat + shift"),
    "no_shift": Text("shift is not added: return scale * x_hat + shift", "没有加 shift：应返回 scale * x_hat + shift"),
}
WRONG_DIMENSION = Text("normalised over dimension {dim} (across {what}); LayerNorm normalises each token over its "
                       "features, the last dimension (dim=-1)",
                       "在第 {dim} 维（{what_zh}）上做了归一化；LayerNorm 对每个词元在它的特征维，也就是最后一维（dim=-1）上归一化")


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


@exercise("4.1", todo=Text("complete MyLayerNorm: __init__ makes scale (ones) and shift (zeros) as nn.Parameter; "
                           "forward normalises each token over its last dimension, then applies scale and shift",
                           "补全 MyLayerNorm：__init__ 用 nn.Parameter 建 scale（全 1）和 shift（全 0）；"
                           "forward 对每个词元在最后一维上归一化，再乘 scale、加 shift"),
          done=Text("your LayerNorm equals nn.LayerNorm on every shape and scale tried, and its gradients flow. "
                    "The library's LayerNorm calls the fused F.layer_norm (use_fused=False runs this formula), "
                    "and day 6 loads GPT-2's ln_1, ln_2 and ln_f weights into its scale and shift.",
                    "你的 LayerNorm 在所有测试的形状和尺度上都与 nn.LayerNorm 一致，梯度也能传回。库里的 LayerNorm "
                    "调用融合的 F.layer_norm（use_fused=False 时运行这个公式），第 6 天会把 GPT-2 的 ln_1、ln_2、"
                    "ln_f 权重载入它的 scale 和 shift。"))
@_own_rng
def _layer_norm_module(layer_norm_cls) -> None:
    for emb_dim, seed in ((6, 0), (16, 1)):
        ln = call(layer_norm_cls, emb_dim)
        expect(isinstance(ln, nn.Module), Text("MyLayerNorm must subclass nn.Module", "MyLayerNorm 必须继承 nn.Module"))
        call(ln, torch.randn(2, emb_dim))                     # the untouched stub's forward returns None
        params = dict(ln.named_parameters())
        if "scale" not in params or "shift" not in params:
            plain = [n for n in ("scale", "shift")
                     if isinstance(getattr(ln, n, None), torch.Tensor) and not isinstance(getattr(ln, n), nn.Parameter)]
            if plain:
                raise Wrong(Text("{names} must be an nn.Parameter, not a plain tensor: otherwise model.parameters() "
                                 "never sees it and the optimizer never trains it",
                                 "{names} 必须是 nn.Parameter，而不是普通张量：否则 model.parameters() 看不到它，优化器也不会训练它"),
                            names=" and ".join(plain))
            raise Wrong(Text("name the learned parameters scale and shift, as gptlib does (found: {names})",
                             "把可学习参数命名为 scale 和 shift，和 gptlib 一样（现有：{names}）"),
                        names=", ".join(params) or "none")
        scale, shift = params["scale"], params["shift"]
        expect(_shape(scale) == _shape(shift) == (emb_dim,),
               Text("scale and shift must each hold emb_dim = {d} numbers, got shapes {a} and {b}",
                    "scale 和 shift 都应有 emb_dim = {d} 个数，实际形状是 {a} 和 {b}"),
               d=emb_dim, a=_shape(scale), b=_shape(shift))
        expect(bool((scale == 1).all() and (shift == 0).all()),
               Text("a fresh LayerNorm must only normalise: start with scale = 1 (torch.ones) and shift = 0 (torch.zeros)",
                    "新建的 LayerNorm 应该只做归一化：scale 初始为 1（torch.ones），shift 初始为 0（torch.zeros）"))
        g = torch.Generator().manual_seed(seed + 10)
        with torch.no_grad():                                 # random values, so a forgotten one cannot hide
            scale.copy_(1 + 0.5 * torch.randn(emb_dim, generator=g))
            shift.copy_(0.5 * torch.randn(emb_dim, generator=g))
        for x, kind in _layer_norm_cases(emb_dim, seed):
            with torch.no_grad():
                got = call(ln, x.clone())
            expect(isinstance(got, torch.Tensor) and got.shape == x.shape,
                   Text("the output must have the input's shape {want}, got {shape}", "输出应与输入形状相同 {want}，实际是 {shape}"),
                   want=tuple(x.shape), shape=_shape(got))
            if not bool(torch.isfinite(got).all()):
                if kind == "constant":
                    raise Wrong(Text("a token whose numbers are all equal (variance 0) gives NaN: add eps inside the "
                                     "square root, sqrt(var + eps)",
                                     "一个所有数都相等（方差为 0）的词元得到了 NaN：在平方根里加上 eps，写成 sqrt(var + eps)"))
                raise Wrong(Text("some outputs are NaN or inf", "有输出是 NaN 或 inf"))
            expected = F.layer_norm(x, (emb_dim,), scale.detach(), shift.detach(), 1e-5)
            if close(got, expected, 1e-4):
                continue
            for dim in range(x.dim() - 1):                    # normalised across tokens or the batch
                if close(got, _layer_norm(x, scale, shift, dim=dim), 1e-4):
                    what = ("the batch", "批次") if dim == 0 else ("the tokens", "词元")
                    raise Wrong(WRONG_DIMENSION, dim=dim, what=what[0], what_zh="跨" + what[1])
            _first_match(got, LAYER_NORM_MISTAKES, lambda m: _layer_norm(x, scale, shift, m), 1e-4)
            raise Wrong(Text("outputs differ from nn.LayerNorm by up to {err:.3g}", "输出与 nn.LayerNorm 最多相差 {err:.3g}"),
                        err=float((got - expected).abs().max()))
        x = torch.randn(3, 4, emb_dim, requires_grad=True)
        _gradients_flow(call(ln, x), x, scale, shift, what=", scale or shift", what_zh="、scale 或 shift")


# ---------------------------------------------------------------------------- 4.2 GELU
GELU_MISTAKES = {
    "relu": Text("that is ReLU: GELU is smooth and lets small negative inputs through (GELU(-1) = -0.159, ReLU(-1) = 0)",
                 "这是 ReLU：GELU 是平滑的，会让较小的负输入透过一点（GELU(-1) = -0.159，而 ReLU(-1) = 0）"),
    "erf": Text("that is the exact GELU, x * Phi(x) with erf (F.gelu's default): close to the tanh approximation "
                "(up to {err:.1g} apart) but not equal, and GPT-2's weights were trained with the tanh one: "
                "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))",
                "这是精确的 GELU，即用 erf 算的 x * Phi(x)（F.gelu 的默认）：它和 tanh 近似很接近（最多相差 {err:.1g}）"
                "但并不相等，而 GPT-2 的权重是用 tanh 近似训练的：0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))"),
    "no_cubic": Text("the 0.044715 * x**3 term is missing inside the tanh: tanh(sqrt(2/pi) * (x + 0.044715 * x**3))",
                     "tanh 里缺少 0.044715 * x**3 这一项：应为 tanh(sqrt(2/pi) * (x + 0.044715 * x**3))"),
    "no_root": Text("the tanh's argument must be multiplied by sqrt(2/pi) = 0.7979", "tanh 的参数要乘以 sqrt(2/pi) = 0.7979"),
    "no_sqrt": Text("use sqrt(2/pi) = 0.7979, not 2/pi = 0.6366", "应该用 sqrt(2/pi) = 0.7979，而不是 2/pi = 0.6366"),
    "no_half": Text("twice too large: the formula starts with 0.5 * x", "大了一倍：公式开头是 0.5 * x"),
    "sigmoid": Text("that is the sigmoid approximation x * sigmoid(1.702 x); GPT-2 uses the tanh one: "
                    "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))",
                    "这是 sigmoid 近似 x * sigmoid(1.702 x)；GPT-2 用的是 tanh 近似："
                    "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))"),
    "silu": Text("that is SiLU (Swish), x * sigmoid(x), a cousin that LLaMA uses; GPT-2 uses GELU's tanh approximation",
                 "这是 SiLU（Swish），x * sigmoid(x)，LLaMA 用的近亲；GPT-2 用的是 GELU 的 tanh 近似"),
}


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
    inner = x if mistake == "no_cubic" else x + 0.044715 * x ** 3
    factor = {"no_root": 1.0, "no_sqrt": 2 / math.pi}.get(mistake, math.sqrt(2 / math.pi))
    return (1.0 if mistake == "no_half" else 0.5) * x * (1 + torch.tanh(factor * inner))


@exercise("4.2", todo=Text("return GELU's tanh approximation of x, element by element: "
                           "0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))",
                           "逐元素返回 GELU 的 tanh 近似：0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))"),
          done=Text("your GELU equals F.gelu(x, approximate='tanh'). The library's GELU calls that fused kernel "
                    "(use_fused=False runs this formula); GPT-2 was trained with this approximation, so its weights need it.",
                    "你的 GELU 与 F.gelu(x, approximate='tanh') 一致。库里的 GELU 调用这个融合内核（use_fused=False "
                    "时运行这个公式）；GPT-2 是用这个近似训练的，加载它的权重时也必须用这个近似。"))
@_own_rng
def _gelu_fn(gelu_fn) -> None:
    g = torch.Generator().manual_seed(4)
    for x in (torch.linspace(-6, 6, 241), 3 * torch.randn(3, 4, 5, generator=g),
              torch.tensor([-20.0, -10.0, -0.5, 0.0, 0.5, 10.0, 20.0])):
        got = call(gelu_fn, x.clone())
        expect(isinstance(got, torch.Tensor) and got.shape == x.shape,
               Text("GELU works element by element: the output must have the input's shape {want}, got {shape}",
                    "GELU 逐元素计算：输出应与输入形状相同 {want}，实际是 {shape}"),
               want=tuple(x.shape), shape=_shape(got))
        expected = F.gelu(x, approximate="tanh")
        if close(got, expected):
            continue
        err = float((F.gelu(x) - expected).abs().max())
        _first_match(got, GELU_MISTAKES, lambda m: _gelu(x, m), 1e-5, err=err)
        where = int((got - expected).abs().flatten().argmax())
        raise Wrong(Text("differs from F.gelu(x, approximate='tanh') by up to {err:.3g} (at x = {at:.2f})",
                         "与 F.gelu(x, approximate='tanh') 最多相差 {err:.3g}（在 x = {at:.2f} 处）"),
                    err=float((got - expected).abs().max()), at=float(x.flatten()[where]))
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    _gradients_flow(call(gelu_fn, x.clone()), x)


# ---------------------------------------------------------------------------- 4.3 the block's forward
BLOCK_MISTAKES = {
    "post_ln": Text("LayerNorm after the addition is the original 2017 (post-LN) block; GPT-2 normalises what "
                    "each sub-layer reads: x = x + att(norm1(x)), then x = x + ff(norm2(x))",
                    "在加法之后做 LayerNorm 是 2017 年原版（post-LN）的写法；GPT-2 归一化的是每个子层的输入："
                    "x = x + att(norm1(x))，然后 x = x + ff(norm2(x))"),
    "no_residuals": Text("no residual connections at all: add each sub-layer's output to its input, "
                         "x = x + att(norm1(x)), then x = x + ff(norm2(x))",
                         "完全没有残差连接：每个子层的输出都要加回它的输入，x = x + att(norm1(x))，然后 x = x + ff(norm2(x))"),
    "no_residual_att": Text("the attention's residual is missing: x = x + att(norm1(x))",
                            "缺少注意力的残差：应为 x = x + att(norm1(x))"),
    "no_residual_ff": Text("the feed-forward's residual is missing: x = x + ff(norm2(x))",
                           "缺少前馈网络的残差：应为 x = x + ff(norm2(x))"),
    "whole_block": Text("one residual around the whole block: each sub-layer gets its own, "
                        "x = x + att(norm1(x)), then x = x + ff(norm2(x))",
                        "只在整个块外面加了一个残差：每个子层都要有自己的残差，x = x + att(norm1(x))，然后 x = x + ff(norm2(x))"),
    "normed_residual": Text("the residual adds the normalised x: add the un-normalised stream, x + att(norm1(x))",
                            "残差加的是归一化后的 x：应加未归一化的残差流，x + att(norm1(x))"),
    "norm1_twice": Text("norm1 is used twice: the feed-forward reads norm2(x); each LayerNorm has its own scale and shift",
                        "norm1 用了两次：前馈网络读的是 norm2(x)；每个 LayerNorm 有自己的 scale 和 shift"),
    "norm2_twice": Text("norm2 is used twice: the attention reads norm1(x); each LayerNorm has its own scale and shift",
                        "norm2 用了两次：注意力读的是 norm1(x)；每个 LayerNorm 有自己的 scale 和 shift"),
    "norms_swapped": Text("norm1 and norm2 are swapped: norm1 feeds the attention, norm2 the feed-forward",
                          "norm1 和 norm2 用反了：norm1 给注意力，norm2 给前馈网络"),
    "parallel": Text("the feed-forward must read the stream after the attention's addition (one after the other); "
                     "adding both to the same x is GPT-J's parallel block",
                     "前馈网络应读取加上注意力输出之后的残差流（先后进行）；把两者都加到同一个 x 上是 GPT-J 的并行块"),
    "ff_first": Text("attention comes first, then the feed-forward", "先做注意力，再做前馈网络"),
}


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
    first, second = {"norm1_twice": (n1, n1), "norm2_twice": (n2, n2), "norms_swapped": (n2, n1)}[mistake]
    h = x + att(first(x))
    return h + ff(second(h))


@exercise("4.3", todo=Text("return the output of GPT-2's pre-LN block for x (B, T, C), built from att, ff, norm1 and norm2",
                           "用 att、ff、norm1 和 norm2 算出 GPT-2 的 pre-LN 块对 x (B, T, C) 的输出并返回"),
          done=Text("your block equals gptlib's TransformerBlock, and gradients flow through it. The library adds "
                    "dropout on each branch (drop_shortcut, training only).",
                    "你的块与 gptlib 的 TransformerBlock 一致，梯度也能穿过它。库里还在每个分支上加了 dropout"
                    "（drop_shortcut，只在训练时生效）。"))
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
               Text("the block must return (B, T, C) = {want}, like its input, so blocks stack; got {shape}",
                    "块应返回与输入相同的 (B, T, C) = {want}，这样块才能堆叠；实际是 {shape}"),
               want=shape, shape=_shape(got))
        if close(got, expected, 1e-4):
            continue
        _first_match(got, BLOCK_MISTAKES, lambda m: _block(x, block, m), 1e-4)
        raise Wrong(Text("outputs differ from gptlib's TransformerBlock by up to {err:.3g}",
                         "输出与 gptlib 的 TransformerBlock 最多相差 {err:.3g}"), err=float((got - expected).abs().max()))
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
                     Text("only the weight matrices are counted: add the biases (3d for query/key/value when qkv_bias, "
                          "d for out_proj, 4d + d in the feed-forward) and the two LayerNorms' scale and shift (4d)",
                          "只数了权重矩阵：还要加上偏置（qkv_bias 时 query/key/value 有 3d，out_proj 有 d，前馈网络有 4d + d）"
                          "以及两个 LayerNorm 的 scale 和 shift（4d）")),
    "no_biases": (lambda d, qkv, right: 12 * d * d + 4 * d,
                  Text("the biases are missing: 3d for query/key/value (when qkv_bias), d for out_proj, 4d + d in the "
                       "feed-forward",
                       "漏了偏置：query/key/value 有 3d（qkv_bias 时），out_proj 有 d，前馈网络有 4d + d")),
    "no_layernorm": (lambda d, qkv, right: right - 4 * d,
                     Text("the two LayerNorms are missing: each has a scale and a shift of d numbers (4d in all)",
                          "漏了两个 LayerNorm：每个都有 d 个数的 scale 和 shift（共 4d）")),
    "qkv_bias_always": (lambda d, qkv, right: right if qkv else right + 3 * d,
                        Text("qkv_bias=False: the query/key/value projection then has no bias (3d fewer)",
                             "qkv_bias=False 时 query/key/value 投影没有偏置（少 3d）")),
    "qkv_bias_never": (lambda d, qkv, right: right - 3 * d if qkv else right,
                       Text("qkv_bias=True: the query/key/value projection then has 3d biases",
                            "qkv_bias=True 时 query/key/value 投影有 3d 个偏置")),
    "no_expansion": (lambda d, qkv, right: right - 6 * d * d - 3 * d,
                     Text("the feed-forward expands to 4d: its matrices hold d*4d + 4d*d = 8d^2 and its biases 4d + d",
                          "前馈网络会扩展到 4d：它的矩阵有 d*4d + 4d*d = 8d^2 个数，偏置有 4d + d 个")),
    "no_out_proj": (lambda d, qkv, right: right - d * d - d,
                    Text("the attention's output projection out_proj (d^2 + d) is missing",
                         "漏了注意力的输出投影 out_proj（d^2 + d）")),
    "final_norm": (lambda d, qkv, right: right + 2 * d,
                   Text("the model's final LayerNorm (2d) belongs to GPTModel, not to a block",
                        "最后那个 LayerNorm（2d）属于 GPTModel，不属于块")),
}


@exercise("4.4", todo=Text("return the number of parameters of one Transformer block of width d, with or without "
                           "query/key/value biases",
                           "返回宽度为 d 的一个 Transformer 块的参数个数（是否带 query/key/value 偏置由 qkv_bias 决定）"),
          done=Text("your count matches gptlib's TransformerBlock: 12d^2 + 13d with qkv biases, 12d^2 + 10d without; "
                    "two thirds of it (8d^2) is the feed-forward. GPT-2 small's 12 blocks hold 85.1M of its 124.4M "
                    "parameters; the embeddings hold nearly all the rest.",
                    "你的计数与 gptlib 的 TransformerBlock 一致：有 qkv 偏置时 12d^2 + 13d，没有时 12d^2 + 10d；"
                    "其中三分之二（8d^2）在前馈网络里。GPT-2 small 的 1.244 亿个参数中，12 个块占 8510 万，其余几乎都在嵌入层。"))
def _count(count_fn) -> None:
    answers = {}                                              # (d, qkv_bias) -> (the learner's count, the right one)
    for d in (8, 64, 768):
        for qkv_bias in (True, False):
            got = call(count_fn, d, qkv_bias=qkv_bias)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            expect(isinstance(got, (int, float)) and not isinstance(got, bool),
                   Text("return a number, got {kind}", "应返回一个数，实际是 {kind}"), kind=type(got).__name__)
            answers[d, qkv_bias] = got, _block_parameters(d, qkv_bias)
    if all(got == right for got, right in answers.values()):
        return
    for count, hint in COUNT_MISTAKES.values():             # the miscount that explains every answer
        if all(got == count(d, qkv, right) for (d, qkv), (got, right) in answers.items()):
            raise Wrong(hint)
    (d, qkv_bias), (got, right) = next((key, pair) for key, pair in answers.items() if pair[0] != pair[1])
    raise Wrong(Text("for d = {d}, qkv_bias = {bias} you return {got:,}; a block holds {right:,} ({diff:+,})",
                     "d = {d}、qkv_bias = {bias} 时你返回 {got:,}；一个块实际有 {right:,}（{diff:+,}）"),
                d=d, bias=qkv_bias, got=got, right=right, diff=got - right)
