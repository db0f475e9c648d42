"""Day 1's exercises: count pairs inside chunks, one merge step, encode a chunk with learned merges,
decode ids through bytes, and BPE training (learn N merges from chunks). The references are ``gptlib.tokenizer``'s readable core (``get_stats``,
``merge``, ``apply_merges``) and Python's own UTF-8 decoder; BPE training is checked against ``gptlib.bpe_fast.learn_merges``, which
``BPETokenizer.train`` uses.

Each check recognises the usual mistakes by recomputing the answer with the mistake made on purpose
(``_PAIR_MISTAKES``, ``_MERGE_MISTAKES``, ``_ENCODE_MISTAKES``, ``_DECODE_MISTAKES``, ``_TRAIN_MISTAKES``) and comparing.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from ...bpe_fast import learn_merges
from ...tokenizer import apply_merges, get_stats, merge, most_frequent_pair
from . import NotDone, Text, TimedOut, Wrong, call, exercise, expect, msg

Pair = tuple[int, int]
# Chinese samples, as UTF-8 bytes: 'ni hao shi jie a' (hello world) and a corpus of its phrases
TEXT_ZH = bytes.fromhex("e4bda0e5a5bde4b896e7958ce5958a")
CORPUS_ZH = bytes.fromhex("e4bda0e5a5bde4b896e7958ce5958aefbc8ce4bda0e5a5bde4b896e7958cefbc8ce4bda0e5a5bde5958a")


def _join(first: Text, second: Text) -> Text:
    """One message from two: what went wrong on which input, then the hint."""
    join = msg("checker.join")
    return Text(join.en.format(first=first.en, second=second.en), join.zh.format(first=first.zh, second=second.zh))


def _short(value: object, limit: int = 90) -> str:
    """``repr`` cut to ``limit`` characters, so a verdict stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ...]"


# --- 1.1 Count adjacent pairs, inside each chunk -----------------------------------------------------

def _pairs_with(chunks: list[list[int]], mistake: str | None = None) -> dict[Pair, int]:
    """The pair counts of ``chunks``, or what a usual ``mistake`` (a key of ``_PAIR_MISTAKES``) gives."""
    if mistake == "across":
        return get_stats([i for chunk in chunks for i in chunk])
    if mistake == "last_chunk":
        return get_stats(chunks[-1]) if chunks else {}
    counts: dict[Pair, int] = {}
    for chunk in chunks:
        if mistake == "skip_short" and len(chunk) < 3:
            continue
        pairs = {"no_last": zip(chunk, chunk[1:-1]), "step_two": zip(chunk[::2], chunk[1::2])}.get(
            mistake or "", zip(chunk, chunk[1:]))
        for pair in pairs:
            counts[pair] = 1 if mistake == "ones" else counts.get(pair, 0) + 1
    return counts


_PAIR_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it with _pairs_with
    "across": msg("1.1.across"), "last_chunk": msg("1.1.last_chunk"), "ones": msg("1.1.ones"),
    "skip_short": msg("1.1.skip_short"), "no_last": msg("1.1.no_last"), "step_two": msg("1.1.step_two"), }


def _chunk_cases() -> list[list[list[int]]]:
    rng = random.Random(11)
    fixed = [[[1, 2, 1, 2, 3], [3, 1, 2]], [[97, 97, 97, 97]], [], [[5], [], [7, 7]]]
    randoms = [[[rng.randint(1, 4) for _ in range(rng.randint(0, 9))] for _ in range(rng.randint(1, 5))]
               for _ in range(30)]
    return fixed + randoms


@exercise("1.1", todo=msg("1.1.todo"), done=msg("1.1.done"))
def _count_chunk_pairs(counts_fn: Callable) -> None:
    cases = _chunk_cases()
    for chunks in cases:
        got = call(counts_fn, [list(chunk) for chunk in chunks])
        expect(isinstance(got, Mapping), msg("1.1.not_dict"), kind=type(got).__name__)
        got = {pair: n for pair, n in got.items() if n != 0}
        expected = _pairs_with(chunks)
        if got == expected:
            continue
        # Two mistakes can give the same counts on one case: prefer the one that explains every case.
        answers = _answers(counts_fn, [([list(chunk) for chunk in other],) for other in cases])
        for scope in (list(zip(cases, answers)), [(chunks, got)]):
            for mistake, hint in _PAIR_MISTAKES.items():
                if all(answer == _pairs_with(case, mistake) for case, answer in scope):
                    raise Wrong(hint)
        pair = min((p for p in {**expected, **got} if got.get(p, 0) != expected.get(p, 0)), key=repr)
        raise Wrong(msg("1.1.differs"),
                    chunks=_short(chunks), pair=pair, want=expected.get(pair, 0), have=got.get(pair, 0))


