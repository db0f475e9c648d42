"""Honest waits: before a model trains, say how long it will take on this machine; then show progress.

A recipe's step costs the same every step (same model, same batch shape), so timing two
optimizer steps of the recipe's own model, after one warm-up step, predicts the whole run:
``expected_seconds = max_steps * step time * (1 + evaluation share)``. The measurement takes a
second or two on a CPU, which is what a learner about to wait minutes can spare.

In a notebook, ``TrainingWait`` shows that sentence and a progress bar as an ipywidget, displayed
without a text/plain copy: a cell that hides its prints (day 6 loading day 5's model) still shows it,
and nbval, which compares text but never widget views, is not upset by a wait that happens on one run
(no checkpoint yet) and not on the next. Outside a notebook the same goes to stdout, one line per
evaluation. The doctor prints the same estimate for day 5's model (``python -m gptlib doctor``).
"""
from __future__ import annotations

import sys
import time
from typing import Any

import torch

from .model import GPTConfig
from .runtime import seconds_per_call
from .train import TrainConfig, batch_loss, make_scheduler, optimizer_for

__all__ = ["step_seconds", "expected_seconds", "duration", "TrainingWait", "announce_training"]


def step_seconds(cfg: GPTConfig, batch_size: int, device: str | torch.device = "cpu", steps: int = 2,
                 train_cfg: TrainConfig | None = None, window: int | None = None) -> float:
    """Seconds per training step of a fresh ``cfg`` model on ``(batch_size, window)`` ids (``window``: the
    context length unless given), the step as ``train`` takes it with ``train_cfg``: forward, backward,
    gradient clipping, the optimizer ``train`` uses (``optimizer_for``), the schedule, the loss read."""
    device, train_cfg = torch.device(device), train_cfg or TrainConfig()
    model = cfg.build().to(device).train()
    optimizer = optimizer_for(model, train_cfg)
    scheduler = make_scheduler(optimizer, train_cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(cfg.vocab_size, (batch_size, (window or cfg.context_length) + 1), generator=g).to(device)

    def step() -> None:
        loss = batch_loss(model, ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train_cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        float(loss.detach())  # the loop reads the loss every step (NaN guard, logging)

    return seconds_per_call(step, steps, device)


def expected_seconds(recipe: Any, per_step: float) -> float:
    """The whole run of ``recipe`` at ``per_step`` seconds a step, evaluations included.

    An evaluation batch is a forward pass only (about a third of a step); ``eval_batches`` None
    (the whole validation set) is counted as 20 batches.
    """
    train = recipe.train
    evaluations = train.max_steps // train.eval_every + 1
    eval_steps = evaluations * (train.eval_batches or 20) / 3
    return (train.max_steps + eval_steps) * per_step


def duration(seconds: float) -> str:
    """``seconds`` as a learner reads it: "about 40 s", "about 3 min", "about 1 h 10 min"."""
    if seconds < 90:
        return f"about {max(1, round(seconds, -1) if seconds >= 20 else round(seconds)):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")  # a kernel has imported it already; a terminal may not have it at all
    shell = ipython.get_ipython() if ipython else None
    return getattr(shell, "kernel", None) is not None


def show_widget(widget) -> None:
    """Display an ipywidget without its text/plain stand-in (nbval compares that text; the view it skips)."""
    from IPython.display import display

    bundle = widget._repr_mimebundle_()
    display({k: v for k, v in bundle.items() if k != "text/plain"}, raw=True)


class TrainingWait:
    """An announced training run: its sentence, then progress at each evaluation (``on_eval``)."""

    def __init__(self, text: str, total_steps: int) -> None:
        self.total, self.start, self.bar = total_steps, time.perf_counter(), None
        if _in_kernel():
            try:
                import ipywidgets as widgets
            except ImportError:
                widgets = None
            if widgets is not None:
                self.bar = widgets.IntProgress(value=0, max=total_steps)
                self.label = widgets.Label(f"step 0 of {total_steps:,}")
                show_widget(widgets.VBox([widgets.Label(text), widgets.HBox([self.bar, self.label])]))
                return
        print(text, flush=True)

    def on_eval(self, step: int, model: Any = None, history: Any = None) -> None:
        """After each evaluation: move the bar (notebook) or print a line (terminal)."""
        line = f"step {step:,} of {self.total:,}, {time.perf_counter() - self.start:.0f} s so far"
        if self.bar is not None:
            self.bar.value, self.label.value = step, line
        else:
            print(f"  {line}", flush=True)


def announce_training(recipe: Any, device: str | torch.device = "cpu", why: str = "") -> TrainingWait:
    """Measure, then say "training <name>: <why>; about N min on this machine, progress below"."""
    per_step = step_seconds(recipe.model, recipe.batch_size, device, train_cfg=recipe.train)
    seconds = expected_seconds(recipe, per_step)
    reason = f"{why}; " if why else ""
    return TrainingWait(f"training the {recipe.name} model ({reason}{recipe.train.max_steps:,} steps): "
                        f"{duration(seconds)} on this machine ({per_step:.2f} s a step measured just now); "
                        f"progress below", recipe.train.max_steps)
