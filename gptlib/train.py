"""Day 5: the training loop — next-token prediction with AdamW, warm-up + cosine decay, clipping.

``train`` is the whole loop and reads top to bottom: take a batch, compute the cross-entropy of
the next-token predictions, backpropagate, stop if the loss is not a finite number, clip, step, move
the learning rate along its schedule, and every ``eval_every`` steps measure train and
validation loss and save a checkpoint. Everything around the loop lives in ``_Run``: building
the optimizer and schedule, resuming where a run stopped, fitting the schedule to a time budget, and the
few calls that let the same loop run on several processes (``gptlib.distributed``).
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
from .checks import fraction, positive_number, whole_number
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .runtime import evaluating

__all__ = ["TrainConfig", "LossNotFiniteError", "train", "batch_loss", "evaluate", "lr_factor",
           "make_optimizer", "optimizer_for", "make_scheduler", "bits_per_byte"]


@dataclass
class TrainConfig:
    """How to train (the model's shape lives in ``GPTConfig``).

    max_steps: optimizer steps; the cosine schedule ends here. With ``time_budget_s`` it is an
        upper bound, and the run fits the schedule to the clock instead (see ``_Run.fit_to_budget``).
    lr: peak learning rate, reached after ``warmup_steps``; decays to ``lr * min_lr_ratio``.
    weight_decay: AdamW decay on weight matrices and embeddings (not on biases / LayerNorm).
    grad_clip: clip the global gradient norm to this (None: no clipping).
    eval_every: evaluate (and checkpoint) every this many steps, and at the end.
    eval_batches: batches per evaluation (None: the whole loader).
    checkpoint_path: where to save a checkpoint at each evaluation (None: don't save).
    time_budget_s: seconds of training (evaluations included); the number of steps is set from
        the step time measured during warm-up, so the schedule ends when the time does.
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
    time_budget_s: float | None = None
    eval_at_start: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        whole_number("TrainConfig.max_steps", self.max_steps)
        whole_number("TrainConfig.eval_every", self.eval_every)
        whole_number("TrainConfig.warmup_steps", self.warmup_steps, minimum=0)
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"TrainConfig.warmup_steps ({self.warmup_steps}) must not exceed max_steps ({self.max_steps})")
        positive_number("TrainConfig.lr", self.lr)
        fraction("TrainConfig.min_lr_ratio", self.min_lr_ratio)
        fraction("TrainConfig.weight_decay", self.weight_decay, high=float("inf"))
        self.betas = tuple(self.betas)  # a list from JSON would not compare equal
        for name in ("grad_clip", "time_budget_s"):
            if getattr(self, name) is not None:
                positive_number(f"TrainConfig.{name}", getattr(self, name))
        if self.eval_batches is not None:
            whole_number("TrainConfig.eval_batches", self.eval_batches)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class LossNotFiniteError(RuntimeError):
    """Training stopped because the loss became NaN or infinite. ``.history`` holds the losses so far."""

    def __init__(self, message: str, step: int, history: dict, checkpoint_path: str | None):
        super().__init__(message)
        self.step, self.history, self.checkpoint_path = step, history, checkpoint_path


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based): linear warm-up, then cosine decay.

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
    out, so finetuning a few layers costs no optimizer memory for the rest. On the CPU and CUDA
    the update runs as one fused kernel over all parameters (``fused=True``: the same maths,
    measured faster than the per-parameter loop in ``benchmarks/train_step.py``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: unfreeze something before training")
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params) or None
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


def optimizer_for(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``train`` uses for ``model``: the model's own when it brings one
    (``model.make_optimizer(cfg)``, the bonus day's Muon), else AdamW (``make_optimizer``)."""
    own = getattr(model, "make_optimizer", None)
    return own(cfg) if own else make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig | Callable[[], TrainConfig]
                   ) -> torch.optim.lr_scheduler.LambdaLR:
    """``lr_factor`` as a scheduler; ``cfg`` may be a function, read at every step (a fitted schedule)."""
    current = cfg if callable(cfg) else (lambda: cfg)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, current()))


