"""Where to run and how to make runs repeatable: device choice, seeding, eval mode, random states.

This module is the one place that knows which devices the course runs on (``cpu``, ``cuda``,
``mps``) and which of them this machine has: ``pick_device`` chooses, ``device_problem`` says
why a name cannot be used, ``synchronize`` waits for a device to finish its queued work.

What repeats exactly, and where (README, "Determinism on each device"):

- **CPU**: a seeded run gives the same numbers every time on the same machine and thread count.
- **CUDA / Apple MPS**: seeding makes the random numbers the same, but some GPU kernels
  (the backward pass of embeddings and attention, cross-entropy) add in whatever order their
  threads finish, so training repeats only up to float rounding, not bit for bit.
- **Across devices**: the same seed gives the same initial weights (they are drawn on the CPU,
  then moved) and, with a CPU ``torch.Generator``, the same samples from the same probabilities.
"""
from __future__ import annotations

import os
import random
import time
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # torch is imported inside the functions: importing gptlib stays light on day 1
    import torch

__all__ = ["COURSE_DEVICES", "DEVICE_FIX", "available_devices", "device_problem", "pick_device", "synchronize",
           "seconds_per_call",
           "seed_everything", "evaluating", "rng_state", "set_rng_state"]

COURSE_DEVICES = ("cpu", "cuda", "mps")  # the device types the course is written and tested for
DEVICE_FIX = "unset GPTLIB_DEVICE or set it to cpu"  # the fix for a GPTLIB_DEVICE this machine cannot use


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_devices() -> list[str]:
    """The course's device types this machine can run on: always ``"cpu"``, then ``"cuda"``, ``"mps"`` if present."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])


def device_problem(name: str | torch.device, setting: str = "GPTLIB_DEVICE") -> str | None:
    """Why the device ``name`` cannot run the course here (one line), or None if it can.

    ``setting`` is where the name came from (``GPTLIB_DEVICE``, ``--device``...), so the line
    points at what to change. Only ``cpu``, ``cuda[:i]`` and ``mps`` are accepted: torch knows
    other names (``meta``, ``xpu``...), but the course is not written or tested for them.
    """
    import torch

    shown = f"{setting}={str(name)!r}"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        return f"{shown} is not a device torch knows; the course runs on {', '.join(COURSE_DEVICES)}"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
            return f"{shown} but this machine has no usable CUDA GPU (torch is {build})"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"{shown} but there are only {torch.cuda.device_count()} CUDA device(s)"
    elif device.type == "mps":
        if not _mps_available():
            return f"{shown} but Apple's MPS is not available here"
        if device.index not in (None, 0):
            return f"{shown} but a Mac has one MPS device, mps:0"
    elif device.type != "cpu":
        return f"{shown}: the course runs on {', '.join(COURSE_DEVICES)}"
    return None


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``prefer``, else ``GPTLIB_DEVICE``, else CUDA, then Apple's MPS, then the CPU.

    ``GPTLIB_DEVICE`` (e.g. ``cpu``) lets the same notebook run on a laptop or a GPU with no
    other change. A name this machine cannot use raises a one-line ``ValueError`` that names
    the devices available here and the fix, rather than failing later inside torch.
    """
    import torch

    if prefer is not None and str(prefer):
        problem = device_problem(prefer, "device")
        if problem:
            raise ValueError(f"{problem}; available here: {', '.join(available_devices())}")
        return torch.device(prefer)
    name = os.environ.get("GPTLIB_DEVICE")
    if name:
        problem = device_problem(name)
        if problem:
            raise ValueError(f"{problem} (available here: {', '.join(available_devices())}): {DEVICE_FIX}")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device: str | torch.device) -> None:
    """Wait until ``device`` has finished the work queued on it (a no-op on the CPU).

    GPUs run asynchronously: a call returns as soon as its kernel is queued, so a timer read
    without synchronising measures the queueing, not the work. CUDA and Apple MPS both need it.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seconds_per_call(fn: Callable[[], Any], calls: int, device: str | torch.device) -> float:
    """Mean seconds of ``fn()`` on ``device`` over ``calls`` calls, after one warm-up call (allocations,
    kernel choice), the device synchronised before and after."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / calls


