"""How big the GPT is, and how much of it is checking: the two numbers CONTRIBUTING's targets name.

For each module of gptlib's top level (``gptlib/*.py``; the classroom in ``gptlib/course/`` is not
counted) this prints:

- **code lines**: lines holding code; blank lines, comment-only lines and docstrings do not count;
- **checking lines**: code lines of ``raise`` and ``assert`` statements, the test line(s) of an ``if``
  (or ``elif``) whose body ends in a ``raise``, and the header line(s) of an ``except`` handler that
  raises;
- **checking share**: checking lines over code lines.

Usage (from the repository root)::

    python -m tools.library_stats              # gptlib's top level
    python -m tools.library_stats FILE...      # any Python files

``tests/test_library_shape.py`` holds the bounds.
"""
from __future__ import annotations

import ast
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = REPO / "gptlib"

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENCODING, tokenize.ENDMARKER}


@dataclass(frozen=True)
class Stats:
    code_lines: int
    checking_lines: int

    @property
    def share(self) -> float:
        return self.checking_lines / self.code_lines if self.code_lines else 0.0


def _lines(node: ast.AST, last: ast.AST | None = None) -> set[int]:
    """Line numbers from ``node``'s first line to ``last``'s (default: its own) last line."""
    return set(range(node.lineno, (last or node).end_lineno + 1))


def docstring_lines(tree: ast.Module) -> set[int]:
    """Lines of the module's, classes' and functions' docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                lines |= _lines(first)
    return lines


def code_lines(source: str) -> set[int]:
    """Lines holding a token other than a comment, outside docstrings."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines |= set(range(token.start[0], token.end[0] + 1))
    return lines - docstring_lines(ast.parse(source))


def _raises(body: list[ast.stmt]) -> bool:
    """Whether a handler's body raises (at any depth, nested functions aside)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Raise):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))
    return False


def checking_lines(source: str) -> set[int]:
    """Lines of raise/assert statements, of the tests of ifs ending in a raise, of raising except headers."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Raise, ast.Assert)):
            lines |= _lines(node)
        elif isinstance(node, ast.If) and isinstance(node.body[-1], ast.Raise):
            lines |= _lines(node, node.test)  # the ``if``/``elif`` line through the end of its test
        elif isinstance(node, ast.ExceptHandler) and _raises(node.body):
            lines |= _lines(node, node.type) if node.type else {node.lineno}
    return lines


def measure(source: str) -> Stats:
    code = code_lines(source)
    return Stats(len(code), len(checking_lines(source) & code))


def top_level_modules() -> list[Path]:
    """gptlib's top-level modules (the GPT), not the classroom in gptlib/course/."""
    return sorted(TOP_LEVEL.glob("*.py"))


def report(paths: list[Path]) -> tuple[str, Stats]:
    """A table of every file's stats and the total, and the total itself."""
    rows = [f"{'module':<28}{'code':>7}{'checks':>8}{'share':>8}"]
    total_code = total_checks = 0
    for path in paths:
        stats = measure(path.read_text(encoding="utf-8"))
        total_code += stats.code_lines
        total_checks += stats.checking_lines
        rows.append(f"{path.stem:<28}{stats.code_lines:>7}{stats.checking_lines:>8}{stats.share:>8.1%}")
    total = Stats(total_code, total_checks)
    rows.append(f"{'total':<28}{total.code_lines:>7}{total.checking_lines:>8}{total.share:>8.1%}")
    return "\n".join(rows), total


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(arg) for arg in args] if args else top_level_modules()
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    print(report(paths)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
