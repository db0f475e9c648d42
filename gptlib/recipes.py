"""The day 5 recipe: one deterministic way to pretrain the small model that days 6 and 7 use.

Day 5's notebook runs ``train_day5()`` and saves the result; days 6 and 7 call only
``day5_model()``, which loads that checkpoint, or rebuilds it with the very same recipe when it
is missing or was made by another version of the recipe. So every notebook also runs on its own.

Why this configuration (the trade-off a 2-core CPU forces): with GPT-2's 50,257-token
vocabulary, a model this narrow (emb_dim 128) would spend most of its parameters and most of
its compute in the output layer (128 x 50,257 = 6.4M weights against 0.8M in all four
Transformer blocks). A BPE vocabulary of 1,024 tokens trained on the corpus itself (day 1's
tokenizer) leaves the compute to the blocks; its tokens are shorter (about 2.3 bytes instead
of 3.1), so we compare the two in bits per byte, which does not depend on the tokenizer.

Checkpoints go to ``<repo>/checkpoints/day5/`` (git-ignored) when gptlib runs from the course's
repository, else to the user cache (``~/.cache/gptlib/checkpoints``); the environment variable
``GPTLIB_CHECKPOINT_DIR`` overrides both.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .assets import tiny_shakespeare
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import create_dataloader, train_val_split
from .model import GPTConfig, GPTModel
from .runtime import pick_device, seed_everything
from .tokenizer import BPETokenizer
from .train import TrainConfig, bits_per_byte, train

__all__ = ["DAY5_RECIPE", "Day5Run", "default_checkpoint_dir", "day5_paths", "day5_texts", "day5_tokenizer",
           "day5_model_config", "day5_train_config", "train_day5", "day5_model", "load_trained", "save_trained"]

# Change anything here and bump "version": stale checkpoints are then rebuilt, never misused.
DAY5_RECIPE: dict[str, Any] = {
    "name": "day5-tiny-shakespeare",
    "version": 1,
    "seed": 123,
    "val_fraction": 0.1,           # the last 10% of Tiny Shakespeare is held out
    "vocab_size": 1024,            # BPE trained on the training split; the last id is <|endoftext|>
    "model": {"context_length": 128, "emb_dim": 128, "n_heads": 4, "n_layers": 4,
              "drop_rate": 0.0, "qkv_bias": False},
    "batch_size": 16,
    "train": {"max_steps": 500, "lr": 3e-3, "min_lr_ratio": 0.1, "warmup_steps": 30,
              "weight_decay": 0.1, "grad_clip": 1.0, "eval_every": 50, "eval_batches": 5},
}
END_OF_TEXT = "<|endoftext|>"


@dataclass
class Day5Run:
    """What ``train_day5`` returns: the trained model, its tokenizer, its history and scores."""

    model: GPTModel
    tokenizer: BPETokenizer
    history: dict[str, list]
    val_loss: float           # nats per token, whole validation split
    val_bits_per_byte: float
    seconds: float
    checkpoint_path: Path


def default_checkpoint_dir() -> Path:
    """``$GPTLIB_CHECKPOINT_DIR``, else ``<repo>/checkpoints`` when gptlib runs from the course's
    checkout (an editable install), else ``~/.cache/gptlib/checkpoints`` (``$XDG_CACHE_HOME`` respected)."""
    env = os.environ.get("GPTLIB_CHECKPOINT_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / "checkpoints"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "gptlib" / "checkpoints"


def day5_paths(checkpoint_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(model checkpoint, tokenizer file) of the day 5 run."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    return folder / "day5" / "model.pt", folder / "day5" / "tokenizer.json"


def day5_texts() -> tuple[str, str]:
    """Tiny Shakespeare split into (training text, validation text): the validation part is the end."""
    return train_val_split(tiny_shakespeare(), DAY5_RECIPE["val_fraction"])


def day5_tokenizer(train_text: str | None = None) -> BPETokenizer:
    """Day 1's BPE trained on the training split only (about a second): 1,023 learned ids + ``<|endoftext|>``."""
    text = day5_texts()[0] if train_text is None else train_text
    vocab = DAY5_RECIPE["vocab_size"]
    return BPETokenizer.train(text, vocab - 1, special_tokens={END_OF_TEXT: vocab - 1})


def day5_model_config() -> GPTConfig:
    return GPTConfig(vocab_size=DAY5_RECIPE["vocab_size"], **DAY5_RECIPE["model"])


