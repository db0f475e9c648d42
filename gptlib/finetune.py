"""Day 7: finetuning (微调) — what both finetuning tasks share: freezing, batches and the loop.

Pretraining (day 5) taught a model to continue text. Finetuning takes those weights and
trains them a little more, on a small labelled data set, for one job. Day 7 does two jobs:

- ``gptlib.classify``: *classification finetuning* — swap the vocabulary-sized output head for
  a 2-class head and learn spam vs ham;
- ``gptlib.instruct``: *instruction finetuning* — teach the model to answer Alpaca-style
  prompts, with the prompt and the padding masked out of the loss;

and then ``gptlib.lora`` trains ~1-5% of the parameters (LoRA adapters) instead of whole layers.

Why freeze: the lower layers hold general knowledge of text that a few hundred labelled
examples could only damage, and a frozen parameter needs no gradient and no optimizer state,
so training is faster and lighter. ``freeze``/``unfreeze`` switch ``requires_grad``;
``count_parameters`` shows how much is left to train.

Both tasks then share the plumbing below: a data set of encoded examples, right-padding of
variable-length sequences, a seeded loader, and one loop (``finetune``). The loop is day 5's
``train`` cut down to what finetuning needs — the same optimizer (``make_optimizer``: AdamW,
no decay on biases and LayerNorm), the same NaN error, the same mode policy — with the loss
passed in: last-token cross-entropy for classes, masked next-token cross-entropy for answers.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .checks import positive_number, whole_number
from .runtime import evaluating
from .tokenizer import END_OF_TEXT
from .train import LossNotFiniteError, make_optimizer

__all__ = ["freeze", "unfreeze", "count_parameters", "model_device", "read_utf8", "encode_text", "EncodedDataset",
           "pad_right", "make_loader", "finetune", "mean_loss"]

LossFn = Callable[[nn.Module, tuple], Tensor]  # (model, batch on the model's device) -> scalar loss


# --------------------------------------------------------------------------- what trains
def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients for every parameter of ``module`` (``requires_grad=False``); returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Let every parameter of ``module`` train again (``requires_grad=True``); returns it."""
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters of ``model`` (shared tensors counted once)."""
    trainable = total = 0
    for p in model.parameters():  # parameters() already yields a tensor shared by two modules once
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (where batches must go)."""
    return next(model.parameters()).device


# --------------------------------------------------------------------------- data files
def read_utf8(path: Path) -> str:
    """The text of a data file, which must be UTF-8 (a byte-order mark is dropped).

    Never decoded "with replacement": that would silently turn é or £ of a Latin-1 file into
    U+FFFD and train on damaged text. A file in another encoding is a ValueError naming the line
    and the byte, with the command that converts it."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ValueError(f"{path.name} is not UTF-8 text (line {line} holds the byte {raw[exc.start]:#04x}): convert "
                         f"it, e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}-utf8{path.suffix}") from None


# --------------------------------------------------------------------------- batches
def encode_text(tokenizer, text: str, where: str) -> list[int]:
    """``tokenizer.encode(text)`` for a data set; ``<|endoftext|>`` inside the data is refused, naming ``where``."""
    if END_OF_TEXT in text:
        raise ValueError(f"{where} contains {END_OF_TEXT!r}, the end-of-document token: delete or replace it")
    return tokenizer.encode(text)


class EncodedDataset(Dataset):
    """Examples already turned into token ids: ``items[i]`` is ``(ids, extra)``, where ``extra`` is
    what the task needs besides the ids (a class index, a prompt length). Subclasses encode in
    ``__init__``; encoding once up front keeps every epoch free of tokenizer work."""

    def __init__(self, items: list[tuple[list[int], int]]) -> None:
        if not items:
            raise ValueError("the data set is empty: give at least one example")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.items[i]


def pad_right(sequences: Sequence[Sequence[int]], fill: int) -> Tensor:
    """Stack sequences of different lengths into one ``(B, longest)`` LongTensor, filling the end
    of the shorter rows with ``fill``. Right, not left: with a causal mask a real token never
    attends to what comes after it, so the padding cannot change the real positions' outputs."""
    if not sequences:
        raise ValueError("empty batch: nothing to pad")
    out = torch.full((len(sequences), max(len(s) for s in sequences)), fill, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


def make_loader(dataset: Dataset, collate_fn: Callable, batch_size: int = 16, shuffle: bool = False,
                seed: int = 123) -> DataLoader:
    """A DataLoader whose shuffling is seeded, so every run sees the examples in the same order.

    With ``shuffle=True`` the loader owns its ``torch.Generator`` (``loader.generator``):
    ``loader.generator.manual_seed(s)`` replays that order, e.g. to compare two models fairly.
    """
    whole_number("batch_size", batch_size)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate_fn)


# --------------------------------------------------------------------------- the loop
def _to_device(batch: Iterable, device: torch.device) -> tuple:
    return tuple(t.to(device) if isinstance(t, Tensor) else t for t in batch)


def finetune(model: nn.Module, loader: Iterable, loss_fn: LossFn, *, epochs: int = 1, lr: float = 5e-4,
             weight_decay: float = 0.1, max_steps: int | None = None, grad_clip: float | None = 1.0) -> list[float]:
    """Train the *trainable* parameters of ``model`` for ``epochs`` passes over ``loader`` (or until
    ``max_steps`` steps); return the loss of every step.

    ``loss_fn(model, batch)`` turns one batch, moved to the model's device, into a scalar loss.
    The optimizer is day 5's (``make_optimizer``): AdamW over the parameters left trainable,
    weight decay on matrices only. The model trains in train mode and is handed back in the mode
    it came in. A loss that is not a finite number stops the loop before the update
    (``LossNotFiniteError``), so the weights are still the last good ones.
    """
    whole_number("epochs", epochs)
    if max_steps is not None:
        whole_number("max_steps", max_steps)
    positive_number("lr", lr)
    if grad_clip is not None:
        positive_number("grad_clip", grad_clip)
    optimizer = make_optimizer(model, lr, weight_decay)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    device = model_device(model)
    losses: list[float] = []
    was_training = model.training
    model.train()
    try:
        for _ in range(epochs):
            for batch in loader:
                loss = loss_fn(model, _to_device(batch, device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # queued first, so a GPU keeps busy while the loss is read
                value = loss.item()  # the one device-to-host copy per step, needed for the history anyway
                if not math.isfinite(value):  # before the update: the weights stay those of the last step
                    raise LossNotFiniteError(f"finetuning stopped: the loss became {value} at step {len(losses) + 1}, "
                                             f"before the update; lower the learning rate (now {lr})", len(losses),
                                             {"step": list(range(1, len(losses) + 1)), "train_loss": losses}, None)
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                losses.append(value)
                if len(losses) == max_steps:
                    return losses
    finally:
        model.train(was_training)
    if not losses:
        raise ValueError("the loader yields no batches: nothing to train on")
    return losses


def mean_loss(model: nn.Module, loader: Iterable, loss_fn: LossFn) -> float:
    """Average of ``loss_fn`` over the batches of ``loader``, in eval mode, without gradients."""
    device = model_device(model)
    with evaluating(model):
        values = [loss_fn(model, _to_device(batch, device)).item() for batch in loader]
    if not values:
        raise ValueError("the loader yields no batches: nothing to evaluate")
    return sum(values) / len(values)
