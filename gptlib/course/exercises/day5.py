"""Day 5's exercises: the input/target shift of a sliding window, cross-entropy by hand, a training loop.

Each check recognises the usual mistakes by recomputing the answer with that mistake made on
purpose (``_diagnose_windows``, ``_loss_mistakes``, ``_diagnose_loop``), so its hint names what went
wrong instead of guessing. Checks that draw random numbers do so from their own generators or
inside ``torch.random.fork_rng``: they never move the learner's own random stream.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...data import GPTDataset
from ...model import GPTConfig, GPTModel
from . import Text, Wrong, call, close, exercise, expect


def _shape(value: Any) -> tuple:
    return tuple(getattr(value, "shape", ()))


# ---------------------------------------------------------------------------- 5.1 input/target windows
def _windows(ids: torch.Tensor, length: int, stride: int, starts: range | None = None,
             target_shift: int = 1, input_shift: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of the windows at ``starts``, each shifted as asked (a mistake made on purpose)."""
    n = len(ids)
    starts = range(0, n - length, stride) if starts is None else starts
    inputs = torch.stack([ids[s + input_shift: s + input_shift + length] for s in starts])
    targets = torch.stack([ids[s + target_shift: s + target_shift + length] for s in starts])
    return inputs, targets


def _as_pair(got: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(got, (tuple, list)) and len(got) != 2 and all(isinstance(p, (tuple, list)) and len(p) == 2
                                                                for p in got):
        raise Wrong(Text("you returned a list of {n} (input, target) pairs: stack them into two tensors, inputs "
                         "(windows, max_length) and targets (windows, max_length)",
                         "你返回的是 {n} 个 (input, target) 对组成的列表：把它们堆叠成两个张量，inputs "
                         "(窗口数, max_length) 和 targets (窗口数, max_length)"), n=len(got))
    expect(isinstance(got, (tuple, list)) and len(got) == 2,
           Text("return two things, (inputs, targets), each a LongTensor of shape (number of windows, max_length); "
                "got {kind}", "返回两个东西 (inputs, targets)，都是形状为 (窗口数, max_length) 的 LongTensor；"
                "实际得到 {kind}"), kind=type(got).__name__)
    try:
        inputs, targets = (torch.as_tensor(part) if not isinstance(part, torch.Tensor) else part for part in got)
    except (TypeError, ValueError, RuntimeError):
        raise Wrong(Text("inputs and targets must be tensors (or lists of equal-length lists of ids)",
                         "inputs 和 targets 必须是张量（或由等长 id 列表组成的列表）")) from None
    return inputs, targets


@exercise("5.1", todo=Text("return (inputs, targets): windows of max_length ids starting every stride ids, and the "
                           "same windows shifted one id to the right",
                           "返回 (inputs, targets)：每隔 stride 个 id 开始一个长为 max_length 的窗口，以及把同一窗口"
                           "向右移一个 id 得到的目标"),
          done=Text("your windows equal gptlib.data.GPTDataset's. The library returns them one at a time as a "
                    "Dataset, and create_dataloader batches them in a seeded order (and shares them out between "
                    "processes under torchrun).",
                    "你的窗口与 gptlib.data.GPTDataset 的完全一致。库里把它们做成 Dataset 逐个返回，"
                    "create_dataloader 按带种子的固定顺序把它们组成批次（在 torchrun 下还会分给各个进程）。"))
def _input_target_pairs(pairs_fn) -> None:
    g = torch.Generator().manual_seed(5)
    # distinct ids, so every mistake gives different numbers; n - max_length is not a multiple of the stride
    for n, length, stride in ((13, 4, 1), (13, 4, 4), (20, 5, 3), (9, 8, 2), (30, 6, 6)):
        ids = torch.randperm(100, generator=g)[:n]
        try:
            got = call(pairs_fn, ids.clone(), length, stride)
        except Wrong as wrong:
            if "stack expects each tensor to be equal size" in str(wrong):
                raise Wrong(Text("windows of different lengths: the last one runs past the end of the ids (a window "
                                 "starting at s needs s + max_length + 1 <= len(ids))",
                                 "窗口长短不一：最后一个窗口超出了 id 的末尾（从 s 开始的窗口需要 "
                                 "s + max_length + 1 <= len(ids)）")) from None
            raise
        inputs, targets = _as_pair(got)
        dataset = GPTDataset(ids, length, stride)
        want_inputs = torch.stack([dataset[i][0] for i in range(len(dataset))])
        want_targets = torch.stack([dataset[i][1] for i in range(len(dataset))])
        if (inputs.shape == want_inputs.shape and targets.shape == want_targets.shape
                and torch.equal(inputs.long(), want_inputs) and torch.equal(targets.long(), want_targets)):
            continue
        _diagnose_windows(inputs, targets, ids, length, stride, len(dataset))
        raise Wrong(Text("with {n} ids, max_length={length}, stride={stride} the windows differ from "
                         "ids[s : s+L] -> ids[s+1 : s+L+1] for s = 0, stride, 2*stride, ... ({count} windows)",
                         "当有 {n} 个 id、max_length={length}、stride={stride} 时，窗口与 ids[s : s+L] -> "
                         "ids[s+1 : s+L+1]（s = 0, stride, 2*stride, ...，共 {count} 个窗口）不一致"),
                    n=n, length=length, stride=stride, count=len(dataset))


def _diagnose_windows(inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor, length: int, stride: int,
                      count: int) -> None:
    """Raise the hint of the usual mistake that produced (inputs, targets), if one did."""
    n = len(ids)
    values = dict(n=n, length=length, stride=stride, count=count, got=len(inputs) if inputs.dim() else 0)

    def same(pair: tuple[torch.Tensor, torch.Tensor]) -> bool:
        return all(a.shape == b.shape and torch.equal(a.long(), b) for a, b in zip((inputs, targets), pair))

    if inputs.dim() != 2 or targets.dim() != 2 or inputs.shape[-1:] != (length,):
        if inputs.dim() == 2 and inputs.shape[-1] == length + 1:
            raise Wrong(Text("windows hold max_length + 1 = {n1} ids: the input is the first max_length ids of a "
                             "window and the target the last max_length", "窗口里有 max_length + 1 = {n1} 个 id："
                             "输入是窗口的前 max_length 个，目标是后 max_length 个"), n1=length + 1)
        raise Wrong(Text("inputs must be (number of windows, max_length) = ({count}, {length}); got {shape}",
                         "inputs 的形状应是 (窗口数, max_length) = ({count}, {length})；实际是 {shape}"),
                    shape=_shape(inputs), **values)
    if inputs.shape == targets.shape and torch.equal(inputs.long(), targets.long()):
        raise Wrong(Text("targets equal the inputs: position t must predict the token after it, so the target "
                         "window is ids[s+1 : s+L+1], shifted one to the right",
                         "目标和输入一样：位置 t 要预测它后面的那个词元，所以目标窗口是 ids[s+1 : s+L+1]，"
                         "向右移一位"), **values)
    starts = range(0, n - length, stride)
    if len(starts) and same(_windows(ids, length, stride, target_shift=0, input_shift=1)):
        raise Wrong(Text("inputs and targets are swapped: the model reads ids[s : s+L] and is asked for the "
                         "next tokens, ids[s+1 : s+L+1]", "输入和目标弄反了：模型读 ids[s : s+L]，"
                         "要预测的是接下来的词元 ids[s+1 : s+L+1]"), **values)
    if n - length - 1 >= 0 and same(_windows(ids, length, stride, range(1, n - length + 1, stride), -1)):
        raise Wrong(Text("targets are the previous tokens (shifted left): the target of position t is the token "
                         "at t + 1, the one the model has not seen yet", "目标是前一个词元（向左移了）："
                         "位置 t 的目标是 t + 1 处、模型还没看到的那个词元"), **values)
    for other in {1, length} - {stride}:
        if same(_windows(ids, length, other)):
            raise Wrong(Text("windows start every {other} ids, not every stride = {stride}: use "
                             "range(0, len(ids) - max_length, stride)", "窗口每隔 {other} 个 id 开始一个，"
                             "而不是每隔 stride = {stride} 个：用 range(0, len(ids) - max_length, stride)"),
                        other=other, **values)
    if len(inputs) == count - 1 and same(_windows(ids, length, stride, range(0, n - length - 1, stride))):
        raise Wrong(Text("the last window is missing ({got} instead of {count}): a window starting at s needs "
                         "s + max_length + 1 <= len(ids), so s runs up to len(ids) - max_length - 1",
                         "少了最后一个窗口（{got} 个而不是 {count} 个）：从 s 开始的窗口需要 s + max_length + 1 <= "
                         "len(ids)，所以 s 最大到 len(ids) - max_length - 1"), **values)
    if len(inputs) > count:
        raise Wrong(Text("{got} windows instead of {count}: the last one's target runs past the end of the ids "
                         "(a window starting at s needs s + max_length + 1 <= len(ids))",
                         "得到 {got} 个窗口而不是 {count} 个：最后一个窗口的目标超出了 id 的末尾"
                         "（从 s 开始的窗口需要 s + max_length + 1 <= len(ids)）"), **values)
    if len(inputs) < count:
        raise Wrong(Text("{got} windows instead of {count}: start one every stride ids, from 0 while "
                         "s + max_length + 1 <= len(ids)", "得到 {got} 个窗口而不是 {count} 个：从 0 开始每隔 "
                         "stride 个 id 开始一个，只要 s + max_length + 1 <= len(ids)"), **values)


# ---------------------------------------------------------------------------- 5.2 cross-entropy by hand
def _loss_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    """The usual wrong cross-entropies of (logits, targets), each with its hint (float64: no overflow here)."""
    x = logits.double()
    b, t, v = x.shape
    log_p = torch.log_softmax(x, dim=-1)
    pick = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)            # (B, T): log p(target)
    p_pick = pick.exp()
    return {
        "sum": (-pick.sum(), Text("the loss is {ratio:.0f}x too large: you summed over the {n} positions; take "
                                  "the mean", "损失是正确值的 {ratio:.0f} 倍：你对 {n} 个位置求了和；应求平均")),
        "mean_over_batch": (-pick.sum(-1).mean(), Text("the loss is T = {t}x too large: summed over the positions "
                                                        "of a sequence, averaged only over the batch; average over "
                                                        "all B*T positions", "损失是正确值的 T = {t} 倍：你在每个"
                                                        "序列内对位置求和，只在批次上求了平均；应对全部 B*T 个位置求平均")),
        "no_log": (-p_pick.mean(), Text("the loss is negative: you averaged -p(target), the probability without "
                                        "the log; the loss is -log p(target)", "损失是负的：你平均的是 -p(target)，"
                                        "也就是没取对数的概率；损失是 -log p(target)")),
        "one_minus_p": ((1 - p_pick).mean(), Text("you averaged 1 - p(target): the loss is -log p(target), which "
                                                   "grows without bound as p(target) -> 0", "你平均的是 1 - p(target)："
                                                   "损失是 -log p(target)，p(target) -> 0 时它会无限增大")),
        "wrong_dim": (-torch.log_softmax(x, dim=1).gather(-1, targets.unsqueeze(-1)).mean(),
                      Text("softmax over the wrong dimension: the probabilities are over the vocabulary, the last "
                           "dimension (dim=-1), not over the positions", "softmax 的维度错了：概率是在词表上，"
                           "也就是最后一维（dim=-1），而不是在位置上")),
        "all_entries": (-log_p.mean(), Text("you averaged -log p over every vocabulary entry: pick each position's "
                                            "target entry (log_probs.gather(-1, targets.unsqueeze(-1)) or "
                                            "indexing with the targets)", "你对词表里每一项的 -log p 求了平均：应"
                                            "只取每个位置目标那一项（log_probs.gather(-1, targets.unsqueeze(-1)) "
                                            "或用 targets 做索引）")),
        "log_logits": (-torch.log(x.gather(-1, targets.unsqueeze(-1)).abs()).mean(),
                       Text("you took the log of the logits: they are scores, not probabilities; softmax first "
                            "(log p = logit - logsumexp(logits))", "你对 logits 取了对数：它们是分数，不是概率；"
                            "要先做 softmax（log p = logit - logsumexp(logits)）")),
        "argmax": (-log_p.max(-1).values.mean(), Text("you used the most likely token's probability: the loss is "
                                                      "about the target's, -log p(target)", "你用的是最可能的词元的"
                                                      "概率：损失看的是目标的概率 -log p(target)")),
    }


