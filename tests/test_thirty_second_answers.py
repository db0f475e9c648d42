"""The 30-second answers cannot go stale (issue 22, item 5).

Each day ends with questions whose answers (``<details>`` blocks, both editions) quote what the
notebook measured. Every number quoted there must be one the notebook's stored outputs print —
exactly, or rounded to the digits quoted ("about 0.98" for a printed 0.9812). A number that is not
measured is listed in ``KNOWN`` under its notebook with its kind and reason:

- ``constant``: a setting or a fact, not a measurement (a context length, a year, a seed count);
- ``derived``: computed from printed numbers (a ratio, a square root), with the formula;
- ``recorded``: measured outside this notebook's run (a sweep over seeds, kept in a code comment);
- ``varies``: printed by a ``NBVAL_IGNORE_OUTPUT`` cell that times something, so it changes at every
  run: the answer quotes it as approximate.

Re-executing a notebook rewrites its outputs; where a measured number moved, this test names the
answer that still quotes the old one. Numbers that are not claims are skipped: section and question
labels (§3, Q4), days (day 5, 第 5 天), exercise ids (exercise 1.4), and digits inside names (GPT-2,
float32, o200k, 10⁶'s exponent).
"""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("day*.ipynb")) + sorted((REPO / "notebooks" / "zh").glob("day*.ipynb"))
KINDS = ("constant", "derived", "recorded", "varies")

# notebook (stem) -> number as the answers write it ("3.3x" for 3.3× or 3.3x) -> "kind: reason". Both editions.
KNOWN: dict[str, dict[str, str]] = {
    "day1_tokenize": {
        "90%": "constant: the share of Tiny Shakespeare the word vocabulary is built from",
        "150,000": "constant: about how many characters Unicode has",
        "3.3x": "derived: 3,387 / 1,024 positions",
        "11x": "derived: 3.3², attention's cost grows with the square of the positions",
    },
    "day2_embed": {
        "15495": "derived: the id before 15496 (Hello)",
        "15497": "derived: the id after 15496 (Hello)",
        "1,025": "derived: one position past the table's 1,024 rows",
    },
    "day4_block": {
        "0.94": "derived: √(7/8), the n − 1 factor for 8 numbers",
        "768": "constant: GPT-2 small's width",
        "0.9993": "derived: √(767/768), the n − 1 factor at GPT-2's width",
        "1,024": "constant: the number of examples fed to the dead-unit experiment",
        "4,600x": "derived: 5.20e-02 / 1.12e-05, rounded",
        "192": "constant: GPT-3's 96 blocks × 2 residual additions",
        "2017": "constant: the year of the Transformer paper",
        "4x": "constant: the feed-forward's expansion",
    },
    "day5_pretrain": {
        "4,096": "constant: the tokens of the over-fitting experiment",
        "120": "constant: the last step of the over-fitting experiment",
        "130": "varies: steps that fit in the 8-second budget (a timing; 130 when last run)",
        "8": "varies: steps that fit in the 8-second budget with GPT-2's vocabulary (a timing)",
        "3.0": "varies: bits/byte after a time-budgeted run",
        "4.2": "varies: bits/byte after a time-budgeted run",
    },
    "day6_generate": {
        "2.58": "derived: log2(6), the entropy of six equal words",
        "20,000": "constant: the number of draws",
        "200": "constant: the number of greedy tokens",
        "2.7x": "varies: the KV cache's measured speed-up (a timing)",
    },
    "day7_finetune": {
        "0.008": "recorded: the smallest gap over 6 seeds (the assert cell's comment)",
        "0.035": "recorded: the full-finetuning gap's lower end over 6 seeds (the assert cell's comment)",
        "0.027": "recorded: the full-finetuning gap's upper end over 6 seeds (the assert cell's comment)",
        "1e-4": "constant: the tolerance the assert uses",
        "51": "derived: 64 − 13, the padding after the 13-token message",
    },
    "day8_modern": {
        "30": "constant: §5 makes its queries and keys 30 times too long on purpose",
        "25": "derived: 2 + 23 tensors in the AdamW groups of §6's table",
        "2.15": "constant: the bonus day's goal in bits/byte (issue 25)",
    },
}

