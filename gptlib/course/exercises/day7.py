"""Day 7's exercises: a LoRA linear layer, the class scores at each message's last real token, and the
shifted, masked targets of instruction finetuning.

Each check recognises the usual mistakes by recomputing the answer with that mistake made on purpose
(``_lora_scale_mistakes``, ``_last_token_mistakes``, ``_target_mistakes``), so its hint names what went
wrong instead of guessing. Checks that draw random numbers do so inside ``torch.random.fork_rng``: they
never move the learner's own random stream.
"""
from __future__ import annotations

import torch
from torch import nn

from ...classify import class_logits
from ...instruct import IGNORE_INDEX, collate_instructions
from . import NotDone, Text, Wrong, call, close, exercise, expect


def _shape(t) -> tuple:
    return tuple(getattr(t, "shape", ()))


# ---------------------------------------------------------------------------- 7.1 a LoRA linear layer
@exercise("7.1", todo=Text("complete LinearWithLoRA: keep base frozen, make A (rank, d_in) random and B (d_out, rank) "
                           "zero, and return base(x) + (alpha / rank) * x @ A.T @ B.T",
                           "补全 LinearWithLoRA：冻结 base，创建随机的 A (rank, d_in) 和全零的 B (d_out, rank)，"
                           "返回 base(x) + (alpha / rank) * x @ A.T @ B.T"),
          done=Text("your LoRA layer equals W x + (alpha/r) B A x, starts exactly as the base layer and trains only "
                    "r(d_in + d_out) numbers. gptlib's LoRALinear adds Kaiming-uniform A drawn on the CPU (the same "
                    "adapter on every device), argument checks, and merged(), which folds B A into W for inference.",
                    "你的 LoRA 层等于 W x + (alpha/r) B A x，初始时与 base 层完全相同，只训练 r(d_in + d_out) 个数。"
                    "gptlib 的 LoRALinear 还多了：在 CPU 上按 Kaiming-uniform 抽取 A（任何设备上都是同一个适配器）、"
                    "参数检查，以及推理前把 B A 并入 W 的 merged()。"))
