"""Exercises (练习) with instant, specific verdicts: write a piece by hand, run its check, read one line.

Every day of the course ends (and sometimes pauses) with exercises: a code cell with a stub to
complete — a function or ``nn.Module`` whose body is ``...`` — and a check cell right after it:

    check("3.2", causal_weights)

which prints one line:

- ``⏳ 3.2 not done yet: ...`` while the stub is untouched (it returns None), saying what to write;
- ``❌ 3.2 ...`` naming the property that failed and a hint aimed at the usual mistake
  ("future positions get weight 0.13: masked with 0 instead of -inf?");
- ``✅ 3.2 ...`` when it passes, and what the library version adds on top.

Checks test behaviour, not text: random inputs of several shapes compared with the reference
implementation (gptlib or torch) within a tolerance, and properties (rows sum to 1, future
weights exactly 0, gradients flow). So any correct solution passes, however it is written.
Reference solutions live in ``notebooks/solutions/``; look when you choose to.

Why our own checker and not otter-grader or nbgrader: those print a doctest transcript per
failed case (long for a learner) and bring ~90 packages; what a learner needs here is one
targeted line, and nbval must compare it exactly. The whole mechanism is this module: an
``@exercise`` registry, a ``Wrong``/``NotDone`` signal, and ``check``. Each day's checks live in
``gptlib.course.exercises.dayN`` and may use only what days 1..N introduced.

Language: verdicts are in English, or Chinese after ``set_language("zh")`` (the Chinese edition
does this in its setup cell) or with ``GPTLIB_LANG=zh`` in the environment.
"""
from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["check", "run", "exercise", "Text", "Wrong", "NotDone", "Verdict", "set_language", "call", "expect",
           "EXERCISES"]

_language = os.environ.get("GPTLIB_LANG", "en")


@dataclass(frozen=True)
class Text:
    """A message in both editions' languages; ``{name}`` fields are filled by ``format``."""

    en: str
    zh: str

    def format(self, **values: Any) -> str:
        return (self.zh if _language == "zh" else self.en).format(**values)


def set_language(language: str) -> None:
    """``"en"`` (default) or ``"zh"``: the language of every verdict printed from now on."""
    global _language
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    _language = language


class Wrong(Exception):
    """Raised by a check when a property fails; the message is the verdict's hint."""

    def __init__(self, text: Text, **values: Any) -> None:
        super().__init__(text.format(**values))


class NotDone(Exception):
    """Raised when the learner's code is still the stub (it returned None or raised NotImplementedError)."""


@dataclass(frozen=True)
class Verdict:
    """What a check found: ``status`` is "done", "wrong" or "not done"; ``line`` is what ``check`` prints."""

    exercise: str
    status: str
    line: str

    @property
    def passed(self) -> bool:
        return self.status == "done"


@dataclass(frozen=True)
class _Exercise:
    name: str
    todo: Text   # what to write, shown while the stub is untouched
    done: Text   # the confirmation, and what the library adds on top
    run: Callable[[Any], None]


EXERCISES: dict[str, _Exercise] = {}


def exercise(name: str, *, todo: Text, done: Text) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register ``run(answer)`` as the check of exercise ``name`` ("3.2": day 3, second exercise).

    ``run`` raises ``Wrong`` at the first property that fails and returns when all hold.
    """
    def register(run_check: Callable[[Any], None]) -> Callable[[Any], None]:
        EXERCISES[name] = _Exercise(name, todo, done, run_check)
        return run_check
    return register


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn``; a stub's None (or NotImplementedError) becomes ``NotDone``, and an
    exception in their code becomes a ``Wrong`` naming it."""
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        raise NotDone from None
    except Exception as exc:  # the learner's bug: say which, in one line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise Wrong(Text("your code raised {kind}: {message}", "你的代码抛出了 {kind}：{message}"),
                     kind=type(exc).__name__, message=message[:160]) from None
    if result is None or result is Ellipsis:
        raise NotDone
    return result


def expect(condition: bool, text: Text, **values: Any) -> None:
    """``Wrong(text)`` unless ``condition`` holds."""
    if not condition:
        raise Wrong(text, **values)


def run(name: str, answer: Any) -> Verdict:
    """Check ``answer`` against exercise ``name`` and return the verdict (``check`` prints it)."""
    day = name.split(".")[0]
    if name not in EXERCISES:
        importlib.import_module(f"{__name__}.day{day}")  # registers that day's exercises
    if name not in EXERCISES:
        raise ValueError(f"no exercise {name!r}; day {day} has {', '.join(sorted(k for k in EXERCISES if k.startswith(day + '.')))}")
    ex = EXERCISES[name]
    try:
        ex.run(answer)
    except NotDone:
        return Verdict(name, "not done", f"⏳ {name} " + Text("not done yet: ", "还没有完成：").format() + ex.todo.format())
    except Wrong as wrong:
        return Verdict(name, "wrong", f"❌ {name} {wrong}")
    return Verdict(name, "done", f"✅ {name} " + ex.done.format())


def check(name: str, answer: Any) -> None:
    """Print the one-line verdict of exercise ``name`` for ``answer`` (your function or class)."""
    print(run(name, answer).line)


def close(a: Any, b: Any, tol: float = 1e-5) -> bool:
    """Two tensors (or numbers) of the same shape agree within ``tol`` (absolute and relative)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
