"""Stride in day 5's own regime: the whole recipe (2,300 steps, ~13.6 epochs) with stride 1 and stride = max_length.

    .venv/bin/python benchmarks/stride.py                      # 2 strides x 3 seeds x day 5's recipe: ~15 min, 2 cores
    .venv/bin/python benchmarks/stride.py --seeds 1 --steps 500

Day 5 measures stride over 80 steps, where both strides read a small part of either set of windows and
cannot differ. Its recipe lives in another regime: 2,300 steps of 16 windows read the 2,709 disjoint
windows of the training split about 13.6 times, and over-fit a little by the end. Stride 1 has 128 times
more windows (each token is a target at 128 different positions), so the same 2,300 steps never read a
window twice. Whether that delays over-fitting is what this script measures.

**Same everything but the stride.** Each run is day 5's recipe (``gptlib.recipes.DAY5``: its tokenizer,
model, schedule, 2,300 steps and batch of 16 windows of 128 tokens), so a step costs the same whatever the
stride: equal steps are equal time. A seed fixes the initial weights and the batches' order; both strides
run on the same seeds, so their difference is paired by seed, and called real when it is larger than its
95 % t-interval (``benchmarks/paired.py``). The runs are deterministic on the CPU: the
same numbers come out whatever else the machine does.

Printed and written to ``--out`` (JSON, read by ``notebooks/day5_pretrain.ipynb``): per stride and seed,
validation bits/byte on the whole validation split, the training loss on the disjoint training windows
(the same windows for both strides, so the gap between the two losses is comparable), and the periodic
validation estimates (the recipe's 5 batches every 100 steps) to see when each run starts to over-fit.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from paired import paired_difference

from gptlib.data import create_dataloader
from gptlib.recipes import DAY5, day5_texts, day5_tokenizer
from gptlib.runtime import pick_device, seed_everything
from gptlib.train import bits_per_byte, evaluate, train

def run(stride: int, seed: int, steps: int, ids: dict, device: torch.device) -> dict:
    """Day 5's recipe with ``stride`` on one seed: final whole-split losses and the periodic validation curve."""
    cfg = replace(DAY5.model, vocab_size=ids["vocab_size"])
    train_loader = create_dataloader(ids["train"], DAY5.batch_size, cfg.context_length, stride=stride, seed=seed,
                                     vocab_size=cfg.vocab_size)
    disjoint_train = create_dataloader(ids["train"], DAY5.batch_size, cfg.context_length, shuffle=False,
                                       drop_last=False)
    val_loader = create_dataloader(ids["val"], DAY5.batch_size, cfg.context_length, shuffle=False, drop_last=False)
    seed_everything(seed)
    model = cfg.build().to(device)
    start = time.perf_counter()
    history = train(model, train_loader, val_loader, replace(DAY5.train, max_steps=steps, progress=False))
    seconds = time.perf_counter() - start
    val_loss, train_loss = evaluate(model, val_loader), evaluate(model, disjoint_train)
    return dict(stride=stride, seed=seed, windows=len(train_loader.dataset), seconds=round(seconds, 1),
                epochs=steps * DAY5.batch_size / len(train_loader.dataset),
                bits_per_byte=bits_per_byte(val_loss, len(ids["val"]), ids["val_bytes"]),
                val_loss=val_loss, train_loss=train_loss,
                curve=dict(step=history["eval_step"], val_loss=history["val_loss"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=DAY5.train.max_steps)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=Path("figures/stride.json"))
    args = parser.parse_args()
    device, seeds = pick_device(args.device), [int(s) for s in args.seeds.split(",")]
    print(f"device {device}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}", flush=True)
    train_text, val_text = day5_texts()
    tokenizer = day5_tokenizer(train_text)
    ids = dict(train=tokenizer.encode(train_text), val=tokenizer.encode(val_text), val_bytes=len(val_text.encode()),
               vocab_size=tokenizer.n_vocab)
    strides = (DAY5.model.context_length, 1)  # day 5's stride first: the baseline
    runs = []
    for seed in seeds:
        for stride in strides:
            runs.append(run(stride, seed, args.steps, ids, device))
            r = runs[-1]
            print(f"seed {seed} stride {stride:>3}: {r['windows']:>7,} windows, {r['epochs']:5.2f} epochs, "
                  f"{r['bits_per_byte']:.4f} bits/byte (val loss {r['val_loss']:.4f}, train loss "
                  f"{r['train_loss']:.4f}), {r['seconds']:.0f} s", flush=True)
    by_stride = {s: [r for r in runs if r["stride"] == s] for s in strides}
    mean_diff, margin = paired_difference(*([r["bits_per_byte"] for r in by_stride[s]] for s in strides))
    summary = {str(s): dict(bits_per_byte=statistics.mean(r["bits_per_byte"] for r in rs),
                            gap=statistics.mean(r["val_loss"] - r["train_loss"] for r in rs))
               for s, rs in by_stride.items()}
    print(f"\nstride 1 minus stride {strides[0]}: {mean_diff:+.4f} ± {margin:.4f} bits/byte "
          f"({'real' if abs(mean_diff) > margin else 'within the noise between seeds'})")
    for s, row in summary.items():
        print(f"stride {s:>3}: mean {row['bits_per_byte']:.4f} bits/byte, validation - training loss {row['gap']:.4f}")
    result = dict(steps=args.steps, seeds=seeds, device=str(device), threads=torch.get_num_threads(),
                  torch=torch.__version__, machine=platform.machine(), cpus=os.cpu_count(), recipe=DAY5.to_dict(),
                  diff=mean_diff, diff_margin=margin, real=bool(abs(mean_diff) > margin), summary=summary, runs=runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
