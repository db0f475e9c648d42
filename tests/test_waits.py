"""Honest waits: a training run is announced with the time it will take here, then shows progress."""
from __future__ import annotations

import pytest
import torch

from gptlib import recipes, waits
from gptlib.model import GPTConfig
from gptlib.train import TrainConfig

TINY = GPTConfig(vocab_size=64, context_length=8, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0)


class FakeRecipe:
    name = "tiny"
    model = TINY
    train = TrainConfig(max_steps=300, eval_every=100, eval_batches=6, warmup_steps=0)
    batch_size = 2


def test_step_seconds_times_a_real_step():
    seconds = waits.step_seconds(TINY, batch_size=2, steps=1)
    assert 0 < seconds < 5


def test_step_seconds_times_the_step_train_takes(monkeypatch):
    """The optimizer train would use, with the recipe's settings; clipping when the recipe clips."""
    chosen, clipped = [], []
    real_optimizer_for, real_clip = waits.optimizer_for, torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(waits, "optimizer_for", lambda model, cfg: chosen.append(cfg) or real_optimizer_for(model, cfg))
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, norm: clipped.append(norm) or real_clip(p, norm))
    recipe_train = TrainConfig(lr=3e-3, grad_clip=0.5)
    waits.step_seconds(TINY, batch_size=2, steps=1, train_cfg=recipe_train)
    assert chosen == [recipe_train] and clipped == [0.5, 0.5]  # the warm-up call and the timed one
    waits.step_seconds(TINY, batch_size=2, steps=1, train_cfg=TrainConfig(grad_clip=None))
    assert clipped == [0.5, 0.5]


def test_expected_seconds_counts_steps_and_evaluations():
    # 300 steps + 4 evaluations (at 0, 100, 200, 300) x 6 batches / 3 = 8 step-equivalents
    assert waits.expected_seconds(FakeRecipe(), per_step=0.5) == pytest.approx(308 * 0.5)


@pytest.mark.parametrize("seconds, text", [(3.2, "about 3 s"), (44, "about 40 s"), (185, "about 3 min"),
                                           (4300, "about 1 h 12 min")])
def test_duration_reads_like_a_person(seconds, text):
    assert waits.duration(seconds) == text


def test_outside_a_notebook_the_wait_prints_its_sentence_and_a_line_per_evaluation(capsys):
    wait = waits.TrainingWait("training tiny", total_steps=300)
    wait.on_eval(100)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "training tiny" and out[1].startswith("  step 100 of 300, ")


def test_in_a_notebook_the_wait_is_a_widget_without_text_for_nbval(monkeypatch, capsys):
    """Displayed, not printed (day 6 hides its loading cell's prints), and without a text/plain copy, so nbval
    compares nothing of it: a run that had to train and one that loaded a checkpoint compare equal."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: type("Shell", (), {"kernel": object()})())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    wait = waits.TrainingWait("training day 5", total_steps=2300)
    wait.on_eval(100)
    assert capsys.readouterr().out == ""
    (bundle, raw), = shown
    assert raw and set(bundle) == {"application/vnd.jupyter.widget-view+json"}
    assert wait.bar.value == 100 and wait.bar.max == 2300 and wait.label.value.startswith("step 100 of 2,300")


def test_announce_training_says_what_and_how_long(monkeypatch, capsys):
    monkeypatch.setattr(waits, "step_seconds", lambda cfg, batch, device, **_: 0.6)
    wait = waits.announce_training(FakeRecipe(), "cpu", why="no usable checkpoint: none found")
    out = capsys.readouterr().out
    assert wait.total == 300
    assert out.startswith("training the tiny model (no usable checkpoint: none found; 300 steps): about 3 min "
                          "on this machine (0.60 s a step measured just now); progress below")


def test_a_missing_checkpoint_is_announced_before_training_with_progress(tmp_path, monkeypatch):
    events = []
    wait = waits.TrainingWait("training", total_steps=1)
    monkeypatch.setattr(recipes, "announce_training",
                        lambda recipe, device, why: events.append(("announce", why)) or wait)

    def fake_pretrain(text, recipe, folder, device, progress, on_eval, resume=False):
        events.append(("train", on_eval == wait.on_eval))
        raise KeyboardInterrupt  # stop here: what came before is what the test checks

    monkeypatch.setattr(recipes, "pretrain", fake_pretrain)
    with pytest.raises(KeyboardInterrupt):
        recipes.trained_model(recipes.RUNNING_EXAMPLE, recipes.running_example_text, "cpu", tmp_path)
    assert events == [("announce", "no checkpoint yet"), ("train", True)]
