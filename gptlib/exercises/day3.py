"""Day 3's exercises: attention scores, the causal softmax, and the whole causal multi-head attention."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..model import MultiHeadAttention, causal_mask
from . import NotDone, Text, Wrong, call, close, exercise, expect


def _qk(t: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, d, generator=g), torch.randn(t, d, generator=g)


@exercise("3.1", todo=Text("return the (T, T) scores q @ k.T / sqrt(d_k) of queries and keys shaped (T, d_k)",
                           "返回查询和键（形状都是 (T, d_k)）的 (T, T) 分数 q @ k.T / sqrt(d_k)"),
          done=Text("scaled scores are right. The library computes them for every head at once, inside "
                    "F.scaled_dot_product_attention.",
                    "缩放后的分数正确。库里的版本在 F.scaled_dot_product_attention 中一次算出所有头的分数。"))
def _scaled_scores(scores_fn) -> None:
    for t, d in ((4, 8), (6, 64), (1, 16)):
        q, k = _qk(t, d, seed=t * d)
        got = call(scores_fn, q.clone(), k.clone())
        expected = q @ k.T / math.sqrt(d)
        expect(isinstance(got, torch.Tensor) and got.shape == (t, t),
               Text("scores must be a ({t}, {t}) tensor, got {shape}: one row per query, one column per key",
                    "分数应是 ({t}, {t}) 的张量，实际是 {shape}：每个查询一行，每个键一列"),
               t=t, shape=tuple(getattr(got, "shape", ())))
        if close(got, expected):
            continue
        if close(got, q @ k.T):
            raise Wrong(Text("scores grow with d_k ({d} here): did you divide by sqrt(d_k)?",
                             "分数随 d_k（这里是 {d}）变大：除以 sqrt(d_k) 了吗？"), d=d)
        if close(got, q @ k.T / d):
            raise Wrong(Text("divided by d_k = {d}; divide by its square root, {root:g}",
                             "除以了 d_k = {d}；应除以它的平方根 {root:g}"), d=d, root=math.sqrt(d))
        if close(got, k @ q.T / math.sqrt(d)):
            raise Wrong(Text("rows must be queries and columns keys: q @ k.T, not k @ q.T",
                             "行是查询、列是键：应是 q @ k.T，而不是 k @ q.T"))
        raise Wrong(Text("scores differ from q @ k.T / sqrt(d_k) by up to {err:.3g}",
                         "分数与 q @ k.T / sqrt(d_k) 最多相差 {err:.3g}"), err=float((got - expected).abs().max()))


@exercise("3.2", todo=Text("return the causal attention weights: mask future keys with -inf, then softmax each row",
                           "返回因果注意力权重：用 -inf 遮住未来的键，再对每一行做 softmax"),
          done=Text("causal weights are right: each row sums to 1 and the future gets exactly 0. The library "
                    "passes is_causal=True to F.scaled_dot_product_attention, which never builds the mask.",
                    "因果权重正确：每行之和为 1，未来位置的权重恰好为 0。库里把 is_causal=True 交给 "
                    "F.scaled_dot_product_attention，根本不用构造掩码。"))
def _causal_weights(weights_fn) -> None:
    for t in (5, 1, 9):
        scores = torch.randn(t, t, generator=torch.Generator().manual_seed(t)) * 2
        got = call(weights_fn, scores.clone())
        expect(isinstance(got, torch.Tensor) and got.shape == (t, t),
               Text("weights must be ({t}, {t}) like the scores, got {shape}", "权重应和分数一样是 ({t}, {t})，实际是 {shape}"),
               t=t, shape=tuple(getattr(got, "shape", ())))
        expect(bool(torch.isfinite(got).all()), Text("some weights are NaN or inf: softmax of a row that is all -inf?",
                                                     "有权重是 NaN 或 inf：是不是对全为 -inf 的一行做了 softmax？"))
        future = got.masked_select(causal_mask(t)) if t > 1 else torch.zeros(0)
        if future.numel() and future.abs().max() > 0:
            raise Wrong(Text("future positions get weight {w:.2f}: masked with 0 instead of -inf, or after the softmax?",
                             "未来位置的权重是 {w:.2f}：是用 0 而不是 -inf 遮的，还是在 softmax 之后才遮？"),
                        w=float(future.abs().max()))
        if not close(got.sum(-1), torch.ones(t)):
            raise Wrong(Text("rows must sum to 1 (they sum to {low:.2f}..{high:.2f}): softmax over the wrong dimension?",
                             "每一行之和应为 1（实际 {low:.2f}..{high:.2f}）：softmax 的维度错了？"),
                        low=float(got.sum(-1).min()), high=float(got.sum(-1).max()))
        expected = torch.softmax(scores.masked_fill(causal_mask(t), float("-inf")), dim=-1)
        expect(close(got, expected), Text("weights differ from softmax(masked scores) by up to {err:.3g}",
                                          "权重与 softmax(遮掩后的分数) 最多相差 {err:.3g}"),
               err=float((got - expected).abs().max()))


@exercise("3.3", todo=Text("complete CausalAttention: __init__ makes the layers, forward maps (B, T, d_in) to (B, T, d_out)",
                           "补全 CausalAttention：__init__ 建层，forward 把 (B, T, d_in) 变成 (B, T, d_out)"),
          done=Text("your multi-head attention equals gptlib's MultiHeadAttention with the same weights. The library "
                    "fuses W_query, W_key and W_value into one qkv matrix and calls the fused SDPA kernel.",
                    "你的多头注意力在相同权重下与 gptlib 的 MultiHeadAttention 完全一致。库里把 W_query、W_key、"
                    "W_value 合成一个 qkv 矩阵，并调用融合的 SDPA 内核。"))
def _attention_class(attention_cls) -> None:
    torch.manual_seed(0)
    ours = call(attention_cls, d_in=12, d_out=12, num_heads=3)
    expect(isinstance(ours, nn.Module), Text("CausalAttention must subclass nn.Module", "CausalAttention 必须继承 nn.Module"))
    if not list(ours.children()):  # the untouched stub builds no layers
        raise NotDone
    linears = {name: m for name, m in ours.named_modules() if isinstance(m, nn.Linear)}
    projections = [linears.get(n) for n in ("W_query", "W_key", "W_value", "out_proj")]
    expect(all(projections), Text("make four nn.Linear layers named W_query, W_key, W_value and out_proj (found: {names})",
                                  "建四个 nn.Linear：W_query、W_key、W_value 和 out_proj（现有：{names}）"),
           names=", ".join(linears) or "none")
    reference = MultiHeadAttention(12, 12, dropout=0.0, num_heads=3, qkv_bias=projections[0].bias is not None).eval()
    with torch.no_grad():  # the library's qkv holds W_query, W_key, W_value stacked row-wise
        reference.qkv.weight.copy_(torch.cat([p.weight for p in projections[:3]]))
        if reference.qkv.bias is not None:
            reference.qkv.bias.copy_(torch.cat([p.bias for p in projections[:3]]))
        reference.out_proj.weight.copy_(projections[3].weight)
        reference.out_proj.bias.copy_(projections[3].bias if projections[3].bias is not None else 0.0)
    ours.eval()
    for shape in ((2, 5, 12), (1, 1, 12), (3, 7, 12)):
        x = torch.randn(*shape, requires_grad=True)
        got = call(ours, x)
        expect(isinstance(got, torch.Tensor) and got.shape == shape,
               Text("forward must return (B, T, d_out) = {want}, got {shape}: did you merge the heads back?",
                    "forward 应返回 (B, T, d_out) = {want}，实际是 {shape}：把各个头拼回去了吗？"),
               want=shape, shape=tuple(getattr(got, "shape", ())))
        expected = reference(x)
        if not close(got, expected, 1e-4):
            _diagnose(got.detach(), x.detach(), projections, heads=3)
            raise Wrong(Text("outputs differ from multi-head attention by up to {err:.3g}",
                             "输出与多头注意力最多相差 {err:.3g}"), err=float((got - expected).detach().abs().max()))
        got.sum().backward()
        expect(x.grad is not None and bool(torch.isfinite(x.grad).all()),
               Text("no finite gradient reaches the input: is something detached?", "梯度没有（或不是有限值）传回输入：是否 detach 了？"))


MISTAKES = {  # a usual mistake -> its hint; _diagnose recognises each by recomputing it
    "no_mask": Text("every token sees the future: the causal mask is missing", "每个词元都看到了未来：缺少因果掩码"),
    "no_scale": Text("scores are not divided by sqrt(head_dim)", "分数没有除以 sqrt(head_dim)"),
    "scale_d_out": Text("scores are divided by sqrt(d_out); each head has its own size: divide by sqrt(head_dim)",
                        "分数除以了 sqrt(d_out)；每个头有自己的大小：应除以 sqrt(head_dim)"),
    "no_transpose": Text("heads are merged without transposing back: use (weights @ v).transpose(1, 2) before the "
                         "reshape, and split into heads with view(B, T, heads, head_dim).transpose(1, 2)",
                         "合并头之前没有转置回来：先 (weights @ v).transpose(1, 2) 再 reshape；拆分时用 "
                         "view(B, T, heads, head_dim).transpose(1, 2)"),
}


def _diagnose(got: torch.Tensor, x: torch.Tensor, projections: list[nn.Linear], heads: int) -> None:
    """Raise the hint of the usual mistake whose output equals ``got``, if one does."""
    for mistake, hint in MISTAKES.items():
        if close(got, _attention(x, projections, heads, mistake), 1e-4):
            raise Wrong(hint)


@torch.no_grad()
def _attention(x: torch.Tensor, projections: list[nn.Linear], heads: int, mistake: str) -> torch.Tensor:
    """Multi-head attention written out, with one of ``MISTAKES`` made on purpose."""
    b, t, _ = x.shape
    w_q, w_k, w_v, out = projections
    d_out = w_q.out_features
    head_dim = d_out // heads

    def split(z: torch.Tensor) -> torch.Tensor:
        if mistake == "no_transpose":
            return z.reshape(b, heads, t, head_dim)
        return z.view(b, t, heads, head_dim).transpose(1, 2)

    q, k, v = split(w_q(x)), split(w_k(x)), split(w_v(x))
    scale = {"no_scale": 1.0, "scale_d_out": math.sqrt(d_out)}.get(mistake, math.sqrt(head_dim))
    scores = q @ k.transpose(-2, -1) / scale
    if mistake != "no_mask":
        scores = scores.masked_fill(causal_mask(t), float("-inf"))
    context = torch.softmax(scores, dim=-1) @ v
    context = context.reshape(b, t, d_out) if mistake == "no_transpose" else context.transpose(1, 2).reshape(b, t, d_out)
    return out(context)