def batch_loss(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of the next-token predictions: -log p(target), averaged over every position."""
    logits = model(inputs)                                                 # (B, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def evaluate(model: nn.Module, loader: DataLoader, max_batches: int | None = None) -> float:
    """Mean loss over (up to ``max_batches``) batches of ``loader``, in eval mode (no dropout).

    Under torchrun the processes' means are averaged, so every process gets the same number.
    """
    device = next(model.parameters()).device
    total, count = torch.zeros((), device=device), 0
    with evaluating(model):
        for inputs, targets in loader:
            if max_batches is not None and count >= max_batches:
                break
            total += batch_loss(model, inputs.to(device), targets.to(device))
            count += 1
    if count == 0:
        raise ValueError("an empty validation split (no evaluation batches): add validation text or lower batch_size")
    return float(distributed.all_reduce_mean(total / count))


def bits_per_byte(loss_nats_per_token: float, n_tokens: int, n_bytes: int) -> float:
    """Mean loss in nats per token -> bits per byte of UTF-8 text.

    Nats per token depend on the tokenizer (a bigger vocabulary packs more text into a token),
    bits per byte do not, so they compare models with different tokenizers:
    bits/byte = (nats/token) * (tokens/byte) / ln 2, tokens and bytes counted on the same text.
    """
    return loss_nats_per_token * (n_tokens / n_bytes) / math.log(2)


def train(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, cfg: TrainConfig, *,
          resume_from: str | Path | None = None, on_eval: Callable[[int, nn.Module, dict], None] | None = None,
          checkpoint_extra: dict | None = None) -> dict[str, list]:
    """Train ``model`` in place; return its history (``step``/``train_loss``/``lr`` every step,
    ``eval_step``/``eval_train_loss``/``val_loss``/``elapsed`` at each evaluation, step 0 included).

    ``resume_from``: a checkpoint of an earlier run with the same model and ``cfg``; the run
    continues where it stopped, with the same batches, random numbers, schedule and history: bit for
    bit on the CPU, up to float rounding on a GPU (README, "Determinism on each device").
    ``on_eval(step, model, history)`` runs after each evaluation (first process only).
    """
    run = _Run(model, train_loader, val_loader, cfg, on_eval, checkpoint_extra)
    if resume_from is not None:
        run.resume(resume_from)
    elif cfg.eval_at_start:
        run.evaluate_and_save()  # the untrained model: loss about ln(vocab_size)
    batches = _endless(train_loader, run.step)
    with run.progress_bar() as bar:
        while run.step < run.max_steps:
            inputs, targets = next(batches)
            loss = batch_loss(run.net, inputs.to(run.device), targets.to(run.device))
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # queued first, so a GPU keeps busy while the loss is read
            run.stop_unless_finite(loss)  # before the update: the weights stay those of the last step
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            run.optimizer.step()
            run.scheduler.step()
            run.record_step(inputs.numel(), bar)
            if run.step % cfg.eval_every == 0 or run.step == run.max_steps:
                run.evaluate_and_save()
    return run.history


def _now() -> float:
    """The clock of time budgets and ``history["elapsed"]`` (a function, so tests can replace it)."""
    return time.perf_counter()


def _endless(loader: DataLoader, start_step: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches epoch after epoch, starting where step ``start_step`` of an unbroken run would be."""
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


class _Run:
    """The state around ``train``'s loop: optimizer, schedule, step, history, clock, checkpoints."""

    CALIBRATION_STEPS = 5  # timed steps (after the first, which allocates) that fit a time budget

    def __init__(self, model, train_loader, val_loader, cfg, on_eval, checkpoint_extra) -> None:
        self.model, self.train_loader, self.val_loader, self.cfg = model, train_loader, val_loader, cfg
        self.on_eval, self.checkpoint_extra = on_eval, checkpoint_extra
        self.device = next(model.parameters()).device
        self.net = distributed.wrap_model(model)  # DistributedDataParallel under torchrun, else the model
        self.optimizer = optimizer_for(model, cfg)
        self.schedule = cfg  # the same, with max_steps fitted to the time budget once measured
        self.scheduler = make_scheduler(self.optimizer, lambda: self.schedule)
        self.fitted_steps: int | None = None
        self.step, self.history = 0, {key: [] for key in (
            "step", "train_loss", "lr", "tokens_seen", "eval_step", "eval_train_loss", "val_loss", "elapsed")}
        self.start, self.eval_seconds, self.evals = _now(), 0.0, 0
        self.calibration: tuple[int, float] | None = None  # (step, time) after this process's first step
        self.last_loss = float("nan")

    @property
    def max_steps(self) -> int:
        return self.schedule.max_steps

    def resume(self, path: str | Path) -> None:
        """Load weights, optimizer, schedule, step, history and random states; refuse other settings."""
        ckpt = load_checkpoint(path, self.model, self.optimizer, self.scheduler, restore_rng=True)
        saved = dict(ckpt.get("train_config") or {})
        fitted = saved.pop("schedule_steps", None)
        differ = [f"{k}: checkpoint {saved.get(k)!r}, now {v!r}" for k, v in self.cfg.to_dict().items()
                  if k not in ("progress", "checkpoint_path") and saved.get(k) != v]
        if differ:
            raise CheckpointError(f"cannot resume {Path(path).name}: other settings ({'; '.join(differ)}); use its own")
        if fitted is not None:
            self.fit(fitted)
        self.step, self.history = ckpt["step"], ckpt["history"]
        self.start -= self.history["elapsed"][-1] if self.history["elapsed"] else 0.0

    def fit(self, steps: int) -> None:
        self.fitted_steps = steps
        self.schedule = dataclasses.replace(self.cfg, max_steps=steps)

    def stop_unless_finite(self, loss: Tensor) -> None:
        """Read the loss (averaged over processes); raise ``LossNotFiniteError`` if it is NaN or inf."""
        self.last_loss = distributed.mean_of(loss.detach())
        if not math.isfinite(self.last_loss):
            path, evals = self.cfg.checkpoint_path, self.history["eval_step"]
            kept = (f"the last good checkpoint (step {evals[-1]}) is kept at {path}" if path and evals
                    else "no checkpoint was written")
            raise LossNotFiniteError(
                f"training stopped: the loss became {self.last_loss} at step {self.step + 1}, before the update, "
                f"so the weights are those of step {self.step}; {kept}. Lower the learning rate "
                f"(now {self.cfg.lr}) or clip gradients harder, then start again", self.step, self.history, path)

    def record_step(self, batch_tokens: int, bar) -> None:
        history = self.history
        self.step += 1
        history["step"].append(self.step)
        history["train_loss"].append(self.last_loss)
        history["lr"].append(self.optimizer.param_groups[0]["lr"])
        history["tokens_seen"].append((history["tokens_seen"] or [0])[-1] + batch_tokens * distributed.world_size())
        bar.update(1)
        bar.set_postfix(loss=f"{self.last_loss:.3f}")
        if self.cfg.time_budget_s is not None and self.fitted_steps is None:
            if self.calibration is None:
                self.calibration = (self.step, _now())
            elif self.step - self.calibration[0] == self.CALIBRATION_STEPS:
                self.fit_to_budget(bar)

    def fit_to_budget(self, bar) -> None:
        """Set the number of steps so that training, evaluations included, ends at the time budget.

        Step time: measured over the calibration steps. Evaluation cost: the mean of the
        evaluations so far (the one at step 0), spread over ``eval_every`` steps. Under torchrun
        the first process decides for all. Steps taken before the fit already followed this
        schedule as long as they were warm-up steps (warm-up does not depend on the step count).
        The step count therefore depends on the machine: a time budget trades exact repeatability
        for a schedule that ends on time; recipes that must repeat exactly pin ``max_steps``.
        """
        cfg, now = self.cfg, _now()
        step_s = (now - self.calibration[1]) / self.CALIBRATION_STEPS
        eval_s = self.eval_seconds / self.evals if self.evals else 0.0
        left = cfg.time_budget_s - (now - self.start)
        steps = self.step + max(0, int(left / (step_s + eval_s / cfg.eval_every)))
        self.fit(distributed.broadcast_int(min(max(steps, cfg.warmup_steps, self.step), cfg.max_steps)))
        bar.total = self.max_steps
        bar.refresh()

    def evaluate_and_save(self) -> None:
        """Train and validation loss now (eval mode), a checkpoint, and the caller's ``on_eval``."""
        began = _now()
        history = self.history
        history["eval_step"].append(self.step)
        history["eval_train_loss"].append(evaluate(self.model, self.train_loader, self.cfg.eval_batches))
        history["val_loss"].append(evaluate(self.model, self.val_loader, self.cfg.eval_batches))
        history["elapsed"].append(_now() - self.start)
        if distributed.is_main_process():
            if self.cfg.checkpoint_path is not None:
                save_checkpoint(self.cfg.checkpoint_path, self.model, self.optimizer, self.scheduler,
                                step=self.step, history=history, extra=self.checkpoint_extra,
                                train_config={**self.cfg.to_dict(), "schedule_steps": self.fitted_steps})
            if self.on_eval is not None:
                self.on_eval(self.step, self.model, history)
        distributed.barrier()
        self.eval_seconds += _now() - began
        self.evals += 1

    def progress_bar(self):
        """A tqdm bar that redraws at most once a second (light on notebook output); first process only."""
        self.model.train()
        return tqdm(total=self.max_steps, initial=self.step, mininterval=1.0,
                    disable=not self.cfg.progress or not distributed.is_main_process())
