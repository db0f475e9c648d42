"""Progress and labels: check keeps each exercise's state in $GPTLIB_WORKSPACE/progress.json (nothing when
the variable is unset), a pass is never undone, a damaged file gives one line, every exercise has a
difficulty and a time shown on its TODO line in both languages, and `python -m gptlib progress` lists them."""
from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys

import pytest

from gptlib.course.exercises import EXERCISES, check, set_language
from gptlib.course.exercises.labels import LABELS
from gptlib.course.exercises.progress import load, progress_lines, show_progress


def stub(q, k):
    ...


def wrong(q, k):
    return q @ k.T


def right(q, k):
    return q @ k.T / math.sqrt(k.shape[-1])


def test_nothing_is_written_without_a_workspace(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GPTLIB_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    check("3.1", right)
    assert capsys.readouterr().out.startswith("✅ PASS 3.1")
    assert list(tmp_path.iterdir()) == []


def test_states_are_kept_and_a_pass_is_never_undone(workspace, capsys):
    check("3.1", stub)
    assert load()["3.1"] == {"best": "not started", "last": "not started"}
    check("3.1", wrong)
    assert load()["3.1"] == {"best": "wrong", "last": "wrong"}
    check("3.1", right)
    assert load()["3.1"] == {"best": "passed", "last": "passed"}
    check("3.1", wrong)
    assert load()["3.1"] == {"best": "passed", "last": "wrong"}
    lines = progress_lines(3)
    assert lines[0] == "✅ 3.1 [★☆☆ ~5 min] passed" and lines[1].startswith("· 3.2 ")
    assert lines[-1] == "1 of 4 passed; about 55 min of exercises left"
    assert not list(workspace.glob(".*tmp*"))  # the atomic write left no temporary file


@pytest.mark.parametrize("content", [b"{bad json", b"[1, 2]", b'{"3.1": {"best": "great"}}', b"\xff\xfe"])
def test_a_damaged_file_gives_one_line(workspace, capsys, content):
    (workspace / "progress.json").write_bytes(content)
    show_progress(3)
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "is damaged" in out and "delete it" in out, out
    check("3.1", right)  # checking again rebuilds a whole file
    assert load()["3.1"]["best"] == "passed"


def test_the_progress_command(workspace):
    (workspace / "progress.json").write_text(json.dumps({"1.2": {"best": "wrong", "last": "wrong"}}))
    cmd = [sys.executable, "-m", "gptlib", "progress", "--day", "1", "--lang", "zh"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "❌ 1.2 [★★☆ 约 15 分钟] 尚未通过" in done.stdout and "已通过 0/" in done.stdout
    (workspace / "progress.json").write_text("{")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_bonus_day_is_listed_and_day_9_is_refused(tmp_path):
    lines = progress_lines(8, tmp_path / "progress.json")
    assert [line.split()[1] for line in lines[:-1]] == ["8.1", "8.2", "8.3"] and "0 of 3 passed" in lines[-1]
    with pytest.raises(ValueError, match="day must be 1 to 8"):
        progress_lines(9, tmp_path / "progress.json")


def unlabelled() -> set[str]:
    """Registered exercises without a label, and labels of exercises that do not exist."""
    for day in range(1, 9):
        importlib.import_module(f"gptlib.course.exercises.day{day}")
    return set(EXERCISES) ^ set(LABELS)


def test_every_exercise_has_a_label(monkeypatch):
    assert unlabelled() == set()
    assert all(d in (1, 2, 3) and 0 < m <= 60 for d, m in LABELS.values())
    monkeypatch.delitem(LABELS, "3.3")  # proven able to fail
    assert unlabelled() == {"3.3"}


def test_the_todo_line_shows_the_label_in_both_languages(capsys, monkeypatch):
    monkeypatch.delenv("GPTLIB_WORKSPACE", raising=False)
    check("3.3", type("Stub", (), {"__init__": lambda self, **kw: None}))
    check("3.1", stub)
    set_language("zh")
    try:
        check("3.1", stub)
    finally:
        set_language("en")
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("⏳ TODO 3.1 [★☆☆ ~5 min] return"), lines
    assert lines[2].startswith("⏳ 未完成 3.1 [★☆☆ 约 5 分钟] "), lines


def test_an_unwritable_workspace_still_prints_the_verdict(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the workspace folder should be")
    monkeypatch.setenv("GPTLIB_WORKSPACE", str(blocker))
    check("3.1", right)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✅ PASS 3.1") and len(lines) == 2 and "could not be saved" in lines[1], lines


def test_the_progress_command_without_a_workspace_reads_the_learners_copy(tmp_path, monkeypatch, capsys):
    """A learner's own terminal has no GPTLIB_WORKSPACE: the command reads the folder course.py lab gives the
    kernel (gptlib.course.notebook.answers_dir: <repo>/my-course/answers), never failing for lack of it."""
    from gptlib.__main__ import main
    from gptlib.course import notebook

    monkeypatch.setenv("GPTLIB_WORKSPACE", str(tmp_path))
    check("3.1", right)  # kept in tmp_path/progress.json
    capsys.readouterr()  # its verdict
    monkeypatch.delenv("GPTLIB_WORKSPACE")
    monkeypatch.setattr(notebook, "answers_dir", lambda: tmp_path)  # where course.py lab points the kernel
    assert main(["progress", "--day", "3"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "3.1" in line)
    assert "passed" in line, line
    (tmp_path / "progress.json").write_text("{not json")
    env = {**os.environ, "GPTLIB_WORKSPACE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "gptlib", "progress"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
