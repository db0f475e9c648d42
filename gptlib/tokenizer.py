"""Byte-level Byte Pair Encoding (BPE), written by hand, with the same ids as tiktoken's GPT-2.

A byte-level BPE tokenizer turns text into integers in three steps:

1. **Pre-split** the text with a regular expression into chunks ("pre-tokens": words with
   their leading space, runs of digits, runs of punctuation, runs of whitespace). Merges never
   cross a chunk boundary, so " dog" and "dog." share the token for "dog".
2. **Bytes.** Each chunk becomes its UTF-8 bytes, one base token per byte. Any string can be
   encoded, in any script, with no "unknown" token.
3. **Merge.** A learned, ordered list of merges ``(left id, right id) -> new id`` is applied:
   repeatedly merge the adjacent pair that was learned *earliest* (lowest new id).

Training (:meth:`BPETokenizer.train`) learns that list: start from bytes, count adjacent pairs,
merge the most frequent pair into a new token, repeat. The readable core is four functions,
:func:`get_stats`, :func:`most_frequent_pair`, :func:`merge` and :func:`apply_merges`;
everything else is there to make it fast enough for real text, and tests prove it gives the
same results:

- training counts each distinct chunk once (with its frequency) and, after each merge, only
  updates the chunks that hold the merged pair (an index pair -> chunks), around each merge,
  and takes the most frequent pair from a heap (:func:`learn_merges`);
- encoding caches the ids of every chunk it has seen, as OpenAI's original GPT-2 encoder did,
  and merges with a heap over a linked list (:func:`apply_merges_fast`), so a 100 kB chunk
  takes a second, not hours.

Tie-breaking (training): when several pairs are equally frequent, the smallest pair wins,
comparing ``(left id, right id)`` as tuples. So ``most_frequent_pair`` is
``min(stats, key=lambda p: (-stats[p], p))`` and training is deterministic. (minbpe's
``max(stats, key=stats.get)`` picks the pair seen first instead; both are valid BPE.)

The GPT-2 vocabulary (:meth:`BPETokenizer.from_gpt2`) is read from OpenAI's ``vocab.bpe``
(the ordered merges) and ``encoder.json`` (the ids). Encoding gives exactly tiktoken's ids,
lone surrogates included (both replace them with U+FFFD first). One caveat: the `regex`
module may know a newer Unicode version than tiktoken's Rust regex (16.0 in tiktoken 0.14);
a character assigned since then (e.g. U+1B168) is a letter here and a symbol there, so text
holding one can be split differently.
"""
from __future__ import annotations

import heapq
import json
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Literal

import regex

from .files import write_atomically

__all__ = ["BPETokenizer", "GPT2_PATTERN", "END_OF_TEXT", "end_of_text_id", "get_stats", "most_frequent_pair",
           "merge", "apply_merges", "apply_merges_fast", "learn_merges"]

# tiktoken's GPT-2 pattern (``r50k_pat_str``). OpenAI's original GPT-2 pattern was
# r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# and splits every string the same way (tests/test_tokenizer.py checks both on random text);
# this spelling uses possessive quantifiers (++), which never backtrack and so run faster.
# The `regex` module is needed: Python's `re` knows neither \p{L} nor, before 3.11, ++.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

Pair = tuple[int, int]

END_OF_TEXT = "<|endoftext|>"  # GPT-2's one special token: it separates documents and ends answers

_FORMAT = "gptlib.BPETokenizer"  # the "format" field of a saved tokenizer file
_CACHE_LIMIT = 100_000  # chunks remembered by encode before the cache is cleared


# ---------------------------------------------------------------------------
# The core of BPE: count pairs, pick one, merge it.
# ---------------------------------------------------------------------------

