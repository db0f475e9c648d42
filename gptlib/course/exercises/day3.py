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
from . import NotDone, Text, Wrong, call, close, exercise, expect


def _qk(t: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, d, generator=g), torch.randn(t, d, generator=g)


# ---------------------------------------------------------------------------- 3.1 scaled scores
@exercise("3.1", todo=Text("return the (T, T) scores q @ k.T / sqrt(d_k) of queries and keys shaped (T, d_k)",
                           "返回查询和键（形状都是 (T, d_k)）的 (T, T) 分数 q @ k.T / sqrt(d_k)"),
          done=Text("scaled scores are right. The library computes them for every head of every sentence at once, "
                    "inside F.scaled_dot_product_attention.",
                    "缩放后的分数正确。库里的版本在 F.scaled_dot_product_attention 中一次算出每个句子、每个头的分数。"))
def _scaled_scores(scores_fn) -> None:
    for t, d in ((4, 8), (6, 64), (1, 16)):  # T != d_k, so sqrt(T) and sqrt(d_k) tell apart
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
            raise Wrong(Text("divided by d_k = {d}; divide by its square root, {root:.4g}",
                             "除以了 d_k = {d}；应除以它的平方根 {root:.4g}"), d=d, root=math.sqrt(d))
        if close(got, q @ k.T / math.sqrt(t)):
            raise Wrong(Text("divided by sqrt(T) = sqrt({t}), the number of tokens: d_k is the last dimension, "
                             "q.shape[-1]", "除以了 sqrt(T) = sqrt({t})，也就是词元个数：d_k 是最后一维 q.shape[-1]"),
                        t=t)
        if close(got, k @ q.T / math.sqrt(d)):
            raise Wrong(Text("rows must be queries and columns keys: q @ k.T, not k @ q.T",
                             "行是查询、列是键：应是 q @ k.T，而不是 k @ q.T"))
        raise Wrong(Text("scores differ from q @ k.T / sqrt(d_k) by up to {err:.3g}",
                         "分数与 q @ k.T / sqrt(d_k) 最多相差 {err:.3g}"), err=float((got - expected).abs().max()))