# --- 1.2 One merge step ------------------------------------------------------------------------------

def _merge_with(ids: list[int], pair: Pair, new_id: int, mistake: str) -> list[int]:
    """``merge`` written out with one of ``_MERGE_MISTAKES`` made on purpose."""
    if mistake == "as_text":
        text = " ".join(map(str, ids)).replace(f"{pair[0]} {pair[1]}", str(new_id))
        return [int(x) for x in text.split()]
    if mistake == "right_to_left":
        out, i = [], len(ids) - 1
        while i >= 0:
            if i >= 1 and (ids[i - 1], ids[i]) == pair:
                out.append(new_id)
                i -= 2
            else:
                out.append(ids[i])
                i -= 1
        return out[::-1]
    out, i, merged = [], 0, False
    end = len(ids) - 1 if mistake == "drop_last" else len(ids)
    while i < end:
        here = tuple(ids[i:i + 2])
        if len(here) == 2 and (here == pair or (mistake == "unordered" and here[::-1] == pair)) \
                and not (mistake == "first_only" and merged):
            out.append(new_id)
            merged = True
            i += 1 if mistake == "no_skip" else 2
        else:
            out.append(ids[i])
            i += 1
    return out


_MERGE_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it with _merge_with
    "no_skip": msg("1.2.no_skip"), "right_to_left": msg("1.2.right_to_left"), "drop_last": msg("1.2.drop_last"),
    "first_only": msg("1.2.first_only"), "unordered": msg("1.2.unordered"), "as_text": msg("1.2.as_text"), }


def _merge_cases() -> list[tuple[list[int], Pair, int]]:
    fixed = [([6, 6, 6], (6, 6), 99), ([5, 6, 6, 7, 6, 6, 6], (6, 6), 99), ([2, 1, 2, 1], (1, 2), 256),
             ([3, 1, 2], (1, 2), 256), ([1, 2], (1, 2), 256), ([3, 1], (1, 2), 256), ([], (1, 2), 256),
             ([1], (1, 2), 256), ([6, 6, 6, 6], (6, 6), 300),
             ([11, 2], (1, 2), 199), ([3, 21, 2, 1, 2], (1, 2), 256), ([12, 12, 1, 21], (1, 2), 300)]
    rng = random.Random(12)
    randoms = [([rng.randint(1, 3) for _ in range(rng.randint(0, 12))], (rng.randint(1, 3), rng.randint(1, 3)),
                256 + rng.randint(0, 9)) for _ in range(40)]
    return fixed + randoms


def _expect_int_ids(ids) -> None:
    """Token ids are ints: 99.0 == 99 in Python, so equality alone would accept float ids."""
    bad = next((i for i in ids if type(i) is not int), None)
    expect(bad is None, msg("checker.not_int"), value=repr(bad), kind=type(bad).__name__)


@exercise("1.2", todo=msg("1.2.todo"), done=msg("1.2.done"))
def _replace_pair(merge_fn: Callable) -> None:
    for ids, pair, new_id in _merge_cases():
        given = list(ids)
        got = call(merge_fn, given, pair, new_id)
        expect(isinstance(got, list), msg("1.2.not_list"), kind=type(got).__name__)
        _expect_int_ids(got)
        got, expected = list(got), merge(ids, pair, new_id)
        case = msg("1.2.case")
        values = {"ids": ids, "pair": pair, "new_id": new_id, "got": _short(got), "want": expected}
        if got != expected:
            for mistake, hint in _MERGE_MISTAKES.items():
                if got == _merge_with(ids, pair, new_id, mistake):
                    raise Wrong(_join(case, hint), **values)
            raise Wrong(case, **values)
        expect(given == ids, msg("1.2.changed_input"), ids=ids, now=_short(given))


# --- 1.3 Encode a chunk with learned merges --------------------------------------------------------

def _learn(ids: list[int], num_merges: int) -> dict[Pair, int]:
    """BPE training on one chunk with the tokenizer's core: merges in the order they were learned."""
    merges: dict[Pair, int] = {}
    for new_id in range(256, 256 + num_merges):
        stats = get_stats(ids)
        if not stats:
            break
        pair = most_frequent_pair(stats)
        merges[pair] = new_id
        ids = merge(ids, pair, new_id)
    return merges