WORD = r"A-Za-z0-9_⁰¹²³⁴⁵⁶⁷⁸⁹"
NUMBER = (r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
# a quoted number: not glued to a name (GPT-2, float32, o200k, 10⁶), with its unit suffix if any
QUOTED = re.compile(rf"(?<![{WORD}.])(?<![A-Za-z]-)({NUMBER})(?:(x|×)|( ?%)|st|nd|rd|th)?(?![{WORD}]|\.\d)")
PRINTED = re.compile(rf"(?<![A-Za-z0-9_.])({NUMBER})(?:(x|×)|( ?%))?")
NOT_CLAIMS = re.compile(r"<[^>]+>|§\s*[\"“][^\"”]*[\"”]|§\s*\d+(?:\.\d+)?|\bQ\d+\b|\b[Dd]ay \d+|第\s*\d+\s*天"
                        r"|[Ee]xercise \d+\.\d+|练习\s*\d+\.\d+")


def answers(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(label, text) of every ``<details>`` answer in the notebook's markdown cells."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for block in re.findall(r"<details>(.*?)</details>", cell.source, flags=re.S):
                label = re.search(r"Q\d+", block)
                found.append((label.group(0) if label else block[:40], block))
    return found


def quoted_numbers(text: str) -> list[tuple[str, str]]:
    """(number as written, unit suffix "x", "%" or "") of every claim-like number in ``text``."""
    text = NOT_CLAIMS.sub(" ", text)
    return [(m.group(1), _unit(m)) for m in QUOTED.finditer(text)]


def printed_numbers(notebook: nbformat.NotebookNode) -> set[tuple[str, str]]:
    """(number, unit suffix) of every number in the stored text outputs of the notebook's code cells."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
            texts.append(output.get("evalue", ""))
    return {(m.group(1), _unit(m)) for text in texts for m in PRINTED.finditer(text)}


def _unit(match: re.Match) -> str:
    return "x" if match.group(2) else "%" if match.group(3) else ""


def _key(number: str) -> str:
    """A number as KNOWN lists it: no thousands separators, "×" written "x"."""
    return number.replace(",", "").replace("×", "x").replace(" ", "")


def _value_and_step(number: str) -> tuple[Decimal, Decimal]:
    """The number's value and the size of its last digit: "0.98" -> (0.98, 0.01), "3.22e-01" -> (0.322, 0.001)."""
    value = Decimal(number.replace(",", ""))
    return abs(value), Decimal(1).scaleb(value.as_tuple().exponent)


def is_printed(number: str, unit: str, printed: set[tuple[str, str]]) -> bool:
    """True when some printed number with the same unit rounds to ``number`` at the digits it quotes."""
    value, step = _value_and_step(number)
    for other, other_unit in printed:
        if other_unit == unit or unit == "":
            other_value, other_step = _value_and_step(other)
            if other_step <= step and abs(other_value - value) <= step / 2:
                return True
    return False


def stale_numbers(path: Path) -> list[str]:
    """One line per number that an answer of ``path`` quotes but its outputs do not print and KNOWN lacks."""
    notebook = nbformat.read(path, as_version=4)
    printed, known = printed_numbers(notebook), KNOWN.get(path.stem, {})
    known_values = {_key(n) for n in known}
    problems = []
    for label, text in answers(notebook):
        for number, unit in quoted_numbers(text):
            if _key(number + unit) not in known_values and not is_printed(number, unit, printed):
                problems.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path.name} {label}: "
                                f"{number}{unit} is not printed by any output")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO / "notebooks")))
def test_every_number_an_answer_quotes_is_printed_or_known(path):
    problems = stale_numbers(path)
    assert not problems, "\n".join(problems) + (
        "\nfix: quote the number the re-executed notebook prints, or, if it is not a measurement, add it to "
        "KNOWN in tests/test_thirty_second_answers.py with its kind (constant, derived, recorded, varies) and why")


def test_every_known_number_is_quoted_and_has_a_kind():
    for stem, numbers in KNOWN.items():
        path = REPO / "notebooks" / f"{stem}.ipynb"
        quoted = {_key(n + unit) for _, text in answers(nbformat.read(path, as_version=4))
                  for n, unit in quoted_numbers(text)}
        for number, reason in numbers.items():
            assert reason.split(":")[0] in KINDS, f"{stem} {number}: the reason must start with one of {KINDS}"
            assert _key(number) in quoted, f"{stem}: KNOWN lists {number}, which no answer quotes"


def test_every_day_has_answers_with_numbers():
    for path in NOTEBOOKS:
        found = answers(nbformat.read(path, as_version=4))
        assert len(found) >= 6, path
        assert sum(len(quoted_numbers(text)) for _, text in found) >= 20, path


def _synthetic(folder: Path, answer: str) -> Path:
    """A notebook whose one code cell printed a loss, a speed-up, a share and a count."""
    code = new_code_cell("print(...)", outputs=[new_output(
        "stream", name="stdout", text="loss 15.046 -> 0.548\nwith cache: 2.7x faster\n45.54% of 124,439,808\n")])
    notebook = new_notebook(cells=[code, new_markdown_cell(f"<details><summary><b>Q1. Why?</b></summary>\n\n"
                                                           f"{answer}\n\n</details>")])
    path = folder / "day9_synthetic.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize("answer", [
    "five epochs brought it to 0.547.",             # a stale loss (day 7's Q7 before this test)
    "the speed-up was 2.5x.",                        # a stale ratio, although 2.5 might appear elsewhere
    "the feed-forward layers hold 45.55 %.",         # one digit off
    "124,439,809 parameters",                       # an off-by-one count
    "a loss of 0.55 at step 1.2e3",                  # a number the outputs never printed (1.2e3)
])
def test_a_stale_number_fails(tmp_path, answer):
    problems = stale_numbers(_synthetic(tmp_path, answer))
    assert len(problems) == 1 and "Q1" in problems[0], problems


@pytest.mark.parametrize("answer", [
    "five epochs brought it to 0.548, from 15.046.",
    "about 0.55, and 15.0 at the start",            # rounded to the digits quoted
    "a 2.7x speed-up; 45.54 % of 124,439,808",       # units and thousands separators
    "§7 in Q3 of day 5 (第 5 天, exercise 7.3) on GPT-2 in float32 at 10⁶",  # labels and names: not claims
])
def test_a_current_number_passes(tmp_path, answer):
    assert stale_numbers(_synthetic(tmp_path, answer)) == []
