"""gptlib.train: schedule, loss, the loop, exact resume, NaN guard."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.checkpoint import CheckpointError, load_checkpoint
from gptlib.data import create_dataloader
from gptlib.model import GPTConfig, GPTModel
from gptlib.train import (LossNotFiniteError, TrainConfig, batch_loss, bits_per_byte, evaluate, lr_factor,
                          make_optimizer, train)

TINY = dict(vocab_size=40, context_length=8, emb_dim=16, n_heads=2, n_layers=2, qkv_bias=False)


def tiny_model(seed=0, drop_rate=0.0):
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(drop_rate=drop_rate, **TINY))


def token_stream(n=600, seed=1):
    g = torch.Generator().manual_seed(seed)
    # a learnable pattern with noise: mostly "next = previous + 1 (mod 40)"
    ids = [0]
    for _ in range(n - 1):
        ids.append((ids[-1] + 1) % 40 if torch.rand((), generator=g) < 0.8 else int(torch.randint(40, (), generator=g)))
    return ids


def loaders(batch_size=4):
    ids = token_stream()
    return (create_dataloader(ids[:500], batch_size, 8, seed=7),
            create_dataloader(ids[500:], batch_size, 8, shuffle=False, drop_last=False))


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(max_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(s, cfg) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(factors[:10], factors[1:10]))  # rising during warm-up
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))  # then never rising
    assert factors[60] == pytest.approx(0.55)  # half-way through the cosine: (1 + 0.1) / 2
    assert lr_factor(110, cfg) == pytest.approx(0.1) and lr_factor(500, cfg) == pytest.approx(0.1)


def test_batch_loss_is_mean_minus_log_prob_of_targets():
    model = tiny_model()
    x = torch.randint(0, 40, (2, 8))
    y = torch.randint(0, 40, (2, 8))
    logp = torch.log_softmax(model(x), dim=-1)
    by_hand = -logp.gather(-1, y.unsqueeze(-1)).mean()
    assert torch.allclose(batch_loss(model, x, y), by_hand, atol=1e-6)
    assert batch_loss(model, x, y).item() == pytest.approx(math.log(40), abs=0.2)  # untrained ~ ln(vocab)


def test_weight_decay_only_on_matrices():
    groups = make_optimizer(tiny_model(), lr=1e-3, weight_decay=0.1).param_groups
    assert all(p.dim() >= 2 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 0.1
    assert all(p.dim() < 2 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0


def test_training_lowers_the_loss_and_returns_history():
    model = tiny_model()
    train_loader, val_loader = loaders()
    cfg = TrainConfig(max_steps=40, lr=1e-2, warmup_steps=5, eval_every=20, progress=False)
    history = train(model, train_loader, val_loader, cfg)
    assert history["step"] == list(range(1, 41))
    assert history["eval_step"] == [0, 20, 40]
    assert len(history["train_loss"]) == len(history["lr"]) == 40
    assert history["tokens_seen"][-1] == 40 * 4 * 8
    assert history["val_loss"][0] == pytest.approx(math.log(40), abs=0.2)
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.6
    assert max(history["lr"]) == pytest.approx(1e-2)


def test_time_budget_fits_the_schedule_to_the_clock(monkeypatch):
    """With a budget, the step count comes from the measured step time and the cosine ends with it.
    A fake clock makes every training step take exactly one second (evaluations are free)."""
    import gptlib.train as train_module

    model, seconds = tiny_model(), [0.0]

    def one_second_per_training_step(module, inputs, output):
        seconds[0] += 1.0 if module.training else 0.0

    model.register_forward_hook(one_second_per_training_step)
    monkeypatch.setattr(train_module, "_now", lambda: seconds[0])
    train_loader, val_loader = loaders()
    cfg = TrainConfig(max_steps=10_000, warmup_steps=8, eval_every=10_000, time_budget_s=60.0, progress=False)
    history = train(model, train_loader, val_loader, cfg)
    assert history["step"][-1] == 60 and history["eval_step"] == [0, 60]  # 60 steps of 1 s, not 10,000
    assert history["lr"][-1] == pytest.approx(cfg.lr * cfg.min_lr_ratio, rel=0.01)  # the schedule ended on time


def test_time_budget_and_eval_settings_are_checked():
    with pytest.raises(ValueError, match="time_budget_s"):
        TrainConfig(time_budget_s=-1)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(max_steps=5, warmup_steps=6)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-exact on CPU needs the same reduction order every time
    yield
    torch.set_num_threads(threads)


def test_resume_continues_the_same_loss_trajectory(tmp_path, one_thread):
    """Train 12 steps straight; separately, train 6, "crash", resume in a fresh model: identical losses."""
    train_loader, val_loader = loaders()
    cfg = dict(max_steps=12, lr=5e-3, warmup_steps=3, eval_every=6, eval_batches=2, progress=False)
    straight_model = tiny_model(drop_rate=0.1)  # dropout: the random state must be restored too
    straight = train(straight_model, train_loader, val_loader, TrainConfig(**cfg))

    class Crash(Exception):
        pass

    def crash_at_6(step, model, history):
        if step == 6:
            raise Crash

    path = tmp_path / "run.pt"
    with pytest.raises(Crash):
        train(tiny_model(drop_rate=0.1), train_loader, val_loader, TrainConfig(checkpoint_path=str(path), **cfg),
              on_eval=crash_at_6)
    torch.manual_seed(999)  # the resumed run must not depend on the current random state
    resumed_model = tiny_model(seed=5, drop_rate=0.1)
    resumed = train(resumed_model, train_loader, val_loader, TrainConfig(checkpoint_path=str(path), **cfg),
                    resume_from=path)
    assert resumed["train_loss"] == straight["train_loss"]
    assert resumed["val_loss"] == straight["val_loss"]
    for a, b in zip(straight_model.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)


def test_resume_refuses_other_settings(tmp_path):
    """Resuming with another schedule would silently change the run: refuse, naming the setting."""
    train_loader, val_loader = loaders()
    path = tmp_path / "run.pt"
    cfg = dict(max_steps=4, warmup_steps=1, eval_every=2, eval_batches=1, checkpoint_path=str(path), progress=False)
    train(tiny_model(), train_loader, val_loader, TrainConfig(**cfg))
    with pytest.raises(CheckpointError, match="max_steps: checkpoint 4, now 8"):
        train(tiny_model(), train_loader, val_loader, TrainConfig(**{**cfg, "max_steps": 8}), resume_from=path)
    with pytest.raises(CheckpointError, match="lr"):
        train(tiny_model(), train_loader, val_loader, TrainConfig(**{**cfg, "lr": 0.5}), resume_from=path)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model()
    calls = {"n": 0}

    def poison(module, inputs, output):  # the 7th training forward pass returns NaN
        if module.training:
            calls["n"] += 1
            if calls["n"] == 7:
                return output * float("nan")
        return output

    model.register_forward_hook(poison)
    train_loader, val_loader = loaders()
    path = tmp_path / "run.pt"
    cfg = TrainConfig(max_steps=20, warmup_steps=2, eval_every=4, eval_batches=2, checkpoint_path=str(path),
                      progress=False)
    with pytest.raises(LossNotFiniteError, match=r"loss became nan at step 7.*last good checkpoint \(step 4\)") as info:
        train(model, train_loader, val_loader, cfg)
    assert info.value.step == 6 and len(info.value.history["train_loss"]) == 6
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was never taken
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 4
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_empty_validation_loader_is_a_clear_error():
    model = tiny_model()
    empty = torch.utils.data.DataLoader([], batch_size=2)
    with pytest.raises(ValueError, match="empty validation split"):
        evaluate(model, empty)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_steps": 0}, "max_steps"), ({"lr": -1.0}, "lr"), ({"warmup_steps": 5, "max_steps": 2}, "warmup_steps"),
    ({"grad_clip": 0.0}, "grad_clip"), ({"eval_every": 0}, "eval_every")])
def test_bad_train_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bits_per_byte():
    # ln(2) nats per token, one token per byte: exactly one bit per byte
    assert bits_per_byte(math.log(2), 100, 100) == pytest.approx(1.0)
    assert bits_per_byte(math.log(2) * 3, 100, 300) == pytest.approx(1.0)


def test_cross_entropy_identity():
    """F.cross_entropy is -log softmax of the target, averaged (what the notebook shows by hand)."""
    logits = torch.randn(5, 7)
    targets = torch.tensor([0, 3, 6, 2, 2])
    by_hand = -(logits.softmax(-1)[torch.arange(5), targets]).log().mean()
    assert torch.allclose(F.cross_entropy(logits, targets), by_hand, atol=1e-6)
