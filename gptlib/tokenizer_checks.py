"""What makes a tokenizer from outside safe to use: checks for :mod:`gptlib.tokenizer`, and its file.

:class:`gptlib.tokenizer.BPETokenizer` is BPE as you would explain it. Its parts may come from a
caller or from a file someone sent you, and the checks that guard them live here, apart from the
algorithm (the minbpe way: its ``base.py`` holds save/load, ``basic.py`` and ``regex.py`` the BPE):

- **special tokens.** ``check_special_tokens``: non-empty strings with ids after the vocabulary;
  ``special_sets``: ``encode``'s ``allowed_special`` / ``disallowed_special``, as tiktoken reads them.
- **the file.** ``write_tokenizer_file`` writes JSON atomically; ``read_tokenizer_file`` refuses,
  in one line naming the file, anything that is not such a file or is of another version.

(The pre-split pattern needs no check here: ``BPETokenizer`` accepts only the two it writes.)
"""
from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from .files import write_atomically

__all__ = ["check_special_tokens", "special_sets", "write_tokenizer_file", "read_tokenizer_file"]

_FORMAT = "gptlib.BPETokenizer"  # the "format" field of a tokenizer file


# --- special tokens -------------------------------------------------------------------------------

def check_special_tokens(special_tokens: dict[str, int], vocab: dict[int, bytes]) -> None:
    """Special tokens are non-empty strings whose ids are distinct and come after the vocabulary's."""
    if not all(isinstance(token, str) and token for token in special_tokens):
        raise ValueError(f"special tokens must be non-empty strings, got {list(special_tokens)}")
    ids = list(special_tokens.values())
    if len(set(ids)) != len(ids) or any(not isinstance(i, int) or i < 0 or i in vocab for i in ids):
        raise ValueError(f"special token ids must be distinct ints >= {len(vocab)}, got {special_tokens}")


def special_sets(special_tokens: dict[str, int], allowed_special: Literal["all"] | Collection[str],
                 disallowed_special: Literal["all"] | Collection[str]) -> tuple[set[str], set[str]]:
    """``encode``'s arguments as (allowed, disallowed) sets of special tokens, as tiktoken reads them."""
    allowed = _special_set(special_tokens, allowed_special, "allowed_special")
    if unknown := sorted(allowed - special_tokens.keys()):
        raise ValueError(f"allowed_special names {', '.join(map(repr, unknown))}, not a special token of this "
                         f"tokenizer (it has: {', '.join(map(repr, special_tokens)) or 'none'}): leave it out")
    disallowed = (special_tokens.keys() - allowed if disallowed_special == "all"
                  else _special_set(special_tokens, disallowed_special, "disallowed_special"))
    return allowed, disallowed


def _special_set(special_tokens: dict[str, int], value: Literal["all"] | Collection[str], name: str) -> set[str]:
    """``allowed_special`` / ``disallowed_special`` as a set; "all" means every special token."""
    if value == "all":
        return set(special_tokens)
    if isinstance(value, str):
        raise TypeError(f"{name} must be 'all' or a set of strings, got {value!r}; did you mean {name}={{{value!r}}}?")
    return set(value)  # a name that is no special token: special_sets refuses it, naming it


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