@exercise("5.2", todo=Text("return the mean over all B*T positions of -log softmax(logits)[target], as a tensor, for "
                           "logits (B, T, V) and targets (B, T)",
                           "对 logits (B, T, V) 和 targets (B, T)，返回所有 B*T 个位置上 -log softmax(logits)[target] "
                           "的平均值（一个张量）"),
          done=Text("your cross-entropy equals F.cross_entropy, stays finite for logits in the hundreds, and "
                    "gradients flow. The library calls F.cross_entropy(logits.flatten(0, 1), targets.flatten()): "
                    "one fused log_softmax + pick, and its ignore_index=-100 leaves out positions (day 7's loss "
                    "masking).",
                    "你的交叉熵与 F.cross_entropy 一致，logits 到几百时仍是有限值，而且梯度能传回去。库里调用 "
                    "F.cross_entropy(logits.flatten(0, 1), targets.flatten())：log_softmax 和取目标融合成一步，"
                    "它的 ignore_index=-100 可以跳过某些位置（第 7 天的损失掩码）。"))
def _cross_entropy(loss_fn) -> None:
    g = torch.Generator().manual_seed(52)
    for b, t, v, scale, offset in ((2, 3, 5, 2.0, 0.0), (3, 4, 11, 3.0, 0.0), (1, 6, 7, 1.0, -2.0),
                                   (2, 5, 13, 3.0, 100.0)):  # the last: logits near 100, exp(100) overflows float32
        logits = (torch.randn(b, t, v, generator=g) * scale + offset).requires_grad_()
        targets = torch.randint(0, v, (b, t), generator=g)
        got = call(loss_fn, logits, targets.clone())
        expect(isinstance(got, torch.Tensor),
               Text("return a tensor, not a {kind}: training calls backward() on the loss (use .item() only to "
                    "print it)", "要返回张量，而不是 {kind}：训练时要对损失调用 backward()（.item() 只用于打印）"),
               kind=type(got).__name__)
        expect(got.numel() == 1,
               Text("return one number (a 0-dim tensor), the mean over all positions; got shape {shape}",
                    "要返回一个数（0 维张量），即所有位置的平均值；实际形状是 {shape}"), shape=_shape(got))
        expected = F.cross_entropy(logits.detach().flatten(0, 1), targets.flatten())
        value = got.detach().double().reshape(())
        if not bool(torch.isfinite(value)):
            if offset:
                raise Wrong(Text("the loss is {value} for logits near 100: exp(100) overflows float32 (its largest "
                                 "is about 3.4e38, exp(88.7)); subtract each row's largest logit before exp (the "
                                 "softmax does not change), or use torch.log_softmax / torch.logsumexp",
                                 "logits 在 100 左右时损失是 {value}：exp(100) 超出了 float32 的范围（最大约 3.4e38，"
                                 "即 exp(88.7)）；先从每一行减去最大的 logit 再取 exp（softmax 不变），或者用 "
                                 "torch.log_softmax / torch.logsumexp"), value=float(value))
            raise Wrong(Text("the loss is {value}: a log of a negative number or of 0? Take the log of the softmax "
                             "probabilities, not of the logits", "损失是 {value}：对负数或 0 取了对数？应对 softmax "
                             "之后的概率取对数，而不是对 logits"), value=float(value))
        if not close(value, expected.double(), 1e-4):
            for wrong, hint in _loss_mistakes(logits.detach(), targets).values():
                if close(value, wrong, 1e-4):
                    raise Wrong(hint, ratio=b * t, n=b * t, t=t)
            raise Wrong(Text("the loss is {got:.4f}, F.cross_entropy gives {want:.4f} (B={b}, T={t}, V={v})",
                             "损失是 {got:.4f}，F.cross_entropy 给出 {want:.4f}（B={b}, T={t}, V={v}）"),
                        got=float(value), want=float(expected), b=b, t=t, v=v)
        expect(got.requires_grad,
               Text("the loss has no gradient: it was detached (.item(), .detach(), torch.tensor(...) or numpy); "
                    "build it from the logits with torch operations", "损失没有梯度：它被分离了（.item()、.detach()、"
                    "torch.tensor(...) 或 numpy）；要用 torch 运算从 logits 算出它"))
        got.sum().backward()
        want_grad = (torch.softmax(logits.detach(), -1) - F.one_hot(targets, v)) / (b * t)  # d loss / d logits
        expect(logits.grad is not None and close(logits.grad, want_grad, 1e-4),
               Text("the loss's gradient with respect to the logits is not (softmax - one_hot(target)) / (B*T)",
                    "损失对 logits 的梯度不等于 (softmax - one_hot(target)) / (B*T)"))


