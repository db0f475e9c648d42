"""The exercise messages live in catalogs (gptlib/course/exercises/messages/*.toml): every key has an
English and a Chinese text naming the same placeholders, every key the checks use exists and every
key in a catalog is used, and the checks' Python holds no Chinese text. Each rule is proven able to
fail on a synthetic broken case."""
from __future__ import annotations

import ast
import re
import string
import tomllib
from pathlib import Path

from gptlib.course.exercises import MESSAGES

SOURCES = sorted(MESSAGES.parent.glob("*.py")) + [MESSAGES.parents[1] / "yours.py"]  # yours.py: its catalog "yours"
CJK = re.compile("[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef\uac00-\ud7af]")  # CJK, its punctuation, full-width forms


def catalogs() -> dict[str, dict]:
    catalog_files = sorted(MESSAGES.glob("*.toml"))
    assert catalog_files, MESSAGES
    return {path.stem: tomllib.loads(path.read_text(encoding="utf-8")) for path in catalog_files}


def fields(text: str) -> set[str]:
    """The ``{placeholder}`` fields of a format string, with their conversion and format spec."""
    return {f"{name}!{conversion}:{spec}" for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None}


def catalog_problems(name: str, entries: dict) -> list[str]:
    """What is wrong in one catalog: keys outside its file's prefix, missing languages, mismatched fields."""
    prefix = name.removeprefix("day")
    problems = []
    for key, entry in entries.items():
        if key.split(".")[0] != prefix:
            problems.append(f"{name}: key {key} belongs in another catalog")
        if not isinstance(entry, dict) or set(entry) != {"en", "zh"} or not all(
                isinstance(v, str) and v.strip() for v in entry.values()):
            problems.append(f"{name}: {key} needs exactly a non-empty en and zh")
            continue
        try:
            en, zh = fields(entry["en"]), fields(entry["zh"])
        except ValueError as error:  # an unbalanced brace
            problems.append(f"{name}: {key}: {error}")
            continue
        if en != zh:
            problems.append(f"{name}: {key} placeholders differ: en {sorted(en)}, zh {sorted(zh)}")
    return problems


def used_keys(source: str, where: str) -> tuple[set[str], list[str]]:
    """The keys that ``msg(...)`` calls in ``source`` name, and the calls whose key is not a literal."""
    keys, problems = set(), []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "msg":
            arg = node.args[0] if len(node.args) == 1 else None
            options = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
            if all(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in options):
                keys |= {o.value for o in options}
            else:
                problems.append(f"{where}:{node.lineno}: msg() needs a literal key (or a literal a if c else b)")
    return keys, problems


def usage_problems(all_catalogs: dict[str, dict], sources: dict[str, str]) -> list[str]:
    known = {key for entries in all_catalogs.values() for key in entries}
    used, problems = set(), []
    for where, source in sources.items():
        keys, found = used_keys(source, where)
        used |= keys
        problems += found
    problems += [f"msg({key!r}) is used but no catalog has it" for key in sorted(used - known)]
    problems += [f"{key} is in a catalog but no check uses it" for key in sorted(known - used)]
    return problems


def test_every_catalog_has_both_languages_and_matching_placeholders():
    problems = [p for name, entries in catalogs().items() for p in catalog_problems(name, entries)]
    assert not problems, "\n".join(problems)


def test_every_key_used_exists_and_every_key_is_used():
    sources = {path.name: path.read_text(encoding="utf-8") for path in SOURCES}
    problems = usage_problems(catalogs(), sources)
    assert not problems, "\n".join(problems)


def test_the_checks_python_holds_no_chinese_text():
    found = [f"{path.name}:{i}: {line.strip()}" for path in SOURCES
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if CJK.search(line)]
    assert not found, "\n".join(found)


def test_the_rules_catch_a_broken_catalog():
    broken = {
        "3.2.only_en": {"en": "hi"},
        "3.2.fields": {"en": "weight {w:.2f} at {t}", "zh": "权重 {w} 在 {t}"},
        "3.2.extra": {"en": "{a}", "zh": "{a}{b}"},
        "3.2.brace": {"en": "{a", "zh": "{a}"},
        "4.1.elsewhere": {"en": "x", "zh": "x"},
        "3.2.fine": {"en": "{n!r} of {d}", "zh": "{d} 的 {n!r}"},
    }
    problems = "\n".join(catalog_problems("day3", broken))
    for key in ("3.2.only_en", "3.2.fields", "3.2.extra", "3.2.brace", "4.1.elsewhere"):
        assert key in problems, (key, problems)
    assert "fine" not in problems
    source = 'msg("3.2.fine")\nmsg("3.2.gone")\nmsg("3.2.a" if x else "3.2.b")\nmsg(key)\n'
    found = "\n".join(usage_problems({"day3": {"3.2.fine": {}, "3.2.a": {}, "3.2.b": {}, "3.2.stale": {}}},
                                     {"day3.py": source}))
    assert "msg('3.2.gone') is used but no catalog" in found and "3.2.stale is in a catalog" in found
    assert "day3.py:4: msg() needs a literal" in found and "3.2.a" not in found and "3.2.fine" not in found
    assert CJK.search('raise Wrong(Text("x", "未来"))') and CJK.search("a：b") and not CJK.search("naïve — ✅ ⏳")
