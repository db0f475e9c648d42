"""Benchmark: the hand-written BPETokenizer against tiktoken, on Tiny Shakespeare (1.1 MB).

Run from the repository root:  .venv/bin/python benchmarks/tokenizer.py [--vocab-size 4096] [--repeat 3]

Prints, measured in this one run on this machine:
- encode time of gptlib's GPT-2 tokenizer, cold (empty chunk cache) and warm (every chunk cached),
  tiktoken's time on the same text, and the ratio hand-written / tiktoken; checks the ids are equal;
- training time to ``--vocab-size`` on the same text, and merges per second.
Each timing is the best of ``--repeat`` runs (the cold runs use a fresh tokenizer each time).
"""
from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import gptlib
from gptlib.assets import tiny_shakespeare
from gptlib.tokenizer import BPETokenizer


def best_of(repeat: int, run: Callable[[], object], setup: Callable[[], object] = lambda: None) -> float:
    """The fastest of ``repeat`` timed calls of ``run`` (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeat):
        setup()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    text = tiny_shakespeare()
    reference = gptlib.get_encoding("gpt2")
    print(f"text: Tiny Shakespeare, {len(text):,} characters, {len(text.encode()):,} bytes; "
          f"python {platform.python_version()}")

    start = time.perf_counter()
    ours = BPETokenizer.from_gpt2()
    print(f"BPETokenizer.from_gpt2(): {time.perf_counter() - start:.2f} s to load 50,000 merges")

    ids, expected = ours.encode(text), reference.encode(text)
    if ids != expected:
        first = next(i for i, (a, b) in enumerate(zip(ids, expected)) if a != b)
        raise SystemExit(f"MISMATCH: ids differ from tiktoken from position {first}")
    print(f"ids equal to tiktoken gpt2: yes ({len(ids):,} tokens)")

    tiktoken_s = best_of(args.repeat, lambda: reference.encode(text))
    cold_s = best_of(args.repeat, lambda: ours.encode(text), setup=ours._cache.clear)
    warm_s = best_of(args.repeat, lambda: ours.encode(text))
    print(f"encode  tiktoken gpt2         : {tiktoken_s:7.3f} s")
    print(f"encode  BPETokenizer (cold)   : {cold_s:7.3f} s   ratio hand-written / tiktoken = {cold_s / tiktoken_s:5.1f}x")
    print(f"encode  BPETokenizer (warm)   : {warm_s:7.3f} s   ratio hand-written / tiktoken = {warm_s / tiktoken_s:5.1f}x")

    num_merges = args.vocab_size - 256
    start = time.perf_counter()
    trained = BPETokenizer.train(text, args.vocab_size)
    train_s = time.perf_counter() - start
    trained_ids = trained.encode(text)
    assert trained.decode(trained_ids) == text
    print(f"train   to vocab {args.vocab_size} ({num_merges} merges): {train_s:.2f} s, "
          f"{num_merges / train_s:,.0f} merges/s; it encodes the text to {len(trained_ids):,} tokens "
          f"({len(text.encode()) / len(trained_ids):.2f} bytes per token)")


if __name__ == "__main__":
    main()