# ---------------------------------------------------------------------------- 5.3 a training loop
def _tiny_setup(seed: int) -> tuple[GPTModel, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A tiny GPT and four batches of random ids (the same for every call with ``seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPTModel(GPTConfig(vocab_size=23, context_length=8, emb_dim=16, n_heads=2, n_layers=1,
                                   drop_rate=0.0))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 23, (4, 3, 7), generator=g)  # 4 batches of 3 windows of 6 (+1 shifted) ids
    return model, [(batch[:, :-1].clone(), batch[:, 1:].clone()) for batch in ids]


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.0, foreach=False)


def _loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())


def _reference_loop(model: nn.Module, batches: list, mistake: str | None = None) -> list[float]:
    """The loop, or one of the usual wrong loops (``LOOP_MISTAKES``) when ``mistake`` names it."""
    optimizer, losses = _optimizer(model), []
    for inputs, targets in batches:
        loss = _loss(model, inputs, targets)
        losses.append(loss.item())
        if mistake != "no_zero_grad":
            optimizer.zero_grad()
        if mistake != "frozen":
            loss.backward()
        if mistake is None or mistake == "no_zero_grad":
            optimizer.step()
    return losses


LOOP_MISTAKES = {  # a usual mistake -> its hint; _diagnose_loop recognises each by recomputing it
    "no_zero_grad": Text("the losses drift from the reference's from the second step on: gradients accumulate "
                         "(backward() adds to .grad); call optimizer.zero_grad() before each backward()",
                         "从第二步开始损失就偏离了参考值：梯度在累加（backward() 会加到 .grad 上）；每次 backward() "
                         "之前要调用 optimizer.zero_grad()"),
    "frozen": Text("the weights never change: optimizer.step() finds no gradient. Per batch: zero_grad(), then "
                   "loss.backward(), then step(), in that order (without backward, or with zero_grad between "
                   "backward and step, .grad is empty when step runs)",
                   "权重从未改变：optimizer.step() 找不到梯度。每个批次：先 zero_grad()，再 loss.backward()，"
                   "最后 step()，按这个顺序（没有 backward，或者把 zero_grad 放在 backward 和 step 之间，"
                   "step 运行时 .grad 就是空的）"),
}


