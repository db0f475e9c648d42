"""Exercises with instant, specific verdicts: write a piece by hand, run its check, read one line.

Every day of the course ends (and sometimes pauses) with exercises: a code cell with a stub to
complete — a function or ``nn.Module`` whose body is ``...`` — and a check cell right after it:

    check("3.2", causal_weights)

which prints one line, with a word that reads without emoji fonts:

- ``⏳ TODO 3.2 [★☆☆ ~10 min] ...`` while the stub is untouched (it returns None), saying what to write,
  after the exercise's difficulty (1-3 stars) and time estimate (``labels``: how they are estimated);
- ``❌ FAIL 3.2 ...`` naming the property that failed and a hint aimed at the usual mistake
  ("future positions get weight 0.13: masked with 0 instead of -inf?"); an exception in the
  learner's code, or an answer that runs past ``TIME_LIMIT`` seconds, is such a line too;
- ``✅ PASS 3.2 ...`` when it passes, and what the library version adds on top.

Checks test behaviour, not text: random inputs of several shapes compared with the reference
implementation (gptlib or torch) within a tolerance, and properties (rows sum to 1, future
weights exactly 0, gradients flow). So any correct solution passes, however it is written.
Reference solutions live in ``notebooks/solutions/``; look when you choose to.

Why our own checker and not otter-grader or nbgrader: those print a doctest transcript per
failed case (long for a learner) and bring ~90 packages; what a learner needs here is one
targeted line, and nbval must compare it exactly. The whole mechanism is this module: an
``@exercise`` registry, a ``Wrong``/``NotDone`` signal, and ``check``. Each day's checks live in
``gptlib.course.exercises.dayN`` and may use only what days 1..N introduced; their texts live in
``messages/dayN.toml`` (English and Chinese side by side, looked up with ``msg``).

Progress: ``check`` also keeps each exercise's state in ``$GPTLIB_WORKSPACE/progress.json`` when that
variable is set (``progress``); ``show_progress(day)`` and ``python -m gptlib progress`` list it. A
passing answer's source is kept there too, in the learner's own package ``mygpt/dayN.py`` (``keep``).

Language: verdicts are in English, or Chinese after ``set_language("zh")`` (the Chinese edition
does this in its setup cell) or with ``GPTLIB_LANG=zh`` in the environment.
"""
from __future__ import annotations

import copy
import functools
import importlib
import math
import os
import signal
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["check", "run", "exercise", "Text", "msg", "Wrong", "TimedOut", "NotDone", "Verdict", "set_language", "call",
           "expect", "expect_tensor", "EXERCISES", "TIME_LIMIT"]

_language = os.environ.get("GPTLIB_LANG", "en")
MESSAGES = Path(__file__).with_name("messages")
TIME_LIMIT = 20.0  # seconds one call of the learner's code may run before its check says so


@dataclass(frozen=True)
class Text:
    """A message in both editions' languages; ``{name}`` fields are filled by ``format``."""

    en: str
    zh: str

    def format(self, **values: Any) -> str:
        return (self.zh if _language == "zh" else self.en).format(**values)


@functools.cache
def catalog(name: str) -> dict[str, Text]:
    """The messages of ``messages/<name>.toml`` ("day3", "checker"): key -> Text."""
    with open(MESSAGES / f"{name}.toml", "rb") as f:
        return {key: Text(entry["en"], entry["zh"]) for key, entry in tomllib.load(f).items()}


def msg(key: str) -> Text:
    """The message ``key`` ("3.2.after": exercise 3.2, mistake "after"; "checker.raised") from its catalog."""
    head = key.split(".")[0]
    return catalog(f"day{head}" if head.isdigit() else head)[key]


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


class TimedOut(Wrong):
    """A ``Wrong`` for an answer that ran past ``TIME_LIMIT`` (a check then stops calling it)."""


class NotDone(Exception):
    """Raised when the learner's code is still the stub (it returned None or raised NotImplementedError)."""


class _TimeUp(BaseException):
    """Raised inside the learner's code when it runs past ``TIME_LIMIT`` (a BaseException, so that their
    own ``except Exception`` cannot swallow it)."""


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


