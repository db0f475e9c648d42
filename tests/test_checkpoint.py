"""gptlib.checkpoint: atomic writes, weights_only loads, config checks, random states."""
from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import time

import pytest
import torch

import gptlib.checkpoint as checkpoint
from gptlib import files
from gptlib.checkpoint import (CheckpointError, checkpoint_sha256, load_checkpoint, load_model, save_checkpoint,
                               update_checkpoint)
from gptlib.files import WriteError, write_atomically
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


def test_a_pickle_that_runs_code_is_refused_without_suggesting_the_unsafe_load(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "gptlib-checkpoint", "payload": _Evil()}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "evil.pt" in message and "not a gptlib checkpoint" in message and "unsafe" in message
    assert "weights_only" not in message and "\n" not in message  # never torch's "re-run with weights_only=False"


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


# --------------------------------------------------------------------------- integrity (issue 13, item 4)
def _offset_of(data: bytes, tensor: torch.Tensor) -> int:
    """Where ``tensor``'s bytes sit in a saved file (torch stores each storage uncompressed)."""
    raw = tensor.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    at = data.find(raw)
    assert at > 0 and data.find(raw, at + 1) == -1
    return at


def test_a_flipped_byte_inside_a_tensor_is_caught(tmp_path):
    m = model()
    path = save_checkpoint(tmp_path / "c.pt", m, step=1)
    data = bytearray(path.read_bytes())
    at = _offset_of(bytes(data), m.state_dict()["trf_blocks.0.att.qkv.weight"]) + 101
    data[at] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["trf_blocks.0.att.qkv.weight"],
                           m.state_dict()["trf_blocks.0.att.qkv.weight"])  # torch alone loads changed weights
    for load in (lambda: load_checkpoint(path), lambda: load_checkpoint(path, model()), lambda: load_model(path)):
        with pytest.raises(CheckpointError, match=r"c\.pt is corrupt.*sha256.*train again"):
            load()


def test_the_checksum_covers_every_value_and_survives_update_checkpoint(tmp_path):
    m, opt, sched, cfg = trained_state()
    path = save_checkpoint(tmp_path / "c.pt", m, opt, sched, step=3, history={"loss": [1.0]})
    ckpt = load_checkpoint(path)
    assert ckpt["sha256"] == checkpoint_sha256(ckpt)
    for change in (lambda c: c["history"]["loss"].append(2.0), lambda c: c.update(step=4),
                   lambda c: c["optimizer"]["state"][0]["exp_avg"].view(-1).__setitem__(0, 9.0),
                   lambda c: c["rng"]["torch"].__setitem__(7, 1)):
        changed = load_checkpoint(path)
        change(changed)
        assert checkpoint_sha256(changed) != ckpt["sha256"]
    update_checkpoint(path, val_loss=1.5)
    assert load_checkpoint(path)["extra"]["val_loss"] == 1.5  # rewritten with a new, valid checksum


def _save_raw(path, checksum=True, **changes):
    """A checkpoint with the given entries changed or (None) removed, and a consistent checksum (or,
    ``checksum=False``, none, as format 1 had): what a damaged or foreign writer could produce."""
    save_checkpoint(path, model())
    ckpt = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del ckpt[key]
        else:
            ckpt[key] = value
    del ckpt["sha256"]
    if checksum:
        ckpt["sha256"] = checkpoint_sha256(ckpt)
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("changes, facts", [
    ({"model": None}, ["lacks its 'model' entry"]),
    ({"rng": None}, ["lacks its 'rng' entry"]),
    ({"config": [30, 8, 16]}, ["'config' is a list"]),
    ({"history": "oops"}, ["'history' is a str"]),
    ({"format_version": 1, "checksum": False}, ["format 1", "without the checksum", "train again"]),
])
def test_a_checkpoint_with_missing_or_wrong_parts_is_a_clear_error(tmp_path, changes, facts):
    path = _save_raw(tmp_path / "c.pt", **changes)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "c.pt" in str(err.value) and all(fact in str(err.value) for fact in facts), str(err.value)


def test_a_config_that_does_not_fit_the_weights_is_a_clear_error(tmp_path):
    path = _save_raw(tmp_path / "c.pt", config={**GPTConfig(**CFG).to_dict(), "emb_dim": 32})
    with pytest.raises(CheckpointError, match=r"c\.pt does not hold a model this gptlib can build .*do not fit.*size "
                                              r"mismatch"):
        load_model(path)
    with pytest.raises(CheckpointError, match=r"c\.pt does not hold a model this gptlib can build .*do not fit"):
        load_checkpoint(path, model(emb_dim=32))
    path = _save_raw(tmp_path / "d.pt", config={**GPTConfig(**CFG).to_dict(), "n_heads": 3})
    with pytest.raises(CheckpointError, match=r"d\.pt does not hold a model this gptlib can build .*divisible"):
        load_model(path)


def test_damaged_random_states_do_not_resume(tmp_path):
    path = _save_raw(tmp_path / "c.pt", rng={"python": [1, 2]})
    with pytest.raises(CheckpointError, match=r"damaged random states"):
        load_checkpoint(path, restore_rng=True)


# --------------------------------------------------------------------------- files: full disk, stale temporaries
def _dead_pid() -> int:
    """The pid of a process that has exited: what a writer killed by ``kill -9`` leaves behind."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporary_files_of_dead_writers_are_removed_at_the_next_save(tmp_path):
    """Issue 13, item 6: kill -9 during a save leaves .model.pt.tmp-<pid> (no finally runs)."""
    dead = tmp_path / f".model.pt.tmp-{_dead_pid()}"
    alive = tmp_path / f".model.pt.tmp-{os.getppid()}"  # a running writer: never touched
    other = tmp_path / f".other.pt.tmp-{_dead_pid()}"  # another file's: not this save's business
    for stale in (dead, alive, other):
        stale.write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "model.pt", model())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "model.pt"])


def test_where_pids_cannot_be_probed_old_temporaries_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_PROBE_PIDS", False)  # Windows
    old, recent = tmp_path / ".c.pt.tmp-111", tmp_path / ".c.pt.tmp-222"
    for stale in (old, recent):
        stale.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    write_atomically(tmp_path / "c.pt", lambda f: f.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [recent.name, "c.pt"]


class _FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes, like a disk that fills up."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_full_disk_says_so_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.pt", model(), step=1)
    monkeypatch.setattr(files, "open", lambda *a, **k: _FullDisk(open(*a, **k), room=4096), raising=False)
    with pytest.raises(WriteError) as err:  # torch.save itself reports only "unexpected pos ... vs ..."
        save_checkpoint(path, model(seed=3), step=2)
    assert "disk is full" in str(err.value) and "last good model.pt is intact" in str(err.value)
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_read_only_folder_says_so(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files, "open", read_only, raising=False)
    with pytest.raises(WriteError, match=r"cannot write .*c\.pt: its folder is read-only.*nothing was written"):
        save_checkpoint(tmp_path / "c.pt", model())


def test_a_file_in_the_way_of_the_folder_says_so(tmp_path):
    (tmp_path / "run").write_text("a file, not a folder")
    with pytest.raises(WriteError, match=r"cannot create the folder .*run.*a part of it is a file"):
        save_checkpoint(tmp_path / "run" / "sub" / "model.pt", model())
