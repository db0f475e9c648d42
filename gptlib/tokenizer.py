"""Byte-level Byte Pair Encoding (BPE), written by hand, with the same ids as tiktoken's GPT-2.

BPE learns a vocabulary from text: start from the 256 byte values, merge the most frequent pair
of adjacent tokens into a new token, repeat. Encoding text is then three steps:

1. **Pre-split** the text with a regular expression into chunks (words with their leading space,
   runs of digits, of punctuation, of whitespace). Merges never cross a chunk boundary, so
   " dog" and "dog." share the token for "dog".
2. **Bytes.** Each chunk becomes its UTF-8 bytes, one base token per byte: byte-level, not
   character- or word-level, so any string in any script is encoded with no "unknown" token.
3. **Merge.** Apply the learned merges ``(left id, right id) -> new id``: repeatedly merge the
   adjacent pair that was learned *earliest* (lowest new id).

The core is four small functions: :func:`get_stats`, :func:`most_frequent_pair` and :func:`merge`
learn merges, :func:`apply_merges` applies them. Ties (training): among equally frequent pairs the
smallest ``(left id, right id)`` wins, so training is deterministic (minbpe's
``max(stats, key=stats.get)`` picks the pair seen first instead; both are valid BPE).

The core rescans everything after each merge: clear, but too slow for a corpus or a long chunk.
:mod:`gptlib.bpe_fast` holds its fast twins, the same algorithms with heaps and incremental counts
(``learn_merges``, ``apply_merges_fast``); tests prove they give the same merges and ids, and
:class:`BPETokenizer` uses them. It also adds the pre-split, special tokens, files, and GPT-2's
vocabulary (:func:`gptlib.vocab.gpt2_vocabulary`), on which it gives exactly tiktoken's ids (lone
surrogates too: both make them U+FFFD), except on characters newer than the Unicode version of
tiktoken's Rust regex (16.0 in tiktoken 0.14), which the `regex` module may class differently.
The pre-split is one of the two patterns gptlib writes (``GPT2_PATTERN``, ``CHARACTER_PATTERN``):
both keep every character and never backtrack, which no check can prove of an arbitrary regex, so
any other is refused. Special tokens and files from outside are checked in :mod:`gptlib.tokenizer_checks`.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import regex

from .bpe_fast import apply_merges_fast, learn_merges
from .checks import whole_number
from .tokenizer_checks import check_special_tokens, read_tokenizer_file, special_sets, write_tokenizer_file
from .vocab import gpt2_vocabulary

__all__ = ["BPETokenizer", "GPT2_PATTERN", "CHARACTER_PATTERN", "END_OF_TEXT", "end_of_text_id", "get_stats",
           "most_frequent_pair", "merge", "apply_merges"]

# tiktoken's GPT-2 pattern (``r50k_pat_str``). OpenAI's original GPT-2 pattern was
# r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# and splits every string the same way (tests/test_tokenizer.py checks both on random text);
# this spelling uses possessive quantifiers (++), which never backtrack and so run faster.
# The `regex` module is needed: Python's `re` knows neither \p{L} nor, before 3.11, ++.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# Every character its own chunk: merges never cross a character, so BPE learns whole characters
# (a character-level tokenizer that still spells rare characters from their UTF-8 bytes).
CHARACTER_PATTERN = r"(?s:.)"
_SPLITTERS = {pattern: regex.compile(pattern) for pattern in (GPT2_PATTERN, CHARACTER_PATTERN)}

Pair = tuple[int, int]  # (left id, right id)

END_OF_TEXT = "<|endoftext|>"  # GPT-2's one special token: it separates documents and ends answers

_CACHE_LIMIT = 100_000  # chunks remembered by encode before the cache is cleared


# --- The core of BPE: count pairs, pick one, merge it; encode by replaying the merges -------------

def get_stats(ids: Sequence[int], counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """Count each adjacent pair in ``ids`` (adding into ``counts``, to count many chunks).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def most_frequent_pair(stats: dict[Pair, int]) -> Pair:
    """The pair to merge next: highest count; on a tie, the smallest ``(left, right)`` pair.

    >>> most_frequent_pair({(3, 4): 2, (1, 9): 2, (0, 1): 1})
    (1, 9)
    """
    return min(stats, key=lambda pair: (-stats[pair], pair))


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` (left to right) by ``new_id``.

    >>> merge([5, 6, 6, 7, 6, 6, 6], (6, 6), 99)
    [5, 99, 7, 99, 6]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def apply_merges(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    """Encode one chunk: merge the earliest-learned pair present (lowest new id), until none is.

    >>> apply_merges([97, 97, 98], {(97, 97): 256, (256, 98): 257})
    [257]
    """
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break  # no adjacent pair was ever merged: done
        ids = merge(ids, pair, merges[pair])
    return ids


# --- The tokenizer --------------------------------------------------------------------------------

class BPETokenizer:
    """A byte-level BPE tokenizer: a regex pre-split, 256 byte tokens, ordered merges, specials.

    Build one with :meth:`from_gpt2` (OpenAI's GPT-2 vocabulary), :meth:`train` (learn merges
    from your text), :meth:`load` (a file written by :meth:`save`), or directly from merges.

    Args:
        merges: ``(left id, right id) -> new id``. A merge's new id is also its priority:
            lower ids were learned earlier and are applied first.
        byte_ids: the id of each byte value 0..255 (default: the byte value itself). GPT-2
            numbers its byte tokens in another order, so it passes its own.
        special_tokens: strings such as ``"<|endoftext|>"`` that map to one reserved id.
        pattern: the pre-split regex: ``GPT2_PATTERN`` or ``CHARACTER_PATTERN``.
    """

    GPT2_PATTERN = GPT2_PATTERN

    def __init__(self, merges: dict[Pair, int], *, byte_ids: Sequence[int] | None = None,
                 special_tokens: dict[str, int] | None = None, pattern: str = GPT2_PATTERN):
        self.merges = dict(merges)
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self.vocab = _build_vocab(self.byte_ids, self.merges)  # id -> bytes (no specials)
        check_special_tokens(self.special_tokens, self.vocab)
        self._split = _splitter(pattern)
        self._decoder = {**self.vocab, **{i: s.encode("utf-8") for s, i in self.special_tokens.items()}}
        self.n_vocab = max(self._decoder) + 1  # as tiktoken counts: the largest id + 1 (50257 for GPT-2)
        self._cache: dict[str, tuple[int, ...]] = {}  # chunk -> ids, as OpenAI's GPT-2 encoder did

    def __repr__(self) -> str:
        return f"BPETokenizer(n_vocab={self.n_vocab}, merges={len(self.merges)}, special_tokens={self.special_tokens})"

    @classmethod
    def from_gpt2(cls) -> BPETokenizer:
        """OpenAI's GPT-2 tokenizer (50,000 merges + ``<|endoftext|>`` = 50256), ids == tiktoken."""
        merges, byte_ids, special_tokens = gpt2_vocabulary()
        return cls(merges, byte_ids=byte_ids, special_tokens=special_tokens, pattern=GPT2_PATTERN)

    @classmethod
    def train(cls, text: str, vocab_size: int, *, pattern: str = GPT2_PATTERN,
              special_tokens: dict[str, int] | None = None) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``: ids 0..255 are the bytes, merges follow.

        The text is pre-split with ``pattern`` and every distinct chunk is counted once; then
        the most frequent adjacent pair is merged, again and again (ties: smallest pair, see
        the module docstring). ``special_tokens`` (e.g. ``{"<|endoftext|>": vocab_size}``) get
        the ids you give them, which must be ``>= vocab_size``.
        """
        _check_text(text)
        whole_number("vocab_size", vocab_size, minimum=256)  # the 256 byte tokens come first
        split = _splitter(pattern)  # refused before any regex runs
        text = _without_lone_surrogates(text)
        chunk_counts = Counter(chunk.encode("utf-8") for chunk in split.findall(text))
        merges = learn_merges(chunk_counts, vocab_size - 256)  # the fast twin of the get_stats/merge loop
        return cls(merges, special_tokens=special_tokens, pattern=pattern)

    def encode(self, text: str, *, allowed_special: Literal["all"] | Collection[str] = frozenset(),
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """Text -> ids, with tiktoken's rules for special tokens.

        By default a special token's text (e.g. ``"<|endoftext|>"``) inside ``text`` is an
        error, because it usually comes from untrusted data. Pass ``allowed_special={...}`` or
        ``"all"`` to encode it as its special id, or ``disallowed_special=()`` to encode it as
        ordinary text.
        """
        _check_text(text)
        allowed, disallowed = special_sets(self.special_tokens, allowed_special, disallowed_special)
        if disallowed and (found := _special_regex(disallowed).search(text)):
            raise ValueError(f"the text contains the special token {found.group()!r}: pass allowed_special="
                             f"{{{found.group()!r}}} (or 'all') to encode it as a special token, "
                             f"or disallowed_special=() to encode it as ordinary text")
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        parts = _special_regex(allowed).split(text)  # text, special, text, special, ..., text
        for i, part in enumerate(parts):
            ids.extend([self.special_tokens[part]] if i % 2 else self.encode_ordinary(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, treating special tokens' text as ordinary text (no checks)."""
        _check_text(text)
        ids: list[int] = []
        cache = self._cache  # real text repeats its words: each distinct chunk is merged once
        text = _without_lone_surrogates(text)
        for chunk in self._split.findall(text):  # the pre-split
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                byte_ids = [self.byte_ids[b] for b in chunk.encode("utf-8")]
                chunk_ids = cache[chunk] = tuple(apply_merges_fast(byte_ids, self.merges))  # = apply_merges
            ids.extend(chunk_ids)
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Ids -> the raw bytes they stand for (may end inside a multi-byte character)."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # a tensor or array -> ints
        try:
            return b"".join(self._decoder[i] for i in ids)
        except (KeyError, TypeError):
            bad = next(i for i in ids if not isinstance(i, Hashable) or i not in self._decoder)
            raise ValueError(f"unknown token id {bad!r}: not in this vocabulary (n_vocab={self.n_vocab})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Bytes that are not valid UTF-8 become U+FFFD "�" (as tiktoken does)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to a JSON file (atomically: a crash never leaves half a file)."""
        write_tokenizer_file(path, self)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`; a damaged or unsafe file is a one-line error."""
        fields = read_tokenizer_file(path)
        try:
            return cls({(a, b): i for a, b, i in fields.pop("merges")}, **fields)
        except (ValueError, TypeError, AttributeError) as exc:  # a merge that is not 3 ints, another pattern...
            raise ValueError(f"{Path(path).name} is a damaged or unsafe tokenizer file: {exc}") from None


def end_of_text_id(tokenizer) -> int:
    """The id of ``<|endoftext|>`` in a ``BPETokenizer`` or a ``tiktoken.Encoding``."""
    special = getattr(tokenizer, "special_tokens", None)
    if isinstance(special, dict) and END_OF_TEXT in special:
        return special[END_OF_TEXT]
    eot = getattr(tokenizer, "eot_token", None)  # tiktoken.Encoding
    if eot is not None:
        return int(eot)
    raise ValueError(f"this tokenizer has no {END_OF_TEXT!r} token: train it with one, or pass the end id")


# --- Small helpers --------------------------------------------------------------------------------

def _splitter(pattern: str) -> regex.Pattern:
    """The compiled pre-split, for the two patterns gptlib writes; any other is a one-line error."""
    if not isinstance(pattern, str) or pattern not in _SPLITTERS:
        raise ValueError(f"pattern {pattern!r:.50} is not one gptlib writes: use GPT2_PATTERN or CHARACTER_PATTERN")
    return _SPLITTERS[pattern]


def _build_vocab(byte_ids: list[int], merges: dict[Pair, int]) -> dict[int, bytes]:
    """id -> bytes: the byte tokens, then each merge's bytes in the order the merges were learned."""
    if not (len(byte_ids) == 256 == len(set(byte_ids)) and all(isinstance(i, int) and i >= 0 for i in byte_ids)):
        raise ValueError("byte_ids must give 256 distinct whole-number ids, one per byte value 0..255")
    vocab = {i: bytes([b]) for b, i in enumerate(byte_ids)}
    for (a, b), i in sorted(merges.items(), key=lambda kv: kv[1]):
        if not isinstance(i, int) or i < 0 or i in vocab or a not in vocab or b not in vocab:
            raise ValueError(f"bad merge ({a!r}, {b!r}) -> {i!r}: a merge joins two earlier ids into a new int id")
        vocab[i] = vocab[a] + vocab[b]
    return vocab


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}; decode bytes first: data.decode('utf-8')")


def _without_lone_surrogates(text: str) -> str:
    """``text`` with lone surrogates (``"\\ud800"``: they have no UTF-8) made U+FFFD, as tiktoken does.

    A surrogate *pair* written as two code points becomes the one character it stands for."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _special_regex(tokens: Iterable[str]) -> regex.Pattern:
    """A regex matching any of ``tokens`` (longest first, so a longer token wins at one spot)."""
    return regex.compile("(" + "|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True)) + ")")
