"""Your training: your GPT trained with your loop (5.3) and your learning-rate schedule (5.4).

``your_pieces(every=EVERY)`` reads your kept answers of days 3 to 5; ``train_with`` trains with your
``train_steps`` and ``lr_multiplier`` where they passed, gptlib's stand-ins (``library_steps``,
``library_multiplier``: the same signatures) elsewhere: one batch at a time, the learning rate set from
the schedule before each step. ``training_line`` says in one line which pieces are whose.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..train import TrainConfig, lr_factor
from .yours import PIECES, pieces_line

TRAINING = ("5.3", "5.4")                       # the training loop, the learning-rate schedule
EVERY = PIECES + TRAINING                       # your GPT's pieces by the end of day 5


def library_steps(model: nn.Module, batches: list, optimizer: torch.optim.Optimizer) -> list[float]:
    """gptlib's answer to 5.3: one optimizer step per (inputs, targets) batch; the losses, as floats."""
    losses = []
    for inputs, targets in batches:                                       # (B, T), (B, T)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def library_multiplier(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """gptlib's answer to 5.4: ``gptlib.train.lr_factor``."""
    return lr_factor(step, TrainConfig(max_steps=max_steps, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio))


STAND_INS = {"5.3": library_steps, "5.4": library_multiplier}


def training_line(pieces: dict[str, Any]) -> str:
    """One line: which of your GPT's pieces (day 3 to day 5's) are yours."""
    return pieces_line(pieces, EVERY)


def train_with(pieces: dict[str, Any], model: nn.Module, batches: list, optimizer: torch.optim.Optimizer,
               warmup_steps: int, min_lr_ratio: float) -> list[float]:
    """Train on ``batches`` (one step each) with your loop (5.3) where kept, else ``library_steps``; the
    learning rate of step i is the optimizer's own times your multiplier (5.4, else ``library_multiplier``)
    of ``(i, warmup_steps, len(batches), min_lr_ratio)``. Returns the losses."""
    steps_fn, multiplier_fn = (pieces.get(ex, STAND_INS[ex]) for ex in TRAINING)
    peaks = [group["lr"] for group in optimizer.param_groups]
    losses: list[float] = []
    try:
        for step, batch in enumerate(batches):
            factor = float(multiplier_fn(step, warmup_steps, len(batches), min_lr_ratio))
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * factor
            losses += [float(loss) for loss in steps_fn(model, [batch], optimizer)]
    finally:
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak
    return losses
