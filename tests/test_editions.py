"""The Chinese edition stays in lock-step with the English one (``tools/editions.py``, issue 15).

The first test checks the real ``notebooks/zh/``. The others build small notebooks in a temporary
folder and prove that each way of drifting apart is caught, naming the cell.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.editions import (EditionError, check_notebook, chinese_path, english_notebooks,
                            is_translated_kind, main, mark_translated, sync_notebook)

MARKDOWN = "<!-- UNTRANSLATED -->"


def test_every_english_notebook_has_a_chinese_edition_in_lock_step():
    assert len(english_notebooks()) == 8 and all(chinese_path(e).exists() for e in english_notebooks())
    problems = [p for english in english_notebooks() for p in check_notebook(english, chinese_path(english))]
    assert not problems, "\n".join(map(str, problems)) + "\nfix: see notebooks/README.md, 'The Chinese edition'"


def _english(folder: Path) -> Path:
    """A small English notebook: title, code with output, prose, a lang-specific check, more code."""
    cells = [
        new_markdown_cell("# Day 9\n\nA **token (词元)** is a piece of text.", id="md-title"),
        new_code_cell("x = 1\nprint(x)", id="code-x", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="1\n")]),
        new_markdown_cell("Why divide by the square root of d_k?", id="md-why"),
        new_code_cell("check(answer, lang='en')", id="code-lang", execution_count=2,
                      metadata={"tags": ["lang-specific"]},
                      outputs=[new_output("stream", name="stdout", text="Correct!\n")]),
        new_code_cell("print(x + 1)", id="code-y", execution_count=3,
                      outputs=[new_output("stream", name="stdout", text="2\n")]),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    path = folder / "day9_demo.ipynb"
    nbformat.write(nb, path)
    return path


def _edit(path: Path, change) -> None:
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def _cell(nb, cell_id: str):
    return next(c for c in nb.cells if (c.metadata.get("translation") or {}).get("of", c.id) == cell_id)


def _translate(chinese: Path) -> None:
    """What a translator does: write Chinese over every placeholder, then mark-translated."""
    translations = {"md-title": "# 第 9 天\n\n**词元 (token)** 是一段文本。",
                    "md-why": "为什么要除以 d_k 的平方根？",
                    "code-lang": "check(answer, lang='zh')"}

    def write(nb):
        for cell_id, text in translations.items():
            cell = _cell(nb, cell_id)
            cell.source = text
            if cell.cell_type == "code":
                cell.outputs = [new_output("stream", name="stdout", text="正确！\n")]
    _edit(chinese, write)
    mark_translated(chinese.parent.parent / chinese.name, chinese)


@pytest.fixture
def editions(tmp_path):
    """(english, chinese): a translated pair that passes the check."""
    english = _english(tmp_path)
    chinese = chinese_path(english)
    sync_notebook(english, chinese)
    _translate(chinese)
    assert check_notebook(english, chinese) == []
    return english, chinese


def _messages(english: Path, chinese: Path) -> str:
    problems = check_notebook(english, chinese)
    assert problems, "the check passed, but it should have failed"
    return "\n".join(map(str, problems))


def test_sync_writes_placeholders_that_fail_the_check(tmp_path):
    english = _english(tmp_path)
    chinese = chinese_path(english)
    sync_notebook(english, chinese)
    zh, en = nbformat.read(chinese, as_version=4), nbformat.read(english, as_version=4)
    assert [c.id for c in zh.cells] == [c.id for c in en.cells]
    assert zh.cells[1] == en.cells[1] and zh.cells[4] == en.cells[4]  # code copied exactly
    assert zh.metadata == en.metadata
    assert zh.cells[0].source.startswith(MARKDOWN + "\n# Day 9")
    assert zh.cells[3].source.startswith("# UNTRANSLATED\ncheck(answer")
    text = _messages(english, chinese)
    for cell_id in ("md-title", "md-why", "code-lang"):
        assert f"[{cell_id}]" in text and f"mark-translated day9_demo {cell_id}" in text
    assert text.count("not translated yet") == 3 and "zh/day9_demo.ipynb" in text


def test_sync_is_idempotent_and_keeps_translations(editions):
    english, chinese = editions
    before = chinese.read_bytes()
    assert sync_notebook(english, chinese) == [f"{chinese} is up to date"]
    assert chinese.read_bytes() == before
    assert "第 9 天" in chinese.read_text(encoding="utf-8")


def test_edited_english_code_cell_is_named(editions):
    english, chinese = editions
    _edit(english, lambda nb: setattr(nb.cells[1], "source", "x = 2\nprint(x)"))
    text = _messages(english, chinese)
    assert 'English cell 1 [code-x] "x = 2 print(x)": differs from the English edition in source' in text
    sync_notebook(english, chinese)
    assert check_notebook(english, chinese) == []


def test_changed_output_is_named(editions):
    english, chinese = editions
    _edit(chinese, lambda nb: nb.cells[4].outputs[0].__setitem__("text", "3\n"))
    assert "English cell 4 [code-y]" in _messages(english, chinese)
    assert "differs from the English edition in outputs" in _messages(english, chinese)


def test_missing_cell_is_named(editions):
    english, chinese = editions
    _edit(chinese, lambda nb: nb.cells.pop(2))
    assert "English cell 2 [md-why] \"Why divide by the square root of d_k?\": missing" in _messages(english, chinese)


def test_reordered_cells_are_named(editions):
    english, chinese = editions
    _edit(chinese, lambda nb: nb.cells.insert(0, nb.cells.pop(4)))
    assert "English cell 4 [code-y] \"print(x + 1)\": out of order, it is Chinese cell 0" in _messages(english, chinese)


def test_sync_follows_a_reordered_english_notebook(editions):
    english, chinese = editions
    _edit(english, lambda nb: nb.cells.insert(0, nb.cells.pop(2)))
    assert "out of order" in _messages(english, chinese)
    sync_notebook(english, chinese)
    assert check_notebook(english, chinese) == []
    assert nbformat.read(chinese, as_version=4).cells[0].source == "为什么要除以 d_k 的平方根？"


def test_extra_cell_is_named(editions):
    english, chinese = editions
    _edit(chinese, lambda nb: nb.cells.append(new_markdown_cell("译者注", id="zh-note")))
    assert 'Chinese cell 5 "译者注": extra, no English cell has id zh-note' in _messages(english, chinese)


def test_a_copied_translation_cell_is_extra_and_sync_keeps_the_first(editions):
    english, chinese = editions
    _edit(chinese, lambda nb: nb.cells.insert(3, nbformat.from_dict({**nb.cells[2], "id": "zh-copy",
                                                                      "source": "第二段"})))
    assert 'Chinese cell 3 "第二段": extra, a second cell for id md-why' in _messages(english, chinese)
    assert "dropped a second translation of English cell md-why ('第二段')" in sync_notebook(english, chinese)[0]
    assert check_notebook(english, chinese) == []


def test_edited_english_markdown_makes_the_translation_stale_with_a_diff(editions):
    """The issue's 'deliberately edited English cell': the check fails and shows what changed."""
    english, chinese = editions
    _edit(english, lambda nb: setattr(nb.cells[2], "source", "Why divide by sqrt(d_k)?"))
    sync_notebook(english, chinese)  # the usual next step; it must keep the stale translation
    problems = check_notebook(english, chinese)
    assert len(problems) == 1
    assert 'English cell 2 [md-why] "Why divide by sqrt(d_k)?": stale translation' in str(problems[0])
    assert "-Why divide by the square root of d_k?" in problems[0].details
    assert "+Why divide by sqrt(d_k)?" in problems[0].details
    assert _cell(nbformat.read(chinese, as_version=4), "md-why").source == "为什么要除以 d_k 的平方根？"
    mark_translated(english, chinese, ["md-why"])
    assert check_notebook(english, chinese) == []


