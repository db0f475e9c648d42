"""The day rule, enforced: a gptlib module imports only modules of its own day or earlier, and the
day N notebook (either edition) imports only modules of days 1..N (day 0 helpers everywhere).

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


def gptlib_imports(source: str, package_relative: bool) -> list[tuple[int, str]]:
    """(line, module) of every gptlib module that ``source`` imports, at any depth.

    ``from gptlib import x`` names module x when x is one; ``package_relative``: the source is a
    module inside gptlib, so ``from . import x`` and ``from .x import y`` count too.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gptlib" and len(parts) > 1:
                    found.append((node.lineno, parts[1]))
        elif isinstance(node, ast.ImportFrom):
            relative = package_relative and node.level == 1
            parts = (node.module or "").split(".")
            if parts[0] == "gptlib" and node.level == 0 or relative:
                inner = parts[1:] if not relative else [p for p in parts if p]
                if inner:
                    found.append((node.lineno, inner[0]))
                else:  # from gptlib import x / from . import x
                    found += [(node.lineno, a.name) for a in node.names if a.name in MODULE_DAYS]
    return found


def violations(name: str, source: str, day: int, package_relative: bool) -> list[str]:
    """Every import in ``source`` (a module or notebook of ``day``) of a later day's module."""
    problems = []
    for line, module in gptlib_imports(source, package_relative):
        if module not in MODULE_DAYS:
            problems.append(f"{name}:{line} imports gptlib.{module}, which MODULE_DAYS does not list")
        elif 0 < day < MODULE_DAYS[module] or (day == 0 and MODULE_DAYS[module] > 0):
            problems.append(f"{name}:{line} (day {day}) imports gptlib.{module}, introduced on day {MODULE_DAYS[module]}")
    return problems


def notebook_code(path: Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics and shell lines dropped)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = [line for cell in cells if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def test_every_module_has_a_day():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(MODULE_DAYS), "add new modules to gptlib.MODULE_DAYS (and README's day table)"


@pytest.mark.parametrize("module", sorted(MODULE_DAYS))
def test_modules_import_only_earlier_days(module):
    path = PACKAGE / f"{module}.py"
    assert not violations(path.name, path.read_text(encoding="utf-8"), MODULE_DAYS[module], True)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO / "notebooks")))
def test_notebooks_import_only_days_so_far(notebook):
    day = int(re.match(r"day(\d)", notebook.name).group(1))
    assert not violations(notebook.name, notebook_code(notebook), day, False)


def test_the_check_catches_a_later_day_import():
    """The test above can fail: a day 3 module importing the day 6 KV cache, even inside a
    function, and a day 2 notebook importing the day 3 model, are both reported."""
    module = "import torch\n\ndef helper():\n    from .generate import KVCache\n    return KVCache\n"
    assert violations("synthetic.py", module, 3, True) == [
        "synthetic.py:4 (day 3) imports gptlib.generate, introduced on day 6"]
    assert violations("day2.ipynb", "from gptlib import model\nimport gptlib.runtime", 2, False) == [
        "day2.ipynb:1 (day 2) imports gptlib.model, introduced on day 3"]
    assert violations("x.py", "from . import checks, nosuch", 0, True) == []  # unknown names are not modules
    assert violations("x.py", "from .nosuch import y", 0, True) == [
        "x.py:1 imports gptlib.nosuch, which MODULE_DAYS does not list"]


def test_readme_day_table_is_module_days():
    rows = re.findall(r"^\| (\d) \| `notebooks/day\d_\w+\.ipynb` \|[^|]*\| ([^|]*) \|$",
                      (REPO / "README.md").read_text(encoding="utf-8"), flags=re.M)
    in_readme = {int(day): set(re.findall(r"`(\w+)`", modules)) for day, modules in rows}
    introduced = {day: {m for m, d in MODULE_DAYS.items() if d == day} for day in range(1, 8)}
    introduced[4] |= {"model"}  # model.py is begun on day 3 and completed on day 4: both rows name it
    assert in_readme == introduced
