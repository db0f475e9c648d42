"""``python -m gptlib generate``: continue a prompt with a trained checkpoint or OpenAI's GPT-2.

    python -m gptlib generate --checkpoint checkpoints/day5 --prompt "ROMEO:" --temperature 0.8 --top-k 40
    GPTLIB_ALLOW_DOWNLOAD=1 python -m gptlib generate --gpt2 124M --prompt "The meaning of life is"

``--checkpoint`` takes a folder written by ``save_trained`` / ``python -m gptlib train``
(``model.pt`` + ``tokenizer.json``) or a ``model.pt`` file; a checkpoint without a tokenizer
file must have GPT-2's vocabulary and is read with GPT-2's tokenizer. ``--gpt2`` loads
OpenAI's weights through ``gptlib.download`` (opt-in, sha256-verified, cached).

``add_generate_command(subparsers)`` registers the sub-command on the package's argparse CLI;
``main(argv)`` runs it on its own (``python -m gptlib.cli_generate ...``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_generate_command", "run_generate", "main"]


def add_generate_command(subparsers) -> argparse.ArgumentParser:
    """Add the ``generate`` sub-command to ``subparsers`` (from ``parser.add_subparsers()``).

    The parsed namespace carries ``func=run_generate``: call ``args.func(args)``.
    """
    p = subparsers.add_parser("generate", help="continue a prompt with a checkpoint or GPT-2",
                              description="Continue a prompt with a trained checkpoint or OpenAI's GPT-2.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH",
                        help="folder with model.pt + tokenizer.json (as saved by training), or a model.pt file")
    source.add_argument("--gpt2", metavar="SIZE", choices=["124M", "355M", "774M", "1558M"],
                        help="OpenAI's GPT-2 (downloaded only with GPTLIB_ALLOW_DOWNLOAD=1 or --allow-download)")
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=50, help="tokens to add (default 50)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); higher = more random")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="sample only from the nucleus of probability p")
    p.add_argument("--seed", type=int, default=123, help="random seed for sampling (default 123)")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole sequence at every step")
    p.add_argument("--stop-at-eos", action="store_true", help="stop at the tokenizer's <|endoftext|>")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--allow-download", action="store_true", help="with --gpt2: allow downloading the weights")
    p.add_argument("--expected-sha256", default=None, help="with --gpt2: the hash to verify a download against")
    p.set_defaults(func=run_generate)
    return p


def _load(args, device):
    """(model, tokenizer) named by the arguments."""
    from .vocab import get_encoding

    if args.gpt2:
        from .download import load_gpt2

        model = load_gpt2(args.gpt2, device=device, allow_download=True if args.allow_download else None,
                          expected_sha256=args.expected_sha256)
        return model, get_encoding("gpt2")
    path = Path(args.checkpoint)
    folder = path if path.is_dir() else path.parent
    if (folder / "tokenizer.json").is_file():
        from .recipes import load_trained

        if path.is_dir() or path.name == "model.pt":
            model, tokenizer, _ = load_trained(folder, device)
            return model, tokenizer
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: pass a model.pt file or the folder that holds it")
    from .checkpoint import load_model

    model = load_model(path, device)
    if model.cfg.vocab_size != 50257:
        raise ValueError(f"{path.name} has a {model.cfg.vocab_size}-token vocabulary but no tokenizer.json "
                         "next to it; put the tokenizer it was trained with beside it")
    return model, get_encoding("gpt2")


def run_generate(args: argparse.Namespace) -> int:
    """Load the model, generate, print prompt + continuation. Returns the exit status.

    A user mistake (bad sampling option, missing checkpoint, download not allowed or failed)
    is printed to stderr as one line and gives exit status 2, with no traceback.
    """
    from .download import DownloadError

    try:
        return _generate(args)
    except (ValueError, TypeError, FileNotFoundError, DownloadError) as exc:
        print(f"python -m gptlib generate: error: {exc}", file=sys.stderr)
        return 2


def _generate(args: argparse.Namespace) -> int:
    import torch

    from .generate import generate
    from .runtime import pick_device

    device = pick_device(args.device)
    model, tokenizer = _load(args, device)
    ids = tokenizer.encode(args.prompt)
    eos_id = None
    if args.stop_at_eos:
        specials = getattr(tokenizer, "special_tokens", None) or getattr(tokenizer, "_special_tokens", {})
        eos_id = specials.get("<|endoftext|>")
    gen = torch.Generator(device=device).manual_seed(args.seed)
    out = generate(model, ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, eos_id=eos_id, use_cache=not args.no_cache, generator=gen)
    print(args.prompt + tokenizer.decode(out[len(ids):].tolist()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``generate`` as a stand-alone command (``argv`` without the word "generate")."""
    parser = argparse.ArgumentParser(prog="python -m gptlib")
    add_generate_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["generate", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