def seed_everything(seed: int = 123) -> None:
    """Seed Python, NumPy (if present) and torch on every device, and pin full float32 matmuls.

    ``torch.manual_seed`` also seeds the CUDA and MPS generators. The matmul precision is set to
    ``"highest"`` (torch's default) because an environment or a library that switches on
    TensorFloat-32 would make GPU matmuls round to 10 mantissa bits, and the course's printed
    equality checks (hand-written vs library, ``allclose``) would then fail on a GPU.
    """
    import torch

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    torch.set_float32_matmul_precision("highest")


@contextmanager
def evaluating(model) -> Iterator:
    """Inside the block: eval mode (dropout off) and no gradients. Afterwards the model is back in
    the mode it was in, so a helper never silently switches a training run to eval mode."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- random states
def rng_state() -> dict[str, Any]:
    """Every random state a training run draws from, as CPU tensors and lists (loadable with weights_only).

    Keys: ``torch`` (CPU), ``python``, ``numpy`` (if installed), ``cuda`` (one state per GPU,
    when CUDA is in use) and ``mps`` (on a Mac with MPS): dropout on a GPU draws from the GPU's
    own generator, so a resumed GPU run needs that state too.
    """
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(_flatten_python_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if _mps_available():
        state["mps"] = torch.mps.get_rng_state()
    try:
        import numpy as np

        name, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = {"keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    except ImportError:
        pass
    return state


def _flatten_python_state() -> list[int]:
    version, internal, gauss = random.getstate()
    return [version, *internal] + ([] if gauss is None else [gauss])


def _on_cpu(value: Any, what: str) -> torch.Tensor:
    """A saved random state as a CPU tensor, wherever ``torch.load``'s ``map_location`` put it.

    A state on ``meta`` holds no numbers at all (torch would fail with "Cannot copy out of meta
    tensor"): that is a clear error here, before any generator is changed.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise ValueError(f"saved random state {what!r} is a {type(value).__name__}: the checkpoint is damaged")
    if value.device.type == "meta":
        raise ValueError(f"saved random state {what!r} is on the meta device: load it with map_location='cpu'")
    return value.cpu()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states saved by ``rng_state``, wherever ``torch.load`` put their tensors.

    Every state is checked and brought to the CPU first, so a bad one changes nothing. Devices:

    - CUDA: the states of the GPUs both machines have are restored (``cuda:0`` first). When this
      machine has more GPUs than the checkpoint holds states for, the others keep their state
      and a warning says so: a run drawing random numbers there would not repeat the original.
      States of GPUs this machine lacks are skipped without a word: nothing here can draw from
      them (a checkpoint from a 4-GPU machine resumes exactly on cuda:0 of a 1-GPU laptop).
    - MPS: restored on a Mac with MPS; skipped elsewhere, for the same reason.
    """
    import torch

    cpu_state = _on_cpu(state["torch"], "torch")
    cuda_states = [_on_cpu(s, "cuda") for s in state.get("cuda", [])]
    mps_state = _on_cpu(state["mps"], "mps") if "mps" in state else None
    numpy_keys = _on_cpu(state["numpy"]["keys"], "numpy") if "numpy" in state else None

    torch.set_rng_state(cpu_state)
    if cuda_states and torch.cuda.is_available() and torch.distributed.is_available() \
            and torch.distributed.is_initialized():
        # under torchrun every process seeds alike and draws alike, so all GPUs' generators agree:
        # each process restores the first process's GPU state (the one that was advanced) into its own
        torch.cuda.set_rng_state(cuda_states[0], torch.cuda.current_device())
    elif cuda_states and torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        for index, cuda_state in enumerate(cuda_states[:gpus]):
            torch.cuda.set_rng_state(cuda_state, index)
        if len(cuda_states) < gpus:
            warnings.warn(f"the checkpoint holds random states for {len(cuda_states)} CUDA device(s) but this "
                          f"machine has {gpus}: cuda:{len(cuda_states)} and above keep their own, so random "
                          "numbers drawn there (dropout) will not repeat the original run", RuntimeWarning,
                          stacklevel=2)
    if mps_state is not None and _mps_available():
        torch.mps.set_rng_state(mps_state)
    py = state["python"]
    random.setstate((py[0], tuple(py[1:626]), py[626] if len(py) > 626 else None))
    if numpy_keys is not None:
        try:
            import numpy as np

            s = state["numpy"]
            np.random.set_state(("MT19937", numpy_keys.numpy().astype("uint32"), s["pos"], s["has_gauss"],
                                 s["cached_gaussian"]))
        except ImportError:
            pass
