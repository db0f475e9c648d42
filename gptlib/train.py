"""Day 5: the training loop — next-token prediction with AdamW, warm-up + cosine decay and clipping.

The whole loop is ``train`` below and fits on one screen. Each step:

1. take a batch of (input, target) windows and compute the cross-entropy of the model's
   next-token predictions (``batch_loss``);
2. stop at once if that loss is not a finite number (``LossNotFiniteError``): the weights are
   still the last good ones and the last checkpoint is untouched;
3. backpropagate, clip the gradient norm, take an AdamW step, move the learning rate along its
   schedule (linear warm-up, then cosine decay: ``lr_factor``);
4. every ``eval_every`` steps, measure train and validation loss in eval mode (``evaluate``),
   call ``on_eval`` (e.g. to print a sample) and save a checkpoint.

The same function runs under ``torchrun`` with DistributedDataParallel (see
``gptlib.distributed``): each process computes the loss on its share of the batch, DDP
averages the gradients, so every process takes the same step.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "LossNotFiniteError", "train", "batch_loss", "evaluate", "lr_factor",
           "make_optimizer", "make_scheduler", "bits_per_byte"]


@dataclass
class TrainConfig:
    """How to train (the model's shape lives in ``GPTConfig``).

    max_steps: optimizer steps in total (the cosine schedule ends here).
    lr: peak learning rate, reached after ``warmup_steps``; decays to ``lr * min_lr_ratio``.
    weight_decay: AdamW decay on weight matrices and embeddings (not on biases / LayerNorm).
    grad_clip: clip the global gradient norm to this (None: no clipping).
    eval_every: evaluate (and checkpoint) every this many steps, and at the end.
    eval_batches: batches per evaluation (None: the whole validation set).
    checkpoint_path: where to save a checkpoint at each evaluation (None: don't save).
    max_seconds: stop early after this much training time (None: no time limit).
    eval_at_start: also evaluate the untrained model at step 0 (its loss is about ln(vocab_size)).
    progress: show a tqdm progress bar.
    """

    max_steps: int = 1000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    eval_every: int = 100
    eval_batches: int | None = 20
    checkpoint_path: str | None = None
    max_seconds: float | None = None
    eval_at_start: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.warmup_steps, int) or not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"TrainConfig.warmup_steps must be between 0 and max_steps ({self.max_steps}), "
                             f"got {self.warmup_steps!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.eval_batches is not None and self.eval_batches < 1:
            raise ValueError(f"TrainConfig.eval_batches must be >= 1 or None, got {self.eval_batches!r}")
        self.betas = tuple(self.betas)  # a list from JSON/argparse would not compare equal

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class LossNotFiniteError(RuntimeError):
    """Training stopped because the loss became NaN or infinite. ``.history`` holds the losses so far."""

    def __init__(self, message: str, step: int, history: dict, checkpoint_path: str | None):
        super().__init__(message)
        self.step, self.history, self.checkpoint_path = step, history, checkpoint_path


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak lr for optimizer step ``step`` (0-based): linear warm-up, then cosine decay.

    Warm-up: Adam's moment estimates are poor during the first steps, so large steps would be
    noisy; ramping the lr from near 0 avoids an early blow-up. Cosine decay: large steps explore
    early, small steps settle into a minimum at the end.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine


def make_optimizer(model: nn.Module, lr: float, weight_decay: float,
                   betas: tuple[float, float] = (0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on matrices and embeddings only.

    Decay pulls weights towards 0, which regularises the matrices that mix features; biases and
    LayerNorm's scale/shift (the 1-D parameters) only shift or rescale, and decaying them hurts
    (GPT-2 and nanoGPT leave them alone). Frozen parameters (``requires_grad=False``) are left
    out, so finetuning a few layers costs no optimizer memory for the rest.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: unfreeze something before training")
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    def schedule(step: int) -> float:
        return lr_factor(step, cfg)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def batch_loss(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of the next-token predictions: -log p(target), averaged over every position."""
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, max_batches: int | None = None,
             device: torch.device | str | None = None) -> float:
    """Mean loss over (up to ``max_batches``) batches of ``loader``, in eval mode (no dropout).

    Under torchrun the processes' means are averaged, so every process gets the same number.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = torch.zeros((), device=device), 0
    for i, (inputs, targets) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        total += batch_loss(model, inputs.to(device), targets.to(device))
        count += 1
    model.train(was_training)
    if count == 0:
        raise ValueError("the evaluation loader yields no batches (an empty validation split?): "
                         "use more validation text, a smaller batch_size or drop_last=False")
    return float(distributed.all_reduce_mean(total / count))


def bits_per_byte(loss_nats_per_token: float, n_tokens: int, n_bytes: int) -> float:
    """Convert a mean loss in nats per token into bits per byte of UTF-8 text.

    Nats per token depend on the tokenizer (a bigger vocabulary packs more text in a token),
    bits per byte do not, so they compare models with different tokenizers:
    bits/byte = (nats/token) * (tokens/byte) / ln 2, with tokens/byte measured on the same text.
    """
    return loss_nats_per_token * (n_tokens / n_bytes) / math.log(2)


def _batches(loader: DataLoader, start_step: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches, epoch after epoch, beginning where step ``start_step`` of an unbroken run would be."""
    if len(loader) == 0:
        raise ValueError("the training loader yields no batches: use more text or a smaller batch_size")
    epoch, skip = divmod(start_step, len(loader))
    while True:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)  # a new, seeded shuffle each epoch
        for i, batch in enumerate(loader):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def _new_history() -> dict[str, list]:
    return {"step": [], "train_loss": [], "lr": [], "tokens_seen": [],
            "eval_step": [], "eval_train_loss": [], "val_loss": [], "elapsed": []}


