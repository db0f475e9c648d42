"""The command line, ``python -m gptlib <command>``: train and generate here; figures and doctor are the
classroom's (``gptlib.course.commands``), added by ``gptlib.__main__``.

    python -m gptlib train --data my_text.txt --out my_run           # day 1's BPE + a small GPT (day 5's recipe)
    python -m gptlib train --data my_text.txt --out my_run --resume  # continue an interrupted run
    python -m gptlib train --data poems.txt --recipe chinese         # Chinese text: day 6's recipe (one token per character)
    python -m gptlib train --data my_text.txt --recipe modern        # the bonus day's: RoPE, SwiGLU, Muon...
    torchrun --nproc_per_node=2 -m gptlib train --data my_text.txt   # the same on 2 processes (DDP)
    python -m gptlib generate --checkpoint my_run --prompt "ROMEO:" --temperature 0.8 --top-k 40
    python -m gptlib figures --out figures                           # redraw the course's pictures
    python -m gptlib doctor                                          # is this machine ready for the course?

``train``'s options are the fields of ``gptlib.recipes.Recipe`` and default to day 5's recipe,
so ``train --data tiny_shakespeare.txt`` reproduces day 5 exactly; ``--recipe chinese`` starts from
day 6's Chinese recipe instead (``gptlib.chinese.CHINESE``), for any UTF-8 Chinese text, and ``--recipe modern``
from the bonus day's (``gptlib.modern.MODERN``). A user mistake is printed on
stderr as one line and exits with status 2, never with a traceback (``GPTLIB_DEBUG=1`` shows it);
``tests/test_bad_inputs.py`` lists the inputs this is checked for.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

__all__ = ["main", "build_parser", "CommandError"]


class CommandError(Exception):
    """A user mistake: printed as one line, exit status 2, no traceback."""


# --------------------------------------------------------------------------- train
RECIPE_OPTIONS = {  # Recipe field -> (option, help); every other field keeps the recipe's value
    "tokenizer": ("--tokenizer", "bpe: day 1's BPE trained on the text; chars: the same within characters "
                                 "(Chinese); gpt2: GPT-2's 50,257 tokens"),
    "vocab_size": ("--vocab-size", "BPE vocabulary size, <|endoftext|> included"),
    "val_fraction": ("--val-fraction", "the last fraction of the text held out for validation"),
    "context_length": ("--context-length", "tokens the model sees at once"),
    "emb_dim": ("--emb-dim", "width of every token vector"),
    "n_heads": ("--n-heads", "attention heads per block"),
    "n_layers": ("--n-layers", "Transformer blocks"),
    "drop_rate": ("--drop-rate", "dropout probability while training"),
    "batch_size": ("--batch-size", "windows per step and per process"),
    "seed": ("--seed", "seed of the initialisation and the batch order"),
    "max_steps": ("--steps", "optimizer steps (an upper bound with --time-budget)"),
    "lr": ("--lr", "peak learning rate"),
    "min_lr_ratio": ("--min-lr-ratio", "final learning rate as a fraction of the peak"),
    "warmup_steps": ("--warmup-steps", "steps of linear warm-up"),
    "weight_decay": ("--weight-decay", "AdamW weight decay on matrices"),
    "grad_clip": ("--grad-clip", "clip the gradient norm to this"),
    "eval_every": ("--eval-every", "evaluate and save a checkpoint every this many steps"),
    "eval_batches": ("--eval-batches", "batches per evaluation"),
    "time_budget_s": ("--time-budget", "seconds of training: the schedule is fitted to end on time"),
}


def base_recipes() -> dict:
    """The recipes ``train --recipe`` starts from."""
    from .chinese import CHINESE
    from .modern import MODERN  # also lets checkpoints of the bonus day's model load (GPTConfig.from_dict)
    from .recipes import DAY5

    return {"day5": DAY5, "chinese": CHINESE, "modern": MODERN}


def add_train_command(subparsers) -> None:
    from .model import GPTConfig
    from .recipes import DAY5, Recipe
    from .train import TrainConfig

    p = subparsers.add_parser("train", help="pretrain a small GPT on your own text file",
                              description="Train a BPE tokenizer and a GPT model on a UTF-8 text file. "
                                          "Options default to day 5's recipe (or --recipe chinese, modern).")
    p.add_argument("--data", required=True, type=Path, help="UTF-8 text file to train on")
    p.add_argument("--out", type=_folder, default=Path("gptlib-run"), help="run folder (default: ./gptlib-run)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out, with its settings")
    p.add_argument("--recipe", choices=list(base_recipes()), default=None,
                   help="the settings every other option starts from: day5 (English, Tiny Shakespeare; the default) "
                        "chinese (day 6's Tang-poem model: one token per character) or modern (the bonus day's "
                        "parts: RMSNorm, RoPE, SwiGLU, Muon...)")
    types = {f.name: f.type for part in (Recipe, GPTConfig, TrainConfig) for f in fields(part)}
    for name, (option, text) in RECIPE_OPTIONS.items():
        kind = {"int": int, "float": float, "str": str}.get(types[name].split(" ")[0], float)
        p.add_argument(option, dest=name, type=kind, default=None, metavar=kind.__name__.upper(),
                       help=f"{text} (day5: {DAY5.setting(name)})")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--sample-tokens", type=int, default=60, help="tokens sampled at each evaluation (0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from . import distributed
    from .checkpoint import load_checkpoint
    from .recipes import Recipe, pretrain

    text = _training_text(args.data)
    given = {name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None}
    _check_out_folder(_given(args.out, "--out"))
    checkpoint = args.out / "model.pt"
    base = base_recipes()[args.recipe or "day5"]  # a fresh run's; pretrain refuses to overwrite an existing one
    if args.resume:  # the run's own recipe (load_checkpoint: "no checkpoint at ...: train first" if there is none)
        base = Recipe.from_dict(load_checkpoint(checkpoint).get("extra", {}).get("recipe"))
        if args.recipe is not None and base_recipes()[args.recipe].name != base.name:
            raise CommandError(f"--recipe {args.recipe}: {args.out} ran {base.name!r}; leave out --recipe to resume")
    recipe = base.with_settings(**given)
    device = distributed.init_distributed(args.device)
    main = distributed.is_main_process()
    run = pretrain(text, recipe, args.out, device, resume=args.resume, progress=not args.no_progress,
                   log=print if main else None, on_eval=_reporter(args) if main else None)
    if main:
        print(f"done: validation loss {run.val_loss:.4f} nats/token = {run.val_bits_per_byte:.4f} bits/byte; "
              f"{run.model.num_parameters():,} parameters, {run.seconds:.0f} s of training; saved {checkpoint}")
    distributed.close_distributed()
    return 0


_DATA_PROBLEMS = {FileNotFoundError: "is missing (no such file)",
                  IsADirectoryError: "is a folder; give a UTF-8 text file",
                  UnicodeDecodeError: "is not UTF-8 text; convert it (e.g. iconv -t UTF-8)"}


def _training_text(path: Path) -> str:
    """The text of ``--data``, or a CommandError saying what is wrong with the file."""
    from .tokenizer import END_OF_TEXT

    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise CommandError(f"--data: {path} {_DATA_PROBLEMS[type(exc)]}") from None
    at = text.find(END_OF_TEXT)
    problem = ("holds no text (it is empty or only blanks); give a UTF-8 text file to train on" if not text.strip()
               else f"contains {END_OF_TEXT!r} (first at character {at:,}), the special token that ends a document, "
                    "which training text may not hold: delete or replace every occurrence, then train again"
               if at >= 0 else None)
    if problem:
        raise CommandError(f"--data: {path} {problem}")
    return text


def _folder(text: str) -> Path | str:
    """A folder option as a Path; an empty one stays "" (``Path("")`` would be the current folder)."""
    return Path(text) if text.strip() else ""


def _given(folder: Path | str, option: str) -> Path:
    if folder == "":
        raise CommandError(f"{option} is empty: give a folder (an empty name would mean the current folder)")
    return folder


def _check_out_folder(out: Path) -> None:
    """Refuse, before any training, an --out that is a file, lies under a file, or cannot be written."""
    existing = next(folder for folder in (out, *out.absolute().parents) if folder.exists())
    if not existing.is_dir():
        where = "is a file" if existing == out else f"lies under {existing}, which is a file"
        raise CommandError(f"--out: {out} {where}; give a folder for the run (it is created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"--out: {existing} is read-only (or not yours): choose a folder you can write to")


def _reporter(args: argparse.Namespace):
    """The on_eval callback: the losses, and a short sample from a newline (temperature 0.8, top-k 50)."""
    from tqdm.auto import tqdm

    def report(step, model, history) -> None:
        tqdm.write(f"step {step}: train loss {history['eval_train_loss'][-1]:.3f}, "
                   f"val loss {history['val_loss'][-1]:.3f}")
        if args.sample_tokens > 0:
            tokenizer = _tokenizer_in(args.out)
            tqdm.write("  sample: " + repr(_continue(model, tokenizer, "\n", args.sample_tokens, 0.8, 50, None,
                                                     args.seed or 123)))
    return report


def _tokenizer_in(folder: Path):
    from .tokenizer import BPETokenizer

    return BPETokenizer.load(folder / "tokenizer.json")


# --------------------------------------------------------------------------- generate
def add_generate_command(subparsers) -> None:
    from .download import GPT2_FILES

    p = subparsers.add_parser("generate", help="continue a prompt with a trained run or GPT-2",
                              description="Continue a prompt with a run folder (model.pt + tokenizer.json) "
                                          "or OpenAI's GPT-2.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="FOLDER", type=_folder, help="a run folder written by train")
    source.add_argument("--gpt2", metavar="SIZE", choices=list(GPT2_FILES),
                        help="OpenAI's GPT-2 (downloaded only with GPTLIB_ALLOW_DOWNLOAD=1 or --allow-download)")
    p.add_argument("--prompt", required=True, help="the text to continue (<|endoftext|> in it is the special token)")
    p.add_argument("--max-new-tokens", type=int, default=50, help="tokens to add (default 50)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); higher = more random")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="sample only from the nucleus of probability p")
    p.add_argument("--seed", type=int, default=123, help="random seed for sampling (default 123)")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole sequence at every step")
    p.add_argument("--stop-at-eos", action="store_true", help="stop at <|endoftext|>")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--allow-download", action="store_true", help="with --gpt2: allow downloading the weights")
    p.add_argument("--expected-sha256", default=None, help="with --gpt2: the hash to verify a download against")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from .runtime import pick_device
    from .tokenizer import end_of_text_id

    device = pick_device(args.device)
    if args.gpt2:
        from .download import load_gpt2
        from .vocab import get_encoding

        model = load_gpt2(args.gpt2, device=device, allow_download=True if args.allow_download else None,
                          expected_sha256=args.expected_sha256)
        tokenizer = get_encoding("gpt2")
    else:
        from .recipes import load_trained

        if not _given(args.checkpoint, "--checkpoint").is_dir():
            raise CommandError(f"--checkpoint: {args.checkpoint} is not a run folder (model.pt + tokenizer.json)")
        model, tokenizer, ckpt = load_trained(args.checkpoint, device)
        if "val_bits_per_byte" not in ckpt["extra"]:  # pretrain adds it once the run is complete
            steps = ckpt["train_config"].get("max_steps")
            print(f"note: the run in {args.checkpoint} stopped at step {ckpt['step']} of {steps}, before the end; "
                  "this is its last checkpoint (train --resume finishes it)", file=sys.stderr)
    eos_id = end_of_text_id(tokenizer) if args.stop_at_eos else None
    print(args.prompt + _continue(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature,
                                  args.top_k, args.top_p, args.seed, eos_id=eos_id, use_cache=not args.no_cache))
    return 0


def _continue(model, tokenizer, prompt: str, n_tokens: int, temperature: float, top_k, top_p, seed: int,
              **options) -> str:
    """The text ``model`` adds to ``prompt``; a CPU generator, so a seed gives the same text on every device."""
    import torch

    from .checks import whole_number
    from .generate import generate

    whole_number("--seed", seed, minimum=0, maximum=2**63 - 1)
    ids = tokenizer.encode(prompt, allowed_special="all")  # typed on purpose: "<|endoftext|>" starts a new document
    out = generate(model, ids, n_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   generator=torch.Generator().manual_seed(seed), **options)
    return tokenizer.decode(out[len(ids):].tolist())


# --------------------------------------------------------------------------- main
COMMANDS = [add_train_command, add_generate_command]


def build_parser(extra_commands: tuple = ()) -> argparse.ArgumentParser:
    """The parser of the GPT's commands, plus ``extra_commands`` (the classroom's, wired by ``__main__``)."""
    parser = argparse.ArgumentParser(prog="python -m gptlib",
                                     description="GPT from scratch in seven days: the course's command line.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in [*COMMANDS, *extra_commands]:
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None, extra_commands: tuple = ()) -> int:
    """Run a command; user mistakes become one line on stderr and exit status 2."""
    from .download import DownloadError
    from .train import LossNotFiniteError

    parser = build_parser(extra_commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CommandError, ValueError, TypeError, OSError, DownloadError, LossNotFiniteError, KeyboardInterrupt) as exc:
        # ValueError: CheckpointError too; OSError: a file missing or in the way, a full disk, a read-only folder
        if os.environ.get("GPTLIB_DEBUG"):  # developers: the whole traceback
            raise
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: checkpoints are written atomically, so the last is whole
            resume = " (train: continue it with --resume)" if args.command == "train" else ""
            parser.exit(130, f"python -m gptlib {args.command}: interrupted; the last saved checkpoint is intact"
                             f"{resume}\n")
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        parser.exit(2, f"python -m gptlib {args.command}: error: {message}\n")
