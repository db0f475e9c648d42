"""Training speed: one forward + backward + AdamW step of gptlib's GPTModel against Hugging Face's
GPT2LMHeadModel, same shapes, same weights, same data, same loss, measured in the same run.

    .venv/bin/python benchmarks/train_step.py                # gpt2-small 2x256 and cpu-small 8x128
    .venv/bin/python benchmarks/train_step.py --device cuda --steps 20

Both models are built from one random Hugging Face GPT-2 whose state dict is copied into ours
with ``load_hf_gpt2`` (so the work is the same, apples to apples: our output head is tied to the
token embedding as Hugging Face's ``lm_head`` is to ``wte``, ``GPTConfig(tie_weights=True)``),
both in training mode with the config's dropout. The loss is the same ``F.cross_entropy`` on the
logits for both. Steps alternate between the runners so a busy machine slows all alike; warm-up
steps are not timed. ``cpu-small`` is run with ``qkv_bias=True`` because GPT-2 always has those
biases.

Three runners: ``gptlib`` with the optimizer its training loop uses (``make_optimizer``: AdamW
with ``fused=True`` on the CPU and CUDA), ``gptlib, loop AdamW`` with torch's default AdamW (a
loop over tensors on the CPU: what gptlib used before, to show what the fused update buys), and
``HF`` with torch's default AdamW (what Hugging Face's Trainer uses, ``adamw_torch``). Printed:
median tokens/s of each, and the ratios gptlib / HF (> 1: gptlib is faster) before and after.
Measured on the 2-core CI machine: the optimizer step of gpt2-small took 632 ms as torch's default
loop, 260 ms with ``foreach`` and 51 ms fused (cpu-small: 17 / 16 / 4.7 ms).

A last section times the attention projections alone: one fused ``qkv`` Linear (what
``MultiHeadAttention`` uses) against three separate W_query / W_key / W_value Linears.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from gptlib.model import GPTConfig, GPTModel
from gptlib.runtime import pick_device, synchronize
from gptlib.train import make_optimizer
from gptlib.weights import load_hf_gpt2


def build_pair(cfg: GPTConfig, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(ours, Hugging Face) with identical weights."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    hf_config = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.context_length, n_embd=cfg.emb_dim,
                           n_layer=cfg.n_layers, n_head=cfg.n_heads, resid_pdrop=cfg.drop_rate,
                           embd_pdrop=cfg.drop_rate, attn_pdrop=cfg.drop_rate)
    hf = GPT2LMHeadModel(hf_config)
    ours = load_hf_gpt2(GPTModel(cfg), hf.state_dict())
    return ours.to(device).train(), hf.to(device).train()


def make_step(model: nn.Module, is_hf: bool, fused: bool = False):
    """A closure doing one full training step on (inputs, targets); returns the loss."""
    if fused:
        optimizer = make_optimizer(model, lr=1e-4, weight_decay=0.1)  # what gptlib.train uses
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)  # torch's default

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> float:
        logits = model(inputs).logits if is_hf else model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def compare(name: str, cfg: GPTConfig, batch: int, seq: int, warmup: int, steps: int, device: torch.device) -> None:
    ours, hf = build_pair(cfg, device)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, cfg.vocab_size, (batch, seq + 1), generator=g).to(device)
    inputs, targets = data[:, :-1], data[:, 1:]
    runners = {"gptlib": make_step(ours, False, fused=True), "gptlib, loop AdamW": make_step(copy.deepcopy(ours), False),
               "HF": make_step(hf, True)}
    times: dict[str, list[float]] = {k: [] for k in runners}
    losses: dict[str, float] = {}
    for i in range(warmup + steps):
        for key, step in runners.items():  # alternate, so background load hits both alike
            synchronize(device)
            start = time.perf_counter()
            losses[key] = step(inputs, targets)
            synchronize(device)
            if i >= warmup:
                times[key].append(time.perf_counter() - start)
    tokens = batch * seq
    rate = {k: tokens / statistics.median(v) for k, v in times.items()}
    print(f"{name:<11} batch {batch} x {seq}, {steps} timed steps after {warmup} warm-up:")
    for key in runners:
        print(f"  {key:<18} {rate[key]:>9.0f} tokens/s  (median step {statistics.median(times[key]) * 1000:.0f} ms, "
              f"last loss {losses[key]:.3f})")
    print(f"  ratio gptlib / HF: {rate['gptlib'] / rate['HF']:.2f}x "
          f"(with torch's default AdamW, as before: {rate['gptlib, loop AdamW'] / rate['HF']:.2f}x)")
    del ours, hf, runners


def compare_projections(device: torch.device, d: int = 768, batch: int = 2, seq: int = 256, repeats: int = 20) -> None:
    """Forward + backward of the q/k/v projections: one fused Linear vs three."""
    fused = nn.Linear(d, 3 * d).to(device)
    separate = nn.ModuleList(nn.Linear(d, d) for _ in range(3)).to(device)
    x = torch.randn(batch, seq, d, device=device, requires_grad=True)

    def run_fused():
        q, k, v = fused(x).split(d, dim=-1)
        (q.sum() + k.sum() + v.sum()).backward()

    def run_separate():
        q, k, v = (layer(x) for layer in separate)
        (q.sum() + k.sum() + v.sum()).backward()

    times = {"fused qkv": [], "separate": []}
    for i in range(repeats + 3):
        for key, fn in (("fused qkv", run_fused), ("separate", run_separate)):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            if i >= 3:
                times[key].append(time.perf_counter() - start)
    median = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"q/k/v projections, d={d}, batch {batch} x {seq}, forward + backward:")
    print(f"  fused qkv {median['fused qkv']:.2f} ms, separate {median['separate']:.2f} ms, "
          f"ratio separate / fused: {median['separate'] / median['fused qkv']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps for both configs (default: 3 and 10)")
    args = parser.parse_args()
    device = pick_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    compare("gpt2-small", GPTConfig.preset("gpt2-small", tie_weights=True), batch=2, seq=256, warmup=1,
            steps=args.steps or 3, device=device)
    compare("cpu-small", GPTConfig.preset("cpu-small", qkv_bias=True, tie_weights=True), batch=8, seq=128, warmup=2,
            steps=args.steps or 10, device=device)
    compare_projections(device)


if __name__ == "__main__":
    main()