# ---------------------------------------------------------------------------- 3.2 causal softmax
def _causal_mistakes(scores: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    """The usual wrong causal softmaxes of ``scores``, each with its hint."""
    t = scores.shape[-1]
    future = causal_mask(t)
    inf = float("-inf")
    return {
        "zero": (torch.softmax(scores.masked_fill(future, 0.0), dim=-1),
                 Text("future positions get weight up to {w:.2f}: masked with 0 instead of -inf? exp(0) = 1, so a 0 "
                      "score still gets a weight; exp(-inf) = 0",
                      "未来位置的权重最高是 {w:.2f}：是用 0 而不是 -inf 遮的吗？exp(0) = 1，分数为 0 仍有权重；"
                      "exp(-inf) = 0")),
        "none": (torch.softmax(scores, dim=-1),
                 Text("every token sees the future (weight up to {w:.2f}): write -inf above the diagonal before the "
                      "softmax", "每个词元都看到了未来（权重最高 {w:.2f}）：softmax 之前把对角线以上写成 -inf")),
        "past": (torch.softmax(scores.masked_fill(future.T, inf), dim=-1),
                 Text("the mask hides the past and shows the future: True must be above the diagonal, "
                      "torch.triu(ones, diagonal=1)",
                      "掩码遮住了过去、露出了未来：True 应在对角线以上，即 torch.triu(ones, diagonal=1)")),
        "after": (torch.softmax(scores, dim=-1).masked_fill(future, 0.0),
                  Text("the future was zeroed after the softmax, so rows sum to less than 1 ({low:.2f}..{high:.2f}): "
                       "write -inf into the scores before the softmax",
                       "未来的权重是在 softmax 之后才清零的，所以每行之和小于 1（{low:.2f}..{high:.2f}）："
                       "应在 softmax 之前把分数写成 -inf")),
        "columns": (torch.softmax(scores.masked_fill(future, inf), dim=0),
                    Text("the columns sum to 1, not the rows: softmax over the wrong dimension; use dim=-1 "
                         "(each query's row)", "和为 1 的是列而不是行：softmax 的维度错了；用 dim=-1（每个查询的那一行）")),
    }


@exercise("3.2", todo=Text("return the causal attention weights: mask future keys with -inf, then softmax each row",
                           "返回因果注意力权重——用 -inf 遮住未来的键，再对每一行做 softmax"),
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
        if not bool(torch.isfinite(got).all()):
            raise Wrong(Text("some weights are NaN: a row whose scores are all -inf? A token must see itself: the mask "
                             "starts one above the diagonal (diagonal=1)",
                             "有权重是 NaN：某一行的分数全是 -inf？每个词元必须能看到自己：掩码从对角线上方一格开始"
                             "（diagonal=1）"))
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
            raise Wrong(Text("future weights are tiny ({w:.1e}) but not exactly 0: mask with float('-inf'), not a "
                             "finite negative number", "未来位置的权重很小（{w:.1e}）但不恰好为 0：用 float('-inf') 遮，"
                             "而不是一个有限的负数"), **values)
        expect(not future.numel() or float(future.abs().max()) == 0,
               Text("future positions get weight up to {w:.2f}: they must be exactly 0", "未来位置的权重最高是 {w:.2f}："
                    "它们必须恰好为 0"), **values)
        expect(close(sums, torch.ones(t)), Text("rows must sum to 1 (they sum to {low:.2f}..{high:.2f})",
                                                "每一行之和应为 1（实际 {low:.2f}..{high:.2f}）"), **values)
        raise Wrong(Text("weights differ from softmax(masked scores) by up to {err:.3g}",
                         "权重与 softmax(遮掩后的分数) 最多相差 {err:.3g}"), err=float((got - expected).abs().max()))


# ---------------------------------------------------------------------------- 3.3 the attention class
@exercise("3.3", todo=Text("complete CausalAttention: __init__ makes the layers, forward maps (B, T, d_in) to (B, T, d_out)",
                           "补全 CausalAttention（__init__ 建层，forward 把 (B, T, d_in) 变成 (B, T, d_out)）"),
          done=Text("your multi-head attention equals gptlib's MultiHeadAttention with the same weights. The library "
                    "fuses W_query, W_key and W_value into one qkv matrix, calls the fused SDPA kernel, drops out "
                    "attention weights in training, and takes day 6's KV cache.",
                    "你的多头注意力在相同权重下与 gptlib 的 MultiHeadAttention 完全一致。库里把 W_query、W_key、"
                    "W_value 合成一个 qkv 矩阵，调用融合的 SDPA 内核，训练时对注意力权重做 dropout，"
                    "并接受第 6 天的 KV 缓存。"))
def _attention_class(attention_cls) -> None:
    # d_in != d_out, so sqrt(d_in), sqrt(d_out) and sqrt(head_dim) are all different; two head counts
    for d_in, d_out, heads in ((10, 12, 3), (6, 8, 2)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(d_out)
            _check_attention(attention_cls, d_in, d_out, heads)


def _check_attention(attention_cls, d_in: int, d_out: int, heads: int) -> None:
    ours = call(attention_cls, d_in=d_in, d_out=d_out, num_heads=heads)
    expect(isinstance(ours, nn.Module), Text("CausalAttention must subclass nn.Module", "CausalAttention 必须继承 nn.Module"))
    if not list(ours.children()):  # the untouched stub builds no layers
        raise NotDone
    linears = {name: m for name, m in ours.named_modules() if isinstance(m, nn.Linear)}
    projections = [linears.get(n) for n in ("W_query", "W_key", "W_value", "out_proj")]
    expect(all(p is not None for p in projections),
           Text("make four nn.Linear layers named W_query, W_key, W_value and out_proj (found: {names})",
                "建四个 nn.Linear：W_query、W_key、W_value 和 out_proj（现有：{names}）"),
           names=", ".join(linears) or "none")
    sizes = [(p.in_features, p.out_features) for p in projections]
    expect(sizes == [(d_in, d_out)] * 3 + [(d_out, d_out)],
           Text("with d_in={d_in}, d_out={d_out}: W_query, W_key, W_value map d_in -> d_out and out_proj d_out -> "
                "d_out; yours map {sizes}", "当 d_in={d_in}、d_out={d_out} 时：W_query、W_key、W_value 应是 d_in -> d_out，"
                "out_proj 应是 d_out -> d_out；你的是 {sizes}"),
           d_in=d_in, d_out=d_out, sizes=", ".join(f"{i}->{o}" for i, o in sizes))
    with_bias = {p.bias is not None for p in projections[:3]}
    expect(len(with_bias) == 1, Text("give W_query, W_key and W_value the same bias setting (all bias=False, or all "
                                     "with a bias)", "W_query、W_key、W_value 的偏置设置要一致（都 bias=False，或都有偏置）"))
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
        expect(isinstance(got, torch.Tensor) and got.shape == (b, t, d_out),
               Text("forward must return (B, T, d_out) = {want}, got {shape}: did you merge the heads back?",
                    "forward 应返回 (B, T, d_out) = {want}，实际是 {shape}：把各个头拼回去了吗？"),
               want=(b, t, d_out), shape=tuple(getattr(got, "shape", ())))
        expect(bool(torch.isfinite(got).all()),
               Text("the output has NaN: a row of scores that is all -inf? A token must see itself: the mask starts "
                    "one above the diagonal (diagonal=1)", "输出里有 NaN：某一行分数全是 -inf？每个词元必须能看到自己："
                    "掩码从对角线上方一格开始（diagonal=1）"))
        expected = reference(x)
        if not close(got, expected, 1e-4):
            _diagnose(got.detach(), x.detach(), projections, heads)
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
    "scale_d_in": Text("scores are divided by sqrt(d_in), the input size; the dot products are over one head's "
                       "numbers: divide by sqrt(head_dim)",
                       "分数除以了 sqrt(d_in)，即输入的大小；点积只在一个头的维度上求和：应除以 sqrt(head_dim)"),
    "softmax_keys_dim": Text("softmax over the wrong dimension: each query's row of weights (the last dimension, "
                             "dim=-1) must sum to 1", "softmax 的维度错了：每个查询那一行的权重（最后一维，dim=-1）之和应为 1"),
    "no_transpose": Text("heads are split without transposing: view(B, T, heads, head_dim).transpose(1, 2) gives "
                         "each head its own columns; a plain reshape to (B, heads, T, head_dim) mixes tokens and heads",
                         "拆分头时没有转置：view(B, T, heads, head_dim).transpose(1, 2) 才让每个头拿到自己的列；"
                         "直接 reshape 成 (B, heads, T, head_dim) 会把词元和头混在一起"),
    "merge_no_transpose": Text("heads are merged without transposing back: weights @ v is (B, heads, T, head_dim); "
                               "transpose(1, 2) to (B, T, heads, head_dim) before reshape(B, T, d_out)",
                               "合并头时没有转置回来：weights @ v 的形状是 (B, heads, T, head_dim)；先 transpose(1, 2) "
                               "变成 (B, T, heads, head_dim)，再 reshape(B, T, d_out)"),
    "no_out_proj": Text("out_proj is never applied: the merged heads must go through out_proj, which mixes them",
                        "没有用 out_proj：拼好的各个头还要经过 out_proj，把它们混合起来"),
}


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
    scale = {"no_scale": 1.0, "scale_d_out": math.sqrt(d_out), "scale_d_in": math.sqrt(d_in)}.get(
        mistake, math.sqrt(head_dim))
    scores = q @ k.transpose(-2, -1) / scale
    if mistake != "no_mask":
        scores = scores.masked_fill(causal_mask(t), float("-inf"))
    context = torch.softmax(scores, dim=-2 if mistake == "softmax_keys_dim" else -1) @ v
    if mistake in ("no_transpose", "merge_no_transpose"):
        context = context.reshape(b, t, d_out)
    else:
        context = context.transpose(1, 2).reshape(b, t, d_out)
    return context if mistake == "no_out_proj" else out(context)


# ---------------------------------------------------------------------------- 3.4 dropout
@exercise("3.4", todo=Text("in training, zero each weight with probability p and multiply the survivors by 1 / (1 - p); "
                           "when training is False, return the weights unchanged",
                           "训练时以概率 p 把每个权重置零，并把留下的乘以 1 / (1 - p)；training 为 False 时原样返回权重"),
          done=Text("inverted dropout is right: in training each weight keeps its expected value, and at inference "
                    "nothing changes. nn.Dropout does exactly this; the library passes dropout_p to "
                    "F.scaled_dot_product_attention, which drops inside the fused kernel, only in model.train() mode.",
                    "反向缩放的 dropout（inverted dropout）正确：训练时每个权重的期望值不变，推理时什么也不变。"
                    "nn.Dropout 做的正是这件事；库里把 dropout_p 交给 F.scaled_dot_product_attention，在融合内核里"
                    "随机失活，并且只在 model.train() 模式下生效。"))
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
            raise Wrong(Text("with training=False return the weights themselves, not None",
                             "training=False 时要返回权重本身，而不是 None")) from None
        if not (isinstance(got, torch.Tensor) and got.shape == weights.shape and torch.equal(got, weights)):
            raise Wrong(Text("with training=False (model.eval(), inference) dropout must return the weights "
                             "unchanged: no zeros, no scaling",
                             "training=False（model.eval()，推理）时 dropout 必须原样返回权重：不置零，也不缩放"))


def _check_dropout(dropout_fn, weights: torch.Tensor, p: float) -> None:
    got = call(dropout_fn, weights.clone(), p, True)
    expect(isinstance(got, torch.Tensor) and got.shape == weights.shape,
           Text("return a tensor shaped like the weights, {want}; got {shape}", "应返回与权重同形状 {want} 的张量，实际是 {shape}"),
           want=tuple(weights.shape), shape=tuple(getattr(got, "shape", ())))
    got = got.detach()
    kept = got != 0
    dropped = 1 - float(kept.float().mean())
    # 8192 independent draws: the dropped fraction's standard deviation is at most 0.0055; 0.03 is 5.5 of them
    if not bool((~kept).any()):
        raise Wrong(Text("nothing was dropped with training=True and p={p}: zero each weight with probability p",
                         "training=True、p={p} 时没有任何权重被置零：应以概率 p 把每个权重置零"), p=p)
    if abs(dropped - (1 - p)) < 0.03:
        raise Wrong(Text("{frac:.0%} of the weights were dropped with p={p}: p is the probability to drop, not to keep",
                         "p={p} 时有 {frac:.0%} 的权重被置零：p 是丢弃的概率，不是保留的概率"), frac=dropped, p=p)
    expect(abs(dropped - p) < 0.03, Text("{frac:.0%} of the weights were dropped with p={p}; expected about {p:.0%}, "
                                         "each weight independently",
                                         "p={p} 时有 {frac:.0%} 的权重被置零；应约为 {p:.0%}，每个权重独立地抽"),
           frac=dropped, p=p)
    survivors, before = got[kept], weights[kept]
    if close(survivors, before / (1 - p)):
        return
    if close(survivors, before):
        raise Wrong(Text("the survivors keep their old value: multiply them by 1 / (1 - p) = {s:.4g}, or each weight's "
                         "expected value shrinks to (1 - p) of it in training and eval-mode outputs come out larger",
                         "留下的权重保持原值：应乘以 1 / (1 - p) = {s:.4g}，否则训练时每个权重的期望值缩小到 (1 - p) 倍，"
                         "推理时的输出就会偏大"), s=1 / (1 - p))
    if close(survivors, before * (1 - p)):
        raise Wrong(Text("the survivors were multiplied by 1 - p = {k:g}: divide by it instead, to make up for the "
                         "dropped share", "留下的权重乘了 1 - p = {k:g}：应除以它，补回被丢掉的那部分"), k=1 - p)
    if close(survivors, before / p):
        raise Wrong(Text("the survivors were divided by p = {p}: divide by the probability to keep, 1 - p = {k:g}",
                         "留下的权重除以了 p = {p}：应除以保留的概率 1 - p = {k:g}"), p=p, k=1 - p)
    ratio = survivors / before
    raise Wrong(Text("each survivor should be its weight / (1 - p) = weight x {s:.4g}; yours are weight x {low:.4g}..{high:.4g}",
                     "每个留下的权重应为 weight / (1 - p) = weight x {s:.4g}；你的是 weight x {low:.4g}..{high:.4g}"),
                s=1 / (1 - p), low=float(ratio.min()), high=float(ratio.max()))