def _diagnose_loop(losses: list[float], seed: int) -> None:
    """Raise the hint of the usual wrong loop whose losses are ``losses``, if one is."""
    for mistake, hint in LOOP_MISTAKES.items():
        model, batches = _tiny_setup(seed)
        if close(torch.tensor(losses), torch.tensor(_reference_loop(model, batches, mistake)), 1e-4):
            raise Wrong(hint)


def _call_loop(loop_fn: Callable, model: nn.Module, batches: list, optimizer: torch.optim.Optimizer) -> Any:
    """``call``, with the two errors a hand-written loop usually raises turned into their hints."""
    try:
        return call(loop_fn, model, batches, optimizer)
    except Wrong as wrong:
        if "has no attribute 'backward'" in str(wrong):
            raise Wrong(Text("backward() was called on a plain number: loss.item() is a Python float, cut off "
                             "from the graph; call backward() on the loss tensor and use .item() only to record "
                             "it", "对一个普通数字调用了 backward()：loss.item() 是 Python 的 float，已经和计算图"
                             "断开；要对损失张量调用 backward()，.item() 只用来记录损失")) from None
        if "modified by an inplace operation" in str(wrong):
            raise Wrong(Text("optimizer.step() changed the weights between the forward pass and backward(), so "
                             "backward cannot run: step comes after loss.backward()",
                             "optimizer.step() 在前向传播和 backward() 之间改动了权重，backward 因此无法运行："
                             "step 要放在 loss.backward() 之后")) from None
        if "Expected target size" in str(wrong) or "Expected input batch_size" in str(wrong):
            raise Wrong(Text("F.cross_entropy wants logits (N, V) and targets (N,): flatten the (B, T, V) logits "
                             "with .flatten(0, 1) and the (B, T) targets with .flatten()",
                             "F.cross_entropy 需要形状为 (N, V) 的 logits 和 (N,) 的 targets：用 .flatten(0, 1) "
                             "展平 (B, T, V) 的 logits，用 .flatten() 展平 (B, T) 的 targets")) from None
        raise