def _lora_linear(lora_cls) -> None:
    # d_in, d_out and rank all differ, so A and B are told apart by their shapes; alpha / rank, rank / alpha,
    # alpha and 1 all differ, so each wrong scale is recognised
    for d_in, d_out, rank, alpha in ((6, 4, 2, 8.0), (10, 7, 3, 1.5), (16, 12, 4, 16.0)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(d_in)
            _check_lora(lora_cls, d_in, d_out, rank, alpha)


def _check_lora(lora_cls, d_in: int, d_out: int, rank: int, alpha: float) -> None:
    base = nn.Linear(d_in, d_out)
    original = base.weight.detach().clone(), base.bias.detach().clone()
    layer = call(lora_cls, base, rank, alpha)
    expect(isinstance(layer, nn.Module), Text("LinearWithLoRA must subclass nn.Module", "LinearWithLoRA 必须继承 nn.Module"))
    params = dict(layer.named_parameters())
    if not params:  # the untouched stub keeps nothing
        raise NotDone
    x = torch.randn(3, d_in)
    with torch.no_grad():
        expected_at_init = base(x)
    trainable = {name: p for name, p in params.items() if p.requires_grad}
    base_params = [p for p in params.values() if p.shape in ((d_out, d_in), (d_out,))]
    if any(p.requires_grad for p in base_params) or base.weight.requires_grad or base.bias.requires_grad:
        raise Wrong(Text("the base layer still trains (its weight has requires_grad=True): freeze it "
                         "(requires_grad_(False)), or the optimiser updates all {n} of its weights and LoRA saves nothing",
                         "base 层仍在训练（它的权重 requires_grad=True）：把它冻结（requires_grad_(False)），"
                         "否则优化器会更新它全部 {n} 个权重，LoRA 就什么也没省下"), n=d_out * d_in)
    a = [p for p in trainable.values() if p.shape in ((rank, d_in), (d_in, rank))]
    b = [p for p in trainable.values() if p.shape in ((d_out, rank), (rank, d_out))]
    expect(len(a) == 1 and len(b) == 1 and len(trainable) == 2,
           Text("with d_in={d_in}, d_out={d_out}, rank={rank} the trainable parameters must be A ({rank}, {d_in}) and "
                "B ({d_out}, {rank}), made with nn.Parameter so that the optimiser sees them; yours: {found}",
                "当 d_in={d_in}、d_out={d_out}、rank={rank} 时，可训练参数应是 A ({rank}, {d_in}) 和 B ({d_out}, {rank})，"
                "要用 nn.Parameter 创建，优化器才看得到；你的是：{found}"),
           d_in=d_in, d_out=d_out, rank=rank,
           found=", ".join(f"{n} {tuple(p.shape)}" for n, p in trainable.items()) or "none")
    a, b = a[0], b[0]
    got = call(layer, x)
    expect(isinstance(got, torch.Tensor) and got.shape == (3, d_out),
           Text("forward must map (N, d_in) to (N, d_out) = {want}, got {shape}",
                "forward 应把 (N, d_in) 变成 (N, d_out) = {want}，实际是 {shape}"),
           want=(3, d_out), shape=_shape(got))
    if not close(got, expected_at_init):
        if bool((b != 0).any()):
            raise Wrong(Text("at initialisation your layer's output differs from the base layer's by up to {err:.3g}: "
                             "B must start at zero, so that B A = 0 and the adapted model starts exactly as the "
                             "pretrained one (A random, B zero; not both random)",
                             "初始化时你的层的输出与 base 层最多相差 {err:.3g}：B 必须从零开始，这样 B A = 0，"
                             "适配后的模型一开始与预训练模型完全相同（A 随机、B 为零；不要两个都随机）"),
                        err=float((got - expected_at_init).detach().abs().max()))
        raise Wrong(Text("at initialisation (B = 0) your layer must return base(x); it differs by up to {err:.3g}: "
                         "is the base layer's output (bias included) added?",
                         "初始化时（B = 0）你的层应返回 base(x)；实际最多相差 {err:.3g}：加上 base 层的输出（含偏置）了吗？"),
                    err=float((got - expected_at_init).detach().abs().max()))
    if not bool((a != 0).any()):
        raise Wrong(Text("A is all zeros: with A = 0 and B = 0 neither gets a gradient (B's is proportional to A x, A's "
                         "to B), so training can never start; draw A at random, keep B at zero",
                         "A 全是零：A = 0 且 B = 0 时两者都得不到梯度（B 的梯度正比于 A x，A 的梯度正比于 B），"
                         "训练永远无法开始；A 要随机初始化，B 保持为零"))
    # training has moved B: now the scale shows
    with torch.no_grad():
        b.copy_(torch.randn(b.shape))
    a_mat = a if a.shape == (rank, d_in) else a.T
    b_mat = b if b.shape == (d_out, rank) else b.T
    x = torch.randn(2, 5, d_in, requires_grad=True)  # a batch of sequences, as inside a Transformer block
    got = call(layer, x)
    expect(isinstance(got, torch.Tensor) and got.shape == (2, 5, d_out),
           Text("forward must keep the leading dimensions: (B, T, d_in) -> (B, T, d_out) = {want}, got {shape}",
                "forward 应保留前面的维度：(B, T, d_in) -> (B, T, d_out) = {want}，实际是 {shape}"),
           want=(2, 5, d_out), shape=_shape(got))
    with torch.no_grad():
        plain, update = base(x), x @ a_mat.T @ b_mat.T
    if not close(got, plain + alpha / rank * update, 1e-4):
        for scale, hint in _lora_scale_mistakes(rank, alpha):
            if close(got, plain + scale * update, 1e-4):
                raise Wrong(hint, rank=rank, alpha=alpha, want=alpha / rank)
        if close(got, plain, 1e-4):
            raise Wrong(Text("once B is no longer zero your output is still base(x): the update (alpha/rank) x A^T B^T "
                             "is never added", "B 不再为零后你的输出仍是 base(x)：从没有加上更新 (alpha/rank) x A^T B^T"))
        raise Wrong(Text("once B is no longer zero your output differs from base(x) + (alpha/rank) x A^T B^T by up to "
                         "{err:.3g}", "B 不再为零后你的输出与 base(x) + (alpha/rank) x A^T B^T 最多相差 {err:.3g}"),
                    err=float((got - plain - alpha / rank * update).detach().abs().max()))
    got.square().sum().backward()
    expect(a.grad is not None and b.grad is not None and bool(a.grad.abs().sum() > 0) and bool(b.grad.abs().sum() > 0),
           Text("no gradient reaches A and B: is something detached or computed under torch.no_grad()?",
                "梯度没有传到 A 和 B：是否 detach 了，或在 torch.no_grad() 下计算？"))
    expect(base.weight.grad is None and torch.equal(base.weight.detach(), original[0])
           and torch.equal(base.bias.detach(), original[1]),
           Text("the base layer was changed or got a gradient: LoRA keeps W exactly as pretrained",
                "base 层被改动了或得到了梯度：LoRA 要让 W 保持预训练时的样子"))


def _lora_scale_mistakes(rank: int, alpha: float) -> list[tuple[float, Text]]:
    """The usual wrong scales of the low-rank update, each with its hint."""
    return [
        (1.0, Text("the update B A x is not scaled: multiply it by alpha / rank = {want:g}",
                   "更新 B A x 没有乘缩放系数：应乘以 alpha / rank = {want:g}")),
        (rank / alpha, Text("the update is scaled by rank / alpha = {rank}/{alpha:g}; the scale is alpha / rank = {want:g}",
                            "更新乘的是 rank / alpha = {rank}/{alpha:g}；缩放系数应是 alpha / rank = {want:g}")),
        (alpha, Text("the update is scaled by alpha = {alpha:g}: divide by the rank too (alpha / rank = {want:g}), "
                     "so its size does not change when you pick another rank",
                     "更新只乘了 alpha = {alpha:g}：还要除以秩（alpha / rank = {want:g}），这样换一个秩时更新的大小不变")),
    ]


# ---------------------------------------------------------------------------- 7.2 the last real token
class _Fixed(nn.Module):
    """A stand-in model that returns the same logits whatever it is given (to run the library's class_logits)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.logits


def _last_token_mistakes(logits: torch.Tensor, lengths: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    rows, t = torch.arange(logits.shape[0]), logits.shape[1]
    mistakes = {
        "last": (logits[:, -1], Text("you read position -1, the batch's last position: for every message shorter than "
                                     "the batch that is padding; read position lengths - 1 of each row",
                                     "你读的是位置 -1，即整批的最后一个位置：比这批最长的短的消息，那里是填充；"
                                     "应读每一行的位置 lengths - 1")),
        "first": (logits[:, 0], Text("you read position 0: with the causal mask the first token has seen only itself; "
                                     "the last real token (lengths - 1) is the only one that has seen the whole message",
                                     "你读的是位置 0：因果掩码下第一个词元只看到了它自己；只有最后一个真实词元"
                                     "（lengths - 1）看到了整条消息")),
        "two": (logits[rows, lengths - 2],  # a length-1 row reads position -1, as the learner's code would
                Text("you read position lengths - 2, the token before the last: the last real token is at lengths - 1",
                     "你读的是位置 lengths - 2，倒数第二个词元：最后一个真实词元在 lengths - 1")),
        "mean": (logits.mean(dim=1), Text("you averaged over every position, padding included: read the one position "
                                          "that has seen the whole message, lengths - 1",
                                          "你对所有位置（连同填充）取了平均：应只读看到了整条消息的那个位置 lengths - 1")),
    }
    if bool((lengths < t).all()):  # with a full-length row, reading position lengths fails instead
        mistakes["length"] = (logits[rows, lengths], Text(
            "you read position lengths: one past the end, the first padding token; positions count from 0, so the "
            "last real token is at lengths - 1",
            "你读的是位置 lengths：越过了末尾一格，是第一个填充词元；位置从 0 开始数，最后一个真实词元在 lengths - 1"))
    return mistakes


@exercise("7.2", todo=Text("return the (B, C) class scores of each row of logits (B, T, C) at its last real token, "
                           "position lengths[b] - 1", "返回 logits (B, T, C) 每一行在最后一个真实词元（位置 "
                           "lengths[b] - 1）处的 (B, C) 类别分数"),
          done=Text("you read each message at its last real token, the only position that has attended to the whole "
                    "message, and gradients flow back to exactly those positions. The library's class_logits runs the "
                    "model and reads the same positions, on the model's device.",
                    "你在每条消息的最后一个真实词元处读取分数，只有这个位置注意到了整条消息，梯度也只流回这些位置。"
                    "库里的 class_logits 运行模型后在模型所在设备上读取同样的位置。"))
def _last_token(read_fn) -> None:
    # the first case has no full-length row, so "lengths" (one too far) reads padding instead of failing
    for lengths, t, c in (([3, 5, 1, 6], 7, 2), ([4, 9, 2], 9, 3), ([1], 1, 2)):
        g = torch.Generator().manual_seed(t * c)
        logits = torch.randn(len(lengths), t, c, generator=g, requires_grad=True)
        n = torch.tensor(lengths)
        got = call(read_fn, logits, n.clone())
        expected = class_logits(_Fixed(logits.detach()), torch.zeros(len(lengths), t, dtype=torch.long), n)
        b = len(lengths)
        if isinstance(got, torch.Tensor) and got.shape == (b, b, c) and b > 1:
            raise Wrong(Text("your result is (B, B, C) = {shape}: logits[:, lengths - 1] reads every message at every "
                             "message's position; pair each row with its own position: "
                             "logits[torch.arange(B), lengths - 1]",
                             "你的结果是 (B, B, C) = {shape}：logits[:, lengths - 1] 在每条消息的位置上读取了每一条消息；"
                             "要让每一行配它自己的位置：logits[torch.arange(B), lengths - 1]"), shape=_shape(got))
        expect(isinstance(got, torch.Tensor) and got.shape == (b, c),
               Text("return one row of C = {c} class scores per message: shape (B, C) = {want}, got {shape}",
                    "每条消息返回一行 C = {c} 个类别分数：形状 (B, C) = {want}，实际是 {shape}"),
               c=c, want=(b, c), shape=_shape(got))
        if not close(got, expected):
            for name, (wrong, hint) in _last_token_mistakes(logits.detach(), n).items():
                if close(got, wrong):
                    raise Wrong(hint)
            raise Wrong(Text("class scores differ from logits[b, lengths[b] - 1] by up to {err:.3g}",
                             "类别分数与 logits[b, lengths[b] - 1] 最多相差 {err:.3g}"),
                        err=float((got - expected).detach().abs().max()))
        expect(got.requires_grad and got.grad_fn is not None,
               Text("no gradient flows back to the logits: pick the rows by indexing or torch.stack, not "
                    "torch.tensor(...), .tolist() or .detach()",
                    "梯度无法流回 logits：用索引或 torch.stack 取出这些行，不要用 torch.tensor(...)、.tolist() 或 .detach()"))
        got.sum().backward()
        reached = (logits.grad.abs().sum(-1) > 0).nonzero().tolist()
        expect(reached == [[row, length - 1] for row, length in enumerate(lengths)],
               Text("gradients reach positions {got}; they must reach exactly each row's last real token",
                    "梯度到达的位置是 {got}；应恰好是每一行的最后一个真实词元"), got=reached)


# ---------------------------------------------------------------------------- 7.3 masked targets
def _records(lengths_and_prompts, end: int, seed: int) -> list[tuple[list[int], int]]:
    """(ids, prompt length) records: prompt + answer + [end], the layout of InstructionDataset."""
    g = torch.Generator().manual_seed(seed)
    records = []
    for length, prompt in lengths_and_prompts:
        ids = torch.randint(1, end, (length - 1,), generator=g).tolist() + [end]  # the end id occurs once, at the end
        records.append((ids, prompt))
    return records


def _target_mistakes(batch, pad_id: int, end: int) -> dict[str, tuple[torch.Tensor, torch.Tensor, Text]]:
    """The usual wrong (inputs, targets) of a batch, each with its hint (``{pad}``: the pad id)."""
    ref_inputs, ref_targets = collate_instructions(batch, pad_id)

    def shifted_mask(row_mask) -> torch.Tensor:  # the reference targets with another prompt mask per row
        targets = collate_instructions(batch, pad_id, mask_prompt=False)[1]
        for row, (_, prompt) in enumerate(batch):
            targets[row, :row_mask(prompt)] = IGNORE_INDEX
        return targets

    return {
        "padding": (ref_inputs, collate_instructions(batch, pad_id, mask_padding=False)[1], Text(
            "the loss counts padding positions: after each record's end token the targets hold pad_id ({pad}) "
            "instead of -100, so a record's loss depends on what it is batched with",
            "损失把填充位置也算进去了：每条记录的结束词元之后，目标里是 pad_id（{pad}）而不是 -100，"
            "这样一条记录的损失会取决于它和谁分在一批")),
        "prompt": (ref_inputs, collate_instructions(batch, pad_id, mask_prompt=False)[1], Text(
            "the prompt is not masked: the targets that predict prompt tokens must be -100 too "
            "(targets[:prompt_len - 1]), or the template, which is given, dominates the loss",
            "提示没有被遮住：预测提示词元的那些目标也要是 -100（targets[:prompt_len - 1]），否则给定的模板会主导损失")),
        "neither": (ref_inputs, collate_instructions(batch, pad_id, mask_prompt=False, mask_padding=False)[1], Text(
            "nothing is masked: these are plain next-token targets. Write -100 on the padding (after each record's "
            "end token) and on the prompt (targets[:prompt_len - 1]): only the answer and its end token count",
            "什么都没有遮：这只是普通的下一个词元目标。在填充（每条记录的结束词元之后）和提示（targets[:prompt_len - 1]）"
            "处写 -100：只有答案和它的结束词元计入损失")),
        "prompt_plus_one": (ref_inputs, shifted_mask(lambda prompt: prompt), Text(
            "the first answer token is masked: targets[j] is token j + 1, so the prompt's tokens 1..prompt_len - 1 sit "
            "at targets[0 .. prompt_len - 2]; mask targets[:prompt_len - 1], not targets[:prompt_len]",
            "答案的第一个词元被遮住了：targets[j] 是第 j + 1 个词元，所以提示的词元 1..prompt_len - 1 位于 "
            "targets[0 .. prompt_len - 2]；应遮 targets[:prompt_len - 1]，而不是 targets[:prompt_len]")),
        "prompt_minus_one": (ref_inputs, shifted_mask(lambda prompt: prompt - 2), Text(
            "the last prompt token is counted: targets[j] is token j + 1, so mask targets[:prompt_len - 1] (every "
            "prompt token after the first), not targets[:prompt_len - 2]",
            "提示的最后一个词元被算进去了：targets[j] 是第 j + 1 个词元，应遮 targets[:prompt_len - 1]"
            "（提示第一个之后的所有词元），而不是 targets[:prompt_len - 2]")),
        "end": (ref_inputs, ref_targets.masked_fill(ref_targets == end, IGNORE_INDEX), Text(
            "the end token is masked: the model never learns to stop answering. Padding with the end token and then "
            "masking every target equal to pad_id hides the real one too; mask by position (after each record's "
            "length), not by value",
            "结束词元被遮住了：模型永远学不会在回答完后停下。用结束词元填充、再把所有等于 pad_id 的目标都遮住，"
            "会把真正的那个结束词元也遮掉；应按位置（每条记录长度之后）遮，而不是按数值遮")),
    }


NOT_SHIFTED = Text("the targets are not shifted: target j must be the token after input j (inputs = ids[:-1], "
                   "targets = ids[1:]); as written, the model would learn to copy its input",
                   "目标没有错开一位：第 j 个目标应是第 j 个输入之后的那个词元（inputs = ids[:-1]，targets = ids[1:]）；"
                   "照现在这样，模型学到的是照抄输入")


@exercise("7.3", todo=Text("return (inputs, targets), both (B, longest - 1): inputs = ids[:-1] padded with pad_id; "
                           "targets = ids[1:] padded with -100, with -100 also on the prompt (targets[:prompt_len - 1])",
                           "返回 (inputs, targets)，形状都是 (B, longest - 1)：inputs = ids[:-1]，用 pad_id 填充；"
                           "targets = ids[1:]，用 -100 填充，提示部分（targets[:prompt_len - 1]）也写 -100"),
          done=Text("your targets count exactly the answer and its end token, whatever the batch. The library's "
                    "collate_instructions does the same, with switches (mask_prompt, mask_padding) that the notebook "
                    "uses to measure what each mask changes.",
                    "你的目标恰好只计入答案和它的结束词元，无论怎样分批。库里的 collate_instructions 做的是同一件事，"
                    "还带有开关（mask_prompt、mask_padding），笔记本用它们测量每个掩码改变了什么。"))
def _instruction_targets(collate_fn) -> None:
    end = 50
    cases = (  # (record length, prompt length) per record; pad = the end token (as gptlib does), then another id
        ([(9, 5), (6, 4), (12, 6)], end),
        ([(7, 6), (11, 3)], 0),
        ([(5, 4)], end),
    )
    for i, (shape, pad_id) in enumerate(cases):
        batch = _records(shape, end, seed=i)
        got = call(collate_fn, [(list(ids), p) for ids, p in batch], pad_id)
        expect(isinstance(got, (tuple, list)) and len(got) == 2,
               Text("return a pair (inputs, targets)", "应返回一对 (inputs, targets)"))
        inputs, targets = got
        want = (len(batch), max(len(ids) for ids, _ in batch) - 1)
        expect(isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)
               and inputs.shape == want and targets.shape == want,
               Text("inputs and targets must both be (B, longest - 1) = {want} tensors (the model sees ids[:-1]); got "
                    "{a} and {b}", "inputs 和 targets 都应是 (B, longest - 1) = {want} 的张量（模型看到的是 ids[:-1]）；"
                    "实际是 {a} 和 {b}"), want=want, a=_shape(inputs), b=_shape(targets))
        expect(not inputs.is_floating_point() and not targets.is_floating_point(),
               Text("inputs and targets must be integer (long) tensors: they are token ids, and cross_entropy takes "
                    "class indices", "inputs 和 targets 应是整数（long）张量：它们是词元 id，cross_entropy 要的是类别下标"))
        ref_inputs, ref_targets = collate_instructions(batch, pad_id)
        if torch.equal(inputs, ref_inputs) and torch.equal(targets, ref_targets):
            continue
        if bool((inputs == IGNORE_INDEX).any()):
            raise Wrong(Text("the inputs hold -100: -100 belongs in the targets only; the inputs are token ids for the "
                             "embedding, padded with pad_id", "inputs 里有 -100：-100 只该出现在 targets 里；"
                             "inputs 是送进嵌入层的词元 id，用 pad_id 填充"))
        for wrong_inputs, wrong_targets, hint in _target_mistakes(batch, pad_id, end).values():
            if torch.equal(inputs, wrong_inputs) and torch.equal(targets, wrong_targets):
                raise Wrong(hint, pad=pad_id)
        counted = (targets != IGNORE_INDEX) & (inputs != pad_id)
        if bool(counted.any()) and torch.equal(targets[counted], inputs[counted]):
            raise Wrong(NOT_SHIFTED)
        if not torch.equal(inputs, ref_inputs):
            raise Wrong(Text("the inputs must be each record's ids[:-1], right-padded with pad_id ({pad})",
                             "inputs 应是每条记录的 ids[:-1]，在右边用 pad_id（{pad}）填充"), pad=pad_id)
        counted, want_counted = int((targets != IGNORE_INDEX).sum()), int((ref_targets != IGNORE_INDEX).sum())
        raise Wrong(Text("{counted} targets count, {want} should: only the answer's tokens and the end token (the "
                         "prompt and the padding are -100), each the token after its input",
                         "有 {counted} 个目标被计入，应为 {want} 个：只有答案的词元和结束词元（提示和填充都是 -100），"
                         "且每个目标都是其输入的下一个词元"), counted=counted, want=want_counted)
