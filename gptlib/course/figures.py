"""The course's pictures, regenerated from gptlib: ``python -m gptlib figures --out figures/``.

Each ``*_figure`` function returns one matplotlib Figure built from library code (never from
copied notebook outputs); ``make_figures`` saves them all. Two kinds:

- diagrams (``DIAGRAM_NAMES``, drawn by ``gptlib.course.diagrams``): the pipeline, query/key/value, the
  Transformer block, the input/target shift. They need no model and draw in seconds;
- model figures (``MODEL_FIGURE_NAMES``, below): drawn from day 5's model (``recipes.day5_model``:
  loaded from its checkpoint, or retrained in about a minute).
"""
from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .diagrams import DIAGRAM_NAMES, DIAGRAMS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODEL_FIGURE_NAMES = ("attention_causal", "loss_curves", "temperature", "finetune_spam")
FIGURE_NAMES = DIAGRAM_NAMES + MODEL_FIGURE_NAMES  # every file `make_figures` writes, as <name>.png
DPI = 110


# --------------------------------------------------------------------------- figures of day 5's model
def attention_figure(model, tokenizer, text: str = "ROMEO:\nWhat say you?", layer: int | None = None,
                     head: int = 0):
    """Scores, causal mask and softmax weights of one head of the trained model."""
    from .attention_explorer import plot_attention_maps
    from .probe import model_attention_maps

    ids = tokenizer.encode(text)
    layer = len(model.trf_blocks) - 1 if layer is None else layer
    maps = model_attention_maps(model, ids, layer, head, causal=True, scale=True,
                                tokens=[tokenizer.decode([i]) for i in ids])
    return plot_attention_maps(maps, title=f"day 5 model, block {layer}, head {head}: causal self-attention")


def loss_figure(history: dict):
    """Day 5's training and validation loss (nats per token) against the step."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(history["step"], history["train_loss"], color="0.65", lw=0.8, label="train (per step)")
    ax.plot(history["eval_step"], history["eval_train_loss"], "o-", label="train (evaluated)")
    ax.plot(history["eval_step"], history["val_loss"], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("Day 5: pretraining on Tiny Shakespeare")  # the same steps on any device
    ax.legend()
    fig.tight_layout()
    return fig


def temperature_figure(model, tokenizer, prompt: str = "ROMEO:\nWhat", temperatures=(0.5, 1.0, 2.0)):
    """The next-token distribution of one prompt at several temperatures (entropy in each title)."""
    import matplotlib.pyplot as plt

    from .sampling_explorer import plot_sampling_view, sampling_view

    fig, axes = plt.subplots(1, len(temperatures), figsize=(5 * len(temperatures), 3.4))
    for ax, t in zip(axes, temperatures):
        view = sampling_view(model, tokenizer, prompt, temperature=t, n_samples=0)
        plot_sampling_view(view, ax=ax)
        ax.set_title(f"T = {t:g}: entropy {view.entropy_before:.2f} bits")  # no cut here: before == after
        ax.get_legend().remove()
    fig.suptitle(f"Day 6: next token after {prompt!r} — low T sharpens, high T flattens")
    fig.tight_layout()
    return fig


def finetune_figure(model, tokenizer, *, max_length: int = 64, seed: int = 123):
    """Day 7 in one picture: spam test accuracy before/after finetuning the last block, and its confusion matrix."""
    import matplotlib.pyplot as plt

    from ..classify import (accuracy, balanced_split, classification_loader, confusion_matrix,
                           plot_confusion_matrix, predict, prepare_classifier, read_sms_spam,
                           train_classifier)

    train_set, _, test_set = balanced_split(read_sms_spam(), seed=seed)
    train_loader = classification_loader(train_set, tokenizer, max_length, shuffle=True, seed=seed)
    test_loader = classification_loader(test_set, tokenizer, max_length)
    torch.manual_seed(seed)
    classifier = prepare_classifier(copy.deepcopy(model), num_classes=2, trainable_blocks=1)
    before = accuracy(classifier, test_loader)
    train_classifier(classifier, train_loader, epochs=2)
    preds, labels = predict(classifier, test_loader)
    after = float((preds == labels).float().mean())

    fig, (bars, matrix) = plt.subplots(1, 2, figsize=(8, 3.4), gridspec_kw={"width_ratios": [1.3, 1]})
    bars.bar(["before", "after"], [before, after], color=["0.7", "tab:blue"])
    for x, value in enumerate((before, after)):
        bars.text(x, value + 0.02, f"{value:.1%}", ha="center")
    bars.set_ylim(0, 1.1)
    bars.set_ylabel("test accuracy (balanced)")
    bars.set_title("SMS spam: finetune last block + head")
    plot_confusion_matrix(confusion_matrix(preds, labels), ax=matrix, title="after finetuning")
    fig.tight_layout()
    return fig


def make_figures(out_dir: str | Path = "figures", checkpoint_dir: str | Path | None = None,
                 device: str | None = None, *, only: Iterable[str] | None = None) -> list[Path]:
    """Draw the figures into ``out_dir`` as ``<name>.png``; returns the paths written, in ``FIGURE_NAMES`` order.

    ``only``: the names to draw (default: all of ``FIGURE_NAMES``). ``only=DIAGRAM_NAMES`` needs no
    model and takes a few seconds; any model figure loads (or first trains) day 5's model.
    PNGs are saved without a "Software" stamp, so the same drawing gives the same bytes.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, works on a server
    import matplotlib.pyplot as plt

    wanted = set(FIGURE_NAMES if only is None else ([only] if isinstance(only, str) else only))
    unknown = sorted(wanted - set(FIGURE_NAMES))
    if unknown:
        raise ValueError(f"unknown figure name(s) {', '.join(unknown)}; choose from {', '.join(FIGURE_NAMES)}")
    out_dir = Path(out_dir)
    try:  # checked before day 5's model is loaded (or trained, for minutes)
        out_dir.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(out_dir, os.W_OK | os.X_OK) else "read-only"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    if problem:
        raise OSError(f"cannot write the figures into {out_dir} ({problem}): choose another folder")
    drawers = dict(DIAGRAMS)
    if wanted & set(MODEL_FIGURE_NAMES):
        drawers.update(_model_drawers(checkpoint_dir, device))
    written = []
    for name in (name for name in FIGURE_NAMES if name in wanted):
        fig = drawers[name]()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


def _model_drawers(checkpoint_dir: str | Path | None, device: str | None) -> dict[str, Callable[[], Figure]]:
    """The drawers of ``MODEL_FIGURE_NAMES``, bound to day 5's model (loaded, or trained first)."""
    from ..checkpoint import load_checkpoint
    from ..recipes import DAY5, day5_model, run_dir
    from ..runtime import seed_everything

    seed_everything(123)
    model, tokenizer = day5_model(device, checkpoint_dir)
    history = load_checkpoint(run_dir(DAY5, checkpoint_dir) / "model.pt")["history"]
    return {
        "attention_causal": lambda: attention_figure(model, tokenizer),
        "loss_curves": lambda: loss_figure(history),
        "temperature": lambda: temperature_figure(model, tokenizer),
        "finetune_spam": lambda: finetune_figure(model, tokenizer),
    }