def get_stats(ids: Sequence[int], counts: dict[Pair, int] | None = None,
              weight: int = 1) -> dict[Pair, int]:
    """Count each adjacent pair in ``ids`` (adding ``weight`` per occurrence into ``counts``).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def most_frequent_pair(stats: dict[Pair, int]) -> Pair:
    """The pair to merge next: highest count; on a tie, the smallest ``(left, right)`` pair."""
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


def apply_merges_fast(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    """:func:`apply_merges` in O(n log n) instead of O(n^2): the same ids, faster on every chunk.

    The simple loop rescans all pairs after each merge; on a long chunk (a line of Chinese, a
    base64 blob, a 100 kB "word") that takes minutes. Here the tokens form a linked list
    (``nxt``/``prv`` indices; merged-away tokens become None) and a heap holds the
    ``(rank, position)`` of every mergeable adjacent pair. Popping the lowest rank, leftmost
    first, merges in the same order as :func:`apply_merges` (a merge only creates pairs of
    higher rank, because a merge is built from earlier ids). An entry whose tokens changed
    since it was pushed is skipped when popped.
    """
    ids = list(ids)
    n = len(ids)
    nxt, prv = list(range(1, n + 1)), list(range(-1, n - 1))  # n / -1: no neighbour
    heap = [(merges[pair], i) for i, pair in enumerate(zip(ids, ids[1:])) if pair in merges]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = nxt[i]
        if j >= n or merges.get((ids[i], ids[j])) != rank:
            continue  # outdated entry
        ids[i], ids[j] = rank, None  # the merged token's id is its rank
        nxt[i] = nxt[j]
        if nxt[i] < n:
            prv[nxt[i]] = i
        for left in (prv[i], i):  # the two pairs the new token is part of
            if left >= 0 and nxt[left] < n and (r := merges.get((ids[left], ids[nxt[left]]))) is not None:
                heapq.heappush(heap, (r, left))
    return [t for t in ids if t is not None]


# ---------------------------------------------------------------------------
# Fast training: the same merges as the naive loop, without recounting everything.
# ---------------------------------------------------------------------------

def learn_merges(chunk_counts: dict[bytes, int], num_merges: int) -> dict[Pair, int]:
    """Learn ``num_merges`` merges (ids 256, 257, ...) from chunks and how often each occurs.

    Gives the same merges as the naive loop "``stats`` = pair counts of every chunk (times its
    count); ``pair = most_frequent_pair(stats)``; ``merge`` it in every chunk", but:

    - each merge only visits the chunks that hold the pair (an index pair -> chunks), and only
      updates the counts of the pairs next to each merge (:func:`_merge_in_chunk`);
    - the most frequent pair comes from a heap instead of a scan (:func:`_pop_most_frequent`).
    """
    words = [list(chunk) for chunk in chunk_counts]  # each distinct chunk, as its current ids
    freqs = list(chunk_counts.values())
    stats: dict[Pair, int] = {}
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> chunks that (may) hold it
    for w, ids in enumerate(words):
        get_stats(ids, stats, freqs[w])
        for pair in zip(ids, ids[1:]):
            where[pair].add(w)
    heap = [(-count, pair) for pair, count in stats.items()]
    heapq.heapify(heap)

    merges: dict[Pair, int] = {}
    for new_id in range(256, 256 + num_merges):
        pair = _pop_most_frequent(heap, stats)
        if pair is None:
            raise ValueError(f"the text only allows {len(merges)} merges (every chunk is a single "
                             f"token by then): use vocab_size <= {256 + len(merges)} or a longer text")
        merges[pair] = new_id
        new_pairs: set[Pair] = set()
        for w in where.pop(pair):
            words[w] = _merge_in_chunk(w, words[w], pair, new_id, freqs[w], stats, where, new_pairs)
        for p in new_pairs:
            if stats[p] > 0:
                heapq.heappush(heap, (-stats[p], p))
    return merges


def _pop_most_frequent(heap: list[tuple[int, Pair]], stats: dict[Pair, int]) -> Pair | None:
    """The most frequent pair (ties: the smallest), taken off the heap; None when none is left.

    Heap entries are ``(-count, pair)``, so the heap order *is* :func:`most_frequent_pair`'s
    rule. Counts drop as merges eat pairs, and we do not edit the heap then: an entry may
    hold an old, higher count. When one surfaces, we queue the pair again at its real count
    ("lazy deletion"). So every pair always has an entry at least as high as its count, and
    the first entry that is up to date is the true maximum.
    """
    while heap:
        neg_count, pair = heapq.heappop(heap)
        count = stats.get(pair, 0)
        if count == -neg_count:
            return pair
        if 0 < count < -neg_count:
            heapq.heappush(heap, (-count, pair))
    return None


def _merge_in_chunk(w: int, ids: list[int], pair: Pair, new_id: int, freq: int,
                    stats: dict[Pair, int], where: defaultdict[Pair, set[int]],
                    new_pairs: set[Pair]) -> list[int]:
    """:func:`merge` for chunk ``w`` (seen ``freq`` times), updating the pair counts as it goes.

    Only the pairs touching a merge change: ``x a b y`` -> ``x N y`` takes ``freq`` from
    (x, a), (a, b), (b, y) and gives it to (x, N), (N, y). The left neighbour is read from the
    output, so back-to-back merges (``a b a b`` -> ``N N``) are counted right.
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            stats[pair] -= freq
            neighbours = []
            if out:
                neighbours.append(((out[-1], pair[0]), (out[-1], new_id)))
            if i + 2 < len(ids):
                neighbours.append(((pair[1], ids[i + 2]), (new_id, ids[i + 2])))
            for old_pair, new_pair in neighbours:
                stats[old_pair] -= freq
                stats[new_pair] = stats.get(new_pair, 0) + freq
                where[new_pair].add(w)
                new_pairs.add(new_pair)
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ---------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------

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
        pattern: the pre-split regex (``regex`` module syntax).
    """

    GPT2_PATTERN = GPT2_PATTERN

    def __init__(self, merges: dict[Pair, int], *, byte_ids: Sequence[int] | None = None,
                 special_tokens: dict[str, int] | None = None, pattern: str = GPT2_PATTERN):
        self.merges = dict(merges)
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self.vocab = _build_vocab(self.byte_ids, self.merges)  # id -> bytes (no specials)
        _check_special_tokens(self.special_tokens, self.vocab)
        self._split = regex.compile(pattern)
        self._decoder = {**self.vocab, **{i: s.encode("utf-8") for s, i in self.special_tokens.items()}}
        self._n_vocab = max(self._decoder) + 1
        self._cache: dict[str, tuple[int, ...]] = {}

    @property
    def n_vocab(self) -> int:
        """Number of ids, as tiktoken counts it: the largest id + 1 (50257 for GPT-2)."""
        return self._n_vocab

    def __repr__(self) -> str:
        return (f"BPETokenizer(n_vocab={self.n_vocab}, merges={len(self.merges)}, "
                f"special_tokens={self.special_tokens})")

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_gpt2(cls) -> BPETokenizer:
        """OpenAI's GPT-2 tokenizer (50,000 merges + ``<|endoftext|>`` = 50256), ids == tiktoken."""
        from .assets import read_asset

        token_to_id: dict[str, int] = json.loads(read_asset("gpt2/encoder.json"))
        lines = read_asset("gpt2/vocab.bpe").decode("utf-8").splitlines()
        merge_lines = [line.split(" ") for line in lines[1:] if line]  # line 0: "#version: 0.2"
        # GPT-2 stores each byte as a printable character (bytes_to_unicode): undo that.
        char_to_byte = {char: byte for byte, char in _gpt2_bytes_to_unicode().items()}
        id_of_bytes = {bytes(char_to_byte[c] for c in token): i
                       for token, i in token_to_id.items() if token != "<|endoftext|>"}
        byte_ids = [id_of_bytes[bytes([b])] for b in range(256)]
        merges = {}
        for left, right in merge_lines:
            left_b, right_b = (bytes(char_to_byte[c] for c in s) for s in (left, right))
            merges[id_of_bytes[left_b], id_of_bytes[right_b]] = id_of_bytes[left_b + right_b]
        return cls(merges, byte_ids=byte_ids, pattern=GPT2_PATTERN,
                   special_tokens={"<|endoftext|>": token_to_id["<|endoftext|>"]})

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
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the 256 byte tokens come first), "
                             f"got {vocab_size!r}")
        text = _without_lone_surrogates(text)
        chunk_counts = Counter(chunk.encode("utf-8") for chunk in regex.findall(pattern, text))
        merges = learn_merges(chunk_counts, vocab_size - 256)
        return cls(merges, special_tokens=special_tokens, pattern=pattern)

    # -- encoding --------------------------------------------------------------------------

    def encode(self, text: str, *, allowed_special: Literal["all"] | Collection[str] = frozenset(),
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """Text -> ids, with tiktoken's rules for special tokens.

        By default a special token's text (e.g. ``"<|endoftext|>"``) inside ``text`` is an
        error, because it usually comes from untrusted data. Pass ``allowed_special={...}`` or
        ``"all"`` to encode it as its special id, or ``disallowed_special=()`` to encode it as
        ordinary text.
        """
        _check_text(text)
        allowed = self._special_set(allowed_special, "allowed_special") & self.special_tokens.keys()
        disallowed = (self.special_tokens.keys() - allowed if disallowed_special == "all"
                      else self._special_set(disallowed_special, "disallowed_special"))
        if disallowed and (found := _special_regex(disallowed).search(text)):
            raise ValueError(
                f"the text contains the special token {found.group()!r}: pass allowed_special="
                f"{{{found.group()!r}}} (or 'all') to encode it as a special token, or "
                f"disallowed_special=() to encode it as ordinary text")
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
        try:
            return self._encode_chunks(text)
        except UnicodeEncodeError:  # lone surrogates: rare, so we only pay for them here
            return self._encode_chunks(_without_lone_surrogates(text))

    def _encode_chunks(self, text: str) -> list[int]:
        """Pre-split ``text`` and encode every chunk, through the cache."""
        ids: list[int] = []
        cache = self._cache
        for chunk in self._split.findall(text):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                chunk_ids = cache[chunk] = tuple(self._encode_chunk(chunk.encode("utf-8")))
            ids.extend(chunk_ids)
        return ids

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        """One chunk's bytes -> ids: :func:`apply_merges`, in its fast spelling."""
        return apply_merges_fast([self.byte_ids[b] for b in chunk], self.merges)

    def _special_set(self, value: Literal["all"] | Collection[str], name: str) -> set[str]:
        """``allowed_special`` / ``disallowed_special`` as a set; "all" means every special token."""
        if value == "all":
            return set(self.special_tokens)
        if isinstance(value, str):
            raise TypeError(f"{name} must be 'all' or a set of strings, got {value!r}; "
                            f"did you mean {name}={{{value!r}}}?")
        return set(value)

    # -- decoding --------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Ids -> the raw bytes they stand for (may end inside a multi-byte character)."""
        if hasattr(ids, "tolist"):  # a tensor or numpy array
            ids = ids.tolist()
        elif not isinstance(ids, (list, tuple)):
            ids = list(ids)
        try:
            return b"".join(self._decoder[i] for i in ids)
        except (KeyError, TypeError):
            bad = next(i for i in ids if not _hashable(i) or i not in self._decoder)
            raise ValueError(f"unknown token id {bad!r}: not in this tokenizer's vocabulary "
                             f"(n_vocab={self.n_vocab}, ids 0..{self.n_vocab - 1})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Bytes that are not valid UTF-8 become U+FFFD "�" (as tiktoken does)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # -- saving ----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to a JSON file (atomically: a crash never leaves half a file)."""
        data = {"format": _FORMAT, "version": 1, "pattern": self.pattern,
                "byte_ids": self.byte_ids, "special_tokens": self.special_tokens,
                "merges": [[a, b, i] for (a, b), i in sorted(self.merges.items(), key=lambda kv: kv[1])]}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        write_atomically(path, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{Path(path).name} is not a tokenizer file written by "
                             f"BPETokenizer.save (no {_FORMAT!r} format field)")
        if data.get("version") != 1:
            raise ValueError(f"{Path(path).name} has tokenizer file version {data.get('version')!r}; "
                             f"this gptlib reads version 1")
        missing = [key for key in ("pattern", "byte_ids", "special_tokens", "merges") if key not in data]
        if missing:
            raise ValueError(f"{Path(path).name} is a damaged tokenizer file: it lacks {', '.join(missing)}")
        return cls({(a, b): i for a, b, i in data["merges"]}, byte_ids=data["byte_ids"],
                   special_tokens=data["special_tokens"], pattern=data["pattern"])


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def end_of_text_id(tokenizer) -> int:
    """The id of ``<|endoftext|>`` in a ``BPETokenizer`` or a ``tiktoken.Encoding``."""
    special = getattr(tokenizer, "special_tokens", None)
    if isinstance(special, dict) and END_OF_TEXT in special:
        return special[END_OF_TEXT]
    eot = getattr(tokenizer, "eot_token", None)  # tiktoken.Encoding
    if eot is not None:
        return int(eot)
    raise ValueError(f"this tokenizer has no {END_OF_TEXT!r} special token; train it with "
                     f"special_tokens={{{END_OF_TEXT!r}: vocab_size}} or pass the end id explicitly")


def _build_vocab(byte_ids: list[int], merges: dict[Pair, int]) -> dict[int, bytes]:
    """id -> bytes: the byte tokens, then each merge's bytes in the order the merges were learned."""
    if sorted(byte_ids) != sorted(set(byte_ids)) or len(byte_ids) != 256:
        raise ValueError("byte_ids must give 256 distinct ids, one per byte value 0..255")
    vocab = {i: bytes([b]) for b, i in enumerate(byte_ids)}
    for (a, b), i in sorted(merges.items(), key=lambda kv: kv[1]):
        if i in vocab or a not in vocab or b not in vocab:
            raise ValueError(f"bad merge ({a}, {b}) -> {i}: a merge needs two earlier ids and a new one")
        vocab[i] = vocab[a] + vocab[b]
    return vocab


def _check_special_tokens(special_tokens: dict[str, int], vocab: dict[int, bytes]) -> None:
    if not all(isinstance(token, str) and token for token in special_tokens):
        raise ValueError(f"special tokens must be non-empty strings, got {list(special_tokens)}")
    ids = list(special_tokens.values())
    if len(set(ids)) != len(ids) or any(not isinstance(i, int) or i < 0 or i in vocab for i in ids):
        raise ValueError(f"special token ids must be distinct ints >= {len(vocab)} (after the byte "
                         f"and merge ids), got {special_tokens}")


def _without_lone_surrogates(text: str) -> str:
    """``text`` with lone surrogates (``"\ud800"``, no UTF-8 exists for them) made U+FFFD.

    This is tiktoken's fix-up: a surrogate *pair* written as two code points becomes the one
    character it stands for; a lone one becomes the replacement character.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}; decode bytes first "
                        f"(e.g. data.decode('utf-8'))")


def _special_regex(tokens: Iterable[str]) -> regex.Pattern:
    """A regex matching any of ``tokens`` (longest first, so a longer token wins at one spot)."""
    return regex.compile("(" + "|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True)) + ")")


def _hashable(x: object) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, used to store bytes in its JSON/text files.

    Printable bytes stand for themselves; the other 68 (controls, space, ...) are shifted to
    the characters from U+0100 on, so that, e.g., the space byte is written "Ġ".
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return table
