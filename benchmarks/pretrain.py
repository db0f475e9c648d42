"""Pretraining speed: training tokens/s and model FLOPs utilisation (MFU) against this machine's matmul peak.

    .venv/bin/python benchmarks/pretrain.py [--device cpu|cuda] [--steps 3] [--skip-gpt2]

The reference is measured in the same run: the FLOP/s of a large float32 matmul
(``--matmul-size``, default 2048; bf16 on a GPU is not used, training here is float32). A
training step does about ``6 * N`` FLOPs per token for the N parameters that take part in
matmuls (forward 2N, backward 4N; the embedding lookups are not matmuls), plus attention's
``12 * n_layers * emb_dim * T`` per token for a window of T tokens (the PaLM paper's count).
MFU = achieved model FLOP/s / measured matmul FLOP/s.

Configurations: the day 5 recipe (gptlib.recipes) and GPT-2 small (124M parameters, window 256
on a CPU so that a step stays within seconds).
"""
from __future__ import annotations

import argparse
import time

import torch

from gptlib.model import GPTConfig, GPTModel
from gptlib.recipes import DAY5_RECIPE, day5_model_config, day5_train_config
from gptlib.runtime import pick_device, synchronize
from gptlib.train import batch_loss, make_optimizer, make_scheduler


def matmul_flops(device: torch.device, n: int, seconds: float = 1.0) -> float:
    """FLOP/s of repeated n x n float32 matmuls (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    synchronize(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        if device.type != "cpu" and count % 50:  # a GPU queues work: wait every 50 only
            continue
        synchronize(device)
    synchronize(device)
    return 2 * n ** 3 * count / (time.perf_counter() - start)


def flops_per_token(model: GPTModel, window: int) -> float:
    cfg = model.cfg
    matmul_params = model.num_parameters() - model.tok_emb.weight.numel() - model.pos_emb.weight.numel()
    return 6 * matmul_params + 12 * cfg.n_layers * cfg.emb_dim * window


def train_speed(cfg: GPTConfig, batch: int, window: int, steps: int, device: torch.device) -> tuple[float, float]:
    """(tokens/s, model FLOP/s) of full training steps: forward, backward, clip, AdamW, schedule."""
    torch.manual_seed(0)
    model = GPTModel(cfg).to(device).train()
    train_cfg = day5_train_config(max_steps=1000)
    optimizer = make_optimizer(model, train_cfg.lr, train_cfg.weight_decay, train_cfg.betas)
    scheduler = make_scheduler(optimizer, train_cfg)
    x = torch.randint(0, cfg.vocab_size, (batch, window + 1), device=device)

    def step() -> None:
        loss = batch_loss(model, x[:, :-1], x[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        float(loss.detach())  # the loop reads the loss every step (NaN guard, logging)

    step()  # warm-up: allocations, kernel selection
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    elapsed = time.perf_counter() - start
    tokens = steps * batch * window
    return tokens / elapsed, tokens * flops_per_token(model, window) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up step)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--skip-gpt2", action="store_true", help="only the day 5 configuration")
    args = parser.parse_args()
    device = pick_device(args.device)
    peak = max(matmul_flops(device, args.matmul_size) for _ in range(3))  # best of 3: least disturbed
    print(f"device {device}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    print(f"reference: {args.matmul_size}x{args.matmul_size} float32 matmul = {peak / 1e9:,.1f} GFLOP/s")
    day5 = day5_model_config()
    runs = [("day 5 recipe", day5, DAY5_RECIPE["batch_size"], day5.context_length, args.steps * 3)]
    if not args.skip_gpt2:
        gpt2 = GPTConfig.preset("gpt2-small", drop_rate=0.0)
        window = 1024 if device.type == "cuda" else 256
        runs.append(("gpt2-small", gpt2, 8 if device.type == "cuda" else 2, window, args.steps))
    print(f"{'configuration':<14} {'params':>12} {'batch x T':>10} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>7}")
    for name, cfg, batch, window, steps in runs:
        params = sum(p.numel() for p in GPTModel(cfg).parameters())
        tokens_per_s, flops = train_speed(cfg, batch, window, steps, device)
        print(f"{name:<14} {params:>12,} {f'{batch}x{window}':>10} {tokens_per_s:>10,.0f} {flops / 1e9:>9,.1f} "
              f"{flops / peak:>7.1%}")


if __name__ == "__main__":
    main()
