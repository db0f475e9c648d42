"""Day 5's exercises: the input/target shift of a sliding window, cross-entropy by hand, a training loop,
and the learning-rate schedule (warm-up, then cosine decay; checked against ``gptlib.train.lr_factor``).

Each check recognises the usual mistakes by recomputing the answer with that mistake made on
purpose (``_diagnose_windows``, ``_loss_mistakes``, ``_diagnose_loop``, ``_factor_with``), so its hint names what went
wrong instead of guessing. Checks that draw random numbers do so from their own generators or
inside ``torch.random.fork_rng``: they never move the learner's own random stream.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...data import GPTDataset
from ...model import GPTConfig, GPTModel
from ...train import TrainConfig, lr_factor
from . import Text, Wrong, call, close, exercise, expect, msg


def _shape(value: Any) -> tuple | str:
    """A tensor's shape, or the kind of anything else (a verdict then says "got list", never "got ()")."""
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


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
        raise Wrong(msg("5.1.list_of_pairs"), n=len(got))
    expect(isinstance(got, (tuple, list)) and len(got) == 2,
           msg("5.1.not_pair"), kind=type(got).__name__)
    inputs, targets = got
    expect(isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor), msg("5.1.not_tensors"),
           kinds=f"{type(inputs).__name__}, {type(targets).__name__}")
    return inputs, targets


@exercise("5.1", todo=msg("5.1.todo"), done=msg("5.1.done"))
def _input_target_pairs(pairs_fn) -> None:
    g = torch.Generator().manual_seed(5)
    # distinct ids, so every mistake gives different numbers; n - max_length is not a multiple of the stride
    for n, length, stride in ((13, 4, 1), (13, 4, 4), (20, 5, 3), (9, 8, 2), (30, 6, 6)):
        ids = torch.randperm(100, generator=g)[:n]
        try:
            got = call(pairs_fn, ids.clone(), length, stride)
        except Wrong as wrong:
            if "stack expects each tensor to be equal size" in str(wrong):
                raise Wrong(msg("5.1.ragged")) from None
            raise
        inputs, targets = _as_pair(got)
        dataset = GPTDataset(ids, length, stride)
        want_inputs = torch.stack([dataset[i][0] for i in range(len(dataset))])
        want_targets = torch.stack([dataset[i][1] for i in range(len(dataset))])
        if (inputs.shape == want_inputs.shape and targets.shape == want_targets.shape
                and torch.equal(inputs.long(), want_inputs) and torch.equal(targets.long(), want_targets)):
            expect(inputs.dtype == targets.dtype == torch.long, msg("5.1.not_long"),
                   dtype=str(inputs.dtype if inputs.dtype != torch.long else targets.dtype).removeprefix("torch."))
            continue
        _diagnose_windows(inputs, targets, ids, length, stride, len(dataset))
        raise Wrong(msg("5.1.differs"), n=n, length=length, stride=stride, count=len(dataset))


def _diagnose_windows(inputs: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor, length: int, stride: int,
                      count: int) -> None:
    """Raise the hint of the usual mistake that produced (inputs, targets), if one did."""
    n = len(ids)
    values = dict(n=n, length=length, stride=stride, count=count, got=len(inputs) if inputs.dim() else 0)

    def same(pair: tuple[torch.Tensor, torch.Tensor]) -> bool:
        return all(a.shape == b.shape and torch.equal(a.long(), b) for a, b in zip((inputs, targets), pair))

    if inputs.dim() != 2 or targets.dim() != 2 or inputs.shape[-1:] != (length,):
        if inputs.dim() == 2 and inputs.shape[-1] == length + 1:
            raise Wrong(msg("5.1.window_too_long"), n1=length + 1)
        raise Wrong(msg("5.1.shape"), shape=_shape(inputs), **values)
    if inputs.shape == targets.shape and torch.equal(inputs.long(), targets.long()):
        raise Wrong(msg("5.1.not_shifted"), **values)
    starts = range(0, n - length, stride)
    if len(starts) and same(_windows(ids, length, stride, target_shift=0, input_shift=1)):
        raise Wrong(msg("5.1.swapped"), **values)
    if n - length - 1 >= 0 and same(_windows(ids, length, stride, range(1, n - length + 1, stride), -1)):
        raise Wrong(msg("5.1.shifted_left"), **values)
    for other in {1, length} - {stride}:
        if same(_windows(ids, length, other)):
            raise Wrong(msg("5.1.wrong_stride"), other=other, **values)
    if len(inputs) == count - 1 and same(_windows(ids, length, stride, range(0, n - length - 1, stride))):
        raise Wrong(msg("5.1.last_missing"), **values)
    if len(inputs) > count:
        raise Wrong(msg("5.1.too_many"), **values)
    if len(inputs) < count:
        raise Wrong(msg("5.1.too_few"), **values)


