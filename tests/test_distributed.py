"""DDP: 2 processes (torchrun, gloo on loopback) train exactly like 1 process with the same global batch."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

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
