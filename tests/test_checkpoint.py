"""gptlib.checkpoint: atomic writes, weights_only loads, config checks, random states."""
from __future__ import annotations

import os
import random

import pytest
import torch

import gptlib.checkpoint as checkpoint
from gptlib.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from gptlib.runtime import rng_state, set_rng_state
from gptlib.model import GPTConfig, GPTModel
from gptlib.train import TrainConfig, make_optimizer, make_scheduler

CFG = dict(vocab_size=30, context_length=8, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0, qkv_bias=False)


def model(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(**{**CFG, **overrides}))


def trained_state():
    m = model()
    cfg = TrainConfig(max_steps=10, warmup_steps=2)
    opt = make_optimizer(m, cfg.lr, cfg.weight_decay, cfg.betas)
    sched = make_scheduler(opt, cfg)
    x = torch.randint(0, 30, (2, 8))
    for _ in range(3):
        m(x).logsumexp(-1).mean().backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return m, opt, sched, cfg


def test_round_trip_restores_model_optimizer_scheduler(tmp_path):
    m, opt, sched, cfg = trained_state()
    path = save_checkpoint(tmp_path / "c.pt", m, opt, sched, step=3, history={"train_loss": [1.0, 0.5]},
                           train_config=cfg.to_dict(), extra={"note": "hi"})
    m2 = model(seed=1)
    opt2 = make_optimizer(m2, cfg.lr, cfg.weight_decay, cfg.betas)
    sched2 = make_scheduler(opt2, cfg)
    ckpt = load_checkpoint(path, m2, opt2, sched2)
    for a, b in zip(m.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    assert ckpt["step"] == 3 and ckpt["history"] == {"train_loss": [1.0, 0.5]} and ckpt["extra"] == {"note": "hi"}
    assert ckpt["config"] == GPTConfig(**CFG).to_dict()
    assert ckpt["train_config"]["betas"] == (0.9, 0.95)
    assert sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert load_model(path).cfg == GPTConfig(**CFG)


def test_loads_with_weights_only(tmp_path, monkeypatch):
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    save_checkpoint(tmp_path / "c.pt", model())
    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(tmp_path / "c.pt")
    assert seen.get("weights_only") is True


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "gptlib-checkpoint", "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint evil.pt"):
        load_checkpoint(path)


def test_garbage_and_foreign_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gptlib checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_from_another_config_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c.pt", model())
    other = model(emb_dim=32)
    before = [p.clone() for p in other.parameters()]
    with pytest.raises(CheckpointError, match=r"another model configuration \(emb_dim: checkpoint 16 vs model 32\)"):
        load_checkpoint(tmp_path / "c.pt", other)
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters()))  # nothing changed


def test_write_is_atomic_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, model(), step=1)
    good = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model(seed=3), step=2)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left behind
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1


def test_rng_states_round_trip():
    random.seed(1)
    torch.manual_seed(1)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    state = rng_state()
    a = (torch.rand(3), random.random(), random.gauss(0, 1))
    torch.rand(10)
    random.random()
    set_rng_state(state)
    b = (torch.rand(3), random.random(), random.gauss(0, 1))
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    np = pytest.importorskip("numpy")
    state = rng_state()
    x = np.random.rand(3)
    set_rng_state(state)
    assert (np.random.rand(3) == x).all()


def test_ddp_wrapped_model_saves_the_inner_model(tmp_path):
    class Wrapper(torch.nn.Module):  # what DistributedDataParallel looks like from outside
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    m = model()
    save_checkpoint(tmp_path / "c.pt", Wrapper(m))
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert set(ckpt["model"]) == set(m.state_dict()) and checkpoint.model_config(Wrapper(m)) == ckpt["config"]
