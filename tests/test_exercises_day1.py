"""Day 1's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, more_alternatives_test

STUBS = exercise_sources("notebooks/day1_tokenize.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day1_solutions.ipynb")

COUNT = SOLUTIONS["1.1"][0]
MERGE = SOLUTIONS["1.2"][0]
ENCODE = SOLUTIONS["1.3"][0]
DECODE = "def decode_tokens(ids, vocab):\n    return "

WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "1.1": [
        ("def count_chunk_pairs(chunks):\n    ids = [i for chunk in chunks for i in chunk]\n    counts = {}\n"
         "    for pair in zip(ids, ids[1:]):\n        counts[pair] = counts.get(pair, 0) + 1\n    return counts",
         "across a chunk boundary"),
        (COUNT.replace("    counts = {}\n    for ids in chunks:\n", "    for ids in chunks:\n        counts = {}\n"),
         "only the last chunk's pairs"),
        (COUNT.replace("counts[pair] = counts.get(pair, 0) + 1", "counts[pair] = 1"), "every count is 1"),
        (COUNT.replace("zip(ids, ids[1:])", "zip(ids, ids[1:-1])"), "last pair of each chunk is missing"),
        (COUNT.replace("zip(ids, ids[1:])", "zip(ids[::2], ids[1::2])"), "pairs overlap"),
        ("def count_chunk_pairs(chunks):\n    return [pair for ids in chunks for pair in zip(ids, ids[1:])]",
         "return a dict"),
        (COUNT.replace("    for ids in chunks:\n", "    for ids in chunks:\n        if len(ids) < 3:\n            continue\n"),
         "chunks of two ids were skipped"),
        (COUNT.replace("    for ids in chunks:\n", "    for ids in chunks:\n        ids.append(0)\n"),
         "changed the list it was given"),  # the caller's chunks grow: that, not the extra pair, is the bug
        (COUNT.replace("for ids in chunks:", "for ids in chunks[0]:"), "raised TypeError"),
        (COUNT.replace("zip(ids, ids[1:])", "zip(ids[1:], ids)"), "should count"),
    ],
    "1.2": [
        (MERGE.replace("            i += 2", "            i += 1"), "move past both ids (i += 2)"),
        ("def replace_pair(ids, pair, new_id):\n    out, i = [], len(ids) - 1\n    while i >= 0:\n"
         "        if i > 0 and (ids[i - 1], ids[i]) == pair:\n            out.insert(0, new_id)\n"
         "            i -= 2\n        else:\n            out.insert(0, ids[i])\n            i -= 1\n    return out",
         "merged from the right"),
        (MERGE.replace("while i < len(ids):", "while i < len(ids) - 1:"), "the last id was lost"),
        ("def replace_pair(ids, pair, new_id):\n    for i in range(len(ids) - 1):\n"
         "        if (ids[i], ids[i + 1]) == pair:\n            return ids[:i] + [new_id] + ids[i + 2:]\n"
         "    return ids",
         "only the first occurrence"),
        (MERGE.replace("(ids[i], ids[i + 1]) == pair", "{ids[i], ids[i + 1]} == set(pair)"),
         "a pair is ordered"),
        ("def replace_pair(ids, pair, new_id):\n    i = 0\n    while i < len(ids) - 1:\n"
         "        if (ids[i], ids[i + 1]) == pair:\n            ids[i:i + 2] = [new_id]\n        i += 1\n"
         "    return ids",
         "changed the list it was given"),
        (MERGE.replace("out.append(new_id)", "out.append(float(new_id))"), "a float"),  # once passed: 99.0 == 99
        ("def replace_pair(ids, pair, new_id):\n    text = ' '.join(map(str, ids))\n"
         "    text = text.replace(f'{pair[0]} {pair[1]}', str(new_id))\n    return [int(x) for x in text.split()]",
         "matches digits across ids"),
        (MERGE.replace("    return out", "    return tuple(out)"), "not a tuple"),
        (MERGE.replace("if i + 1 < len(ids) and", "if"), "raised IndexError: list index out of range (on input [6, 6, 6]"),
        ("def replace_pair(ids, pair, new_id):\n    import numpy as np\n    return np.array(ids)", "not a NumPy"),
    ],
    "1.3": [
        (ENCODE.replace("learned = [pair for pair in zip(ids, ids[1:]) if pair in merges]",
                        "learned = {}\n        for pair in zip(ids, ids[1:]):\n            if pair in merges:\n"
                        "                learned[pair] = learned.get(pair, 0) + 1")
         .replace("pair = min(learned, key=merges.get)", "pair = max(learned, key=learned.get)"), "most frequent pair"),
        (ENCODE.replace("pair = min(learned, key=merges.get)", "pair = max(learned, key=merges.get)"), "min, not max"),
        (ENCODE.replace("pair = min(learned, key=merges.get)", "pair = learned[0]"), "leftmost learned pair"),
        (ENCODE.replace("        ids = out\n", "        return out\n"), "only one merge was applied"),
        ("def encode_chunk(ids, merges):\n    out, i = [], 0\n    while i < len(ids):\n"
         "        if tuple(ids[i:i + 2]) in merges:\n            out.append(merges[tuple(ids[i:i + 2])])\n"
         "            i += 2\n        else:\n            out.append(ids[i])\n            i += 1\n    return out",
         "stopped after one pass"),
        ("def encode_chunk(ids, merges):\n"
         "    for pair in sorted({p for p in zip(ids, ids[1:]) if p in merges}, key=merges.get):\n"
         "        out, i = [], 0\n        while i < len(ids):\n"
         "            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:\n                out.append(merges[pair])\n"
         "                i += 2\n            else:\n                out.append(ids[i])\n                i += 1\n"
         "        ids = out\n    return ids", "stopped after one pass"),
        (ENCODE.replace("out.append(merges[pair])", "out.append(pair[0])"), "spell other bytes"),
        ("def encode_chunk(ids, merges):\n    for pair, new_id in merges.items():\n        out, i = [], 0\n"
         "        while i < len(ids):\n            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:\n"
         "                out.append(new_id)\n                i += 2\n            else:\n"
         "                out.append(ids[i])\n                i += 1\n        ids = out\n    return ids",
         "in the order the dict holds them"),
        (ENCODE.replace("pair = min(learned, key=merges.get)", "pair = min(learned)"), "compares the pairs themselves"),
        (ENCODE.replace("    return ids", "    return tuple(ids)"), "not a tuple"),
        (ENCODE.replace("        ids = out\n", ""), "ran past 8 s on input [97, 97, 97"),
    ],
    "1.4": [(DECODE + body, hint) for body, hint in [
        ("''.join(vocab[i].decode('utf-8', errors='replace') for i in ids)", "decoding each token on its own"),
        ("''.join(vocab[i].decode('utf-8') for i in ids)", "decoding each token on its own"),
        ("b''.join(vocab[i] for i in ids).decode('utf-8')", "errors='replace'"),
        ("b''.join(vocab[i] for i in ids).decode('utf-8', errors='ignore')", "errors='replace'"),
        ("b''.join(vocab[i] for i in ids)", "return a str"),
        ("b''.join(vocab[i] for i in ids).decode('latin-1')", "Latin-1"),
        ("''.join(chr(i) for i in ids)", "not a character code"),
    ]],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "1.1": "def count_chunk_pairs(chunks):\n    from collections import Counter\n"
           "    return Counter(pair for ids in chunks for pair in zip(ids, ids[1:]))",
    "1.2": "def replace_pair(ids, pair, new_id):\n    out = []\n    for x in ids:\n"
           "        if out and out[-1] == pair[0] and x == pair[1]:\n            out[-1] = new_id\n"
           "        else:\n            out.append(x)\n    return out",
    # every merge in learning order, each applied once to the whole chunk: the same tokens, because a merge
    # only ever creates pairs that were learned later
    "1.3": "def encode_chunk(ids, merges):\n    for pair, new_id in sorted(merges.items(), key=lambda kv: kv[1]):\n"
           "        out = []\n        for x in ids:\n            if out and (out[-1], x) == pair:\n"
           "                out[-1] = new_id\n            else:\n                out.append(x)\n        ids = out\n"
           "    return list(ids)",
    # streaming: an incremental decoder holds back the bytes of an unfinished character until the end
    "1.4": "def decode_tokens(ids, vocab):\n    import codecs\n"
           "    decoder = codecs.getincrementaldecoder('utf-8')(errors='replace')\n"
           "    return ''.join(decoder.decode(vocab[i]) for i in ids) + decoder.decode(b'', final=True)",
}


TRAIN = SOLUTIONS["1.5"][0]


def train(old: str, new: str) -> str:
    """The reference BPE training with ``old`` replaced by ``new`` (which must occur exactly once)."""
    assert TRAIN.count(old) == 1, old
    return TRAIN.replace(old, new)


WRONG["1.5"] = [
    # a review's plausible mistakes that once passed: counting that skips overlaps, float ids, the caller's chunks changed
    (train("                counts[pair] = counts.get(pair, 0) + 1\n",
           "                counts[pair] = counts.get(pair, 0) + 1\n"
           "            counts.update({p: n - 1 for p, n in counts.items() if p[0] == p[1] and "
           "any(ids[i:i + 3] == [p[0]] * 3 for i in range(len(ids)))})\n"), "skip past a repeated pair"),
    (train("range(256, 256 + num_merges)", "(256.0 + k for k in range(num_merges))"), "a float"),
    (train("    chunks = [list(ids) for ids in chunks]\n", ""), "changed the list it was given"),
    (train("min(counts, key=lambda p: (-counts[p], p))", "max(counts, key=counts.get)"), "seen first"),
    (train("min(counts, key=lambda p: (-counts[p], p))", "max(counts, key=lambda p: (counts[p], p))"),
     "took the largest pair"),
    (train("min(counts, key=lambda p: (-counts[p], p))", "min(counts, key=lambda p: (counts[p], p))"),
     "least frequent"),
    (train("range(256, 256 + num_merges)", "range(257, 257 + num_merges)"), "new ids start at 256"),
    (train("                    i += 2", "                    i += 1"), "move past both ids"),
    (train("    chunks = [list(ids) for ids in chunks]\n", "    chunks = [[i for ids in chunks for i in ids]]\n"),
     "across a chunk boundary"),
    ("def learn_bpe(chunks, num_merges):\n    counts = {}\n    for ids in chunks:\n"
     "        for pair in zip(ids, ids[1:]):\n            counts[pair] = counts.get(pair, 0) + 1\n"
     "    ranked = sorted(counts, key=lambda p: (-counts[p], p))\n"
     "    return {pair: 256 + i for i, pair in enumerate(ranked[:num_merges])}", "counted only once"),
    (train("    return merges", "    return list(merges)"), "return a dict"),
    (train("        merges[pair] = new_id\n", "        merges[pair] = new_id\n        merges[pair[::-1]] = new_id\n"),
     "learn exactly num_merges"),
    (train("min(counts, key=lambda p: (-counts[p], p))", "max(counts)"), "merge 256 should be (97, 97)"),
    (train("counts[pair] = counts.get(pair, 0) + 1", "counts[pair] += 1"), "raised KeyError"),
    (train("    return merges", "    return {i: p for p, i in merges.items()}"), "wrong way round"),
]

ALTERNATIVE["1.5"] = (
    "from collections import Counter\n"
    "def learn_bpe(chunks, num_merges):\n    words = Counter(tuple(ids) for ids in chunks)\n    merges = {}\n"
    "    for new_id in range(256, 256 + num_merges):\n        counts = Counter()\n"
    "        for word, n in words.items():\n            for pair in zip(word, word[1:]):\n                counts[pair] += n\n"
    "        best = max(counts.values())\n        pair = sorted(p for p, c in counts.items() if c == best)[0]\n"
    "        merges[pair] = new_id\n        new_words = Counter()\n        for word, n in words.items():\n"
    "            out = []\n            for i in word:\n"
    "                if out and out[-1] == pair[0] and i == pair[1]:\n"
    "                    out[-1] = new_id\n                else:\n                    out.append(i)\n"
    "            new_words[tuple(out)] += n\n        words = new_words\n    return merges")


test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "1.1": [
        # defaultdict index loop
        'from collections import defaultdict\n'
        'def count_chunk_pairs(chunks):\n'
        '    counts = defaultdict(int)\n'
        '    for ids in chunks:\n'
        '        for i in range(1, len(ids)):\n'
        '            counts[ids[i - 1], ids[i]] += 1\n'
        '    return dict(counts)',
    ],
    "1.2": [
        # the input list itself when the pair is absent
        'def replace_pair(ids, pair, new_id):\n'
        '    if pair not in zip(ids, ids[1:]):\n'
        '        return ids\n'
        '    out, i = [], 0\n'
        '    while i < len(ids):\n'
        '        if ids[i:i + 2] == list(pair):\n'
        '            out.append(new_id)\n'
        '            i += 2\n'
        '        else:\n'
        '            out.append(ids[i])\n'
        '            i += 1\n'
        '    return out',
        # recursion
        'def replace_pair(ids, pair, new_id):\n'
        '    if len(ids) < 2:\n'
        '        return list(ids)\n'
        '    if (ids[0], ids[1]) == pair:\n'
        '        return [new_id] + replace_pair(ids[2:], pair, new_id)\n'
        '    return [ids[0]] + replace_pair(ids[1:], pair, new_id)',
    ],
    "1.3": [
        # minbpe style
        'def encode_chunk(ids, merges):\n'
        '    ids = list(ids)\n'
        '    while len(ids) >= 2:\n'
        "        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, float('inf')))\n"
        '        if pair not in merges:\n'
        '            break\n'
        '        out, i = [], 0\n'
        '        while i < len(ids):\n'
        '            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:\n'
        '                out.append(merges[pair])\n'
        '                i += 2\n'
        '            else:\n'
        '                out.append(ids[i])\n'
        '                i += 1\n'
        '        ids = out\n'
        '    return ids',
    ],
    "1.4": [
        # bytearray
        'def decode_tokens(ids, vocab):\n'
        '    buf = bytearray()\n'
        '    for i in ids:\n'
        '        buf += vocab[i]\n'
        "    return str(buf, 'utf-8', 'replace')",
    ],
    "1.5": [
        # the new id from the number of merges so far, Counter and a tie broken by min
        'from collections import Counter\n'
        'def learn_bpe(chunks, num_merges):\n'
        '    chunks = [list(c) for c in chunks]\n'
        '    merges = {}\n'
        '    while len(merges) < num_merges:\n'
        '        counts = Counter(p for ids in chunks for p in zip(ids, ids[1:]))\n'
        '        top = max(counts.values())\n'
        '        pair = min(p for p in counts if counts[p] == top)\n'
        '        merges[pair] = new_id = 256 + len(merges)\n'
        '        merged = []\n'
        '        for ids in chunks:\n'
        '            out = []\n'
        '            for x in ids:\n'
        '                if out and (out[-1], x) == pair:\n'
        '                    out[-1] = new_id\n'
        '                else:\n'
        '                    out.append(x)\n'
        '            merged.append(out)\n'
        '        chunks = merged\n'
        '    return merges',
        # max with negated pair key
        'def learn_bpe(chunks, num_merges):\n'
        '    chunks = [list(c) for c in chunks]\n'
        '    merges = {}\n'
        '    for new_id in range(256, 256 + num_merges):\n'
        '        counts = {}\n'
        '        for ids in chunks:\n'
        '            for pair in zip(ids, ids[1:]):\n'
        '                counts[pair] = counts.get(pair, 0) + 1\n'
        '        pair = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]\n'
        '        merges[pair] = new_id\n'
        '        for c, ids in enumerate(chunks):\n'
        '            out, i = [], 0\n'
        '            while i < len(ids):\n'
        '                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:\n'
        '                    out.append(new_id)\n'
        '                    i += 2\n'
        '                else:\n'
        '                    out.append(ids[i])\n'
        '                    i += 1\n'
        '            chunks[c] = out\n'
        '    return merges',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"1.1", "1.2", "1.3", "1.4", "1.5"})
