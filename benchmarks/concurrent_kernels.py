"""Two notebooks training at once: how much slower than one alone, and which setting removes the slowdown.

Each "kernel" is a process that times day 5's training step (``gptlib.waits.step_seconds``, the
recipe's model and batch shape). Every setting runs one process alone, then N at once; the table
gives the seconds per step and the slowdown against one process alone with PyTorch's defaults.

    python benchmarks/concurrent_kernels.py                 # 2 at once, 20 steps each
    python benchmarks/concurrent_kernels.py --kernels 3 --steps 40

On a shared machine the numbers move with the other load: run it on a quiet one for the README.
PyTorch's OpenMP threads spin for a while when they wait for work; two processes each spinning as
many threads as there are cores take the cores from each other. ``course.py lab`` starts JupyterLab
(and so every kernel) with the setting this script showed best on a quiet 2-core machine,
``GOMP_SPINCOUNT=1000`` (spin briefly, then sleep): two at once about as fast as PASSIVE, one alone as fast
as the defaults (PASSIVE cost a lone kernel about 12 %). docs/running.md has the table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WORKER = """
import sys, torch
from gptlib.recipes import DAY5
from gptlib.waits import step_seconds
print(f"{step_seconds(DAY5.model, DAY5.batch_size, 'cpu', steps=int(sys.argv[1])):.4f} {torch.get_num_threads()}")
"""


def settings(cores: int) -> dict[str, dict[str, str]]:
    """The environments compared (added to the current one, minus any OMP_* or GOMP_* it already had)."""
    return {
        "default": {},
        "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
        "GOMP_SPINCOUNT=1000": {"GOMP_SPINCOUNT": "1000"},  # what course.py sets
        f"OMP_NUM_THREADS={max(1, cores // 2)}": {"OMP_NUM_THREADS": str(max(1, cores // 2))},
        f"PASSIVE + {max(1, cores // 2)} threads": {"OMP_WAIT_POLICY": "PASSIVE",
                                                     "OMP_NUM_THREADS": str(max(1, cores // 2))},
    }


def run(n: int, extra: dict[str, str], steps: int) -> list[tuple[float, int]]:
    """Start ``n`` workers at once; (seconds per step, threads) of each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env.update(extra)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(steps)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        seconds, threads = out.split()
        results.append((float(seconds), int(threads)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=2, help="processes training at once (default 2)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process (default 20)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{cores} cores, load average {load:.1f} before the run; day 5's step, {args.steps} steps a process")
    baseline = None
    print(f"{'setting':<28} {'threads':>7} {'alone s/step':>13} {f'{args.kernels} at once':>12} {'slowdown':>9}")
    for name, extra in settings(cores).items():
        start = time.perf_counter()
        alone = run(1, extra, args.steps)[0]
        together = run(args.kernels, extra, args.steps)
        worst = max(s for s, _ in together)
        baseline = baseline or alone[0]
        print(f"{name:<28} {alone[1]:>7} {alone[0]:>13.3f} {worst:>12.3f} {worst / baseline:>8.1f}x"
              f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    print("slowdown: the slowest of the processes at once, against one alone with the defaults")


if __name__ == "__main__":
    main()
