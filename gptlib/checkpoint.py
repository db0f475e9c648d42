"""Day 5: saving and resuming a training run, safely.

A checkpoint holds everything needed to continue a run exactly where it stopped: the model's
weights, the optimizer's moment estimates, the learning-rate scheduler's position, the step,
the random number generators' states, the loss history and the model's configuration.

Two rules keep it safe:

- **Atomic writes.** The file is written under a temporary name and then renamed with
  ``os.replace``, which is atomic: a crash mid-write leaves the previous checkpoint intact,
  never half a file.
- **No code on load.** ``torch.load(..., weights_only=True)`` refuses anything but tensors and
  plain Python values, so opening a checkpoint cannot run code. That is why the config is a
  plain dict and the random states are tensors and lists.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import write_atomically
from .runtime import rng_state, set_rng_state

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "update_checkpoint", "load_model",
           "model_config"]

FORMAT = "gptlib-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, not a gptlib checkpoint, or made for another model."""


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel keeps the real model in .module


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's configuration as a plain dict (``GPTConfig.to_dict()``), or None if it has none."""
    cfg = getattr(_unwrap(model), "cfg", None)
    if cfg is None:
        return None
    if hasattr(cfg, "to_dict"):
        return dict(cfg.to_dict())
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return dict(cfg)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, *, step: int = 0, history: dict | None = None,
                    train_config: dict | None = None, extra: dict | None = None) -> Path:
    """Write a checkpoint atomically (temporary file, then ``os.replace``) and return its path.

    ``extra`` is for the caller's own plain values (e.g. a recipe's settings or the tokenizer's
    fingerprint); everything must be tensors or plain Python values.
    """
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "config": model_config(model),
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": int(step),
        "rng": rng_state(),
        "history": history or {},
        "train_config": train_config or {},
        "extra": extra or {},
    }
    return write_atomically(path, lambda f: torch.save(payload, f))


def _config_mismatch(saved: dict | None, current: dict | None) -> str:
    if saved is None or current is None or saved == current:
        return ""
    keys = sorted(set(saved) | set(current))
    return ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs model {current.get(k)!r}"
                     for k in keys if saved.get(k) != current.get(k))


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, *,
                    restore_rng: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and load it into whatever is given.

    Raises ``FileNotFoundError`` when there is no file and ``CheckpointError`` when the file is
    not a gptlib checkpoint or was saved for a model with another configuration (the message
    names the settings that differ). Returns the whole checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train first, or check the path")
    try:
        # Always onto the CPU: load_state_dict copies weights and optimizer state onto the model's
        # own device, and the random states must stay CPU tensors whatever the device.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path.name}: {first_line}; "
                              f"the file is damaged or not a gptlib checkpoint") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a gptlib checkpoint (saved by save_checkpoint)")
    if model is not None:
        diff = _config_mismatch(ckpt.get("config"), model_config(model))
        if diff:
            raise CheckpointError(f"checkpoint {path.name} is for another model configuration ({diff}); "
                                  f"build the model with GPTConfig.from_dict(checkpoint['config']) "
                                  f"or start a fresh run")
        _unwrap(model).load_state_dict(ckpt["model"])
    if optimizer is not None:
        if ckpt.get("optimizer") is None:
            raise CheckpointError(f"checkpoint {path.name} holds no optimizer state, so it cannot resume training")
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if restore_rng:
        set_rng_state(ckpt["rng"])
    return ckpt


def update_checkpoint(path: str | os.PathLike, **extra: Any) -> Path:
    """Add plain values to a checkpoint's ``extra`` (e.g. final scores), rewriting it atomically."""
    ckpt = load_checkpoint(path)
    ckpt["extra"] = {**ckpt.get("extra", {}), **extra}
    return write_atomically(path, lambda f: torch.save(ckpt, f))


def load_model(path: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """A ``GPTModel`` built from the configuration stored in a checkpoint, with its weights, in eval mode."""
    from .model import GPTConfig, GPTModel

    ckpt = load_checkpoint(path)
    if ckpt.get("config") is None:
        raise CheckpointError(f"checkpoint {Path(path).name} stores no model configuration")
    model = GPTModel(GPTConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    if device is not None:
        model.to(device)
    return model.eval()
