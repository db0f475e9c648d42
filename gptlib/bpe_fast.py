"""The fast twins of :mod:`gptlib.tokenizer`'s core: the same BPE, only fast enough for real text.

:mod:`gptlib.tokenizer` writes BPE the way you would explain it, and each step rescans
everything: training recounts every pair of every chunk before each merge, and encoding rescans
a chunk's pairs after each merge. That is clear, and fine for a paragraph, but training to 4,096
tokens on Tiny Shakespeare would recount its ~300k chunks 3,840 times, and encoding one long
chunk (a line of Chinese, a base64 blob) is quadratic in its length.

The two functions here compute exactly what the simple ones do, by doing less work:

- :func:`learn_merges` is the training loop (``get_stats`` over every chunk, then
  ``most_frequent_pair``, then ``merge`` in every chunk, repeated). It counts each distinct
  chunk once, with its frequency; after a merge it visits only the chunks that hold the merged
  pair and updates only the counts next to each merge; it takes the most frequent pair from a heap.
- :func:`apply_merges_fast` is ``apply_merges`` in O(n log n) instead of O(n^2): a heap of
  mergeable pairs over a linked list of tokens.

"The same" is checked, not hoped for: ``tests/test_tokenizer.py`` compares both with the simple
versions on random text (hypothesis) and on real corpora, ties included.
"""
from __future__ import annotations

import heapq
from collections import defaultdict

__all__ = ["apply_merges_fast", "learn_merges"]

Pair = tuple[int, int]  # (left id, right id)


def apply_merges_fast(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    """``tokenizer.apply_merges`` in O(n log n) instead of O(n^2): the same ids, faster on every chunk.

    The simple loop rescans all pairs after each merge. Here the tokens form a linked list
    (``nxt``/``prv`` indices; merged-away tokens become None) and a heap holds the
    ``(rank, position)`` of every mergeable adjacent pair. Popping the lowest rank, leftmost
    first, merges in the same order as ``apply_merges`` (a merge only creates pairs of
    higher rank, because a merge is built from earlier ids). An entry whose tokens changed
    since it was pushed is skipped when popped.

    >>> apply_merges_fast([97, 97, 98], {(97, 97): 256, (256, 98): 257})
    [257]
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


def learn_merges(chunk_counts: dict[bytes, int], num_merges: int) -> dict[Pair, int]:
    """Learn ``num_merges`` merges (new ids 256, 257, ...) from chunks and how often each occurs.

    Gives the same merges as the naive loop "``stats`` = pair counts of every chunk (times its
    count); ``pair = most_frequent_pair(stats)``; ``merge`` it in every chunk", but:

    - each merge only visits the chunks that hold the pair (an index pair -> chunks), and only
      updates the counts of the pairs next to each merge (:func:`_merge_in_chunk`);
    - the most frequent pair comes from a heap instead of a scan (:func:`_pop_most_frequent`).

    >>> learn_merges({b"aaabdaaabac": 1}, 3)
    {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    """
    words = [list(chunk) for chunk in chunk_counts]  # each distinct chunk, as its current ids
    freqs = list(chunk_counts.values())
    stats: dict[Pair, int] = {}  # pair -> how often it occurs in the whole text
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> chunks that (may) hold it
    for w, ids in enumerate(words):
        for pair in zip(ids, ids[1:]):
            stats[pair] = stats.get(pair, 0) + freqs[w]
            where[pair].add(w)
    heap = [(-count, pair) for pair, count in stats.items()]
    heapq.heapify(heap)

    merges: dict[Pair, int] = {}
    for new_id in range(256, 256 + num_merges):
        pair = _pop_most_frequent(heap, stats)
        if pair is None:
            raise ValueError(f"{len(merges)} merges at most: use vocab_size <= {256 + len(merges)} or a longer text")
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

    Heap entries are ``(-count, pair)``, so the heap order *is* ``most_frequent_pair``'s
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
    """``tokenizer.merge`` for chunk ``w`` (seen ``freq`` times), updating the pair counts as it goes.

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
