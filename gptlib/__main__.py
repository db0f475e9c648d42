"""Command line: ``python -m gptlib <command> ...``.

    python -m gptlib train --data my_text.txt --out my_run          # train a BPE tokenizer + a small GPT
    torchrun --nproc_per_node=2 -m gptlib train --data my_text.txt  # the same on 2 processes (DDP)
    python -m gptlib train --data my_text.txt --out my_run --resume # continue from my_run/model.pt
    python -m gptlib generate --checkpoint my_run --prompt "ROMEO:"  # sample from it (day 6)
    python -m gptlib figures --out figures                          # redraw the README's pictures

``train`` writes ``OUT/model.pt`` (checkpoint) and ``OUT/tokenizer.json``, and prints a sample of
generated text at each evaluation and at the end.

Adding a command: write ``add_<name>_command(subparsers)``, which creates the subparser and
sets ``func=<function(args) -> int>``, and list it in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_generate import add_generate_command
from .figures import add_figures_command


class CommandError(Exception):
    """A user mistake: printed as one line, exit status 2, no traceback."""


# --------------------------------------------------------------------------- train

def add_train_command(subparsers) -> None:
    p = subparsers.add_parser("train", help="pretrain a small GPT on your own text file",
                              description="Train a BPE tokenizer and a GPT model on a UTF-8 text file. "
                                          "The last --val-fraction of the text is held out for validation.")
    p.add_argument("--data", required=True, type=Path, help="UTF-8 text file to train on")
    p.add_argument("--out", type=Path, default=Path("gptlib-run"),
                   help="folder for model.pt and tokenizer.json (default: ./gptlib-run)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--tokenizer", choices=["bpe", "gpt2"], default="bpe",
                   help="bpe: train day 1's BPE on the text (default); gpt2: GPT-2's 50,257-token vocabulary")
    p.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary size incl. <|endoftext|> (default 1024)")
    p.add_argument("--context-length", type=int, default=128)
    p.add_argument("--emb-dim", type=int, default=128)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=16, help="windows per step and per process (default 16)")
    p.add_argument("--steps", type=int, default=500, help="optimizer steps (default 500)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-batches", type=int, default=10)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this much training time")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--sample-tokens", type=int, default=60, help="tokens to sample at each evaluation (0: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=train_command)


def train_command(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from . import distributed
    from .data import create_dataloader, train_val_split
    from .model import GPTConfig, GPTModel
    from .recipes import END_OF_TEXT, save_trained
    from .runtime import seed_everything
    from .tokenizer import BPETokenizer
    from .train import TrainConfig, bits_per_byte, evaluate, train

    try:
        text = args.data.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"--data: no such file: {args.data}") from None
    except UnicodeDecodeError:
        raise CommandError(f"--data: {args.data} is not UTF-8 text") from None
    device = distributed.init_distributed(args.device)
    main = distributed.is_main_process()
    checkpoint = args.out / "model.pt"
    if args.resume and not checkpoint.is_file():
        raise CommandError(f"--resume: no checkpoint at {checkpoint}; train without --resume first")
    if not args.resume and checkpoint.is_file():
        raise CommandError(f"{checkpoint} exists: pass --resume to continue it, or choose another --out")
    try:
        train_text, val_text = train_val_split(text, args.val_fraction)
        if args.resume:
            tokenizer = BPETokenizer.load(args.out / "tokenizer.json")
        elif args.tokenizer == "gpt2":
            tokenizer = BPETokenizer.from_gpt2()
        else:
            tokenizer = BPETokenizer.train(train_text, args.vocab_size - 1,
                                           special_tokens={END_OF_TEXT: args.vocab_size - 1})
        train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
        model_cfg = GPTConfig(tokenizer.n_vocab, args.context_length, args.emb_dim, args.n_heads,
                              args.n_layers, args.drop_rate, False)
        train_cfg = TrainConfig(max_steps=args.steps, lr=args.lr, warmup_steps=min(args.warmup_steps, args.steps),
                                eval_every=args.eval_every, eval_batches=args.eval_batches,
                                checkpoint_path=str(checkpoint), max_seconds=args.max_seconds,
                                progress=not args.no_progress)
        train_loader = create_dataloader(train_ids, args.batch_size, args.context_length, seed=args.seed)
        val_loader = create_dataloader(val_ids, args.batch_size, args.context_length, shuffle=False,
                                       drop_last=False)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if main and not args.resume:
        args.out.mkdir(parents=True, exist_ok=True)
        tokenizer.save(args.out / "tokenizer.json")
    seed_everything(args.seed)
    model = GPTModel(model_cfg).to(device)
    if main:
        print(f"{len(train_ids):,} training tokens, {len(val_ids):,} validation tokens, vocabulary "
              f"{tokenizer.n_vocab:,}, {model.num_parameters():,} parameters, device {device}, "
              f"{distributed.world_size()} process(es)", flush=True)

    def report(step: int, model: torch.nn.Module, history: dict) -> None:
        tqdm.write(f"step {step}: train loss {history['eval_train_loss'][-1]:.3f}, "
                   f"val loss {history['val_loss'][-1]:.3f}")
        if args.sample_tokens > 0:
            tqdm.write("  sample: " + repr(_sample(model, tokenizer, args.sample_tokens, args.seed)))

    try:
        train(model, train_loader, val_loader, train_cfg, on_eval=report,
              resume_from=checkpoint if args.resume else None, checkpoint_extra={"cli_args": _plain(args)})
    except ValueError as exc:  # e.g. a checkpoint made with other settings
        raise CommandError(str(exc)) from None
    val_loss = evaluate(model, val_loader)
    if main:
        bpb = bits_per_byte(val_loss, len(val_ids), len(val_text.encode("utf-8")))
        print(f"done: validation loss {val_loss:.4f} nats/token = {bpb:.4f} bits/byte; saved {checkpoint}")
    distributed.close_distributed()
    return 0


def _plain(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}


def _sample(model, tokenizer, n_tokens: int, seed: int) -> str:
    """A short continuation of a newline, sampled at temperature 0.8 with a fixed seed."""
    import torch

    from .generate import generate

    device = next(model.parameters()).device
    prompt = torch.tensor(tokenizer.encode("\n"), dtype=torch.long, device=device)
    out = generate(model, prompt, n_tokens, temperature=0.8, top_k=50,
                   generator=torch.Generator(device=device).manual_seed(seed))
    return tokenizer.decode(out[len(prompt):].tolist())


# --------------------------------------------------------------------------- main
COMMANDS = [add_train_command, add_generate_command, add_figures_command]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gptlib",
                                     description="GPT from scratch in seven days: the course's command line.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        parser.exit(2, f"python -m gptlib {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
