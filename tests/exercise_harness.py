"""Shared by the per-day exercise tests: read the learner's stubs and the reference solutions from the
notebooks (one source for each), run them through gptlib.exercises, and return the verdicts."""
from __future__ import annotations

import json
import re
from pathlib import Path

from gptlib.exercises import Verdict, run

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