def day5_train_config(**overrides: Any) -> TrainConfig:
    return TrainConfig(**{**DAY5_RECIPE["train"], **overrides})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_trained(directory: str | os.PathLike, model: nn.Module, tokenizer: BPETokenizer, *,
                 history: dict | None = None, extra: dict | None = None) -> Path:
    """Save a trained model and its tokenizer side by side (``model.pt`` + ``tokenizer.json``).

    The checkpoint records the tokenizer file's sha256, so a model is never paired with a
    tokenizer it was not trained with.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(directory / "tokenizer.json")
    extra = {**(extra or {}), "tokenizer_sha256": _sha256(directory / "tokenizer.json")}
    return save_checkpoint(directory / "model.pt", model, step=len((history or {}).get("step", [])),
                           history=history, extra=extra)


def load_trained(directory: str | os.PathLike, device: str | torch.device | None = None
                 ) -> tuple[GPTModel, BPETokenizer, dict]:
    """Load what ``save_trained`` (or ``python -m gptlib train``) wrote: (model in eval mode, tokenizer, checkpoint).

    Raises ``FileNotFoundError`` if a file is missing and ``CheckpointError`` if the tokenizer is
    not the one the model was trained with.
    """
    directory = Path(directory)
    ckpt = load_checkpoint(directory / "model.pt")
    tok_path = directory / "tokenizer.json"
    if not tok_path.is_file():
        raise FileNotFoundError(f"no tokenizer.json next to the checkpoint in {directory}")
    expected = ckpt.get("extra", {}).get("tokenizer_sha256")
    if expected is not None and expected != _sha256(tok_path):
        raise CheckpointError(f"tokenizer.json in {directory} is not the tokenizer this model was trained with; "
                              f"retrain, or restore the matching tokenizer file")
    if ckpt.get("config") is None:
        raise CheckpointError(f"checkpoint in {directory} stores no model configuration")
    model = GPTModel(GPTConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device if device is not None else pick_device()).eval()
    return model, BPETokenizer.load(tok_path), ckpt


def train_day5(checkpoint_dir: str | os.PathLike | None = None, device: str | torch.device | None = None, *,
               progress: bool = True, on_eval: Callable[[int, nn.Module, dict], None] | None = None) -> Day5Run:
    """Run the day 5 recipe from scratch (seeded: the same numbers every run on a given machine) and save it.

    Steps: split Tiny Shakespeare, train the BPE tokenizer on the training part, encode both
    parts, build a ``GPTModel`` with ``day5_model_config()``, train it with ``day5_train_config()``,
    score it on the whole validation split (nats per token and bits per byte), save the
    checkpoint and the tokenizer into ``day5_paths(checkpoint_dir)``.
    """
    import time

    device = torch.device(device) if device is not None else pick_device()
    recipe = DAY5_RECIPE
    train_text, val_text = day5_texts()
    tokenizer = day5_tokenizer(train_text)
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    model_cfg = day5_model_config()
    length, batch = model_cfg.context_length, recipe["batch_size"]
    train_loader = create_dataloader(train_ids, batch, length, shuffle=True, drop_last=True, seed=recipe["seed"])
    val_loader = create_dataloader(val_ids, batch, length, shuffle=False, drop_last=False)
    seed_everything(recipe["seed"])
    model = GPTModel(model_cfg).to(device)
    start = time.perf_counter()
    history = train(model, train_loader, val_loader, day5_train_config(progress=progress), on_eval=on_eval)
    seconds = time.perf_counter() - start
    from .train import evaluate

    val_loss = evaluate(model, val_loader)  # the whole validation split, not just eval_batches
    val_bpb = bits_per_byte(val_loss, len(val_ids), len(val_text.encode("utf-8")))
    model_path, _ = day5_paths(checkpoint_dir)
    save_trained(model_path.parent, model, tokenizer, history=history,
                 extra={"recipe": recipe, "val_loss": val_loss, "val_bits_per_byte": val_bpb})
    return Day5Run(model.eval(), tokenizer, history, val_loss, val_bpb, seconds, model_path)


def day5_model(device: str | torch.device | None = None, checkpoint_dir: str | os.PathLike | None = None
               ) -> tuple[GPTModel, BPETokenizer]:
    """The day 5 model (eval mode, on ``device`` or ``pick_device()``) and its tokenizer.

    Loads ``day5_paths(checkpoint_dir)``; if the files are missing, damaged, or made by another
    version of ``DAY5_RECIPE``, retrains with the recipe (about two minutes on a 2-core CPU),
    saves, and returns the result.
    """
    device = torch.device(device) if device is not None else pick_device()
    model_path, _ = day5_paths(checkpoint_dir)
    try:
        model, tokenizer, ckpt = load_trained(model_path.parent, device)
        if ckpt.get("extra", {}).get("recipe") != DAY5_RECIPE:
            raise CheckpointError("the day 5 checkpoint was made by another version of the recipe")
        return model, tokenizer
    except (FileNotFoundError, CheckpointError, ValueError, KeyError) as exc:
        reason = "none found" if isinstance(exc, FileNotFoundError) else str(exc).split(";")[0]
        print(f"day5_model: no usable day 5 checkpoint ({reason}); retraining it with the day 5 recipe "
              f"(about 2 minutes on a 2-core CPU)...", flush=True)
    run = train_day5(checkpoint_dir, device, progress=False)
    return run.model, run.tokenizer
