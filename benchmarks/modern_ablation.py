"""The bonus day's ablation: each modern part alone on day 5's recipe, then the modern recipe, at equal wall time.

    .venv/bin/python benchmarks/modern_ablation.py                  # 8 variants x 3 seeds x day 5's time: ~1 h, 2 cores
    .venv/bin/python benchmarks/modern_ablation.py --budget 60 --seeds 1,2,3,4,5

**Equal wall time, counted in steps.** Each variant's seconds per training step (forward, backward, clipping,
its optimizer) are timed first, on this machine, in interleaved rounds (the fastest round of each counts: the
least disturbed). Each variant then trains for ``budget / seconds per step`` steps, with day 5's schedule
(warm-up, cosine) fitted to that count. The default budget is day 5's: its 2,300 steps at day 5's measured
step time, so the baseline is exactly day 5's recipe. The comparison is at equal time on this machine, and the runs
themselves are deterministic: whatever else the machine does meanwhile, the same numbers come out.

**Seeds.** A seed fixes the initial weights and the order of the batches; every variant runs on the same
seeds, so each one's difference to day 5 is paired by seed. A difference is called real when its mean is
larger than its t-interval (95 %, Student's t with seeds - 1 degrees of freedom): with 3 seeds, when
``|mean| > 4.30 * std / sqrt(3)``.

Printed: a table (bits/byte on the whole validation split, mean ± std over seeds; the paired difference to
day 5; seconds per step; steps). Written: ``--out`` (JSON, read by ``notebooks/day8_modern.ipynb``) and
``--figure`` (the same numbers as bars).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from paired import paired_difference

from gptlib.data import create_dataloader
from gptlib.model import GPTConfig
from gptlib.modern import MODERN, ModernConfig
from gptlib.recipes import DAY5, day5_texts, day5_tokenizer
from gptlib.runtime import pick_device, seed_everything
from gptlib.train import TrainConfig, bits_per_byte, evaluate, train
from gptlib.waits import step_seconds


def variants() -> dict[str, tuple[GPTConfig, TrainConfig]]:
    """Name -> (model, training): day 5, each modern part alone on it, and the modern recipe."""
    base = ModernConfig(**DAY5.model.to_dict())  # every switch off: day 5's GPTModel, the same weights
    one_part = {"RMSNorm": dict(norm="rms"), "RoPE": dict(positions="rope"), "SwiGLU": dict(ffn="swiglu"),
                "GQA, 2 key/value heads": dict(n_kv_heads=2), "QK-norm": dict(qk_norm=True),
                f"Muon (lr {MODERN.model.muon_lr})": dict(muon_lr=MODERN.model.muon_lr)}
    return {"day 5 (GPT-2's parts)": (base, DAY5.train),
            **{name: (replace(base, **switch), DAY5.train) for name, switch in one_part.items()},
            "modern recipe": (MODERN.model, MODERN.train)}


def fastest_step_seconds(cfgs: dict[str, tuple[GPTConfig, TrainConfig]], batch_size: int, device: torch.device,
                         rounds: int, steps: int) -> dict[str, float]:
    """Each variant's seconds per training step as ``train`` takes it (``gptlib.waits.step_seconds``: forward,
    backward, clipping, its optimizer, the schedule): the fastest of ``rounds`` interleaved rounds."""
    best = {name: math.inf for name in cfgs}
    for _ in range(rounds):
        for name, (cfg, train_cfg) in cfgs.items():
            best[name] = min(best[name], step_seconds(cfg, batch_size, device, steps, train_cfg=train_cfg))
    return best


def run(cfg: GPTConfig, train_cfg: TrainConfig, steps: int, seed: int, ids: dict, device: torch.device) -> float:
    """Train one variant for ``steps`` steps on one seed; its bits/byte on the whole validation split."""
    train_loader = create_dataloader(ids["train"], DAY5.batch_size, cfg.context_length, seed=seed,
                                     vocab_size=cfg.vocab_size)
    val_loader = create_dataloader(ids["val"], DAY5.batch_size, cfg.context_length, shuffle=False, drop_last=False)
    seed_everything(seed)
    model = cfg.build().to(device)
    train(model, train_loader, val_loader, replace(train_cfg, max_steps=steps, eval_every=steps, eval_at_start=False,
                                                   progress=False))
    return bits_per_byte(evaluate(model, val_loader), len(ids["val"]), ids["val_bytes"])


def summarise(bpb: dict[str, list[float]], seconds: dict[str, float], steps: dict[str, int]) -> list[dict]:
    """One row per variant: mean and std over seeds, the paired difference to day 5 and whether it is real."""
    base = next(iter(bpb.values()))
    rows = []
    for name, values in bpb.items():
        mean_diff, margin = paired_difference(base, values)
        rows.append(dict(variant=name, bpb=values, mean=statistics.mean(values),
                         std=statistics.stdev(values) if len(values) > 1 else 0.0,
                         diff=mean_diff, diff_margin=margin, real=bool(name != next(iter(bpb)) and abs(mean_diff) > margin),
                         seconds_per_step=seconds[name], steps=steps[name]))
    return rows


def plot(rows: list[dict], budget: float, seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    names = [r["variant"] for r in rows][::-1]
    means, errors = [r["mean"] for r in rows][::-1], [r["std"] for r in rows][::-1]
    colors = ["tab:green" if r["real"] and r["diff"] < 0 else "tab:red" if r["real"] else "0.6" for r in rows][::-1]
    colors[-1] = "black"  # day 5, the baseline
    ax.barh(names, means, xerr=errors, color=colors, capsize=3)
    for y, r in enumerate(rows[::-1]):
        ax.plot(r["bpb"], [y] * len(r["bpb"]), "k.", ms=4)
    low = min(min(r["bpb"]) for r in rows)
    ax.set_xlim(low - 0.03, max(max(r["bpb"]) for r in rows) + 0.02)
    ax.axvline(rows[0]["mean"], color="black", lw=0.8, ls="--")
    ax.set_xlabel(f"validation bits/byte after {budget:.0f} s of training (mean ± std, {len(seeds)} seeds; dots: runs)")
    ax.set_title("Each modern part alone on day 5's recipe, at equal time\n(green: better, red: worse, grey: "
                 "within the seeds' noise)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of training per run (default: day 5's steps at day 5's step time)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=Path("figures/modern_ablation.json"))
    parser.add_argument("--figure", type=Path, default=Path("figures/modern_ablation.png"))
    args = parser.parse_args()
    device, seeds = pick_device(args.device), [int(s) for s in args.seeds.split(",")]
    print(f"device {device}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    train_text, val_text = day5_texts()
    tokenizer = day5_tokenizer(train_text)
    ids = dict(train=tokenizer.encode(train_text), val=tokenizer.encode(val_text), val_bytes=len(val_text.encode()))
    cfgs = {name: (replace(cfg, vocab_size=tokenizer.n_vocab), t) for name, (cfg, t) in variants().items()}
    seconds = fastest_step_seconds(cfgs, DAY5.batch_size, device, rounds=5, steps=20)
    budget = args.budget or DAY5.train.max_steps * next(iter(seconds.values()))
    steps = {name: round(budget / s) for name, s in seconds.items()}
    print("seconds per step: " + ", ".join(f"{n} {s:.4f}" for n, s in seconds.items()) + f"; budget {budget:.1f} s",
          flush=True)
    bpb: dict[str, list[float]] = {name: [] for name in cfgs}
    began = time.perf_counter()
    for seed in seeds:
        for name, (cfg, train_cfg) in cfgs.items():
            bpb[name].append(run(cfg, train_cfg, steps[name], seed, ids, device))
            print(f"seed {seed} {name:<26} {steps[name]:>5} steps  {bpb[name][-1]:.4f} bits/byte", flush=True)
    rows = summarise(bpb, seconds, steps)
    print(f"\n{'variant':<26} {'bits/byte':>17} {'vs day 5':>17} {'real?':>6} {'s/step':>7} {'steps':>6}")
    for r in rows:
        print(f"{r['variant']:<26} {r['mean']:>9.4f} ± {r['std']:.4f} {r['diff']:>+9.4f} ± {r['diff_margin']:.4f} "
              f"{'yes' if r['real'] else 'no':>6} {r['seconds_per_step']:>7.4f} {r['steps']:>6}")
    result = dict(budget_s=budget, seeds=seeds, device=str(device), threads=torch.get_num_threads(),
                  torch=torch.__version__, machine=platform.machine(), cpus=os.cpu_count(),
                  minutes=round((time.perf_counter() - began) / 60, 1), modern_recipe=MODERN.to_dict(), rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(rows, budget, seeds, args.figure)
    print(f"\nwrote {args.out} and {args.figure} ({result['minutes']} min of training)")


if __name__ == "__main__":
    main()
