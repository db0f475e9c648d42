"""What makes a tokenizer from outside safe to use: checks for :mod:`gptlib.tokenizer`, and its file.

:class:`gptlib.tokenizer.BPETokenizer` is BPE as you would explain it. Its parts may come from a
caller or from a file someone sent you, and the checks that guard them live here, apart from the
algorithm (the minbpe way: its ``base.py`` holds save/load, ``basic.py`` and ``regex.py`` the BPE):

- **the pre-split pattern.** One that skips characters would lose text silently, and one with
  nested quantifiers such as ``(a|aa)+$`` can backtrack for minutes on the wrong text.
  ``compile_pattern`` refuses both before first use, by splitting a coverage sample and probes
  (runs of one kind of character with a different one at the end, what makes such patterns
  backtrack; the pattern's own letters are added) under a short time limit. ``split_text`` then
  pre-splits every text under a time limit that grows with the text, and checks it lost nothing.
  GPT-2's pattern and the one-character pattern never backtrack: they are trusted, not timed.
- **special tokens.** ``check_special_tokens``: non-empty strings with ids after the vocabulary;
  ``special_sets``: ``encode``'s ``allowed_special`` / ``disallowed_special``, as tiktoken reads them.
- **the file.** ``write_tokenizer_file`` writes JSON atomically; ``read_tokenizer_file`` refuses,
  in one line naming the file, anything that is not such a file or is of another version.
"""
from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import regex

from .files import write_atomically

__all__ = ["compile_pattern", "split_text", "check_special_tokens", "special_sets", "write_tokenizer_file",
           "read_tokenizer_file"]

_COVERAGE_SAMPLE = "Hello, World 123! It's  a test:\n\tnaïve café 你好世界 😀 ½\u3000<|endoftext|> x\r\n "
_PROBES = [run * 48 + end for run in ("a", "A", "1", " ", "!", "\n", "'", "é", "你", "ab", "a ")
           for end in ("", "b", "!", " ", "1", "\n")]
_PROBE_TIMEOUT_S = 0.2
_SPLIT_TIME_S, _SPLIT_TIME_PER_CHAR_S = 1.0, 1e-5  # split_text's limit: 11 s for 1 MB (GPT-2's pattern: 0.1 s)
_FORMAT = "gptlib.BPETokenizer"  # the "format" field of a tokenizer file


# --- the pre-split pattern ------------------------------------------------------------------------

def compile_pattern(pattern: object, *, trusted: bool = False) -> regex.Pattern:
    """``pattern`` compiled, once it is shown (unless ``trusted``) to pre-split text without losing or hanging."""
    if not isinstance(pattern, str):
        raise TypeError(f"the pre-split pattern must be a str, got {type(pattern).__name__}")
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"the pre-split pattern {pattern!r} is not a valid regular expression: {exc}") from None
    if trusted:
        return compiled
    if compiled.groups:
        raise ValueError(f"the pre-split pattern {pattern!r} has a capturing group, so findall would return the "
                         "group instead of the whole chunk and lose text; write groups as (?:...)")
    literal_runs = [c * 48 + end for c in sorted({c for c in pattern if c.isalnum()})[:20] for end in ("", "!")]
    for probe in (_COVERAGE_SAMPLE, *_PROBES, *literal_runs):
        _chunks(compiled, probe, _PROBE_TIMEOUT_S)
    return compiled


def split_text(compiled: regex.Pattern, text: str, *, trusted: bool = False) -> list[str]:
    """The chunks of ``text``: an error, never lost text or a hang (a time limit unless ``trusted``)."""
    return _chunks(compiled, text, None if trusted else _SPLIT_TIME_S + len(text) * _SPLIT_TIME_PER_CHAR_S)


def _chunks(compiled: regex.Pattern, text: str, timeout: float | None) -> list[str]:
    """``compiled.findall(text)``; a ValueError if that takes over ``timeout`` s or skips characters."""
    try:
        chunks = compiled.findall(text, timeout=timeout)
    except TimeoutError:
        raise ValueError(f"the pre-split pattern {compiled.pattern!r} is unsafe: pre-splitting {len(text):,} "
                         f"characters took over {timeout:.1f} s (on {text[:12]!r}...), as it backtracks "
                         "catastrophically (nested quantifiers), so real text could hang encoding; use a "
                         "pattern without nested quantifiers (e.g. GPT2_PATTERN)") from None
    if sum(map(len, chunks)) != len(text):
        raise ValueError(f"the pre-split pattern {compiled.pattern!r} skips characters (on {text[:40]!r} it "
                         f"keeps only {''.join(chunks)[:40]!r}), so encoding would lose them; use a pattern "
                         "that matches every character (e.g. GPT2_PATTERN)")
    return chunks