def _encode_with(ids: list[int], merges: dict[Pair, int], mistake: str) -> list[int]:
    """``apply_merges`` written out with one of the usual mistakes (see ``_ENCODE_MISTAKES``) made on purpose."""
    if mistake == "one_sweep":  # one greedy left-to-right sweep, merging whatever learned pair it meets
        out, i = [], 0
        while i < len(ids):
            if tuple(ids[i:i + 2]) in merges:
                out.append(merges[tuple(ids[i:i + 2])])
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out
    if mistake == "dict_order":  # each merge once, in the order the dict happens to hold them
        for pair, new_id in merges.items():
            ids = merge(ids, pair, new_id)
        return ids
    if mistake == "one_pass":  # the learned pairs of the original chunk, each merged once, then stop
        for pair in sorted({p for p in zip(ids, ids[1:]) if p in merges}, key=merges.get):
            ids = merge(ids, pair, merges[pair])
        return ids
    while True:
        present = [p for p in zip(ids, ids[1:]) if p in merges]
        if not present:
            return ids
        if mistake in ("most_frequent", "most_frequent_first_seen"):
            counts = get_stats(ids)
            if mistake == "most_frequent":
                pair = min(present, key=lambda p: (-counts[p], merges[p]))
            else:
                pair = max(dict.fromkeys(present), key=lambda p: counts[p])  # first seen wins a tie
        elif mistake == "min_pair":  # min(learned) without a key compares the pairs themselves
            pair = min(present)
        elif mistake == "latest":
            pair = max(present, key=merges.get)
        elif mistake == "leftmost":
            pair = present[0]
        else:  # "one_merge": the right first merge, and no loop
            pair = min(present, key=merges.get)
            return merge(ids, pair, merges[pair])
        ids = merge(ids, pair, merges[pair])


_ENCODE_MISTAKES = {  # hint -> the mistakes it names, recognised by recomputing them with _encode_with
    msg("1.3.most_frequent"): ("most_frequent", "most_frequent_first_seen"), msg("1.3.dict_order"): ("dict_order",),
    msg("1.3.min_pair"): ("min_pair",), msg("1.3.latest"): ("latest",), msg("1.3.leftmost"): ("leftmost",),
    msg("1.3.one_pass"): ("one_pass", "one_sweep"), msg("1.3.one_merge"): ("one_merge",), }


def _encode_cases() -> list[tuple[list[int], dict[Pair, int]]]:
    classic = _learn(list(b"aaabdaaabac"), 3)
    chinese = _learn(list(CORPUS_ZH), 8)
    cases = [(list(b"aaabdaaabac"), classic), (list(b"aaab"), classic), (list(TEXT_ZH), chinese),
             (list(b"xyz"), classic), ([], classic), ([97], classic),
             (list(b"aaabdaaabac"), dict(reversed(classic.items())))]  # a dict need not hold the learning order
    rng = random.Random(13)
    for n in range(40):
        alphabet = rng.choice([b"ab", b"abc", b"aab ", TEXT_ZH[:6]])
        corpus = bytes(rng.choice(alphabet) for _ in range(rng.randint(20, 60)))
        merges = _learn(list(corpus), rng.randint(3, 12))
        if n % 2:
            merges = dict(rng.sample(list(merges.items()), len(merges)))
        cases.append(([rng.choice(alphabet) for _ in range(rng.randint(2, 14))], merges))
    return cases


@exercise("1.3", todo=msg("1.3.todo"), done=msg("1.3.done"))
def _encode_chunk(encode_fn: Callable) -> None:
    cases = _encode_cases()
    for ids, merges in cases:
        got = call(encode_fn, list(ids), dict(merges))
        expect(isinstance(got, list), msg("1.3.not_list"), kind=type(got).__name__)
        got, expected = list(got), apply_merges(list(ids), merges)
        if got == expected:
            continue
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
            vocab[new_id] = vocab[a] + vocab[b]
        unknown = [i for i in got if i not in vocab]
        expect(not unknown, msg("1.3.unknown_id"), i=unknown[0] if unknown else None)
        expect(b"".join(vocab[i] for i in got) == bytes(ids),
               msg("1.3.other_bytes"))
        # Two mistakes can give the same ids on one chunk: prefer the one that explains every chunk.
        answers = _answers(encode_fn, [(list(other), dict(other_merges)) for other, other_merges in cases])
        for scope in (list(zip(cases, answers)), [((ids, merges), got)]):
            for hint, mistakes in _ENCODE_MISTAKES.items():
                if any(all(answer == _encode_with(list(chunk), learned, mistake) for (chunk, learned), answer in scope)
                       for mistake in mistakes):
                    raise Wrong(hint)
        raise Wrong(msg("1.3.differs"), ids=_short(ids), got=_short(got), want=_short(expected))


