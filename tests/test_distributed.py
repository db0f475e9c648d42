"""DDP: 2 processes (torchrun, gloo on loopback) train exactly like 1 process with the same global batch;
the set-up picks the right device and backend, or refuses in one line (GPUs and Macs are mocked here)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from gptlib import distributed
from gptlib.__main__ import main
from gptlib.assets import tiny_shakespeare
from gptlib.checkpoint import load_checkpoint

ARGS = ["--vocab-size", "300", "--context-length", "16", "--emb-dim", "16", "--n-layers", "1", "--n-heads", "2",
        "--steps", "6", "--eval-every", "3", "--eval-batches", "2", "--warmup-steps", "2", "--lr", "1e-2",
        "--sample-tokens", "0", "--device", "cpu", "--no-progress"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_helpers_are_no_ops_without_a_process_group():
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(model) is model
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main_process()
    assert distributed.mean_of(torch.tensor(2.5)) == 2.5 and distributed.broadcast_int(7) == 7
    distributed.barrier()


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(tiny_shakespeare()[:20_000], encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GPTLIB_DEVICE": "cpu", "PYTHONWARNINGS": "ignore"}
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "gptlib", "train",
         "--data", str(data), "--out", str(tmp_path / "ddp"), "--batch-size", "2", *ARGS],
        capture_output=True, text=True, timeout=120, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "2 process(es)" in two.stdout
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "single"), "--batch-size", "4", *ARGS]) == 0

    ddp, single = (load_checkpoint(tmp_path / name / "model.pt") for name in ("ddp", "single"))
    assert ddp["step"] == single["step"] == 6
    assert ddp["history"]["train_loss"] == pytest.approx(single["history"]["train_loss"], rel=1e-5)
    for name, tensor in single["model"].items():
        assert torch.allclose(ddp["model"][name], tensor, rtol=1e-4, atol=1e-6), name
    # and training did move the weights: the comparison is not between two untouched models
    torch.manual_seed(123)
    from gptlib.model import GPTConfig, GPTModel

    untouched = GPTModel(GPTConfig.from_dict(single["config"])).state_dict()
    assert not torch.allclose(untouched["out_head.weight"], single["model"]["out_head.weight"], atol=1e-4)


# --------------------------------------------------------------------------- set-up under torchrun (mocked)
@pytest.fixture
def torchrun(monkeypatch):
    """What torchrun tells one process, and a process group that is only recorded, never started."""
    started, gpus_set = [], []
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend, **kw: started.append((backend, kw)))
    monkeypatch.setattr(torch.cuda, "set_device", gpus_set.append)
    monkeypatch.delenv("GPTLIB_DEVICE", raising=False)

    def process(processes: int, local_rank: int, rank: int | None = None) -> None:
        for name, value in {"WORLD_SIZE": processes, "LOCAL_WORLD_SIZE": processes, "LOCAL_RANK": local_rank,
                            "RANK": local_rank if rank is None else rank}.items():
            monkeypatch.setenv(name, str(value))

    return SimpleNamespace(started=started, gpus_set=gpus_set, process=process)


def gpus(monkeypatch, count: int, nccl: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(distributed.dist, "is_nccl_available", lambda: nccl)


def apple_mac(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)


def test_without_torchrun_only_the_device_is_chosen(torchrun, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_distributed("cpu") == torch.device("cpu") and torchrun.started == []
    with pytest.raises(ValueError, match="device='foo'"):
        distributed.init_distributed("foo")


@pytest.mark.parametrize("local_rank", [0, 1])
def test_more_processes_than_gpus_is_refused_in_every_process(torchrun, monkeypatch, local_rank):
    """``torchrun --nproc_per_node=2`` on a one-GPU machine: process 1 used to ask for cuda:1
    ("invalid device ordinal"). Every process refuses before touching a GPU, so none waits for the others."""
    gpus(monkeypatch, 1)
    torchrun.process(2, local_rank)
    with pytest.raises(ValueError) as info:
        distributed.init_distributed()
    assert str(info.value) == ("torchrun started 2 processes on this machine but it has 1 GPU(s): "
                               "use --nproc_per_node=1, or --device cpu to train on 2 CPU processes")
    assert torchrun.started == [] and torchrun.gpus_set == []


def test_one_process_per_gpu_on_its_local_rank(torchrun, monkeypatch):
    gpus(monkeypatch, 2)
    torchrun.process(2, 1)
    assert distributed.init_distributed() == torch.device("cuda", 1)
    assert torchrun.gpus_set == [torch.device("cuda", 1)]
    assert torchrun.started == [("nccl", {"device_id": torch.device("cuda", 1)})]


def test_gpus_without_nccl_use_gloo(torchrun, monkeypatch):
    """torch for Windows has no NCCL; gloo also moves CUDA tensors."""
    gpus(monkeypatch, 2, nccl=False)
    torchrun.process(2, 0)
    assert distributed.init_distributed("cuda") == torch.device("cuda", 0) and torchrun.started == [("gloo", {})]


@pytest.mark.parametrize("how", ["--device", "GPTLIB_DEVICE"])
def test_mps_asked_for_under_torchrun_is_refused(torchrun, monkeypatch, how):
    """gloo moves only CPU and CUDA tensors: with MPS the first collective would fail."""
    apple_mac(monkeypatch)
    torchrun.process(2, 0)
    if how == "GPTLIB_DEVICE":
        monkeypatch.setenv("GPTLIB_DEVICE", "mps")
    with pytest.raises(ValueError, match=r"DDP \(gloo\) works only with CPU and CUDA tensors: add --device cpu"):
        distributed.init_distributed("mps" if how == "--device" else None)
    assert torchrun.started == []


def test_mps_picked_automatically_falls_back_to_the_cpu_with_a_note(torchrun, monkeypatch, capsys):
    """The README's torchrun command, run as it is on a Mac: CPU processes, and the first one says why."""
    apple_mac(monkeypatch)
    torchrun.process(2, 0)
    assert distributed.init_distributed() == torch.device("cpu")
    assert torchrun.started == [("gloo", {})]
    note = capsys.readouterr().err
    assert note.startswith("note: DDP cannot use Apple's MPS") and note.count("\n") == 1
    torchrun.process(2, 1)  # the other processes stay quiet
    assert distributed.init_distributed() == torch.device("cpu") and capsys.readouterr().err == ""


@pytest.mark.parametrize("machine, option, expected", [
    ("one GPU", None, "torchrun started 2 processes on this machine but it has 1 GPU(s)"),
    ("one GPU", "cuda", "use --nproc_per_node=1, or --device cpu"),
    ("Mac", "mps", "add --device cpu"),
    ("CPU", "cuda", "device='cuda' but this machine has no usable CUDA GPU"),
])
def test_the_command_line_says_what_to_do_in_one_line(torchrun, monkeypatch, capsys, tmp_path, machine, option,
                                                      expected):
    """``torchrun --nproc_per_node=2 -m gptlib train`` (README) where it cannot run: exit status 2 and
    one line on stderr, no traceback, no process group."""
    if machine == "one GPU":
        gpus(monkeypatch, 1)
    elif machine == "Mac":
        apple_mac(monkeypatch)
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    torchrun.process(2, 1)
    data = tmp_path / "text.txt"
    data.write_text("To be, or not to be: that is the question. " * 50, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *(["--device", option] if option else [])])
    err = capsys.readouterr().err
    assert info.value.code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert torchrun.started == [] and not (tmp_path / "run").exists()