@exercise("5.3", todo=Text("for each (inputs, targets) in batches: forward, cross-entropy, zero_grad, backward, step; "
                           "return the list of the losses (floats), one per batch",
                           "对 batches 里的每个 (inputs, targets)：前向、交叉熵、zero_grad、backward、step；"
                           "返回损失列表（float），每个批次一个"),
          done=Text("your loop trains exactly like the reference: the same losses and the same weights. "
                    "gptlib.train.train adds a learning-rate warm-up and cosine decay, gradient clipping, a stop "
                    "when the loss is not finite, evaluations, checkpoints and resuming, a time budget, and "
                    "several processes (DDP).",
                    "你的循环与参考实现训练得完全一样：损失相同，权重也相同。gptlib.train.train 在此之上加了学习率"
                    "预热和余弦衰减、梯度裁剪、损失不是有限值时停止、评估、检查点与续训、时间预算，以及多进程（DDP）。"))
def _training_loop(loop_fn) -> None:
    for seed in (53, 7):
        model, batches = _tiny_setup(seed)
        got = _call_loop(loop_fn, model, batches, _optimizer(model))
        try:
            losses = [float(loss) for loss in got]
        except (TypeError, ValueError, RuntimeError):
            raise Wrong(Text("return a list with one loss per batch (numbers, e.g. loss.item()); got {kind}",
                             "要返回一个列表，每个批次一个损失（数字，例如 loss.item()）；实际得到 {kind}"),
                        kind=type(got).__name__) from None
        expect(len(losses) == len(batches),
               Text("{got} losses for {want} batches: one step, and one loss, per batch",
                    "{want} 个批次得到了 {got} 个损失：每个批次一步、一个损失"), got=len(losses), want=len(batches))
        reference_model, reference_batches = _tiny_setup(seed)
        want = _reference_loop(reference_model, reference_batches)
        if close(torch.tensor(losses), torch.tensor(want), 1e-4):
            expect(all(close(p, q, 1e-4) for p, q in zip(model.parameters(), reference_model.parameters())),
                   Text("the losses are right but the final weights are not: the last batch's step is missing. "
                        "Was optimizer.step() called before loss.backward()? Then each step uses the previous "
                        "batch's gradient; step comes after backward",
                        "损失都对，但最终权重不对：少了最后一个批次的 step。是不是在 loss.backward() 之前调用了 "
                        "optimizer.step()？那样每次 step 用的都是上一个批次的梯度；step 要放在 backward 之后"))
            continue
        _diagnose_loop(losses, seed)
        if not close(losses[0], want[0], 1e-4):
            raise Wrong(Text("the first loss is {got:.4f}, but the model's cross-entropy on the first batch is "
                             "{want:.4f}: record the loss of the current batch, computed before the step",
                             "第一个损失是 {got:.4f}，而模型在第一个批次上的交叉熵是 {want:.4f}：应记录当前批次、"
                             "在 step 之前算出的损失"), got=losses[0], want=want[0])
        step = next(i for i, (a, b) in enumerate(zip(losses, want)) if not close(a, b, 1e-4))
        raise Wrong(Text("the losses follow the reference until step {step}, then differ ({got:.4f} vs {want:.4f}): "
                         "one zero_grad, one backward and one step per batch, in that order",
                         "损失从第 {step} 步起与参考不同（你的 {got:.4f}，参考 {want:.4f}）：每个批次一次 "
                         "zero_grad、一次 backward、一次 step，按这个顺序"), step=step + 1, got=losses[step],
                    want=want[step])
