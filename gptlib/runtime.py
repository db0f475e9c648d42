"""Where to run and how to make runs repeatable: device choice, seeding, and eval mode."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Iterator

__all__ = ["pick_device", "seed_everything", "evaluating"]


def pick_device(prefer: str | None = None):
    """The best available ``torch.device``: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``GPTLIB_DEVICE``, e.g. ``cpu``) overrides the
    choice, so the same notebook runs on a laptop or a GPU with no other change.
    """
    import torch

    name = prefer or os.environ.get("GPTLIB_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 123) -> None:
    """Seed Python, NumPy (if present) and torch on every device, for repeatable runs."""
    import torch

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


@contextmanager
def evaluating(model) -> Iterator:
    """Inside the block: eval mode (dropout off) and no gradients. Afterwards the model is back in
    the mode it was in, so a helper never silently switches a training run to eval mode."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
