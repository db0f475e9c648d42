"""Day 5: saving and resuming a training run, safely.

A checkpoint holds everything needed to continue a run exactly where it stopped: the model's
weights, the optimizer's moment estimates, the learning-rate scheduler's position, the step,
the random number generators' states, the loss history and the model's configuration.

Three rules keep it safe:

- **Atomic writes.** The file is written under a temporary name and then renamed with
  ``os.replace``, which is atomic: a crash mid-write leaves the previous checkpoint intact,
  never half a file.
- **No code on load.** ``torch.load(..., weights_only=True)`` refuses anything but tensors and
  plain Python values, so opening a checkpoint cannot run code. That is why the config is a
  plain dict and the random states are tensors and lists.
- **A checksum.** The checkpoint records the sha256 of everything it holds (every tensor's
  bytes, every plain value), and loading recomputes it: a flipped bit on a disk or in a copy is
  an error, never silently changed weights.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import remove_stale_temporaries, write_atomically
from .runtime import rng_state, set_rng_state

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "update_checkpoint", "load_model",
           "build_model", "model_config", "checkpoint_sha256", "error_detail"]

FORMAT = "gptlib-checkpoint"
FORMAT_VERSION = 2  # 2: with "sha256", the checksum of everything else in the file


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
    payload["sha256"] = checkpoint_sha256(payload)  # load_checkpoint recomputes it: corruption is caught
    return write_atomically(path, lambda f: torch.save(payload, f))


def checkpoint_sha256(ckpt: dict[str, Any]) -> str:
    """The sha256 of a checkpoint's contents, its own ``"sha256"`` entry left out: every key and
    plain value, and every tensor's dtype, shape and bytes, in the order they are stored."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu").contiguous()
            digest.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
            if t.numel():
                digest.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, dict):
            digest.update(f"dict {len(value)};".encode())
            for key, item in value.items():
                feed(key)
                feed(item)
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__} {len(value)};".encode())
            for item in value:
                feed(item)
        else:
            digest.update(f"{type(value).__name__} {value!r};".encode())

    feed({key: value for key, value in ckpt.items() if key != "sha256"})
    return digest.hexdigest()


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
    remove_stale_temporaries(path)  # half-written copies of writers that were killed
    ckpt = _read(path)
    if model is not None:
        diff = _config_mismatch(ckpt["config"], model_config(model))
        if diff:
            raise CheckpointError(f"checkpoint {path.name} is for another model configuration ({diff}); build the "
                                  "model with GPTConfig.from_dict(checkpoint['config']) or start a fresh run")
        build_model(ckpt, path, _unwrap(model))
    if optimizer is not None:
        if ckpt.get("optimizer") is None:
            raise CheckpointError(f"checkpoint {path.name} holds no optimizer state, so it cannot resume training")
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if restore_rng:
        try:
            set_rng_state(ckpt["rng"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"{path.name}: damaged random states ({error_detail(exc)}); start afresh") from None
    return ckpt


def error_detail(exc: BaseException) -> str:
    """The informative first line of an error, for one-line messages: for ``load_state_dict``'s
    report, the first mismatch ("size mismatch for tok_emb.weight: ..."), not its header."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        return lines[1]
    return lines[0] if lines else type(exc).__name__


def _read(path: Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``, then the checks every checkpoint must pass:
    the format, the checksum, and the types of its parts."""
    try:
        # Always onto the CPU: load_state_dict copies weights and optimizer state onto the model's
        # own device, and the random states must stay CPU tensors whatever the device.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refused a Python object, or a damaged stream (KeyError: 19, ...)
        unsafe = isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc)  # never suggest loading it
        reason = "it holds Python objects, so it was not opened (it may be unsafe)" if unsafe else error_detail(exc)
        raise CheckpointError(f"cannot read checkpoint {path.name}: {reason}; the file is damaged or not a gptlib "
                              "checkpoint") from None
    problem = _problem(ckpt)
    if problem:
        raise CheckpointError(f"{path.name} {problem}")
    return ckpt


_PARTS = {"model": dict, "config": (dict, type(None)), "rng": dict, "step": int, "history": dict,  # save's types
          "train_config": dict, "extra": dict, "optimizer": (dict, type(None)), "scheduler": (dict, type(None))}


def _problem(ckpt: Any) -> str | None:
    """What makes ``ckpt`` no checkpoint of ``save_checkpoint``'s (the end of a one-line message), or None."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        return "is not a gptlib checkpoint (saved by save_checkpoint)"
    if ckpt.get("format_version") != FORMAT_VERSION or not isinstance(ckpt.get("sha256"), str):
        return (f"is a gptlib checkpoint of format {ckpt.get('format_version')!r}, without the checksum of format "
                f"{FORMAT_VERSION}; train again to rebuild it (the course's notebooks rebuild theirs on their own)")
    if checkpoint_sha256(ckpt) != ckpt["sha256"]:
        return ("is corrupt: its contents no longer match the sha256 recorded when it was saved (a damaged disk "
                "or copy); use another copy, or train again")
    for key, kind in _PARTS.items():
        if not isinstance(ckpt.get(key), kind):
            what = f"lacks its {key!r} entry" if key not in ckpt else f"- {key!r} is a {type(ckpt[key]).__name__}"
            return f"{what}, which save_checkpoint never writes: train again"
    if ckpt["step"] < 0:  # a checksum recomputed after an edit passes the checks above
        return "holds a negative step, which no run has: train again"
    for name, t in ckpt["model"].items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
            return f"holds NaN or infinite weights in {name}, which no usable run has: train again"
    return None


def update_checkpoint(path: str | os.PathLike, **extra: Any) -> Path:
    """Add plain values to a checkpoint's ``extra`` (e.g. final scores), rewriting it atomically."""
    ckpt = load_checkpoint(path)
    ckpt["extra"] = {**ckpt["extra"], **extra}
    ckpt["sha256"] = checkpoint_sha256(ckpt)
    return write_atomically(path, lambda f: torch.save(ckpt, f))


def build_model(ckpt: dict[str, Any], path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """``model`` (default: the model the checkpoint's config describes, ``GPTConfig.build``) with a loaded checkpoint's weights;
    torch's multi-line mismatch report becomes one CheckpointError line."""
    from .model import GPTConfig

    try:
        model = GPTConfig.from_dict(ckpt["config"]).build() if model is None else model
        model.load_state_dict(ckpt["model"])
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{Path(path).name} does not hold a model this gptlib can build (its config and weights "
                              f"do not fit: {error_detail(exc)}); train again") from None
    return model


def load_model(path: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """A ``GPTModel`` built from the configuration stored in a checkpoint, with its weights, in eval mode."""
    model = build_model(load_checkpoint(path), path)
    if device is not None:
        model.to(device)
    return model.eval()
