"""Day 7: finetuning (微调) — the small training loop shared by both finetuning tasks.

Pretraining (day 5) taught a model to continue text. Finetuning takes those weights and
trains them a little more, on a small labelled data set, for one job:

- ``gptlib.classify``: *classification finetuning* — swap the vocabulary-sized output head for
  a 2-class head and learn spam vs ham;
- ``gptlib.instruct``: *instruction finetuning* — teach the model to answer Alpaca-style
  prompts, with the prompt and the padding masked out of the loss;
- ``gptlib.lora``: LoRA adapters, which finetune ~1-5% of the parameters instead of all.

Both tasks use the loop below: it differs from day 5's ``train`` only in that the loss is a
function you pass in (last-token cross-entropy for classes, masked next-token cross-entropy
for instructions), and in that it optimises only the parameters left trainable.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn

from .lora import count_parameters, freeze, unfreeze

__all__ = ["train_steps", "mean_loss", "model_device", "freeze", "unfreeze", "count_parameters"]

LossFn = Callable[[nn.Module, tuple], Tensor]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (where batches must go)."""
    return next(model.parameters()).device


def _to_device(batch: Iterable, device: torch.device) -> tuple:
    return tuple(t.to(device) if isinstance(t, Tensor) else t for t in batch)


def train_steps(model: nn.Module, loader: Iterable, loss_fn: LossFn, *, epochs: int = 1,
                lr: float = 5e-4, weight_decay: float = 0.1, max_steps: int | None = None,
                grad_clip: float | None = 1.0) -> list[float]:
    """Train the *trainable* parameters of ``model`` with AdamW; return the loss of every step.

    ``loss_fn(model, batch) -> scalar loss`` turns one batch from ``loader`` into a loss (the
    batch is moved to the model's device first). Frozen parameters (``requires_grad=False``)
    are left out of the optimiser, so they cost no optimiser memory and never change.
    Runs ``epochs`` passes over ``loader``, or stops after ``max_steps`` steps. The model is
    left in eval mode (dropout off) afterwards.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: unfreeze something (e.g. the head) before training")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    device = model_device(model)
    losses: list[float] = []
    model.train()
    try:
        for _ in range(epochs):
            for batch in loader:
                loss = loss_fn(model, _to_device(batch, device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {len(losses)}; lower lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                losses.append(loss.item())
                if max_steps is not None and len(losses) >= max_steps:
                    return losses
    finally:
        model.eval()
    return losses


@torch.no_grad()
def mean_loss(model: nn.Module, loader: Iterable, loss_fn: LossFn) -> float:
    """Average of ``loss_fn`` over the batches of ``loader``, in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        values = [loss_fn(model, _to_device(batch, device)).item() for batch in loader]
    finally:
        model.train(was_training)
    if not values:
        raise ValueError("the loader is empty: nothing to evaluate")
    return sum(values) / len(values)
