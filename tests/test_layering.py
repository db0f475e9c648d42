"""The day rule and the two floors, enforced: a gptlib module imports only modules of its own day or
earlier, the day N notebook (either edition) imports only modules of days 1..N (day 0 helpers
everywhere), and no module of the GPT (gptlib's top level) imports the classroom (``gptlib.course``),
except ``__main__``, which wires the classroom's commands into the command line.

``gptlib.MODULE_DAYS`` is the one mapping; README's day table must list the same modules. Every
import is found with ``ast``, including imports inside functions and relative imports.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from gptlib import MODULE_DAYS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "gptlib"
NOTEBOOKS = sorted((REPO / "notebooks").glob("day*.ipynb")) + sorted((REPO / "notebooks" / "zh").glob("day*.ipynb"))


def gptlib_imports(source: str, package: str | None) -> list[tuple[int, str]]:
    """(line, module) of every gptlib module that ``source`` imports, at any depth.

    ``package``: the package the source lives in ("gptlib", "gptlib.course.exercises"), so relative
    imports resolve; None for a notebook. Modules are named as in ``MODULE_DAYS`` ("tokenizer",
    "exercises.day3"); ``from gptlib import x`` names module x when x is one.
    """
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            candidates = [(alias.name, True) for alias in node.names]  # (dotted name, report if unknown)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if package is None:
                    continue
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            candidates = [(base, True)] + [(f"{base}.{alias.name}", False) for alias in node.names]
        else:
            continue
        for name, strict in candidates:
            parts = name.split(".")
            if parts[0] != "gptlib" or len(parts) < 2:
                continue
            inner = parts[1:]
            known = next((".".join(inner[:d]) for d in (3, 2, 1) if ".".join(inner[:d]) in MODULE_DAYS), None)
            if known or strict:
                found.add((node.lineno, known or inner[0]))
    return sorted(found)


def violations(name: str, source: str, day: int, package: str | None) -> list[str]:
    """Every import in ``source`` (a module or notebook of ``day``) of a later day's module."""
    problems = []
    for line, module in gptlib_imports(source, package):
        if module not in MODULE_DAYS:
            problems.append(f"{name}:{line} imports gptlib.{module}, which MODULE_DAYS does not list")
        elif MODULE_DAYS[module] > max(day, 0):
            problems.append(f"{name}:{line} (day {day}) imports gptlib.{module}, introduced on day {MODULE_DAYS[module]}")
    return problems


def notebook_code(path: Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics and shell lines dropped)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = [line for cell in cells if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def module_path(module: str) -> Path:
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_every_module_has_a_day():
    modules = {".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
               for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert modules == set(MODULE_DAYS), "add new modules to gptlib.MODULE_DAYS (and README's day table)"


@pytest.mark.parametrize("module", sorted(MODULE_DAYS))
def test_modules_import_only_earlier_days(module):
    path = module_path(module)
    assert not violations(path.name, path.read_text(encoding="utf-8"), MODULE_DAYS[module], module_package(module))


def module_package(module: str) -> str:
    """The package a module's relative imports start from ("gptlib.course" for "course.probe")."""
    is_package = module_path(module).name == "__init__.py"
    return "gptlib." + module if is_package else ".".join(["gptlib", *module.split(".")[:-1]])


CLASSROOM_WIRING = {"__main__"}  # the command line's front door adds the classroom's commands


def classroom_imports(name: str, source: str, package: str) -> list[str]:
    """Every import of a classroom module (``gptlib.course...``) in a module of the GPT's floor."""
    return [f"{name}:{line} imports gptlib.{module}: the GPT must not depend on the classroom"
            for line, module in gptlib_imports(source, package) if module.split(".")[0] == "course"]


@pytest.mark.parametrize("module", sorted(m for m in MODULE_DAYS if not m.startswith("course")))
def test_the_gpt_never_imports_the_classroom(module):
    if module in CLASSROOM_WIRING:
        pytest.skip("the command line's front door wires in the classroom's commands")
    path = module_path(module)
    assert not classroom_imports(path.name, path.read_text(encoding="utf-8"), module_package(module))


def test_the_floor_check_catches_a_classroom_import():
    """The test above can fail: a model module reaching into the classroom, directly, relatively
    or inside a function, is reported; a classroom module importing the GPT is fine."""
    source = "from .course.fonts import use_cjk_font\n\ndef f():\n    from .course import probe\n    import gptlib.course.exercises.day3\n"
    assert classroom_imports("train.py", source, "gptlib") == [
        "train.py:1 imports gptlib.course.fonts: the GPT must not depend on the classroom",
        "train.py:4 imports gptlib.course: the GPT must not depend on the classroom",
        "train.py:4 imports gptlib.course.probe: the GPT must not depend on the classroom",
        "train.py:5 imports gptlib.course.exercises.day3: the GPT must not depend on the classroom"]
    assert classroom_imports("probe.py", "from ..model import GPTModel\nfrom .fonts import x", "gptlib.course") == [
        "probe.py:2 imports gptlib.course.fonts: the GPT must not depend on the classroom"]
    assert not classroom_imports("probe.py", "from ..model import GPTModel", "gptlib.course")
    assert CLASSROOM_WIRING == {"__main__"}, "only the command line's front door may wire the floors together"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO / "notebooks")))