# ---------------------------------------------------------------------------- 5.2 cross-entropy by hand
def _loss_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    """The usual wrong cross-entropies of (logits, targets), each with its hint (float64: no overflow here)."""
    x = logits.double()
    b, t, v = x.shape
    log_p = torch.log_softmax(x, dim=-1)
    pick = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)            # (B, T): log p(target)
    p_pick = pick.exp()
    return {
        "sum": (-pick.sum(), msg("5.2.sum")), "mean_over_batch": (-pick.sum(-1).mean(), msg("5.2.mean_over_batch")),
        "no_log": (-p_pick.mean(), msg("5.2.no_log")), "one_minus_p": ((1 - p_pick).mean(), msg("5.2.one_minus_p")),
        "wrong_dim": (-torch.log_softmax(x, dim=1).gather(-1, targets.unsqueeze(-1)).mean(),
                      msg("5.2.wrong_dim")), "all_entries": (-log_p.mean(), msg("5.2.all_entries")),
        "over_vocab": (-pick.mean() / v, msg("5.2.over_vocab")), "no_minus": (pick.mean(), msg("5.2.no_minus")),
        "log2": (-pick.mean() / math.log(2), msg("5.2.log2")), "log10": (-pick.mean() / math.log(10), msg("5.2.log10")),
        "log_logits": (-torch.log(x.gather(-1, targets.unsqueeze(-1)).abs()).mean(),
                       msg("5.2.log_logits")), "argmax": (-log_p.max(-1).values.mean(), msg("5.2.argmax")), }


@exercise("5.2", todo=msg("5.2.todo"), done=msg("5.2.done"))
def _cross_entropy(loss_fn) -> None:
    g = torch.Generator().manual_seed(52)
    for n, (b, t, v, scale, offset) in enumerate(((2, 3, 5, 2.0, 0.0), (3, 4, 11, 3.0, 0.0), (1, 6, 7, 1.0, -2.0),
                                                  (2, 5, 13, 3.0, 100.0),  # logits near 100: exp(100) overflows float32
                                                  (2, 4, 9, 2.0, 0.0))):  # targets below 7: F.one_hot(targets) is narrow
        logits = (torch.randn(b, t, v, generator=g) * scale + offset).requires_grad_()
        targets = torch.randint(0, v - 2 if n == 4 else v, (b, t), generator=g)
        try:
            got = call(loss_fn, logits, targets.clone())
        except Wrong as wrong:
            if n == 4 and "must match the size" in str(wrong):
                raise Wrong(msg("5.2.one_hot_width"), v=v) from None
            raise
        expect(isinstance(got, torch.Tensor),
               msg("5.2.not_tensor"), kind=type(got).__name__)
        expect(got.numel() == 1,
               msg("5.2.not_scalar"), shape=_shape(got))
        expected = F.cross_entropy(logits.detach().flatten(0, 1), targets.flatten())
        value = got.detach().double().reshape(())
        if not bool(torch.isfinite(value)):
            if offset:
                raise Wrong(msg("5.2.overflow"), value=float(value))
            raise Wrong(msg("5.2.log_of_negative"), value=float(value))
        if not close(value, expected.double(), 1e-4):
            for wrong, hint in _loss_mistakes(logits.detach(), targets).values():
                if close(value, wrong, 1e-4):
                    raise Wrong(hint, ratio=b * t, n=b * t, t=t, v=v)
            raise Wrong(msg("5.2.differs"), got=float(value), want=float(expected), b=b, t=t, v=v)
        expect(got.requires_grad,
               msg("5.2.no_gradient"))
        got.sum().backward()
        want_grad = (torch.softmax(logits.detach(), -1) - F.one_hot(targets, v)) / (b * t)  # d loss / d logits
        expect(logits.grad is not None and close(logits.grad, want_grad, 1e-4),
               msg("5.2.wrong_gradient"))


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


def _loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), reduction=reduction)


def _reference_loop(model: nn.Module, batches: list, mistake: str | None = None) -> list[float]:
    """The loop, or one of the usual wrong loops (``LOOP_MISTAKES``) when ``mistake`` names it."""
    optimizer, losses = _optimizer(model), []
    for inputs, targets in batches[:1] * len(batches) if mistake == "same_batch" else batches:
        loss = _loss(model, inputs, targets, "sum" if mistake == "sum" else "mean")
        losses.append(loss.item())
        if mistake != "no_zero_grad":
            optimizer.zero_grad()
        if mistake != "frozen":
            loss.backward()
        if mistake == "clipped":
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if mistake in (None, "no_zero_grad", "sum", "clipped", "same_batch"):
            optimizer.step()
    return losses


LOOP_MISTAKES = {  # a usual mistake -> its hint; _diagnose_loop recognises each by recomputing it
    "no_zero_grad": msg("5.3.no_zero_grad"), "frozen": msg("5.3.frozen"), "sum": msg("5.3.sum"),
    "clipped": msg("5.3.clipped"), "same_batch": msg("5.3.same_batch"), }


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
            raise Wrong(msg("5.3.backward_on_float")) from None
        if "modified by an inplace operation" in str(wrong):
            raise Wrong(msg("5.3.step_before_backward")) from None
        if "Expected target size" in str(wrong) or "Expected input batch_size" in str(wrong):
            raise Wrong(msg("5.3.flatten")) from None
        raise