def _answers(fn: Callable, cases: list[tuple]) -> list[object]:
    """``fn(*case)`` for each case, as a list (or a dict without zero counts), or None where it raises or
    returns something else (used only to diagnose); after a time-out, None for the rest without calling."""
    answers: list[object] = []
    for args in cases:
        try:
            result = call(fn, *args)
        except TimedOut:
            return answers + [None] * (len(cases) - len(answers))
        except (Wrong, NotDone):  # any error in the learner's code: this answer simply matches no mistake
            result = None
        if isinstance(result, Mapping):
            result = {key: n for key, n in result.items() if n != 0}
        answers.append(list(result) if isinstance(result, (list, tuple)) else result if isinstance(result, dict)
                       else None)
    return answers


# --- 1.4 Decode ids to text, through bytes -----------------------------------------------------------

def _decode_with(ids: Sequence[int], vocab: dict[int, bytes], mistake: str) -> str:
    """What a usual decoding mistake (see ``_DECODE_MISTAKES``) makes of ``ids``."""
    joined = b"".join(vocab[i] for i in ids)
    if mistake.startswith("per_token_"):
        return "".join(vocab[i].decode("utf-8", errors=mistake.removeprefix("per_token_")) for i in ids)
    if mistake in ("latin-1", "cp1252"):
        return joined.decode(mistake, errors="replace")
    if mistake == "chr":
        return "".join(chr(i) for i in ids)
    return joined.decode("utf-8", errors=mistake)  # "ignore", "backslashreplace"


_PER_TOKEN = msg("1.4.per_token")
_REPLACE = msg("1.4.replace")
_DECODE_MISTAKES = {  # hint -> the mistakes it names, recognised by recomputing them with _decode_with
    _PER_TOKEN: ("per_token_replace", "per_token_ignore", "per_token_backslashreplace"),
    msg("1.4.latin-1"): ("latin-1", "cp1252"), msg("1.4.chr"): ("chr",), _REPLACE: ("ignore", "backslashreplace"), }


def _decode_cases() -> list[tuple[list[int], dict[int, bytes]]]:
    cases = []
    for text, corpus, merges in (("the sea shells", "she sells sea shells by the sea shore", 6),
                                 (TEXT_ZH.decode(), CORPUS_ZH.decode(), 8)):
        learned = _learn(list(corpus.encode()), merges)
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in sorted(learned.items(), key=lambda kv: kv[1]):
            vocab[new_id] = vocab[a] + vocab[b]
        ids = apply_merges(list(text.encode()), learned)
        cases.append((ids, vocab))
    ids, vocab = cases[1]
    cases.append((ids[:-1], vocab))  # the last character's 3 bytes are cut after the first
    rng = random.Random(14)
    ids_of = sorted(vocab)
    cases += [([rng.choice(ids_of) for _ in range(rng.randint(0, 8))], vocab) for _ in range(30)]
    return cases


@exercise("1.4", todo=msg("1.4.todo"), done=msg("1.4.done"))
def _decode_tokens(decode_fn: Callable) -> None:
    for ids, vocab in _decode_cases():
        joined = b"".join(vocab[i] for i in ids)
        try:
            got = call(decode_fn, list(ids), dict(vocab))
        except Wrong as wrong:  # a strict decode raises where the bytes are not (yet) whole characters
            if isinstance(wrong.__context__, UnicodeDecodeError):  # whole bytes fail only piece by piece
                raise Wrong(_PER_TOKEN if _is_utf8(joined) else _REPLACE) from None
            raise
        expected = joined.decode("utf-8", errors="replace")
        expect(isinstance(got, str), msg("1.4.not_str"), kind=type(got).__name__)
        if got == expected:
            continue
        for hint, mistakes in _DECODE_MISTAKES.items():
            if any(got == _decode_with(ids, vocab, mistake) for mistake in mistakes):
                raise Wrong(hint)
        raise Wrong(msg("1.4.differs"), ids=_short(ids), want=repr(expected), got=_short(got))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True



# --- 1.5 BPE training: learn N merges from chunks -----------------------------------------------------

