"""Keep the Chinese edition (``notebooks/zh/``) in lock-step with the English notebooks.

The Chinese notebook ``notebooks/zh/<name>.ipynb`` has the English notebook's cells in the English
order. Code cells are copies (source, outputs, execution count, metadata, id), so both editions
compute and show the same thing and nbval only has to execute the English one. Markdown cells are
translations. A code cell whose English version carries a tag containing ``lang`` (e.g.
``lang-specific``: the cell that picks the feedback language, an exercise check with Chinese
verdicts) is translated too: the Chinese edition keeps its own version and its outputs are not
compared.

Every translated cell (markdown, or ``lang``-tagged code) records in its metadata::

    "translation": {
        "of": "<id of the English cell it translates>",
        "source_sha256": "<sha256 of that English cell's source (UTF-8) when it was translated>",
        "source": "<that English source itself, to show the translator what changed>",
        "untranslated": true          # only on a placeholder that sync wrote
    }

A cell with no translation yet is a placeholder: the English cell with the first line
``<!-- UNTRANSLATED -->`` (markdown) or ``# UNTRANSLATED`` (code) and ``"untranslated": true``.

Commands (from the repository root; DAY is ``1``, ``day1`` or ``day1_tokenize``, default all)::

    python -m tools.editions sync [DAY...]            # rebuild zh/ from the English notebooks
    python -m tools.editions check [DAY...]           # list every difference; exit 1 if any
    python -m tools.editions mark-translated DAY CELL_ID...     # these translations are current
    python -m tools.editions mark-translated DAY --all-current  # every translation in DAY is

Workflow: edit the English notebook -> re-execute it (notebooks/README.md) -> ``sync`` (copies code
and outputs, keeps every translation, adds placeholders for new cells) -> ``check`` lists the stale
translations with the English old/new diff -> edit those Chinese cells -> ``mark-translated``.
``tests/test_editions.py`` runs ``check`` on every notebook in ``./course.sh test``.

Why a tool of our own: d2l keeps its Chinese and English books (d2l-zh, d2l-en) as separate
hand-maintained markdown sources whose notebooks are built by evaluating each edition; d2lbook's
``translate`` copies the English file beside the translation once (``*_origin.md``) and
machine-translates it, with no cell-level tracking. The notebook translators on PyPI
(jupyter-translate, jupyter-translation) make one-shot machine translations; gettext-based ones keep
the text in ``.po`` files outside the notebook. None proves that code and outputs are identical or
names a stale cell, so this one short module does (nbformat, the stdlib, and gptlib's atomic file
writer). From d2l it keeps one idea: store the English text a translation was made from next to it,
so the diff is at hand.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import nbformat
from nbformat import NotebookNode

from gptlib.files import write_atomically

ENGLISH_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EDITION = "zh"
RECORD = "translation"
LANG_TAG = "lang"
MARKERS = {"markdown": "<!-- UNTRANSLATED -->", "code": "# UNTRANSLATED"}
CLI = "python -m tools.editions"

__all__ = ["EditionError", "Problem", "check_notebook", "chinese_path", "english_notebooks", "is_translated_kind",
           "main", "mark_translated", "source_sha256", "sync_notebook"]


class EditionError(Exception):
    """A command cannot run (unknown day, unreadable notebook, unknown cell); the text says what to do."""


@dataclass(frozen=True)
class Problem:
    """One way a Chinese notebook is out of step, with optional detail lines (a diff)."""

    notebook: Path
    message: str
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "\n".join([f"{_shown(self.notebook)}: {self.message}", *("    " + d for d in self.details)])


def source_sha256(source: str) -> str:
    """The hash a translation records: sha256 of the English cell's source text, UTF-8."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def is_lang_specific(cell: NotebookNode) -> bool:
    """A code cell that each edition writes for itself (a tag containing ``lang``)."""
    return cell.cell_type == "code" and any(LANG_TAG in tag for tag in cell.metadata.get("tags", []))


def is_translated_kind(cell: NotebookNode) -> bool:
    """English cells the Chinese edition translates; every other cell is copied."""
    return cell.cell_type == "markdown" or is_lang_specific(cell)