# --- special tokens -------------------------------------------------------------------------------

def check_special_tokens(special_tokens: dict[str, int], vocab: dict[int, bytes]) -> None:
    """Special tokens are non-empty strings whose ids are distinct and come after the vocabulary's."""
    if not all(isinstance(token, str) and token for token in special_tokens):
        raise ValueError(f"special tokens must be non-empty strings, got {list(special_tokens)}")
    ids = list(special_tokens.values())
    if len(set(ids)) != len(ids) or any(not isinstance(i, int) or i < 0 or i in vocab for i in ids):
        raise ValueError(f"special token ids must be distinct ints >= {len(vocab)} (after the byte "
                         f"and merge ids), got {special_tokens}")


def special_sets(special_tokens: dict[str, int], allowed_special: Literal["all"] | Collection[str],
                 disallowed_special: Literal["all"] | Collection[str]) -> tuple[set[str], set[str]]:
    """``encode``'s arguments as (allowed, disallowed) sets of special tokens, as tiktoken reads them."""
    allowed = _special_set(special_tokens, allowed_special, "allowed_special")
    if unknown := sorted(allowed - special_tokens.keys()):
        raise ValueError(f"allowed_special names {', '.join(map(repr, unknown))}, not a special token of this "
                         f"tokenizer (it has: {', '.join(map(repr, special_tokens)) or 'none'}); "
                         "to encode that text as ordinary text, leave it out")
    disallowed = (special_tokens.keys() - allowed if disallowed_special == "all"
                  else _special_set(special_tokens, disallowed_special, "disallowed_special"))
    return allowed, disallowed


def _special_set(special_tokens: dict[str, int], value: Literal["all"] | Collection[str], name: str) -> set[str]:
    """``allowed_special`` / ``disallowed_special`` as a set; "all" means every special token."""
    if value == "all":
        return set(special_tokens)
    if isinstance(value, str):
        raise TypeError(f"{name} must be 'all' or a set of strings, got {value!r}; "
                        f"did you mean {name}={{{value!r}}}?")
    try:
        names = set(value)
    except TypeError:
        raise TypeError(f"{name} must be 'all' or a set of strings, got {type(value).__name__}") from None
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{name} must hold strings, got {sorted(map(repr, names))}")
    return names


# --- the file -------------------------------------------------------------------------------------

def write_tokenizer_file(path: str | os.PathLike, tokenizer: Any) -> None:
    """Write a ``BPETokenizer`` as JSON (atomically: a crash never leaves half a file); merges in learned order."""
    data = {"format": _FORMAT, "version": 1, "pattern": tokenizer.pattern,
            "byte_ids": tokenizer.byte_ids, "special_tokens": tokenizer.special_tokens,
            "merges": [[a, b, i] for (a, b), i in sorted(tokenizer.merges.items(), key=lambda kv: kv[1])]}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def read_tokenizer_file(path: str | os.PathLike) -> dict[str, Any]:
    """The fields of a file written by ``write_tokenizer_file``: pattern, byte_ids, special_tokens, merges.

    Their values are checked where they are used, by ``BPETokenizer``; ``BPETokenizer.load`` names the file."""
    name = Path(path).name
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"{name} is not a tokenizer file written by BPETokenizer.save (no {_FORMAT!r} format)")
    if data.get("version") != 1:
        raise ValueError(f"{name} has tokenizer file version {data.get('version')!r}; this gptlib reads version 1")
    missing = [key for key in ("pattern", "byte_ids", "special_tokens", "merges") if key not in data]
    if missing:
        raise ValueError(f"{name} is a damaged tokenizer file: it lacks {', '.join(missing)}")
    return {key: data[key] for key in ("pattern", "byte_ids", "special_tokens", "merges")}
