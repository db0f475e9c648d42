"""Where to run and how to make runs repeatable: device choice, seeding, and eval mode."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["pick_device", "seed_everything", "evaluating", "rng_state", "set_rng_state"]


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


def rng_state() -> dict[str, Any]:
    """Every random state a training run draws from, as tensors and lists (loadable with weights_only)."""
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(_flatten_python_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        name, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = {"keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    except ImportError:
        pass
    return state


def _flatten_python_state() -> list[int]:
    version, internal, gauss = random.getstate()
    return [version, *internal] + ([] if gauss is None else [gauss])


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states saved by ``rng_state``."""
    import torch

    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    py = state["python"]
    random.setstate((py[0], tuple(py[1:626]), py[626] if len(py) > 626 else None))
    if "numpy" in state:
        try:
            import numpy as np

            s = state["numpy"]
            np.random.set_state(("MT19937", s["keys"].cpu().numpy().astype("uint32"), s["pos"], s["has_gauss"],
                                 s["cached_gaussian"]))
        except ImportError:
            pass
