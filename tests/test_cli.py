"""python -m gptlib train: a learner's own text in, a checkpoint + tokenizer out; clear one-line errors."""
from __future__ import annotations

import errno
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
    with pytest.raises(SystemExit) as info:  # Ctrl-C: one line, no traceback, and how to continue
        main([*args, "--out", str(tmp_path / "run")])
    assert info.value.code == 130 and "--resume" in capsys.readouterr().err
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


# --------------------------------------------------------------------------- issue 13: saving, and generate
class _DiskFillsUp:
    """gptlib.files' ``open``: the checkpoint saves after the first ``good_saves`` fail with ENOSPC."""

    def __init__(self, good_saves: int):
        self.saves = 0
        self.good_saves = good_saves

    def __call__(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if ".model.pt.tmp-" in str(path):
            self.saves += 1
            if self.saves > self.good_saves:
                def write(data):
                    raise OSError(errno.ENOSPC, "No space left on device")
                f.write = write
        return f


def test_a_full_disk_while_training_is_one_line_and_keeps_the_last_good_checkpoint(text_file, tmp_path, monkeypatch,
                                                                                    capsys):
    from gptlib import files

    monkeypatch.setattr(files, "open", _DiskFillsUp(good_saves=2), raising=False)  # steps 0 and 3 saved, 6 not
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(text_file), "--out", str(out), "--steps", "6", "--sample-tokens", "0", *SMALL])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "disk is full" in err and "last good model.pt is intact" in err, err  # not "unexpected pos 12352 vs ..."
    monkeypatch.undo()
    assert load_checkpoint(out / "model.pt")["step"] == 3  # the last good one, loadable (its checksum holds)
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "tokenizer.json"]  # no temporary file left


def test_resume_removes_what_a_kill_9_left_behind(text_file, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(text_file), "--out", str(out), "--steps", "3", "--sample-tokens", "0", *SMALL]
    assert main(args) == 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a writer that is gone, as after kill -9 mid-save
    stale = out / f".model.pt.tmp-{child.pid}"
    stale.write_bytes(b"\0" * 10_000)
    assert main([*args, "--resume"]) == 0  # the next save, whatever it writes, clears the dead writer's file
    assert not stale.exists()


@pytest.fixture(scope="module")
def run_folder(text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "--data", str(text_file), "--out", str(out), "--steps", "12", "--sample-tokens", "0",
                 *SMALL]) == 0
    return out


def _generate(run_folder, capsys, *options):
    assert main(["generate", "--checkpoint", str(run_folder), "--prompt", "ROMEO:", "--max-new-tokens", "12",
                 "--device", "cpu", *options]) == 0
    return capsys.readouterr().out


def test_a_temperature_too_small_to_divide_by_is_greedy_not_nan(run_folder, capsys):
    greedy = _generate(run_folder, capsys, "--temperature", "0")
    for seed in ("1", "2"):  # sampling from a distribution that is all on one token: the seed does not matter
        assert _generate(run_folder, capsys, "--temperature", "1e-45", "--seed", seed) == greedy
    assert greedy.startswith("ROMEO:") and len(greedy) > len("ROMEO:\n")


def test_a_prompt_may_hold_the_end_of_text_token(run_folder, capsys):
    out = _generate(run_folder, capsys, "--prompt", "<|endoftext|>ROMEO:")
    assert out.startswith("<|endoftext|>ROMEO:")


def test_recipe_chinese_starts_from_day_6s_recipe_on_chinese_text(tmp_path, capsys):
    from gptlib.chinese import CHINESE

    poems = tmp_path / "poems.txt"
    poems.write_text("床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n" * 40, encoding="utf-8")
    out = tmp_path / "run"
    small = [a for a in SMALL if a not in ("--vocab-size", "300")]
    assert main(["train", "--data", str(poems), "--out", str(out), "--recipe", "chinese", "--steps", "3",
                 "--vocab-size", "290", "--sample-tokens", "0", *small]) == 0
    recipe = load_checkpoint(out / "model.pt")["extra"]["recipe"]
    assert recipe["name"] == CHINESE.name and recipe["tokenizer"] == "chars"
    assert recipe["train"]["lr"] == CHINESE.train.lr and recipe["model"]["emb_dim"] == 16  # given options win
    _, tokenizer, _ = load_trained(out, device="cpu")
    assert len(tokenizer.encode("明月")) == 2  # one token per frequent character
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(poems), "--out", str(out), "--resume", "--recipe", "day5", *small])
    assert info.value.code == 2 and "leave out --recipe" in capsys.readouterr().err


def test_recipe_modern_trains_a_modern_gpt_that_generate_loads_in_a_fresh_process(text_file, tmp_path, capsys):
    """The bonus day's recipe through the same pipeline and checkpoint format; ``generate`` in a new interpreter
    (which has not imported gptlib.modern) builds the ModernGPT the checkpoint describes."""
    from gptlib.modern import MODERN, ModernGPT

    out = tmp_path / "run"
    assert main(["train", "--data", str(text_file), "--out", str(out), "--recipe", "modern", "--steps", "3",
                 "--sample-tokens", "0", *SMALL]) == 0
    recipe = load_checkpoint(out / "model.pt")["extra"]["recipe"]
    assert recipe["name"] == "modern" and recipe["model"]["muon_lr"] == MODERN.model.muon_lr
    model, _, _ = load_trained(out, device="cpu")
    assert isinstance(model, ModernGPT) and model.cfg.positions == MODERN.model.positions
    done = subprocess.run([sys.executable, "-m", "gptlib", "generate", "--checkpoint", str(out), "--prompt", "ROMEO:",
                           "--max-new-tokens", "5", "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("ROMEO:"), done.stderr