def english_notebooks(days: Sequence[str] = (), notebooks_dir: Path = ENGLISH_DIR) -> list[Path]:
    """The English notebooks named by ``days`` (``1``, ``day1``, ``day1_tokenize``, a path), or all."""
    every = sorted(notebooks_dir.glob("*.ipynb"))
    if not days:
        return every
    chosen = []
    for day in days:
        name = Path(day).stem
        name = f"day{name}" if name.isdigit() else name
        matches = [p for p in every if p.stem == name or p.stem.startswith(name + "_")]
        if len(matches) != 1:
            raise EditionError(f"no English notebook in {_shown(notebooks_dir)} matches {day!r}; "
                               f"name a day as 1, day1 or day1_tokenize")
        chosen.append(matches[0])
    return chosen


def chinese_path(english: Path) -> Path:
    """``notebooks/<name>.ipynb`` -> ``notebooks/zh/<name>.ipynb``."""
    return english.parent / EDITION / english.name


def sync_notebook(english: Path, chinese: Path) -> list[str]:
    """Rewrite ``chinese`` from ``english``, keeping its translations; return notes for the user.

    Code cells are copied; each translated cell is taken from the Chinese notebook by the English
    id it records, or becomes a placeholder. An untouched placeholder is rewritten from the current
    English text; one a translator has begun editing is kept. Writes only when the text changes.
    """
    en = _read(english)
    _require_ids(en, english)
    zh = _read(chinese) if chinese.exists() else nbformat.v4.new_notebook()
    translations: dict[str, NotebookNode] = {}
    notes = []
    for cell in zh.cells:
        of = _of(cell)
        if of is None or translations.setdefault(of, cell) is cell:
            continue
        if _untouched_placeholder(translations[of]):  # prefer a translator's text to a placeholder
            translations[of], cell = cell, translations[of]
        if not _untouched_placeholder(cell):
            notes.append(f"{_shown(chinese)}: dropped a second translation of English cell {of} ({_words(cell)!r}); "
                         f"one English cell has one Chinese cell (git keeps the old text)")
    cells = []
    for en_cell in en.cells:
        if not is_translated_kind(en_cell):
            cells.append(copy.deepcopy(en_cell))
            continue
        mine = translations.pop(en_cell.id, None)
        if mine is None or mine.cell_type != en_cell.cell_type or _untouched_placeholder(mine):
            mine = _placeholder(en_cell)
        cells.append(mine)
    notes += [f"{_shown(chinese)}: dropped the translation of English cell {of} ({_words(cell)!r}); "
              f"it is no longer in {english.name} (git keeps the old text)"
              for of, cell in translations.items() if not _untouched_placeholder(cell)]
    own = {k: v for k, v in zh.metadata.items() if k not in en.metadata}
    zh.metadata = nbformat.from_dict({**own, **copy.deepcopy(en.metadata)})
    zh.nbformat, zh.nbformat_minor, zh.cells = en.nbformat, en.nbformat_minor, cells
    if _write(zh, chinese):
        untranslated = sum(_is_placeholder(c) for c in cells)
        notes.append(f"wrote {_shown(chinese)}" + (f" ({untranslated} cells untranslated)" if untranslated else ""))
    else:
        notes.append(f"{_shown(chinese)} is up to date")
    return notes


def check_notebook(english: Path, chinese: Path) -> list[Problem]:
    """Every way ``chinese`` differs from what ``sync`` plus current translations would make."""
    if not chinese.exists():
        return [Problem(chinese, f"missing: {english.name} has no Chinese edition; run `{CLI} sync {english.stem}`")]
    en, zh = _read(english), _read(chinese)
    _require_ids(en, english)
    sync_hint = f"run `{CLI} sync {english.stem}`"
    en_index = {c.id: i for i, c in enumerate(en.cells)}
    zh_index: dict[str, int] = {}
    problems = []
    for j, cell in enumerate(zh.cells):
        key = _key(cell)
        if key not in en_index or key in zh_index:
            why = "a second cell for" if key in zh_index else "no English cell has"
            problems.append(Problem(chinese, f"Chinese cell {j} \"{_words(cell)}\": extra, {why} id {key}; "
                                             f"delete it or {sync_hint}"))
        else:
            zh_index[key] = j
    for i, en_cell in enumerate(en.cells):
        if en_cell.id not in zh_index:
            problems.append(Problem(chinese, f"{_name(en_cell, i)}: missing from the Chinese edition; {sync_hint}"))
    common_en = [c.id for c in en.cells if c.id in zh_index]
    common_zh = sorted(zh_index, key=zh_index.__getitem__)
    in_order = set()
    for block in difflib.SequenceMatcher(None, common_en, common_zh, autojunk=False).get_matching_blocks():
        in_order.update(common_zh[block.b:block.b + block.size])
    for key in common_zh:
        if key not in in_order:
            problems.append(Problem(chinese, f"{_name(en.cells[en_index[key]], en_index[key])}: out of order, "
                                             f"it is Chinese cell {zh_index[key]}; {sync_hint}"))
    for i, en_cell in enumerate(en.cells):
        if en_cell.id in zh_index:
            problems += _compare_cell(english, chinese, i, en_cell, zh.cells[zh_index[en_cell.id]])
    for key, value in en.metadata.items():
        if zh.metadata.get(key) != value:
            problems.append(Problem(chinese, f"notebook metadata {key!r} differs from {english.name}; {sync_hint}"))
    return problems


