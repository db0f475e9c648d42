"""Day 5: one pretraining pipeline — a recipe in, a trained model and its tokenizer out.

A ``Recipe`` holds every setting that decides a run (data split, tokenizer, model shape,
training); ``pretrain(text, recipe, out_dir)`` is the one pipeline that day 5's notebook, the
recipes below and ``python -m gptlib train`` all run:

    split the text (the end is held out) -> train day 1's BPE on the training part -> encode
    -> seeded loaders -> GPTModel -> train (checkpoints) -> score the whole validation split

The run folder holds ``model.pt`` (weights, optimizer, history, the recipe, the sha256 of the
text and of the tokenizer) and ``tokenizer.json``; ``load_trained`` refuses a tokenizer that is
not the one the model learned with, and ``pretrain(..., resume=True)`` refuses to continue a
run with other settings or other text, naming what differs.

``trained_model(recipe, corpus)`` loads a recipe's checkpoint, or rebuilds it with the very same recipe
when it is missing or stale, so notebooks that need day 5's model also run on their own.
Checkpoints live in ``<repo>/checkpoints/<recipe name>/`` when gptlib runs from the course's
checkout, else in the user cache; ``GPTLIB_CHECKPOINT_DIR`` overrides both.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import distributed
from .assets import tiny_shakespeare
from .checkpoint import CheckpointError, build_model, load_checkpoint, update_checkpoint
from .checks import whole_number
from .data import create_dataloader, train_val_split
from .files import user_cache_dir
from .model import GPTConfig, GPTModel
from .runtime import pick_device, seed_everything
from .tokenizer import CHARACTER_PATTERN, END_OF_TEXT, GPT2_PATTERN, BPETokenizer
from .train import TrainConfig, bits_per_byte, evaluate, train
from .waits import announce_training

__all__ = ["Recipe", "DAY5", "Run", "pretrain", "load_trained", "trained_model", "day5_model", "day5_texts",
           "day5_tokenizer", "default_checkpoint_dir", "run_dir"]


RUN_ONLY = ("checkpoint_path", "progress")  # TrainConfig fields that say where and how to run, not what


@dataclass(frozen=True)
class Recipe:
    """Every setting of a pretraining run. Change one, and stale checkpoints are rebuilt, never misused.

    ``model`` is the shape (its ``vocab_size`` is the BPE vocabulary, ``<|endoftext|>`` included;
    GPT-2's tokenizer brings its own 50,257), ``train`` the schedule; the rest is the data and the
    seed. ``version`` changes when the code that runs a recipe changes what it produces.
    """

    name: str
    version: int
    model: GPTConfig
    train: TrainConfig
    tokenizer: str = "bpe"          # day 1's BPE trained on the training split: "bpe" (GPT-2's pre-split,
                                    # tokens within words), "chars" (tokens within characters); "gpt2": GPT-2's
    val_fraction: float = 0.1       # the end of the text is held out for validation
    batch_size: int = 16
    seed: int = 123

    def __post_init__(self) -> None:
        if self.tokenizer not in ("bpe", "chars", "gpt2"):
            raise ValueError(f"tokenizer must be 'bpe', 'chars' or 'gpt2', got {self.tokenizer!r}")
        if self.tokenizer != "gpt2" and self.model.vocab_size < 257:
            raise ValueError(f"vocab_size must be >= 257 (256 bytes + <|endoftext|>), got {self.model.vocab_size}")
        whole_number("batch_size", self.batch_size)
        whole_number("seed", self.seed, minimum=0, maximum=2**63 - 1)  # torch's seeds are 64-bit

    def with_settings(self, **settings: Any) -> Recipe:
        """This recipe with some settings changed, named as fields of ``GPTConfig``, ``TrainConfig`` or
        ``Recipe`` (the command line's options): ``DAY5.with_settings(emb_dim=64, lr=1e-3, seed=7)``."""
        model_names, train_names = {f.name for f in fields(self.model)}, {f.name for f in fields(TrainConfig)}
        # an unknown name: dataclasses.replace's "Recipe.__init__() got an unexpected keyword argument"
        return replace(self, model=replace(self.model, **{k: v for k, v in settings.items() if k in model_names}),
                       train=replace(self.train, **{k: v for k, v in settings.items() if k in train_names}),
                       **{k: v for k, v in settings.items() if k not in model_names | train_names})

    def setting(self, name: str) -> Any:
        """One setting by its flat name (as ``with_settings`` takes them)."""
        for part in (self.model, self.train, self):
            if name in {f.name for f in fields(part)}:
                return getattr(part, name)
        raise ValueError(f"unknown recipe setting {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (stored in checkpoints); where and how verbosely a run goes is not part of it."""
        data = asdict(self)
        for name in RUN_ONLY:
            data["train"].pop(name)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        if not isinstance(data, dict) or not {"model", "train"} <= set(data):
            raise ValueError("this checkpoint holds no recipe: it was not written by gptlib's pretrain")
        return cls(**{**data, "model": GPTConfig.from_dict(data["model"]), "train": TrainConfig(**data["train"])})


DAY5 = Recipe(  # Tiny Shakespeare: the best model 2 CPU cores train in three minutes (benchmarks/pretrain.py)
    name="day5", version=3,
    model=GPTConfig(vocab_size=2048, context_length=128, emb_dim=96, n_heads=4, n_layers=3, drop_rate=0.0,
                    tie_weights=True),
    train=TrainConfig(max_steps=2300, lr=3e-3, min_lr_ratio=0.1, warmup_steps=30, weight_decay=0.3, grad_clip=1.0,
                      eval_every=100, eval_batches=5))


@dataclass
class Run:
    """What ``pretrain`` returns."""

    model: GPTModel
    tokenizer: BPETokenizer
    history: dict[str, list]
    val_loss: float            # nats per token, on the whole validation split
    val_bits_per_byte: float
    seconds: float             # training time
    folder: Path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tokenizer(recipe: Recipe, train_text: str) -> BPETokenizer:
    if recipe.tokenizer == "gpt2":
        return BPETokenizer.from_gpt2()
    vocab_size, pattern = recipe.model.vocab_size, CHARACTER_PATTERN if recipe.tokenizer == "chars" else GPT2_PATTERN
    try:
        return BPETokenizer.train(train_text, vocab_size - 1, pattern=pattern,
                                  special_tokens={END_OF_TEXT: vocab_size - 1})
    except ValueError as exc:  # BPETokenizer's vocab_size leaves out <|endoftext|>; a Recipe's counts it
        largest = re.search(r"vocab_size <= (\d+)", str(exc))
        if largest is None:
            raise
        raise ValueError(f"text too short: use vocab_size <= {int(largest.group(1)) + 1}, or a longer text") from None


def pretrain(text: str, recipe: Recipe, out_dir: str | os.PathLike, device: str | torch.device | None = None, *,
             resume: bool = False, progress: bool = True, log: Callable[[str], None] | None = None,
             on_eval: Callable[[int, nn.Module, dict], None] | None = None) -> Run:
    """Run ``recipe`` on ``text`` and save it in ``out_dir`` (seeded: the same numbers every run on
    the CPU when ``time_budget_s`` is None). ``resume=True`` continues the run saved there.
    ``log`` receives one line describing the run before training starts."""
    out_dir, device = Path(out_dir), pick_device(device)
    checkpoint, tokenizer_path = out_dir / "model.pt", out_dir / "tokenizer.json"
    identity = {"recipe": recipe.to_dict(), "data_sha256": _sha256(text.encode("utf-8"))}
    train_text, val_text = train_val_split(text, recipe.val_fraction)
    if resume:
        tokenizer, ckpt = _tokenizer_of_run(out_dir)
        _refuse_other_settings(ckpt.get("extra", {}), identity, checkpoint)
    elif checkpoint.exists():
        raise FileExistsError(f"{checkpoint} exists: resume it (on the command line: pass --resume), or choose "
                              "another folder (nothing was overwritten)")
    else:
        tokenizer = _tokenizer(recipe, train_text)
        if tokenizer_path.exists() and not _same_tokenizer(tokenizer_path, tokenizer):
            raise FileExistsError(f"{tokenizer_path} exists and no run there records it (it is not this run's "
                                  "tokenizer): move it away, or choose another folder (nothing was overwritten)")
        if distributed.is_main_process():
            tokenizer.save(tokenizer_path)
        distributed.barrier()  # every process records the saved file's sha256
    identity["tokenizer_sha256"] = _sha256(tokenizer_path.read_bytes()) if tokenizer_path.exists() else None
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    cfg = replace(recipe.model, vocab_size=tokenizer.n_vocab)
    train_loader = create_dataloader(train_ids, recipe.batch_size, cfg.context_length, seed=recipe.seed,
                                     vocab_size=cfg.vocab_size)
    val_loader = create_dataloader(val_ids, recipe.batch_size, cfg.context_length, shuffle=False, drop_last=False)
    seed_everything(recipe.seed)
    model = cfg.build().to(device)  # GPTModel(cfg), built on the CPU, then moved: the same weights on every device
    if log is not None:
        log(f"{len(train_ids):,} training tokens, {len(val_ids):,} validation tokens, vocabulary "
            f"{tokenizer.n_vocab:,}, {model.num_parameters():,} parameters, device {device}, "
            f"{distributed.world_size()} process(es)")
    start = time.perf_counter()
    history = train(model, train_loader, val_loader,
                    replace(recipe.train, checkpoint_path=str(checkpoint), progress=progress),
                    resume_from=checkpoint if resume else None, on_eval=on_eval, checkpoint_extra=identity)
    seconds = time.perf_counter() - start
    val_loss = evaluate(model, val_loader)  # the whole validation split, not only eval_batches
    val_bpb = bits_per_byte(val_loss, len(val_ids), len(val_text.encode("utf-8")))
    if distributed.is_main_process():
        update_checkpoint(checkpoint, val_loss=val_loss, val_bits_per_byte=val_bpb)
    return Run(model.eval(), tokenizer, history, val_loss, val_bpb, seconds, out_dir)


def _same_tokenizer(path: Path, tokenizer: BPETokenizer) -> bool:
    """Whether the tokenizer file at ``path`` is ``tokenizer`` (then writing it again loses nothing)."""
    try:
        other = BPETokenizer.load(path)
    except (ValueError, OSError):
        return False
    parts = ("pattern", "byte_ids", "special_tokens", "merges")
    return [getattr(other, p) for p in parts] == [getattr(tokenizer, p) for p in parts]


def _settings(recipe: dict) -> dict:
    """A recipe's dict with the model's and training's settings at the top, as ``with_settings`` names them."""
    return {**recipe.get("model", {}), **recipe.get("train", {}),
            **{k: v for k, v in recipe.items() if k not in ("model", "train")}}


def _refuse_other_settings(saved: dict, identity: dict, checkpoint: Path) -> None:
    """Resume only what was started: the same recipe and the same text, or a one-line refusal."""
    old, new = _settings(saved.get("recipe") or {}), _settings(identity["recipe"])
    differ = [f"{k}: {old.get(k)!r} in the checkpoint, {new[k]!r} now" for k in new if old.get(k) != new[k]]
    if saved.get("data_sha256") != identity["data_sha256"]:
        differ.append("the training text is not the text the run started with")
    if differ:
        raise CheckpointError(f"cannot resume {checkpoint}: {'; '.join(differ)}; use its settings, or another folder")


def _tokenizer_of_run(folder: Path) -> tuple[BPETokenizer, dict]:
    """The run's checkpoint (read with weights_only) and its tokenizer, refused unless it is the
    one the model was trained with (its sha256 is recorded in the checkpoint)."""
    ckpt = load_checkpoint(folder / "model.pt")
    path = folder / "tokenizer.json"
    expected = ckpt.get("extra", {}).get("tokenizer_sha256")
    if expected != _sha256(path.read_bytes()):
        raise CheckpointError(f"{path} is not the tokenizer this model was trained with: restore it, or retrain")
    return BPETokenizer.load(path), ckpt


def load_trained(folder: str | os.PathLike, device: str | torch.device | None = None
                 ) -> tuple[GPTModel, BPETokenizer, dict]:
    """(model in eval mode, tokenizer, checkpoint) of a run folder written by ``pretrain``."""
    tokenizer, ckpt = _tokenizer_of_run(Path(folder))
    model = build_model(ckpt, Path(folder) / "model.pt")  # its tokenizer's sha256 is the one recorded with it
    return model.to(device if device is not None else pick_device()).eval(), tokenizer, ckpt


# --------------------------------------------------------------------------- the course's recipes
def default_checkpoint_dir() -> Path:
    """``$GPTLIB_CHECKPOINT_DIR``, else ``<repo>/checkpoints`` in the course's checkout, else the user cache."""
    if os.environ.get("GPTLIB_CHECKPOINT_DIR"):
        return Path(os.environ["GPTLIB_CHECKPOINT_DIR"]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / "checkpoints"
    return user_cache_dir("checkpoints")


def run_dir(recipe: Recipe, checkpoint_dir: str | os.PathLike | None = None) -> Path:
    """The folder where ``trained_model`` keeps ``recipe``'s run."""
    return Path(checkpoint_dir or default_checkpoint_dir()) / recipe.name


def trained_model(recipe: Recipe, corpus: Callable[[], str], device: str | torch.device | None = None,
                  checkpoint_dir: str | os.PathLike | None = None) -> tuple[GPTModel, BPETokenizer]:
    """The model of ``recipe`` trained on ``corpus()`` (eval mode) and its tokenizer: loaded, resumed when
    its run was interrupted, or trained (again) when there is none or its recipe changed.

    In a folder the user chose (``checkpoint_dir``, ``GPTLIB_CHECKPOINT_DIR``) only the recipe's own
    run is ever replaced: a ``model.pt`` that is not a run of this recipe's name on this very text (its
    ``data_sha256``), or cannot be read, is refused in one line and left as it is. gptlib's own
    folder (``<repo>/checkpoints``, or the user cache) holds only the course's runs: it is rebuilt."""
    folder, text = run_dir(recipe, checkpoint_dir), corpus()
    saved, problem = _run_in(folder, recipe, _sha256(text.encode("utf-8")))
    if problem and (checkpoint_dir is not None or os.environ.get("GPTLIB_CHECKPOINT_DIR")):
        raise CheckpointError(f"{problem}: nothing was changed; move {folder} away, or give another checkpoint_dir")
    why = problem  # why it trains: said with how long it will take here, then a progress bar
    if problem:
        print(f"{problem}; training it again...", flush=True)
    elif saved is None:
        why = "no checkpoint yet"
        print(f"no {recipe.name} checkpoint in {folder}; training it with its recipe...", flush=True)
    elif saved["recipe"] != recipe.to_dict():
        why = "its recipe changed"
        print(f"the {recipe.name} checkpoint was made by another version of the recipe; training it again...",
              flush=True)
    elif "val_bits_per_byte" not in saved:  # written by pretrain only once the run is complete
        print(f"the {recipe.name} run stopped before the end; resuming it...", flush=True)
        wait = announce_training(recipe, pick_device(device), why="resuming an interrupted run")
        try:
            run = pretrain(text, recipe, folder, device, resume=True, progress=False, on_eval=wait.on_eval)
            return run.model, run.tokenizer
        except (CheckpointError, ValueError) as exc:
            why = f"cannot resume it ({str(exc).split(';')[0]})"
            print(f"{why}; training it again...", flush=True)
    else:
        try:
            model, tokenizer, _ = load_trained(folder, device)
            return model, tokenizer
        except CheckpointError as exc:
            why = f"its checkpoint is unusable ({str(exc).split(';')[0]})"
            print(f"the {recipe.name} run: {why}; training it again...", flush=True)
    for stale in (folder / "model.pt", folder / "tokenizer.json") if saved is not None or problem else ():
        stale.unlink(missing_ok=True)  # the recipe's own run, or gptlib's own folder: ours to rebuild
    wait = announce_training(recipe, pick_device(device), why=why)  # how long here, then a progress bar
    run = pretrain(text, recipe, folder, device, progress=False, on_eval=wait.on_eval)
    return run.model, run.tokenizer


def _run_in(folder: Path, recipe: Recipe, data_sha256: str) -> tuple[dict | None, str | None]:
    """(the checkpoint's ``extra``, None) when ``folder`` holds a run of ``recipe`` (any version) on this
    text; (None, None) when it holds no checkpoint; (None, what it holds instead) otherwise."""
    checkpoint = folder / "model.pt"
    if not checkpoint.exists():
        return None, None
    try:
        extra, why = load_checkpoint(checkpoint)["extra"], "another recipe, other text, or not made by pretrain"
    except CheckpointError as exc:
        extra, why = {}, f"unreadable: {str(exc).split(';')[0]}"
    if (extra.get("recipe") or {}).get("name") != recipe.name or extra.get("data_sha256") != data_sha256:
        return None, f"{checkpoint} is not a run of {recipe.name} on its text ({why})"
    return extra, None


def day5_texts() -> tuple[str, str]:
    """Tiny Shakespeare split into (training text, validation text): the validation part is the end."""
    return train_val_split(tiny_shakespeare(), DAY5.val_fraction)


def day5_tokenizer(train_text: str | None = None) -> BPETokenizer:
    """Day 1's BPE trained on day 5's training split, as ``pretrain`` trains it."""
    return _tokenizer(DAY5, day5_texts()[0] if train_text is None else train_text)


def day5_model(device: str | torch.device | None = None, checkpoint_dir: str | os.PathLike | None = None
               ) -> tuple[GPTModel, BPETokenizer]:
    """Day 5's model and tokenizer, as days 6 and 7 use them (see ``trained_model``)."""
    return trained_model(DAY5, tiny_shakespeare, device, checkpoint_dir)


# --------------------------------------------------------------------------- the running example, trained
RUNNING_EXAMPLE_LINES = ("你好世界啊", "你好世界啊", "你好世界啊", "你好中国", "你好朋友", "世界很大", "世界你好",
                         "我爱世界", "你是谁啊", "好的")

RUNNING_EXAMPLE = Recipe(  # 你好世界 -> 啊, learned from a 306-character corpus in a few CPU seconds
    name="running_example", version=1,
    model=GPTConfig(vocab_size=288, context_length=8, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.0,
                    tie_weights=True),
    train=TrainConfig(max_steps=150, lr=1e-2, min_lr_ratio=0.1, warmup_steps=10, weight_decay=0.0, grad_clip=1.0,
                      eval_every=50, eval_batches=None),
    tokenizer="chars",  # one token per character: the course's table 你->好, 你好->世, ... is one prediction per row
    batch_size=8)


def running_example_text() -> str:
    """The running example's corpus: ten short lines, each six times, in a fixed shuffled order (306 characters).

    ``你好世界啊`` is three of the ten lines, so after ``你好`` the next character is ``世`` half of the
    time (``中``, ``朋`` or a line break otherwise) and after ``你好世界`` it is always ``啊``: the
    counts a model trained on it should reproduce. With the ``chars`` tokenizer every character
    is one token, and 288 ids (256 bytes, 31 merges, ``<|endoftext|>``) are all the merges this text allows.
    """
    import random

    lines = [line for line in RUNNING_EXAMPLE_LINES for _ in range(6)]
    random.Random(0).shuffle(lines)
    return "\n".join(lines) + "\n"


def running_example_model(device: str | torch.device | None = None, checkpoint_dir: str | os.PathLike | None = None
                          ) -> tuple[GPTModel, BPETokenizer]:
    """The running example's tiny model (trained on ``running_example_text``) and its character tokenizer,
    as day 5 trains it and day 6 reloads it (see ``trained_model``)."""
    return trained_model(RUNNING_EXAMPLE, running_example_text, device, checkpoint_dir)
