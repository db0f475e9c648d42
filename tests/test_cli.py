"""python -m gptlib train: a learner's own text in, a checkpoint + tokenizer out; clear one-line errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gptlib.__main__ import main
from gptlib.assets import tiny_shakespeare
from gptlib.checkpoint import load_checkpoint
from gptlib.recipes import load_trained

SMALL = ["--vocab-size", "300", "--context-length", "16", "--emb-dim", "16", "--n-layers", "1", "--n-heads", "2",
         "--batch-size", "4", "--eval-every", "3", "--eval-batches", "2", "--warmup-steps", "1",
         "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "shakespeare.txt"
    path.write_text(tiny_shakespeare()[:20_000], encoding="utf-8")
    return path


def test_train_writes_a_loadable_model_and_tokenizer(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(text_file), "--out", str(out), "--steps", "6", "--sample-tokens", "5",
                 *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "validation loss" in printed and "bits/byte" in printed and "sample:" in printed
    model, tokenizer, ckpt = load_trained(out, device="cpu")
    assert tokenizer.n_vocab == 300 and model.cfg.vocab_size == 300 and model.cfg.emb_dim == 16
    assert ckpt["step"] == 6 and ckpt["history"]["eval_step"] == [0, 3, 6]


def test_resume_continues_an_interrupted_run_exactly(text_file, tmp_path, monkeypatch, capsys):
    args = ["train", "--data", str(text_file), "--steps", "6", "--sample-tokens", "0", *SMALL]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    import gptlib.train

    real = gptlib.train._Run.evaluate_and_save

    def interrupted_after_step_3(run):
        real(run)
        if run.step == 3:
            raise KeyboardInterrupt  # Ctrl-C, right after the step-3 checkpoint

    monkeypatch.setattr(gptlib.train._Run, "evaluate_and_save", interrupted_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(tmp_path / "run")])
    monkeypatch.setattr(gptlib.train._Run, "evaluate_and_save", real)
    assert main([*args, "--out", str(tmp_path / "run"), "--resume"]) == 0
    resumed, straight = (load_checkpoint(tmp_path / name / "model.pt") for name in ("run", "straight"))
    assert resumed["step"] == 6 and resumed["history"]["train_loss"] == straight["history"]["train_loss"]


def test_resume_with_other_settings_is_refused(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--data", str(text_file), "--out", str(out), "--steps", "3", "--sample-tokens", "0", *SMALL])
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(text_file), "--out", str(out), "--steps", "6", "--resume", *SMALL])
    assert info.value.code == 2 and "max_steps" in capsys.readouterr().err
    # settings not given again are taken from the checkpoint
    assert main(["train", "--data", str(text_file), "--out", str(out), "--resume", "--device", "cpu",
                 "--no-progress", "--sample-tokens", "0"]) == 0


@pytest.mark.parametrize("case, expected", [
    ("short", "text too short for one training window"),
    ("missing", "no such file"),
    ("exists", "pass --resume"),
    ("resume-nothing", "no checkpoint at"),
])
def test_bad_input_is_one_clear_line(case, expected, text_file, tmp_path, capsys):
    data, out, extra = text_file, tmp_path / "run", []
    if case == "short":
        data = tmp_path / "short.txt"
        data.write_text("To be, or not to be: that is the question.", encoding="utf-8")
        extra = ["--vocab-size", "260", "--context-length", "64"]
    elif case == "missing":
        data = tmp_path / "nope.txt"
    elif case == "exists":
        out.mkdir()
        (out / "model.pt").write_bytes(b"")
    else:
        extra = ["--resume"]
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(data), "--out", str(out), "--steps", "2", *SMALL, *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and err.count("\n") == 1


def test_module_entry_point_lists_commands():
    result = subprocess.run([sys.executable, "-m", "gptlib", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout
