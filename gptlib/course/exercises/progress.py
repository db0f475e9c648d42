"""Where the learner stands: each exercise's state (not started / wrong / passed), kept in a small JSON file.

``check`` calls ``record`` after every verdict. The file is ``progress.json`` in the folder named by the
environment variable ``GPTLIB_WORKSPACE`` (``course.py lab`` sets it to the learner's working copy);
when the variable is unset nothing is written, so running the committed notebooks (nbval, CI) leaves no
trace and prints the same lines. A pass is never undone by a later wrong try: the state shown is the
best so far, and the last try's state is kept beside it. ``show_progress(day)`` (a cell at the top of
each day) and ``python -m gptlib progress`` print every exercise with its state, difficulty and time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ...files import write_atomically
from . import msg
from .labels import LABELS, label

FILE_NAME = "progress.json"
STATES = ("not started", "wrong", "passed")
_FROM_STATUS = {"done": "passed", "wrong": "wrong", "not done": "not started"}


def progress_file() -> Path | None:
    """``$GPTLIB_WORKSPACE/progress.json``, or None when the variable is unset (then nothing is kept)."""
    folder = workspace()
    return folder / FILE_NAME if folder else None


def workspace() -> Path | None:
    """``$GPTLIB_WORKSPACE``, the learner's folder for progress and kept answers; None when unset (nothing kept)."""
    folder = os.environ.get("GPTLIB_WORKSPACE", "").strip()
    return Path(folder) if folder else None


def load(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The kept states ``{exercise: {"best": state, "last": state}}``; {} when there is no file yet.

    A file that is not such JSON raises ``ValueError`` with one line saying what to do.
    """
    path = path or progress_file()
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(msg("progress.corrupt").format(path=path, why=str(exc)[:80])) from None
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and v.get("best") in STATES and v.get("last") in STATES for v in data.values()):
        raise ValueError(msg("progress.corrupt").format(path=path, why="not {exercise: {best, last}}"))
    return data


def record(name: str, status: str) -> None:
    """Keep the state of exercise ``name`` after a verdict whose status is "done", "wrong" or "not done"."""
    path = progress_file()
    if path is None or name not in LABELS or status not in _FROM_STATUS:
        return
    try:
        data = load(path)
    except ValueError:
        data = {}  # a corrupt file is replaced by a whole one; show_progress said what was wrong
    state = _FROM_STATUS[status]
    best = data.get(name, {}).get("best", "not started")
    data[name] = {"best": max(best, state, key=STATES.index), "last": state}
    text = json.dumps(dict(sorted(data.items())), indent=1, ensure_ascii=False) + "\n"
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def _names(day: int | None) -> list[str]:
    names = [n for n in LABELS if day is None or n.split(".")[0] == str(day)]
    return sorted(names, key=lambda n: tuple(int(x) for x in n.split(".")))


def progress_lines(day: int | None = None, path: Path | None = None) -> list[str]:
    """One line per exercise (of ``day``, or all): state, name, difficulty and time; then a total."""
    if day is not None and day not in range(1, 9):
        raise ValueError(msg("progress.bad_day").format(day=day))
    data = load(path)
    names = _names(day)
    icons = {"not started": "·", "wrong": "❌", "passed": "✅"}
    words = {"not started": msg("progress.not_started"), "wrong": msg("progress.wrong"), "passed": msg("progress.passed")}
    lines = []
    for name in names:
        state = data.get(name, {}).get("best", "not started")
        lines.append(f"{icons[state]} {name} {label(name)} " + words[state].format())
    done = sum(data.get(n, {}).get("best") == "passed" for n in names)
    minutes = sum(LABELS[n][1] for n in names if data.get(n, {}).get("best") != "passed")
    lines.append(msg("progress.total").format(done=done, total=len(names), minutes=minutes))
    return lines


def show_progress(day: int | None = None) -> None:
    """Print where you stand on ``day``'s exercises (all days when None); kept only under ``GPTLIB_WORKSPACE``."""
    if progress_file() is None:
        print(msg("progress.not_kept").format())
    try:
        lines = progress_lines(day)
    except ValueError as exc:
        lines = [str(exc)]
    print("\n".join(lines))