def test_placeholder_stays_flagged_until_marked_and_edits_are_never_overwritten(tmp_path):
    english = _english(tmp_path)
    chinese = chinese_path(english)
    sync_notebook(english, chinese)
    with pytest.raises(EditionError, match="still starts with '<!-- UNTRANSLATED -->'"):
        mark_translated(english, chinese, ["md-why"])
    _edit(chinese, lambda nb: setattr(nb.cells[2], "source", MARKDOWN + "\n为什么？"))  # begun, marker kept
    sync_notebook(english, chinese)
    assert nbformat.read(chinese, as_version=4).cells[2].source == MARKDOWN + "\n为什么？"
    _edit(chinese, lambda nb: setattr(nb.cells[2], "source", "为什么？"))  # marker deleted, not marked yet
    assert "[md-why] \"Why divide by the square root of d_k?\": not translated yet" in _messages(english, chinese)
    mark_translated(english, chinese, ["md-why"])
    assert "[md-why]" not in _messages(english, chinese)


def test_lang_tagged_cell_may_differ_but_goes_stale(editions):
    english, chinese = editions
    zh_cell = nbformat.read(chinese, as_version=4).cells[3]
    assert zh_cell.source == "check(answer, lang='zh')" and zh_cell.outputs[0].text == "正确！\n"
    sync_notebook(english, chinese)
    assert nbformat.read(chinese, as_version=4).cells[3] == zh_cell
    _edit(english, lambda nb: setattr(nb.cells[3], "source", "check(answer, lang='en', hint=True)"))
    assert "[code-lang] \"check(answer, lang='en', hint=True)\": stale translation" in _messages(english, chinese)


def test_missing_chinese_notebook_and_cli_exit_codes(tmp_path, capsys):
    english = _english(tmp_path)
    assert main(["--notebooks", str(tmp_path), "check"]) == 1
    assert "missing: day9_demo.ipynb has no Chinese edition; run `python -m tools.editions sync day9_demo`" \
        in capsys.readouterr().out
    assert main(["--notebooks", str(tmp_path), "sync", "9"]) == 0
    _translate(chinese_path(english))
    assert main(["--notebooks", str(tmp_path), "check", "day9"]) == 0
    assert main(["--notebooks", str(tmp_path), "check", "day8"]) == 2
    assert "no English notebook" in capsys.readouterr().err
    assert main(["--notebooks", str(tmp_path), "mark-translated", "9", "no-such-id"]) == 2
    assert "no Chinese cell translates English cell(s) no-such-id" in capsys.readouterr().err


def test_sync_on_the_real_english_notebooks(tmp_path):
    """Until the translations land: every real notebook syncs, and only translations are missing."""
    for english in english_notebooks():
        shutil.copy(english, tmp_path / english.name)
    for english in english_notebooks(notebooks_dir=tmp_path):
        chinese = chinese_path(english)
        sync_notebook(english, chinese)
        translated = sum(map(is_translated_kind, nbformat.read(english, as_version=4).cells))
        problems = check_notebook(english, chinese)
        assert len(problems) == translated and all("not translated yet" in p.message for p in problems)
        assert sync_notebook(english, chinese) == [f"{chinese} is up to date"]