def _train_with(chunks: list[list[int]], num_merges: int, mistake: str) -> dict[Pair, int]:
    """The training loop written out with one of ``_TRAIN_MISTAKES`` made on purpose."""
    chunks = [list(c) for c in chunks]
    if mistake == "across":
        chunks = [[i for c in chunks for i in c]]
    first = {"from_257": 257, "from_0": 0}.get(mistake, 256)
    merges: dict[Pair, int] = {}
    once = _pairs_with(chunks)
    for new_id in range(first, first + num_merges):
        stats = (dict(once) if mistake == "count_once" else
                 _pairs_without_overlap(chunks) if mistake == "no_overlap" else _pairs_with(chunks))
        for pair in merges if mistake == "count_once" else ():
            stats.pop(pair, None)
        if not stats:
            break
        if mistake == "first_seen":
            pair = max(stats, key=stats.get)
        elif mistake == "largest_tie":
            pair = max(stats, key=lambda p: (stats[p], p))
        elif mistake == "least_frequent":
            pair = min(stats, key=lambda p: (stats[p], p))
        else:
            pair = most_frequent_pair(stats)
        merges[pair] = new_id
        chunks = [_merge_with(c, pair, new_id, "no_skip" if mistake == "no_skip" else "") for c in chunks]
    return merges


def _pairs_without_overlap(chunks: list[list[int]]) -> dict[Pair, int]:
    """Pair counts that skip past a repeated pair ("aaa" counts (a, a) once): the counting mistake."""
    counts: dict[Pair, int] = {}
    for ids in chunks:
        i = 0
        while i + 1 < len(ids):
            counts[ids[i], ids[i + 1]] = counts.get((ids[i], ids[i + 1]), 0) + 1
            i += 2 if ids[i] == ids[i + 1] else 1
    return counts


_TRAIN_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it with _train_with
    "no_overlap": msg("1.5.no_overlap"), "across": msg("1.5.across"), "first_seen": msg("1.5.first_seen"), "largest_tie": msg("1.5.largest_tie"),
    "least_frequent": msg("1.5.least_frequent"), "count_once": msg("1.5.count_once"), "no_skip": msg("1.5.no_skip"),
    "from_257": msg("1.5.from_257"), "from_0": msg("1.5.from_0"), }


def _train_cases() -> list[tuple[list[list[int]], int]]:
    """(chunks, number of merges): a classic, ties, English and Chinese text, more merges than pairs."""
    def chunks(text: str) -> list[list[int]]:
        return [list(c.encode()) for c in re.findall(r" ?\w+| ?[^\w\s]+|\s+", text)]
    english = "the cat sat on the mat; the cat ate the rat, and then the cat sat."
    return [([list(b"aaabdaaabac")], 3),
            ([list(b"abcd"), list(b"cdab"), list(b"ba")], 4),      # ties from the first merge: the rule decides
            ([list(b"ab"), list(b"ba"), list(b"dc"), list(b"cd")], 2),
            (chunks(english), 12),
            (chunks((TEXT_ZH + CORPUS_ZH).decode()), 10),
            ([list(b"xyxyxy"), list(b"x")], 3),                   # 3 merges are all there is
            ([list(b"hello hello hello")], 7),
            ([list(b"aaa"), list(b"ab"), list(b"ab")], 1)]               # "aaa" holds (97, 97) twice: overlaps count


@exercise("1.5", todo=msg("1.5.todo"), done=msg("1.5.done"))
def _learn_bpe(train_fn: Callable) -> None:
    for chunks, num_merges in _train_cases():
        got = call(train_fn, [list(c) for c in chunks], num_merges)
        expect(isinstance(got, Mapping), msg("1.5.not_dict"), kind=type(got).__name__)
        got = dict(got)
        expect(not got or not all(isinstance(k, int) and isinstance(v, tuple) for k, v in got.items()),
               msg("1.5.inverted"))
        _expect_int_ids(got.values())
        expected = learn_merges(Counter(bytes(c) for c in chunks), num_merges)
        if got == expected:
            continue
        values = {"chunks": _short([bytes(c) for c in chunks], 70), "n": num_merges}
        # Two mistakes can learn the same merges on one case: prefer the one that explains every case.
        cases = _train_cases()
        answers = _answers(train_fn, [([list(c) for c in other], n) for other, n in cases])
        for scope in (list(zip(cases, answers)), [((chunks, num_merges), got)]):
            for mistake, hint in _TRAIN_MISTAKES.items():
                if all(answer == _train_with(*case, mistake) for case, answer in scope):
                    raise Wrong(_join(msg("1.5.case"), hint), **values)
        in_order = sorted(expected.items(), key=lambda kv: kv[1])
        wrong = next(((pair, new_id) for pair, new_id in in_order if got.get(pair) != new_id), None)
        if wrong is None:  # every learned merge is right: the answer has extra ones
            raise Wrong(_join(msg("1.5.case"), msg("1.5.too_many")), **values, want=len(expected), have=len(got))
        raise Wrong(_join(msg("1.5.case"), msg("1.5.differs")), **values, new_id=wrong[1], pair=wrong[0],
                    have=_short(next((p for p, i in got.items() if i == wrong[1]), None)))