def describe(value: Any, limit: int = 60) -> str:
    """A short description of an input for a verdict: a tensor's shape and dtype, else a cut ``repr``."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"tensor{tuple(shape)} {str(dtype).removeprefix('torch.')}"
    if isinstance(value, type) or (callable(value) and hasattr(value, "__name__")):
        return value.__name__  # a class or function: never its address, which changes from run to run
    text = repr(value)
    if "\n" in text:  # a model or other object that prints on several lines: its kind is enough
        return type(value).__name__
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "_version")


def _on_cpu(value: Any) -> Any:
    """A result moved to the CPU (differentiably), so an answer that used the notebook's GPU compares too."""
    device = getattr(value, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu" and hasattr(value, "cpu"):
        return value.cpu()
    if isinstance(value, tuple):
        return tuple(_on_cpu(v) for v in value)
    if isinstance(value, list) and any(getattr(v, "device", None) is not None for v in value):
        return [_on_cpu(v) for v in value]
    return value


@functools.cache
def _can_time() -> bool:
    return hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")


_armed = False


def _timed(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, stopped with ``_TimeUp`` after ``TIME_LIMIT`` seconds where a SIGALRM timer
    can run (Unix, main thread: a Jupyter kernel runs cells there); elsewhere without a limit. The
    kernel's interrupt (SIGINT, KeyboardInterrupt) is untouched."""
    global _armed
    if _armed or not _can_time() or threading.current_thread() is not threading.main_thread():
        return fn(*args, **kwargs)

    def time_up(signum: int, frame: Any) -> None:
        raise _TimeUp

    previous = signal.signal(signal.SIGALRM, time_up)
    _armed = True
    try:
        signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _armed = False


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` within ``TIME_LIMIT``; a stub's None (or NotImplementedError) becomes
    ``NotDone``, an exception in their code or a time-out a ``Wrong`` naming it and the input."""
    def inputs() -> str:
        shown = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
        return ", ".join(shown)[:200]

    given = [(i, a, a._version) for i, a in enumerate([*args, *kwargs.values()], 1) if _is_tensor(a)]
    containers = [(i, a, copy.deepcopy(a)) for i, a in enumerate([*args, *kwargs.values()], 1)
                  if isinstance(a, (list, dict))]  # lists of ids, batches of records: compared after the call
    try:
        result = _timed(fn, *args, **kwargs)
    except NotImplementedError as exc:
        if _raised_in_library(exc) or not _raised_by_statement(exc):  # nn.ModuleList(), x ^ 3 on floats: a bug
            raise Wrong(msg("checker.raised"), kind="NotImplementedError", message=str(exc)[:200] or
                        "this object cannot be called", inputs=inputs()) from exc
        raise NotDone from None
    except _TimeUp:
        raise TimedOut(msg("checker.time_up"), seconds=f"{TIME_LIMIT:g}", inputs=inputs()) from None
    except Exception as exc:  # the learner's bug: say which, in one line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "view size is not compatible" in message:  # .view after .transpose: the usual one, named
            message = msg("checker.view_after_transpose").format()
        raise Wrong(msg("checker.raised"), kind=type(exc).__name__, message=message[:200], inputs=inputs()) from exc
    for i, tensor, version in given:  # an in-place op bumps a tensor's version counter
        expect(tensor._version == version, msg("checker.changed_input"), n=i, what=describe(tensor))
    for i, now, before in containers:
        expect(_same(now, before), msg("checker.changed_container"), n=i, what=type(now).__name__)
    if result is None or result is Ellipsis:
        raise NotDone
    if type(result).__module__ == "numpy" and not isinstance(result, (int, float)):  # np.float64 is a float
        raise Wrong(msg("checker.numpy"), kind=type(result).__name__)
    return _on_cpu(result)


def _raised_in_library(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside torch or gptlib rather than in the learner's own code."""
    import torch

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = str(Path(tb.tb_frame.f_code.co_filename).resolve()) if tb is not None else ""
    return any(where.startswith(str(Path(m.__file__).resolve().parent)) for m in (torch,))


def _raised_by_statement(exc: BaseException) -> bool:
    """Whether ``exc`` came from a ``raise`` statement (a stub's ``raise NotImplementedError``) rather than from
    an operation that is not implemented (``x ^ 3`` on a float tensor raises NotImplementedError inside torch)."""
    import dis

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return True
    code = tb.tb_frame.f_code.co_code
    return tb.tb_lasti < len(code) and dis.opname[code[tb.tb_lasti]] in ("RAISE_VARARGS", "RERAISE")


def _same(a: Any, b: Any) -> bool:
    """Equal contents, tensors compared exactly (``==`` on tensors is elementwise)."""
    if _is_tensor(a) or _is_tensor(b):
        return _is_tensor(a) and _is_tensor(b) and a.shape == b.shape and bool((a == b).all())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def expect(condition: bool, text: Text, **values: Any) -> None:
    """``Wrong(text)`` unless ``condition`` holds."""
    if not condition:
        raise Wrong(text, **values)


def expect_tensor(got: Any) -> None:
    """``Wrong`` unless ``got`` is a torch tensor: a list, a str or a number gets one clear line."""
    import torch

    expect(isinstance(got, torch.Tensor), msg("checker.not_tensor"), kind=type(got).__name__)


def _known() -> str:
    for day in range(1, 9):
        importlib.import_module(f"{__name__}.day{day}")
    return ", ".join(sorted(EXERCISES, key=lambda n: tuple(int(x) for x in n.split("."))))


def run(name: Any, answer: Any) -> Verdict:
    """Check ``answer`` against exercise ``name`` and return the verdict (``check`` prints it)."""
    fail = msg("checker.fail").format()
    if not isinstance(name, str):
        return Verdict(str(name), "wrong", f"❌ {fail} " + msg("checker.name_not_str").format(name=name))
    day = name.split(".")[0]
    if name not in EXERCISES and day.isdigit() and 1 <= int(day) <= 8:
        importlib.import_module(f"{__name__}.day{day}")  # registers that day's exercises
    if name not in EXERCISES:
        return Verdict(name, "wrong", f"❌ {fail} " + msg("checker.unknown").format(name=name, known=_known()))
    ex = EXERCISES[name]
    if not callable(answer):
        return Verdict(name, "wrong", f"❌ {fail} {name} " + msg("checker.not_callable").format(
            name=name, kind=type(answer).__name__))
    try:
        ex.run(answer)
    except NotDone:
        from .labels import label

        return Verdict(name, "not done", f"⏳ {msg('checker.todo').format()} {name} {label(name)} " + ex.todo.format())
    except Wrong as wrong:
        return Verdict(name, "wrong", f"❌ {fail} {name} {wrong}")
    except Exception as exc:  # the answer is of a kind no check foresaw: still one line, never a traceback
        message = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        return Verdict(name, "wrong", f"❌ {fail} {name} " + msg("checker.unusable").format(
            kind=type(exc).__name__, message=message, answer=describe(answer)))
    return Verdict(name, "done", f"✅ {msg('checker.pass').format()} {name} " + ex.done.format())


_NO_ANSWER = object()


def check(name: str, answer: Any = _NO_ANSWER) -> None:
    """Print the one-line verdict of exercise ``name`` for ``answer`` (your function or class)."""
    if answer is _NO_ANSWER:
        print(f"❌ {msg('checker.fail').format()} {name} " + msg("checker.no_answer").format(name=name))
        return
    verdict = run(name, answer)
    print(verdict.line)
    from .progress import record

    try:
        record(verdict.exercise, verdict.status)
    except OSError as exc:  # a full disk or read-only workspace must not hide the verdict
        print(msg("checker.not_recorded").format(why=str(exc)[:160]))
        return  # the same folder: keeping the answer would fail the same way
    if verdict.passed:  # kept in your own package, mygpt/dayN.py, for later days to build from
        from .keep import keep

        try:
            keep(verdict.exercise, answer)
        except (OSError, ValueError) as exc:
            print(msg("checker.not_kept").format(day=verdict.exercise.split(".")[0], why=str(exc)[:160]))


def close(a: Any, b: Any, tol: float = 1e-5) -> bool:
    """Two tensors (or numbers) of the same shape agree within ``tol`` (absolute and relative); compared
    on the CPU in float64, whatever device or dtype they come from."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = (torch.as_tensor(v).detach().cpu().double() for v in (a, b))
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