def train(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, cfg: TrainConfig, *,
          resume_from: str | Path | None = None, on_eval: Callable[[int, nn.Module, dict], None] | None = None,
          checkpoint_extra: dict | None = None) -> dict[str, list]:
    """Train ``model`` in place and return its history (lists to plot: ``step``/``train_loss``/``lr`` every
    step, ``eval_step``/``eval_train_loss``/``val_loss`` at each evaluation, including step 0).

    ``resume_from``: a checkpoint saved by an earlier run with the same model and ``cfg``; the run
    continues exactly where it stopped (same batches, same random numbers, same history).
    ``on_eval(step, model, history)`` runs after each evaluation and checkpoint (first process only),
    e.g. to print the losses and a sample.
    """
    device = next(model.parameters()).device
    net = distributed.wrap_model(model)  # DistributedDataParallel under torchrun, else the model itself
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)
    scheduler = make_scheduler(optimizer, cfg)
    step, history, start = 0, _new_history(), time.perf_counter()
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from, model, optimizer, scheduler, map_location=device, restore_rng=True)
        step, history = ckpt["step"], ckpt["history"]

    def checkpoint_and_report() -> None:
        history["eval_step"].append(step)
        history["eval_train_loss"].append(evaluate(model, train_loader, cfg.eval_batches, device))
        history["val_loss"].append(evaluate(model, val_loader, cfg.eval_batches, device))
        history["elapsed"].append(time.perf_counter() - start)
        if distributed.is_main_process():
            if cfg.checkpoint_path is not None:
                save_checkpoint(cfg.checkpoint_path, model, optimizer, scheduler, step=step, history=history,
                                train_config=cfg.to_dict(), extra=checkpoint_extra)
            if on_eval is not None:
                on_eval(step, model, history)
        distributed.barrier()

    if step == 0 and cfg.eval_at_start:
        checkpoint_and_report()  # the untrained model's loss: about ln(vocab_size)
    batches = _batches(train_loader, step)
    bar = tqdm(total=cfg.max_steps, initial=step, mininterval=1.0,  # few redraws: light on notebook output
               disable=not cfg.progress or not distributed.is_main_process())
    model.train()
    while step < cfg.max_steps:
        inputs, targets = next(batches)
        loss = batch_loss(net, inputs.to(device), targets.to(device))
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
        mean_loss, out_of_time = distributed.all_reduce_loss_and_flag(loss.detach(), out_of_time)
        if not math.isfinite(mean_loss):
            bar.close()
            raise _not_finite(mean_loss, step, history, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        step += 1
        history["step"].append(step)
        history["train_loss"].append(mean_loss)
        history["tokens_seen"].append((history["tokens_seen"] or [0])[-1] + inputs.numel() * distributed.world_size())
        bar.update(1)
        bar.set_postfix(loss=f"{mean_loss:.3f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps or out_of_time:
            checkpoint_and_report()
        if out_of_time:
            break
    bar.close()
    return history


def _not_finite(loss: float, step: int, history: dict, cfg: TrainConfig) -> LossNotFiniteError:
    path = cfg.checkpoint_path
    kept = (f"the last good checkpoint (step {history['eval_step'][-1]}) is kept at {path}"
            if path is not None and history["eval_step"] else "no checkpoint was written")
    return LossNotFiniteError(
        f"training stopped: the loss became {loss} at step {step + 1}, before the update, so the weights "
        f"are those of step {step}; {kept}. Lower the learning rate (now {cfg.lr}) or "
        f"clip gradients harder, then resume from the checkpoint or start again",
        step, history, path)