def test_notebooks_import_only_days_so_far(notebook):
    day = int(re.match(r"day(\d)", notebook.name).group(1))
    assert not violations(notebook.name, notebook_code(notebook), day, None)


def test_the_check_catches_a_later_day_import():
    """The test above can fail: a day 3 module importing the day 6 KV cache, even inside a
    function, and a day 2 notebook importing the day 3 model, are both reported."""
    module = "import torch\n\ndef helper():\n    from .generate import KVCache\n    return KVCache\n"
    assert violations("synthetic.py", module, 3, "gptlib") == [
        "synthetic.py:4 (day 3) imports gptlib.generate, introduced on day 6"]
    assert violations("day2.ipynb", "from gptlib import model\nimport gptlib.runtime", 2, None) == [
        "day2.ipynb:1 (day 2) imports gptlib.model, introduced on day 3"]
    exercise = "from ...train import train\nfrom . import Text\n"  # inside gptlib/course/exercises/day4.py
    assert violations("day4.py", exercise, 4, "gptlib.course.exercises") == [
        "day4.py:1 (day 4) imports gptlib.train, introduced on day 5"]
    assert violations("nb", "from gptlib.course.exercises import check\nfrom gptlib.course.exercises.day6 import x",
                      3, None) == ["nb:2 (day 3) imports gptlib.course.exercises.day6, introduced on day 6"]
    assert violations("nb", "from gptlib.course import probe", 4, None) == [
        "nb:1 (day 4) imports gptlib.course.probe, introduced on day 5"]
    assert violations("x.py", "from .nosuch import y", 0, "gptlib") == [
        "x.py:1 imports gptlib.nosuch, which MODULE_DAYS does not list"]


def test_readme_day_table_is_module_days():
    rows = re.findall(r"^\| (\d) \| `notebooks/day\d_\w+\.ipynb` \|[^|]*\| ([^|]*) \|$",
                      (REPO / "README.md").read_text(encoding="utf-8"), flags=re.M)
    in_readme = {int(day): set(re.findall(r"`([\w.]+)`", modules)) for day, modules in rows}
    # each day also has its exercise checks, gptlib.course.exercises.dayN: the table leaves them out
    # classroom modules are named with their subpackage (`course.probe`)
    introduced = {day: {m for m, d in MODULE_DAYS.items() if d == day and not m.startswith("course.exercises")}
                  for day in range(1, 8)}
    introduced[4] |= {"model"}  # model.py is begun on day 3 and completed on day 4: both rows name it
    assert in_readme == introduced
