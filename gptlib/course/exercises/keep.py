"""Your answers, kept: a passing answer's source goes into your own small package, ``mygpt``.

As d2l's ``#@save`` keeps its cells: when ``check`` passes an answer and ``GPTLIB_WORKSPACE`` names your
working folder, the answer's source (its ``def`` or ``class``, nothing else) is written into
``<workspace>/mygpt/day{N}.py``, under a comment naming its exercise. A later pass of the same exercise
replaces its block; a wrong answer is never kept. They are plain files you can open and read, and later
days build from them (``load``; ``gptlib.course.yours`` assembles your GPT).
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import linecache
import os
import re
import textwrap
from pathlib import Path
from typing import Any

from ...files import write_atomically
from . import msg
from .progress import workspace

PACKAGE = "mygpt"
HEADER = '''"""Your day {day} answers, kept by check() when they passed: one block per exercise, replaced when
it passes again. Edit them in the notebook and check them again; gptlib.course.yours builds your GPT
from them."""
import math

import torch
import torch.nn.functional as F
from torch import nn
'''
MARK = re.compile(r"^# exercise (\d+\.\d+): (\w+)\n", re.M)  # the comment above each kept answer


def package_dir() -> Path | None:
    """``$GPTLIB_WORKSPACE/mygpt``, or None when the variable is unset (then nothing is kept)."""
    folder = workspace()
    return folder / PACKAGE if folder else None


def _class_source(cls: type) -> str:
    """A class's source from its methods' code (a notebook's ``__main__`` has no file for inspect)."""
    codes = [f.__code__ for f in vars(cls).values() if hasattr(f, "__code__")]
    if not codes:
        raise OSError("no method of it has source")
    lines = linecache.getlines(codes[0].co_filename)
    tree = ast.parse("".join(lines))
    starts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__
              and n.lineno <= codes[0].co_firstlineno]
    if not starts:
        raise OSError(f"no 'class {cls.__name__}' found")
    start = max(starts) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("@"):  # its decorators
        start -= 1
    return "".join(inspect.getblock(lines[start:]))


def source_of(answer: Any) -> str:
    """The ``def``/``class`` of ``answer`` as written; ``ValueError`` (one line) when it cannot be read."""
    name = getattr(answer, "__name__", "")
    if not (inspect.isfunction(answer) or inspect.isclass(answer)) or not name.isidentifier():
        raise ValueError(msg("keep.no_def").format(kind=type(answer).__name__))
    try:
        source = inspect.getsource(answer)
    except (OSError, TypeError):
        try:
            if not inspect.isclass(answer):
                raise OSError("inspect cannot see it") from None
            source = _class_source(answer)
        except (OSError, SyntaxError) as exc:
            raise ValueError(msg("keep.unreadable").format(name=name, why=str(exc)[:80])) from None
    source = textwrap.dedent(source)
    try:
        defined = [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    except SyntaxError:
        defined = []
    if defined != [name]:  # a lambda, or a name bound to another's code: no def of its own to copy
        raise ValueError(msg("keep.no_def").format(kind=name))
    return source.rstrip() + "\n"


def blocks(path: Path) -> dict[str, tuple[str, str]]:
    """The answers kept in ``path``: exercise -> (name, source); {} when there is no file yet."""
    if not path.exists():
        return {}
    parts = MARK.split(path.read_text(encoding="utf-8"))  # header, then (exercise, name, source) triples
    return {parts[i]: (parts[i + 1], parts[i + 2].strip() + "\n") for i in range(1, len(parts), 3)}


def _order(exercise: str) -> tuple[int, ...]:
    return tuple(int(x) for x in exercise.split("."))


def keep(exercise: str, answer: Any) -> Path | None:
    """Write the source of ``answer`` (which passed ``exercise``) into ``mygpt/day{N}.py``, replacing
    that exercise's earlier block; None when ``GPTLIB_WORKSPACE`` is unset."""
    folder = package_dir()
    if folder is None:
        return None
    source = source_of(answer)
    day = exercise.split(".")[0]
    path = folder / f"day{day}.py"
    kept = blocks(path)
    for other, (name, _) in kept.items():  # one module: a second `Net` would hide the first when imported
        if name == answer.__name__ and other != exercise:
            raise ValueError(msg("keep.same_name").format(name=name, other=other, path=path.name))
    kept[exercise] = (answer.__name__, source)
    text = HEADER.format(day=day) + "".join(
        f"\n\n# exercise {ex}: {name}\n{src}" for ex, (name, src) in sorted(kept.items(), key=lambda i: _order(i[0])))
    folder.mkdir(parents=True, exist_ok=True)
    init = folder / "__init__.py"
    if not init.exists():
        init.write_text('"""Your GPT\'s pieces, one module per day, kept by the course\'s check()."""\n',
                        encoding="utf-8")
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))
    return path


def load(day: int, folder: Path | None = None) -> dict[str, Any]:
    """The answers kept for ``day``, imported from ``mygpt/day{day}.py``: exercise -> function or class.

    {} when nothing is kept; a file that no longer imports raises ``ValueError`` with one line."""
    folder = folder or package_dir()
    path = folder / f"day{day}.py" if folder else None
    if path is None or not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"{PACKAGE}.day{day}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the learner's file: say what broke, in one line
        raise ValueError(msg("keep.broken").format(path=path, kind=type(exc).__name__,
                                                   why=str(exc).strip()[:120])) from None
    return {ex: getattr(module, name) for ex, (name, _) in blocks(path).items() if hasattr(module, name)}
