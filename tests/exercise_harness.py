"""Shared by the per-day exercise tests: read the learner's stubs and the reference solutions from the
notebooks (one source for each), run them through gptlib.course.exercises, and return the verdicts."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import gptlib.course.exercises as exercises
from gptlib.course.exercises import Verdict, run, set_language

exercises.TIME_LIMIT = 8.0  # the endless-loop mistakes stop sooner; a right answer takes under 1 s even on a busy machine

REPO = Path(__file__).resolve().parents[1]
CHECK_CALL = re.compile(r'^check\("(\d\.\d+)", (\w+)\)\s*$', re.M)
PRELUDE = "import math\nimport torch\nfrom torch import nn\nimport torch.nn.functional as F\n"


def exercise_sources(notebook: str) -> dict[str, tuple[str, str]]:
    """exercise name -> (code that defines the answer, the answer's name), from ``notebook``.

    A check cell ``check("3.2", causal_weights)`` checks what the same cell (before the call) or,
    when the cell holds only checks, the code cell before it defines.
    """
    cells = [("".join(c["source"])) for c in json.loads((REPO / notebook).read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    found: dict[str, tuple[str, str]] = {}
    for i, source in enumerate(cells):
        for match in CHECK_CALL.finditer(source):
            definition = CHECK_CALL.sub("", source)
            definition = "\n".join(line for line in definition.splitlines() if "import check" not in line)
            if not definition.strip():
                definition = cells[i - 1]
            found[match.group(1)] = (definition, match.group(2))
    return found


def verdict(name: str, source: str, answer_name: str) -> Verdict:
    """The verdict of exercise ``name`` on what ``source`` defines as ``answer_name``."""
    namespace: dict = {}
    exec(compile(PRELUDE + source, f"<exercise {name}>", "exec"), namespace)
    return run(name, namespace[answer_name])


def four_way_tests(stubs: dict, solutions: dict, wrong: dict, alternative: dict, exercises: set[str]) -> tuple:
    """A day's four-way proof of its checks, as pytest tests: the untouched stub is "not done", each
    plausible mistake (``wrong``: name -> [(source, hint fragment)]) gets its hint, and the reference
    solution and one written differently (``alternative``: name -> source) pass; each mistake fails in the
    Chinese edition too, in one line; plus a test that
    every exercise in ``exercises`` has all four. Assign the six functions to module-level names
    starting with ``test_`` so pytest collects them."""

    @pytest.mark.parametrize("name", sorted(stubs))
    def test_untouched_stub_is_not_done(name):
        result = verdict(name, *stubs[name])
        assert result.status == "not done", result.line

    @pytest.mark.parametrize("name", sorted(solutions))
    def test_reference_solution_passes(name):
        result = verdict(name, *solutions[name])
        assert result.passed, result.line

    @pytest.mark.parametrize("name, source, hint", [(n, s, h) for n, cases in wrong.items() for s, h in cases])
    def test_plausible_mistakes_get_their_hint(name, source, hint):
        result = verdict(name, source, stubs[name][1])
        assert result.status == "wrong" and hint in result.line, result.line

    @pytest.mark.parametrize("name, source", [(n, s) for n, cases in wrong.items() for s, _ in cases])
    def test_plausible_mistakes_fail_in_chinese_too(name, source):
        set_language("zh")
        try:
            result = verdict(name, source, stubs[name][1])
        finally:
            set_language("en")
        assert result.status == "wrong" and result.line.startswith(f"❌ 未通过 {name} ") and "\n" not in result.line, \
            result.line

    @pytest.mark.parametrize("name", sorted(alternative))
    def test_a_differently_written_solution_passes(name):
        result = verdict(name, alternative[name], stubs[name][1])
        assert result.passed, result.line

    def test_every_exercise_is_covered():
        assert set(stubs) == set(solutions) == set(wrong) == set(alternative) == exercises
        assert all(len(cases) >= 2 for cases in wrong.values())

    return (test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
            test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
            test_every_exercise_is_covered)


def more_alternatives_test(stubs: dict, more: dict[str, list[str]]):
    """A pytest test: every further correct answer in ``more`` (name -> sources), each written differently from
    the reference and the ALTERNATIVE, passes. Assign it to a module-level name starting with ``test_``."""

    @pytest.mark.parametrize("name, source", [(n, s) for n, sources in more.items() for s in sources])
    def test_more_differently_written_solutions_pass(name, source):
        result = verdict(name, source, stubs[name][1])
        assert result.passed, result.line

    return test_more_differently_written_solutions_pass
