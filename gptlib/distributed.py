"""Day 5: the same training on several processes, with DistributedDataParallel (DDP).

``torchrun --nproc_per_node=N script.py`` starts N copies of a script and tells each its rank
through environment variables. Each copy holds the whole model, trains on its own share of
every batch, and DDP averages the gradients across processes during ``backward()``, so all
copies take the same optimizer step and stay identical. N processes with ``batch_size`` b
each train exactly like one process with ``batch_size`` N*b.

Backends: ``gloo`` on CPU, ``nccl`` on NVIDIA GPUs (one GPU per process, ``LOCAL_RANK``).
Apple's MPS cannot take part (gloo moves only CPU and CUDA tensors): see ``init_distributed``.
Without a process group every helper here is a no-op, so single-process code stays unchanged.
"""
from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["init_distributed", "close_distributed", "is_distributed", "world_size", "rank",
           "is_main_process", "barrier", "wrap_model", "all_reduce_mean", "mean_of", "broadcast_int"]


def is_distributed() -> bool:
    """True inside a running process group (e.g. under torchrun, after ``init_distributed``)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """Only the first process prints, samples and writes checkpoints."""
    return rank() == 0


def init_distributed(device: str | torch.device | None = None) -> torch.device:
    """Join the process group torchrun describes (``RANK``/``WORLD_SIZE``/``MASTER_ADDR``...) and pick this process's device.

    Outside torchrun (no ``WORLD_SIZE`` > 1) it only returns the device (``runtime.pick_device``,
    which refuses, in one line, a device this machine lacks). Under torchrun:

    - **CUDA**: one GPU per process, ``cuda:LOCAL_RANK``, backend ``nccl`` (``gloo`` where torch
      has no NCCL, e.g. Windows). More processes on this machine than GPUs is refused with a
      one-line ``ValueError`` in every process, before any GPU is touched: NCCL cannot share a
      GPU between processes, and ``cuda:1`` on a one-GPU machine would fail deep inside torch.
    - **Apple MPS**: DDP's ``gloo`` backend moves only CPU and CUDA tensors, so the first
      collective would fail. Asked for explicitly (``--device mps`` or ``GPTLIB_DEVICE=mps``), it
      is refused with a ``ValueError`` that suggests ``--device cpu``; picked automatically, the
      processes run on the CPU instead and the first one prints a note saying so (the README's
      ``torchrun`` command then works on a Mac as it is).
    - **CPU**: backend ``gloo``.
    """
    from .runtime import pick_device

    explicit = device is not None or bool(os.environ.get("GPTLIB_DEVICE"))
    device = pick_device(device)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes <= 1 or is_distributed():
        return device
    if device.type == "mps":
        if explicit:
            raise ValueError(f"mps under torchrun: DDP (gloo) works only with CPU and CUDA tensors: add --device cpu")
        if os.environ.get("RANK", "0") == "0":
            print(f"note: DDP cannot use Apple's MPS (gloo moves only CPU and CUDA tensors), so the {processes} "
                  "processes train on the CPU; drop torchrun to train on the Apple GPU in one process",
                  file=sys.stderr, flush=True)
        device = torch.device("cpu")
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        here = max(int(os.environ.get("LOCAL_WORLD_SIZE", str(processes))), local_rank + 1)  # on this machine
        gpus = torch.cuda.device_count()
        if here > gpus:
            raise ValueError(f"torchrun started {here} processes on this machine but it has {gpus} GPU(s): "
                             f"use --nproc_per_node={gpus}, or --device cpu to train on {here} CPU processes")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        if dist.is_nccl_available():
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    else:
        dist.init_process_group("gloo")
    return device


def close_distributed() -> None:
    """Leave the process group together: a process that tears down gloo while another is still
    writing the checkpoint can abort at exit ("terminate called without an active exception",
    about 1 run in 7 on 2 CPU cores), so every process waits for the last one first."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def wrap_model(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` inside a process group, else ``model`` unchanged."""
    if not is_distributed():
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all processes (``value`` itself when there is one)."""
    if not is_distributed():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def mean_of(loss: torch.Tensor) -> float:
    """The mean of a scalar over all processes, as a Python float (the loss every process logs).

    Every process must take the same decision on it (stop on NaN), or the others would wait
    forever for the stopped one in the next collective call.
    """
    return float(all_reduce_mean(loss.float()))


def broadcast_int(value: int) -> int:
    """The first process's ``value``, on every process (``value`` itself when there is one)."""
    if not is_distributed():
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    box = torch.tensor([value], dtype=torch.long, device=device)
    dist.broadcast(box, src=0)
    return int(box.item())
