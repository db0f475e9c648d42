"""``python -m gptlib``: the GPT's commands (``gptlib.cli``) and the classroom's (``gptlib.course.commands``).

The one top-level module that reaches into the classroom: it only wires the two floors together.
"""
from __future__ import annotations

import sys

from . import cli
from .course.commands import COMMANDS as CLASSROOM_COMMANDS


def main(argv: list[str] | None = None) -> int:
    """Every command: ``train``, ``generate``, ``figures``, ``doctor``."""
    return cli.main(argv, extra_commands=CLASSROOM_COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
