"""What the course needs from a learner's machine, measured: the numbers in README's "Requirements".

    .venv/bin/python benchmarks/requirements.py                                  # disk only (a second)
    .venv/bin/python benchmarks/requirements.py notebooks/day5_pretrain.ipynb    # and day 5's memory (minutes)

Each measurement is printed next to the value README.md states (kept in ``gptlib.course.doctor``, which
also uses them to judge free disk space), so a drift shows up here rather than on a learner's
machine:

- disk: the size of ``.venv`` and of ``checkpoints/`` (blocks actually used, like ``du``);
- memory: the peak resident set size of a notebook's kernel while ``jupyter nbconvert --execute``
  runs it top to bottom (``getrusage`` of the finished child processes, the same number as
  ``/usr/bin/time -v``: the largest of them is the kernel). README states day 5's, the largest.
  Unix only; the executed copy goes to a temporary folder, but day 5 does (re)write ``checkpoints/day5/``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gptlib.course.doctor import COURSE_NEEDS, folder_size

REPO = Path(__file__).resolve().parents[1]
MB = 1e6


def kernel_peak_rss(notebook: Path) -> tuple[float, float]:
    """(peak resident bytes of the largest child process, seconds) for one run of ``notebook``."""
    import resource  # Unix only

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        "--output-dir", out, str(notebook)], check=True, cwd=REPO, capture_output=True)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024), seconds  # macOS: bytes; Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path,
                        help="also run this notebook and measure its kernel's memory (README: day 5's)")
    args = parser.parse_args()
    venv = Path(sys.prefix)
    rows = [("disk: .venv", folder_size(venv), COURSE_NEEDS.venv_bytes),
            ("disk: checkpoints/", folder_size(REPO / "checkpoints"), COURSE_NEEDS.checkpoints_bytes)]
    if args.notebook:
        peak, seconds = kernel_peak_rss(args.notebook)
        rows.append((f"memory: {args.notebook.stem} peak RSS", peak, COURSE_NEEDS.day5_peak_rss_bytes))
        print(f"{args.notebook} ran in {seconds:.0f} s; README's memory figure is day 5's")
    print(f"{'what':<36} {'measured':>10} {'README':>10}")
    for what, measured, stated in rows:
        print(f"{what:<36} {measured / MB:>7,.0f} MB {stated / MB:>7,.0f} MB  ({measured / stated:.0%} of stated)")
    print(f"({venv} on {sys.platform}, Python {sys.version.split()[0]}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
