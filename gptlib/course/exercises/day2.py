"""Day 2's exercises: the embedding lookup as one-hot × matrix, token + position embeddings of a
batch, and the gradient of an embedding table by hand (only the looked-up rows learn).

Day 2 adds no gptlib module, so the references are torch's own: ``F.embedding`` and autograd.
Some usual mistakes make the learner's code raise instead of returning a wrong tensor (an int64
one-hot times float weights, a one-hot too narrow, a position table of the wrong length). For
those, ``_answer`` runs the code again on inputs on which that one mistake does no harm: if it
then runs and is right, that mistake was the cause, and the verdict names it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from . import Text, Wrong, call, close, exercise, expect

Probe = tuple[tuple, torch.Tensor, Text, dict]  # (arguments, the right answer for them, the mistake's hint, its values)


def _shape(x: Any) -> tuple:
    return tuple(getattr(x, "shape", ()))


def _answer(fn: Callable, args: tuple, probes: Sequence[Probe] = ()) -> Any:
    """``call(fn, *args)``; when the learner's code raises, the hint of the first probe on which it runs and
    is right replaces the bare exception (see the module docstring)."""
    try:
        return call(fn, *args)
    except Wrong:
        for probe_args, expected, hint, values in probes:
            try:
                got = fn(*probe_args)
            except Exception:
                continue
            if isinstance(got, torch.Tensor) and got.shape == expected.shape and close(got, expected):
                raise Wrong(hint, **values) from None
        raise


def _expect_tensor(got: Any) -> None:
    expect(isinstance(got, torch.Tensor), Text("return a tensor, got {kind}", "应返回张量，实际是 {kind}"),
           kind=type(got).__name__)


INTEGER = Text("your code runs when the weights are integers and fails on float ones: F.one_hot returns int64, "
               "and a matrix product needs both sides of one dtype. Add .float() to the one-hot",
               "权重是整数时你的代码能运行，换成浮点数就出错：F.one_hot 返回 int64，而矩阵乘法要求两边 dtype 相同。"
               "给独热矩阵加上 .float()")
WIDTH = Text("the one-hot must have one column per vocabulary entry (V = weight.shape[0] = {vocab}); F.one_hot(ids) "
             "alone makes only ids.max() + 1 = {width}. Pass num_classes=weight.shape[0]",
             "独热矩阵的列数应等于词表大小（V = weight.shape[0] = {vocab}）；只写 F.one_hot(ids) 只会得到 "
             "ids.max() + 1 = {width} 列。请传入 num_classes=weight.shape[0]")
WIDTH_AND_INTEGER = Text("two fixes: the one-hot needs V = weight.shape[0] = {vocab} columns (F.one_hot(ids) alone "
                         "makes ids.max() + 1 = {width}: pass num_classes) and a float dtype (add .float())",
                         "要改两处：独热矩阵需要 V = weight.shape[0] = {vocab} 列（只写 F.one_hot(ids) 只有 "
                         "ids.max() + 1 = {width} 列：传入 num_classes），并且要是浮点类型（加 .float()）")


@exercise("2.1", todo=Text("return one_hot(ids) @ weight: ids (N,) token ids, weight (V, C) -> (N, C), with a float "
                           "one-hot of width V",
                           "返回 one_hot(ids) @ weight：ids 是 (N,) 的词元编号，weight 是 (V, C)，结果是 (N, C)；"
                           "独热矩阵宽度为 V，类型为浮点"),
          done=Text("one-hot × matrix gives exactly the rows weight[ids], and the gradient reaches the weight. "
                    "nn.Embedding (F.embedding) reads those rows directly and never builds the (N, V) one-hot: "
                    "for GPT-2 that skips 50,256 multiplications by zero per token and per dimension.",
                    "独热 × 矩阵恰好取出 weight[ids] 这些行，梯度也能传回权重。nn.Embedding（F.embedding）直接读取这些行，"
                    "从不构造 (N, V) 的独热矩阵：对 GPT-2 来说，每个词元的每一维都省掉了 50,256 次乘以 0 的乘法。"))
def _one_hot_lookup(lookup_fn) -> None:
    for n, vocab, dim in ((6, 20, 8), (1, 7, 3), (12, 50, 16)):
        g = torch.Generator().manual_seed(n * vocab + dim)
        ids = torch.randint(0, vocab - 1, (n,), generator=g)  # never the last id: a one-hot of width ids.max() + 1 is short
        weight = torch.randn(vocab, dim, generator=g, requires_grad=True)
        integer_weight = torch.randint(-9, 10, (vocab, dim), generator=g)
        with_last = torch.cat([ids, torch.tensor([vocab - 1])])
        width = {"vocab": vocab, "width": int(ids.max()) + 1}
        got = _answer(lookup_fn, (ids.clone(), weight), [
            ((ids.clone(), integer_weight), F.embedding(ids, integer_weight), INTEGER, {}),
            ((with_last.clone(), weight.detach().clone()), F.embedding(with_last, weight.detach()), WIDTH, width),
            ((with_last.clone(), integer_weight), F.embedding(with_last, integer_weight), WIDTH_AND_INTEGER, width),
        ])
        _expect_tensor(got)
        expected = F.embedding(ids, weight.detach())
        if got.shape == (dim, n) and close(got.detach().T, expected):
            raise Wrong(Text("the result is transposed, ({dim}, {n}) instead of (N, C) = ({n}, {dim}): one row per "
                             "token, so one_hot @ weight, not weight.T @ one_hot.T",
                             "结果被转置了，是 ({dim}, {n}) 而不是 (N, C) = ({n}, {dim})：每个词元一行，"
                             "所以是 one_hot @ weight，而不是 weight.T @ one_hot.T"), dim=dim, n=n)
        if got.shape == (n, vocab):
            raise Wrong(Text("the result is ({n}, {vocab}), the one-hot itself: multiply it by weight to get ({n}, {dim})",
                             "结果是 ({n}, {vocab})，也就是独热矩阵本身：再乘以 weight，得到 ({n}, {dim})"),
                        n=n, vocab=vocab, dim=dim)
        expect(got.shape == (n, dim), Text("the result must be (N, C) = ({n}, {dim}), one row per token id; got {shape}",
                                           "结果应是 (N, C) = ({n}, {dim})，每个词元编号一行；实际是 {shape}"),
               n=n, dim=dim, shape=_shape(got))
        expect(close(got.detach(), expected),
               Text("rows differ from weight[ids] by up to {err:.3g}: row n must be row ids[n] of the weight",
                    "结果与 weight[ids] 最多相差 {err:.3g}：第 n 行应是权重的第 ids[n] 行"),
               err=float((got.detach().double() - expected.double()).abs().max()))
        no_gradient = Text("no gradient reaches the weight: is something detached (.detach(), .data) or computed "
                           "under torch.no_grad()?",
                           "梯度传不回权重：是不是 detach 了（.detach()、.data），或在 torch.no_grad() 下计算？")
        expect(got.requires_grad, no_gradient)
        got.sum().backward()
        uses = torch.bincount(ids, minlength=vocab).to(weight.dtype)[:, None].expand(vocab, dim)
        expect(weight.grad is not None and close(weight.grad, uses), no_gradient)


POSITION_MISTAKES = {  # a usual mistake -> (the wrong answer it gives, its hint); recognised by recomputing each
    "no_positions": (lambda tok, pos, ids: tok[ids],
                     Text("the position embeddings are missing: add pos_weight[t] to the token at position t",
                          "缺少位置嵌入：给位置 t 上的词元加上 pos_weight[t]")),
    "from_one": (lambda tok, pos, ids: tok[ids] + pos[1: ids.shape[1] + 1],
                 Text("positions start at 0: the first token gets row 0 of the position table, the last row T-1 "
                      "(torch.arange(T), not 1..T)",
                      "位置从 0 开始：第一个词元取位置表的第 0 行，最后一个取第 T-1 行（torch.arange(T)，而不是 1..T）")),
    "position_numbers": (lambda tok, pos, ids: tok[ids] + torch.arange(ids.shape[1])[:, None],
                         Text("you added the position numbers 0..T-1 themselves; add their rows of the position "
                              "table, pos_weight[0..T-1]",
                              "你加上的是位置编号 0..T-1 本身；应加上位置表中对应的行 pos_weight[0..T-1]")),
    "token_numbers": (lambda tok, pos, ids: ids[..., None] + pos[: ids.shape[1]],
                      Text("you added the token ids themselves (numbers); add their embedding rows, tok_weight[ids]",
                           "你加上的是词元编号本身（一个数）；应加上它们的嵌入行 tok_weight[ids]")),
    "by_row": (lambda tok, pos, ids: tok[ids] + pos[: ids.shape[0]][:, None, :],
               Text("every token of a sequence got the same position vector, the one of its batch row: positions "
                    "run along T (dimension 1) and are shared by every sequence of the batch",
                    "同一序列的所有词元拿到了同一个位置向量（按所在的批次行取）：位置沿 T（第 1 维）变化，"
                    "并由批次里的每个序列共享")),
    "across_batch": (lambda tok, pos, ids: tok[ids] + pos[: ids.numel()].view(*ids.shape, -1),
                     Text("positions run on across the batch (0..B*T-1); each sequence starts again at position 0",
                          "位置在整个批次上连续编号（0..B*T-1）；每个序列都应从位置 0 重新开始")),
    "by_token": (lambda tok, pos, ids: tok[ids] + pos[ids],
                 Text("the position table was indexed by token ids; index it by positions 0..T-1",
                      "位置表是按词元编号取的行；应按位置 0..T-1 取")),
}


@exercise("2.2", todo=Text("return token + position embeddings: ids (B, T), tok_weight (V, C), pos_weight "
                           "(context_length, C) -> (B, T, C)",
                           "返回词元嵌入 + 位置嵌入：ids 是 (B, T)，tok_weight 是 (V, C)，pos_weight 是 "
                           "(context_length, C)，结果是 (B, T, C)"),
          done=Text("token + position embeddings are right: T position rows, broadcast over the batch. gptlib's "
                    "GPTModel (day 4) starts its forward with this sum and applies dropout to it; with a KV cache "
                    "(day 6) its positions start after the cached tokens instead of at 0.",
                    "词元嵌入 + 位置嵌入正确：T 行位置向量，在批次维上广播。gptlib 的 GPTModel（第 4 天）的 forward "
                    "就从这个和开始，再做 dropout；使用 KV 缓存（第 6 天）时，位置从缓存的词元之后开始，而不是从 0 开始。"))
def _token_and_position(embed_fn) -> None:
    vocab, context, dim = 20, 24, 8
    g = torch.Generator().manual_seed(2)
    tok, pos = torch.randn(vocab, dim, generator=g), torch.randn(context, dim, generator=g)

    def right(ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, tok) + F.embedding(torch.arange(ids.shape[1]), pos)

    for batch, t in ((2, 5), (3, 7), (1, 1)):
        ids = torch.randint(0, vocab, (batch, t), generator=g)
        whole_table, square = torch.randint(0, vocab, (2, context), generator=g), torch.randint(0, vocab, (t, t), generator=g)
        got = _answer(embed_fn, (ids.clone(), tok.clone(), pos.clone()), [
            ((whole_table, tok.clone(), pos.clone()), right(whole_table),
             Text("you added the whole position table ({context} rows); take the rows of positions 0..T-1 only",
                  "你加上了整张位置表（{context} 行）；只取位置 0..T-1 的那些行"), {"context": context}),
            ((square, tok.clone(), pos.clone()), right(square),
             Text("the positions were counted along the batch (B = ids.shape[0]); count them along the sequence: "
                  "T = ids.shape[1]", "位置是沿批次维计数的（B = ids.shape[0]）；应沿序列维计数：T = ids.shape[1]"), {}),
        ])
        _expect_tensor(got)
        got = got.detach()
        if got.shape == (batch, t, 2 * dim):
            raise Wrong(Text("the result is {width} wide: add the two embeddings, don't concatenate them; the width "
                             "stays C = {dim}", "结果宽度是 {width}：两个嵌入应相加而不是拼接，宽度保持 C = {dim}"),
                        width=2 * dim, dim=dim)
        expect(got.shape == (batch, t, dim), Text("the result must be (B, T, C) = {want}, got {shape}",
                                                  "结果应是 (B, T, C) = {want}，实际是 {shape}"),
               want=(batch, t, dim), shape=tuple(got.shape))
        expected = right(ids)
        if close(got, expected):
            continue
        for wrong, hint in POSITION_MISTAKES.values():
            if close(got, wrong(tok, pos, ids)):
                raise Wrong(hint)
        raise Wrong(Text("the result differs from tok_weight[ids] + pos_weight[0..T-1] by up to {err:.3g}",
                         "结果与 tok_weight[ids] + pos_weight[0..T-1] 最多相差 {err:.3g}"),
                    err=float((got.double() - expected.double()).abs().max()))


@exercise("2.3", todo=Text("return the gradient of the (V, C) embedding table: row ids[n] receives grad_out[n], for "
                           "ids (N,), grad_out (N, C) and vocab_size V",
                           "返回 (V, C) 嵌入表的梯度：第 ids[n] 行接收 grad_out[n]；输入是 ids (N,)、grad_out (N, C) "
                           "和词表大小 V"),
          done=Text("your backward pass equals autograd's: only the looked-up rows get a gradient, and a token used "
                    "k times gets the sum of its k gradients. torch does the same scatter-add; nn.Embedding("
                    "sparse=True) even stores only those rows.",
                    "你写的反向传播与 autograd 一致：只有被查到的行得到梯度，用了 k 次的词元得到这 k 个梯度之和。"
                    "torch 做的也是这种分散累加（scatter-add）；nn.Embedding(sparse=True) 甚至只存这些行。"))
def _embedding_gradient(grad_fn) -> None:
    g = torch.Generator().manual_seed(3)
    cases = ((torch.tensor([3, 1, 3, 0, 3, 5]), 8, 4), (torch.randint(0, 30, (20,), generator=g), 30, 5),
             (torch.tensor([2]), 3, 2))
    for ids, vocab, dim in cases:
        grad_out = torch.randn(len(ids), dim, generator=g)
        weight = torch.zeros(vocab, dim, requires_grad=True)
        F.embedding(ids, weight).backward(grad_out)
        expected = weight.grad
        integer_grad = torch.randint(-9, 10, (len(ids), dim), generator=g)
        got = _answer(grad_fn, (ids.clone(), grad_out.clone(), vocab), [
            ((ids.clone(), integer_grad, vocab), torch.zeros(vocab, dim, dtype=torch.long).index_add_(0, ids, integer_grad),
             Text("your code runs when the gradients are integers and fails on float ones: make your tensors float "
                  "(F.one_hot returns int64: add .float())",
                  "梯度是整数时你的代码能运行，换成浮点数就出错：把你的张量改成浮点类型（F.one_hot 返回 int64：加 .float()）"),
             {}),
        ])
        _expect_tensor(got)
        got = got.detach()
        n = len(ids)
        if got.shape == (dim, vocab) and close(got.T, expected):
            raise Wrong(Text("the gradient is transposed, ({dim}, {vocab}); it has the weight's shape (V, C) = "
                             "({vocab}, {dim}): one_hot.T @ grad_out, not grad_out.T @ one_hot",
                             "梯度被转置了，是 ({dim}, {vocab})；它应与权重同形 (V, C) = ({vocab}, {dim})："
                             "one_hot.T @ grad_out，而不是 grad_out.T @ one_hot"), dim=dim, vocab=vocab)
        if got.shape == (n, dim) and n != vocab:
            raise Wrong(Text("the result is ({n}, {dim}), one gradient per lookup; the table's gradient has one row per "
                             "vocabulary entry, ({vocab}, {dim}): add each lookup's gradient into its token's row",
                             "结果是 ({n}, {dim})，每次查表一个梯度；嵌入表的梯度每个词表条目一行，即 ({vocab}, {dim})："
                             "把每次查表的梯度加到对应词元的那一行"), n=n, dim=dim, vocab=vocab)
        expect(got.shape == (vocab, dim), Text("the gradient must have the weight's shape (V, C) = {want}, got {shape}",
                                               "梯度应与权重同形 (V, C) = {want}，实际是 {shape}"),
               want=(vocab, dim), shape=tuple(got.shape))
        uses = torch.bincount(ids, minlength=vocab)
        leak = got.abs().amax(dim=1) * (uses == 0)
        if leak.max() > 0:
            row = int(leak.argmax())
            raise Wrong(Text("row {row} was never looked up but gets gradient {value:.2f}: only the looked-up rows get "
                             "a gradient, every other row's is exactly 0",
                             "第 {row} 行从未被查到，却得到了梯度 {value:.2f}：只有被查到的行有梯度，其余行的梯度恰好为 0"),
                        row=row, value=float(got[row].abs().max()))
        once = uses == 1
        expect(close(got[once], expected[once]),
               Text("a token used once must get exactly its lookup's gradient: row ids[n] receives grad_out[n]",
                    "只用了一次的词元，梯度应恰好是那次查表的梯度：第 ids[n] 行接收 grad_out[n]"))
        for row in (uses > 1).nonzero().flatten().tolist():
            if close(got[row], expected[row]):
                continue
            occurrences = grad_out[ids == row]
            values = {"row": row, "k": len(occurrences)}
            if any(close(got[row], occurrence) for occurrence in occurrences):
                raise Wrong(Text("row {row} is looked up {k} times but keeps only one of its {k} gradients: "
                                 "grad[ids] = g and grad[ids] += g write a repeated row only once; use "
                                 "grad.index_add_(0, ids, g) or a loop with +=",
                                 "第 {row} 行被查了 {k} 次，却只保留了 {k} 个梯度中的一个：grad[ids] = g 和 "
                                 "grad[ids] += g 对重复出现的行只写一次；请用 grad.index_add_(0, ids, g) 或带 += 的循环"), **values)
            if close(got[row], occurrences.mean(0)):
                raise Wrong(Text("row {row} is looked up {k} times and gets the mean of its gradients; the loss adds "
                                 "up every use, so the gradients add up: the sum",
                                 "第 {row} 行被查了 {k} 次，得到的是这些梯度的平均；损失把每次使用都加起来，"
                                 "所以梯度也要相加：是求和"), **values)
            raise Wrong(Text("row {row} is looked up {k} times: it must get the sum of those {k} gradients",
                             "第 {row} 行被查了 {k} 次：它应得到这 {k} 个梯度之和"), **values)