@exercise("5.3", todo=msg("5.3.todo"), done=msg("5.3.done"))
def _training_loop(loop_fn) -> None:
    for seed in (53, 7):
        model, batches = _tiny_setup(seed)
        given = _optimizer(model)
        got = _call_loop(loop_fn, model, batches, given)
        expect(model.training, msg("5.3.eval_mode"))
        untouched, _ = _tiny_setup(seed)
        moved = any(not torch.equal(p, q) for p, q in zip(model.parameters(), untouched.parameters()))
        expect(not (moved and not given.state), msg("5.3.own_optimizer"))  # the weights moved, the given one never stepped
        try:
            losses = [float(loss) for loss in got]
        except (TypeError, ValueError, RuntimeError):
            raise Wrong(msg("5.3.not_list"), kind=type(got).__name__) from None
        expect(len(losses) == len(batches),
               msg("5.3.loss_count"), got=len(losses), want=len(batches))
        reference_model, reference_batches = _tiny_setup(seed)
        want = _reference_loop(reference_model, reference_batches)
        if close(torch.tensor(losses), torch.tensor(want), 1e-4):
            expect(all(close(p, q, 1e-4) for p, q in zip(model.parameters(), reference_model.parameters())),
                   msg("5.3.last_step_missing"))
            continue
        _diagnose_loop(losses, seed)
        if not close(losses[0], want[0], 1e-4):
            raise Wrong(msg("5.3.first_loss"), got=losses[0], want=want[0])
        step = next(i for i, (a, b) in enumerate(zip(losses, want)) if not close(a, b, 1e-4))
        raise Wrong(msg("5.3.differs"), step=step + 1, got=losses[step], want=want[step])


# ---------------------------------------------------------------------------- 5.4 the learning-rate schedule
SCHEDULES = ((10, 100, 0.1), (0, 40, 0.0), (3, 20, 0.5))  # (warmup_steps, max_steps, min_lr_ratio)


def _factor_with(step: int, warmup: int, max_steps: int, floor: float, mistake: str) -> float:
    """``lr_factor`` written out with one of ``SCHEDULE_MISTAKES`` made on purpose."""
    if step < warmup and mistake != "no_warmup":
        return (step if mistake == "warmup_from_0" else step + 1) / warmup
    start = 0 if mistake == "progress_from_0" else warmup
    progress = (step - start) / max(1, max_steps - start)
    if mistake != "no_clamp":
        progress = min(1.0, progress)
    shape = {"linear": 1 - progress, "no_half": math.cos(math.pi * progress)}.get(
        mistake, 0.5 * (1 + math.cos(math.pi * progress)))
    if mistake == "no_floor":
        return shape
    if mistake == "floor_added":
        return floor + shape
    return floor + (1 - floor) * shape


SCHEDULE_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing the whole curve
    "warmup_from_0": msg("5.4.warmup_from_0"), "no_warmup": msg("5.4.no_warmup"), "no_floor": msg("5.4.no_floor"),
    "floor_added": msg("5.4.floor_added"), "progress_from_0": msg("5.4.progress_from_0"),
    "no_clamp": msg("5.4.no_clamp"), "linear": msg("5.4.linear"), "no_half": msg("5.4.no_half"), }


@exercise("5.4", todo=msg("5.4.todo"), done=msg("5.4.done"))
def _lr_schedule(factor_fn) -> None:
    curves = {}                                                   # schedule -> [(step, the learner's, the right one)]
    for warmup, max_steps, floor in SCHEDULES:
        cfg = TrainConfig(max_steps=max_steps, warmup_steps=warmup, min_lr_ratio=floor)
        points = []
        for step in range(0, max_steps + 10):                     # past max_steps too: training may run longer
            got = call(factor_fn, step, warmup, max_steps, floor)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            expect(isinstance(got, (int, float)) and not isinstance(got, bool), msg("5.4.not_number"),
                   kind=type(got).__name__)
            points.append((step, float(got), lr_factor(step, cfg)))
        curves[warmup, max_steps, floor] = points
    if all(close(got, right, 1e-6) for points in curves.values() for _, got, right in points):
        return
    for mistake, hint in SCHEDULE_MISTAKES.items():               # the mistake that explains the whole curve
        if all(close(got, _factor_with(step, *key, mistake), 1e-6) for key, points in curves.items()
               for step, got, _ in points):
            raise Wrong(hint)
    (warmup, max_steps, floor), points = next((key, p) for key, p in curves.items()
                                              if any(not close(g, r, 1e-6) for _, g, r in p))
    wrong = [point for point in points if not close(point[1], point[2], 1e-6)]
    step, got, right = next((point for point in wrong if abs(point[1] - point[2]) >= 5e-4), wrong[0])  # shows at 4 digits
    raise Wrong(msg("5.4.differs"), step=step, warmup=warmup, max_steps=max_steps, floor=floor, got=got, right=right)