def mark_translated(english: Path, chinese: Path, cell_ids: Iterable[str] | None = None) -> list[str]:
    """Record that the translations of ``cell_ids`` (default: all) match the current English cells.

    Returns the English ids marked. A named cell that still starts with the UNTRANSLATED marker is
    an error; with no ids given, such cells are skipped (they stay flagged by ``check``).
    """
    if not chinese.exists():
        raise EditionError(f"{_shown(chinese)} does not exist; run `{CLI} sync {english.stem}` first")
    en, zh = _read(english), _read(chinese)
    en_by_id = {c.id: c for c in en.cells if is_translated_kind(c)}
    wanted = None if cell_ids is None else list(dict.fromkeys(cell_ids))
    marked = []
    for cell in zh.cells:
        of = _of(cell)
        if of not in en_by_id or (wanted is not None and of not in wanted):
            continue
        if _starts_with_marker(cell):
            if wanted is not None:
                raise EditionError(f"{_shown(chinese)}: the cell for English cell {of} still starts with "
                                   f"{MARKERS[cell.cell_type]!r}; translate it and delete that line first")
            continue
        source = en_by_id[of].source
        record = cell.metadata[RECORD]
        record.update(source_sha256=source_sha256(source), source=source)
        record.pop("untranslated", None)
        marked.append(of)
    unknown = [i for i in wanted or () if i not in marked]
    if unknown:
        raise EditionError(f"{_shown(chinese)}: no Chinese cell translates English cell(s) {', '.join(unknown)}; "
                           f"use the ids `{CLI} check {english.stem}` prints, or run sync first")
    _write(zh, chinese)
    return marked


def _compare_cell(english: Path, chinese: Path, index: int, en_cell: NotebookNode,
                  zh_cell: NotebookNode) -> list[Problem]:
    """The problems of one Chinese cell against its English cell (order aside)."""
    where = _name(en_cell, index)
    if zh_cell.cell_type != en_cell.cell_type:
        return [Problem(chinese, f"{where}: is a {zh_cell.cell_type} cell in the Chinese edition; "
                                 f"run `{CLI} sync {english.stem}`")]
    if not is_translated_kind(en_cell):
        fields = [f for f in ("source", "outputs", "execution_count", "metadata", "attachments")
                  if en_cell.get(f) != zh_cell.get(f)]
        if not fields:
            return []
        return [Problem(chinese, f"{where}: differs from the English edition in {' and '.join(fields)}; run "
                                 f"`{CLI} sync {english.stem}` (to let a code cell differ, tag it `lang-specific` "
                                 f"in the English notebook)")]
    record = _record(zh_cell) or {}
    mark = f"`{CLI} mark-translated {english.stem} {en_cell.id}`"
    problems = []
    if _is_placeholder(zh_cell):
        problems.append(Problem(chinese, f"{where}: not translated yet; translate it, delete a leading "
                                         f"{MARKERS[en_cell.cell_type]!r} line, then run {mark}"))
    if record.get("source_sha256") != source_sha256(en_cell.source):
        old = record.get("source")
        diff = (["(the English text it was translated from is not recorded)"] if old is None else
                [line.rstrip("\n") for line in difflib.unified_diff(
                    old.splitlines(), en_cell.source.splitlines(), "English when translated", "English now",
                    lineterm="")])
        problems.append(Problem(chinese, f"{where}: stale translation, the English cell changed since it was "
                                         f"translated; update the Chinese text, then run {mark}", tuple(diff)))
    return problems


