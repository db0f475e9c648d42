"""Generation speed: gptlib with and without the KV cache, against Hugging Face's generate.

All three decode greedily from the same weights (a randomly initialised GPT-2 small, 124M
parameters, shared by copying Hugging Face's state dict into our GPTModel), the same prompt,
the same number of new tokens, in one run on one device:

    .venv/bin/python benchmarks/generate.py                 # 200 new tokens on the best device
    .venv/bin/python benchmarks/generate.py --device cpu --new-tokens 100

It prints tokens/s for each, the cache's speed-up, and gptlib's ratio to Hugging Face, and
checks that the three produced the same tokens. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import time

import torch

from gptlib.generate import generate
from gptlib.model import GPTConfig, GPTModel
from gptlib.runtime import pick_device, synchronize
from gptlib.weights import load_hf_gpt2


def build_models(device: torch.device):
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12)).eval()
    hf.generation_config.eos_token_id = None  # always produce every requested token
    hf.generation_config.pad_token_id = 0
    ours = GPTModel(GPTConfig.preset("gpt2-small", drop_rate=0.0))
    load_hf_gpt2(ours, hf.state_dict())
    return hf.to(device), ours.to(device).eval()


def timed(fn, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Best wall time of ``repeats`` runs (after one warm-up), and the last output."""
    out = fn(4)  # warm-up: allocator, kernels, caches
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        out = fn(None)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--prompt-tokens", type=int, default=10)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per method (best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = pick_device(args.device)
    hf, ours = build_models(device)
    prompt = torch.randint(0, 50257, (1, args.prompt_tokens), generator=torch.Generator().manual_seed(1)).to(device)
    n = args.new_tokens

    with torch.no_grad():
        assert torch.allclose(ours(prompt), hf(prompt).logits, atol=1e-3), "weights were not copied correctly"

    def ours_run(use_cache):
        return lambda warm: generate(ours, prompt, warm or n, use_cache=use_cache)[0, args.prompt_tokens:]

    def hf_run(warm):
        with torch.no_grad():
            out = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=warm or n,
                              min_new_tokens=warm or n, do_sample=False, use_cache=True)
        return out[0, args.prompt_tokens:]

    results = {}
    for name, fn in [("gptlib, KV cache", ours_run(True)), ("gptlib, no cache", ours_run(False)),
                     ("Hugging Face generate (cache)", hf_run)]:
        seconds, tokens = timed(fn, device, args.repeats)
        results[name] = (n / seconds, tokens)

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"greedy decoding, GPT-2 small config (124M, random weights), prompt {args.prompt_tokens} tokens, "
          f"{n} new tokens, device {device}{threads}, torch {torch.__version__}")
    for name, (rate, _) in results.items():
        print(f"  {name:<32} {rate:8.1f} tokens/s")
    cached, uncached, hf_rate = (results[k][0] for k in results)
    print(f"  KV cache speed-up (cache / no cache):        {cached / uncached:5.2f}x")
    print(f"  gptlib with cache / Hugging Face with cache: {cached / hf_rate:5.2f}x")
    same = [torch.equal(results[k][1].cpu(), results['gptlib, KV cache'][1].cpu()) for k in results]
    print(f"  same greedy tokens in all three: {'yes' if all(same) else 'NO'}")


if __name__ == "__main__":
    main()