def _read(path: Path) -> NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several kinds for unreadable files
        raise EditionError(f"{_shown(path)} is not a readable notebook ({error}); restore it from git") from error


def _write(nb: NotebookNode, path: Path) -> bool:
    """Write ``nb`` as nbformat formats it (stable, so a re-run makes no diff), atomically, if changed."""
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    data = (text if text.endswith("\n") else text + "\n").encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return False
    write_atomically(path, lambda f: f.write(data))
    return True


def _require_ids(nb: NotebookNode, path: Path) -> None:
    ids = [cell.get("id") for cell in nb.cells]
    if None in ids or len(set(ids)) != len(ids):
        raise EditionError(f"{_shown(path)} has cells without a unique id; open and save it in JupyterLab "
                           f"(nbformat 4.5 ids), then re-execute it")


def _record(cell: NotebookNode) -> dict | None:
    return cell.metadata.get(RECORD)


def _of(cell: NotebookNode) -> str | None:
    """The English id a translated cell records, or None for a copied cell."""
    return (_record(cell) or {}).get("of")


def _key(cell: NotebookNode) -> str:
    """The English id a Chinese cell stands for: the id it records, else its own (copied) id."""
    return _of(cell) or cell.get("id", "")


def _placeholder(en_cell: NotebookNode) -> NotebookNode:
    cell = copy.deepcopy(en_cell)
    cell.source = f"{MARKERS[en_cell.cell_type]}\n{en_cell.source}"
    cell.metadata[RECORD] = {"of": en_cell.id, "source_sha256": source_sha256(en_cell.source),
                             "source": en_cell.source, "untranslated": True}
    return cell


def _starts_with_marker(cell: NotebookNode) -> bool:
    return cell.source.startswith(MARKERS.get(cell.cell_type, "\0"))


def _is_placeholder(cell: NotebookNode) -> bool:
    return _starts_with_marker(cell) or bool((_record(cell) or {}).get("untranslated"))


def _untouched_placeholder(cell: NotebookNode) -> bool:
    """A placeholder nobody has edited: safe to rewrite from the current English text."""
    record = _record(cell) or {}
    return _starts_with_marker(cell) and cell.source == f"{MARKERS[cell.cell_type]}\n{record.get('source')}"


def _words(cell: NotebookNode, width: int = 40) -> str:
    text = " ".join(cell.source.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _name(cell: NotebookNode, index: int) -> str:
    return f"English cell {index} [{cell.id}] \"{_words(cell)}\""


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``sync``, ``check``, ``mark-translated``; returns the exit status."""
    parser = argparse.ArgumentParser(prog=CLI, description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=ENGLISH_DIR,
                        help="folder of the English notebooks (default: this repository's notebooks/)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync", help="rebuild the Chinese notebooks from the English ones").add_argument(
        "days", nargs="*", metavar="DAY")
    commands.add_parser("check", help="list every difference; exit 1 if any").add_argument(
        "days", nargs="*", metavar="DAY")
    mark = commands.add_parser("mark-translated", help="record that translations match the current English text")
    mark.add_argument("day", metavar="DAY")
    mark.add_argument("cell_ids", nargs="*", metavar="CELL_ID", help="English cell ids (as `check` prints them)")
    mark.add_argument("--all-current", action="store_true", help="every translated cell of DAY")
    args = parser.parse_args(argv)
    try:
        if args.command == "sync":
            for english in english_notebooks(args.days, args.notebooks):
                for note in sync_notebook(english, chinese_path(english)):
                    print(note)
            return 0
        if args.command == "check":
            notebooks = english_notebooks(args.days, args.notebooks)
            problems = [p for english in notebooks for p in check_notebook(english, chinese_path(english))]
            for problem in problems:
                print(problem)
            print(f"{len(problems)} problem(s) in the Chinese edition" if problems else
                  f"ok: {len(notebooks)} Chinese notebook(s) in lock-step with the English edition")
            return 1 if problems else 0
        if bool(args.cell_ids) == args.all_current:
            parser.error("mark-translated needs CELL_ID... or --all-current (not both)")
        [english] = english_notebooks([args.day], args.notebooks)
        marked = mark_translated(english, chinese_path(english), None if args.all_current else args.cell_ids)
        print(f"marked {len(marked)} translation(s) current in {_shown(chinese_path(english))}")
        return 0
    except EditionError as error:
        print(f"editions: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
