"""Day 1's exercises: count pairs inside chunks, one merge step, encode a chunk with learned merges,
decode ids through bytes. The references are ``gptlib.tokenizer``'s readable core (``get_stats``,
``merge``, ``apply_merges``) and Python's own UTF-8 decoder.

Each check recognises the usual mistakes by recomputing the answer with the mistake made on purpose
(``_PAIR_MISTAKES``, ``_MERGE_MISTAKES``, ``_ENCODE_MISTAKES``, ``_DECODE_MISTAKES``) and comparing.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from ...tokenizer import apply_merges, get_stats, merge, most_frequent_pair
from . import Text, Wrong, call, exercise, expect

Pair = tuple[int, int]


def _join(first: Text, second: Text) -> Text:
    """One message from two: what went wrong on which input, then the hint."""
    return Text(f"{first.en}: {second.en}", f"{first.zh}：{second.zh}")


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
        pairs = {"no_last": zip(chunk, chunk[1:-1]), "step_two": zip(chunk[::2], chunk[1::2])}.get(
            mistake or "", zip(chunk, chunk[1:]))
        for pair in pairs:
            counts[pair] = 1 if mistake == "ones" else counts.get(pair, 0) + 1
    return counts


_PAIR_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it with _pairs_with
    "across": Text("a pair was counted across a chunk boundary (the last id of one chunk with the first of "
                   "the next): count inside each chunk only; merges never cross a chunk",
                   "有的字节对跨过了块的边界（上一块的最后一个 id 和下一块的第一个 id）被计数了：只在每一块内部计数，"
                   "合并从不跨块"),
    "last_chunk": Text("only the last chunk's pairs are counted: create the dict once, before the loop over "
                       "the chunks, and add every chunk into it",
                       "只数了最后一块的字节对：在遍历各块之前只建一次字典，把每一块都加进去"),
    "ones": Text("every count is 1: a pair seen twice must count 2 (a set, or = 1 instead of += 1?)",
                 "每个计数都是 1：出现两次的字节对应记为 2（用了集合，还是写成了 = 1 而不是 += 1？）"),
    "no_last": Text("the last pair of each chunk is missing: an off-by-one; the last pair is (ids[-2], ids[-1])",
                    "每一块的最后一个字节对都漏掉了：差一错误；最后一对是 (ids[-2], ids[-1])"),
    "step_two": Text("pairs overlap: in [1, 2, 3] both (1, 2) and (2, 3) count; move one position at a time, "
                     "not two", "字节对是相互重叠的：[1, 2, 3] 中 (1, 2) 和 (2, 3) 都要数；每次前进一位，而不是两位"),
}


def _chunk_cases() -> list[list[list[int]]]:
    rng = random.Random(11)
    fixed = [[[1, 2, 1, 2, 3], [3, 1, 2]], [[97, 97, 97, 97]], [], [[5], [], [7, 7]]]
    randoms = [[[rng.randint(1, 4) for _ in range(rng.randint(0, 9))] for _ in range(rng.randint(1, 5))]
               for _ in range(30)]
    return fixed + randoms


@exercise("1.1", todo=Text("return a dict {{(left id, right id): count}} of the adjacent pairs inside each chunk of "
                           "a list of chunks (lists of ids)",
                           "对一组块（每块是一个 id 列表），返回每块内部相邻字节对的计数字典 {{(左 id, 右 id): 次数}}"),
          done=Text("pair counts are right, and no pair crosses a chunk. gptlib.tokenizer.get_stats does the "
                    "same; the library's training (bpe_fast.learn_merges) counts each distinct chunk once, "
                    "times its frequency, and after a merge updates only the counts next to it.",
                    "字节对计数正确，且没有跨块。gptlib.tokenizer.get_stats 做的是同一件事；库里的训练"
                    "（bpe_fast.learn_merges）对每个不同的块只数一次再乘以它出现的次数，合并之后只更新受影响的计数。"))
def _count_chunk_pairs(counts_fn: Callable) -> None:
    for chunks in _chunk_cases():
        got = call(counts_fn, [list(chunk) for chunk in chunks])
        expect(isinstance(got, Mapping), Text("return a dict {{(left id, right id): count}}, not a {kind}",
                                              "应返回字典 {{(左 id, 右 id): 次数}}，而不是 {kind}"),
               kind=type(got).__name__)
        got = {pair: n for pair, n in got.items() if n != 0}
        expected = _pairs_with(chunks)
        if got == expected:
            continue
        for mistake, hint in _PAIR_MISTAKES.items():
            if got == _pairs_with(chunks, mistake):
                raise Wrong(hint)
        pair = min((p for p in {**expected, **got} if got.get(p, 0) != expected.get(p, 0)), key=repr)
        raise Wrong(Text("for the chunks {chunks}, pair {pair} should count {want}, you have {have}",
                         "对块 {chunks}，字节对 {pair} 应计 {want} 次，你的是 {have}"),
                    chunks=_short(chunks), pair=pair, want=expected.get(pair, 0), have=got.get(pair, 0))


# --- 1.2 One merge step ------------------------------------------------------------------------------

def _merge_with(ids: list[int], pair: Pair, new_id: int, mistake: str) -> list[int]:
    """``merge`` written out with one of ``_MERGE_MISTAKES`` made on purpose."""
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
    "no_skip": Text("the second id of a merged pair stayed in the output: after writing new_id, move past both "
                    "ids (i += 2)", "被合并的那一对的第二个 id 还留在输出里：写入 new_id 之后要跳过这两个 id（i += 2）"),
    "right_to_left": Text("overlaps were merged from the right: go left to right, so [6, 6, 6] with pair (6, 6) "
                          "gives [99, 6], not [6, 99]",
                          "重叠处是从右往左合并的：应从左往右，所以 [6, 6, 6] 按 (6, 6) 合并得到 [99, 6]，而不是 [6, 99]"),
    "drop_last": Text("the last id was lost: when the final id is not part of a merged pair, it must still be "
                      "copied", "最后一个 id 丢了：最后一个 id 不属于被合并的那一对时，也要把它抄到输出里"),
    "first_only": Text("only the first occurrence was merged: replace every occurrence of the pair",
                       "只合并了第一次出现的位置：这一对每次出现都要替换"),
    "unordered": Text("a pair is ordered: (1, 2) must not match a 2 followed by a 1",
                      "字节对是有顺序的：(1, 2) 不能匹配先 2 后 1"),
}


def _merge_cases() -> list[tuple[list[int], Pair, int]]:
    fixed = [([6, 6, 6], (6, 6), 99), ([5, 6, 6, 7, 6, 6, 6], (6, 6), 99), ([2, 1, 2, 1], (1, 2), 256),
             ([3, 1, 2], (1, 2), 256), ([1, 2], (1, 2), 256), ([3, 1], (1, 2), 256), ([], (1, 2), 256),
             ([1], (1, 2), 256), ([6, 6, 6, 6], (6, 6), 300)]
    rng = random.Random(12)
    randoms = [([rng.randint(1, 3) for _ in range(rng.randint(0, 12))], (rng.randint(1, 3), rng.randint(1, 3)),
                256 + rng.randint(0, 9)) for _ in range(40)]
    return fixed + randoms


@exercise("1.2", todo=Text("return a new list in which every occurrence of pair in ids, left to right, is "
                           "replaced by new_id",
                           "返回一个新列表，其中 ids 里 pair 的每次出现（从左到右）都替换成了 new_id"),
          done=Text("one merge step is right, overlaps included. It equals gptlib.tokenizer.merge; the library's "
                    "training (bpe_fast.learn_merges) merges only the chunks that hold the pair and fixes the "
                    "pair counts as it goes, instead of recounting everything.",
                    "一步合并正确，重叠的情况也对。它与 gptlib.tokenizer.merge 一致；库里的训练（bpe_fast.learn_merges）"
                    "只处理含有这一对的块，并在合并时顺手更新计数，而不是全部重数。"))
def _replace_pair(merge_fn: Callable) -> None:
    for ids, pair, new_id in _merge_cases():
        given = list(ids)
        got = call(merge_fn, given, pair, new_id)
        expect(isinstance(got, (list, tuple)), Text("return a list of ids, not a {kind}",
                                                     "应返回 id 列表，而不是 {kind}"), kind=type(got).__name__)
        got, expected = list(got), merge(ids, pair, new_id)
        case = Text("replace_pair({ids}, {pair}, {new_id}) gave {got}, expected {want}",
                    "replace_pair({ids}, {pair}, {new_id}) 得到 {got}，应为 {want}")
        values = {"ids": ids, "pair": pair, "new_id": new_id, "got": _short(got), "want": expected}
        if got != expected:
            for mistake, hint in _MERGE_MISTAKES.items():
                if got == _merge_with(ids, pair, new_id, mistake):
                    raise Wrong(_join(case, hint), **values)
            raise Wrong(case, **values)
        expect(given == ids, Text("your function changed the list it was given ({ids} became {now}): build a new "
                                  "list and leave ids as it was", "你的函数改动了传入的列表（{ids} 变成了 {now}）："
                                  "应新建一个列表，保持 ids 不变"), ids=ids, now=_short(given))


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
        elif mistake == "latest":
            pair = max(present, key=merges.get)
        elif mistake == "leftmost":
            pair = present[0]
        else:  # "one_merge": the right first merge, and no loop
            pair = min(present, key=merges.get)
            return merge(ids, pair, merges[pair])
        ids = merge(ids, pair, merges[pair])


_ENCODE_MISTAKES = {  # hint -> the mistakes it names, recognised by recomputing them with _encode_with
    Text("you merged the most frequent pair first; encoding is not training: merge the pair with the lowest "
         "new id (the one learned earliest), whatever its count",
         "你先合并了出现最多的一对；编码不是训练：应合并新 id 最小（最早学到）的那一对，不管它出现几次"):
        ("most_frequent", "most_frequent_first_seen"),
    Text("merges were applied latest-first: take the pair with the lowest new id (min, not max)",
         "合并顺序反了，先用了最晚学到的：应取新 id 最小的那一对（min，不是 max）"): ("latest",),
    Text("you merged the leftmost learned pair; take the pair learned earliest (lowest new id), wherever it is "
         "in the chunk", "你合并的是最靠左的已学字节对；应取最早学到（新 id 最小）的那一对，不管它在块里的哪个位置"):
        ("leftmost",),
    Text("you stopped after one pass: a merge creates new pairs (with the new id) that may be learned too; "
         "repeat until no adjacent pair is in merges",
         "你只扫了一遍就停了：合并会产生含新 id 的新字节对，它们也可能在合并表里；要一直重复，直到没有相邻的一对在 merges 中"):
        ("one_pass", "one_sweep"),
    Text("only one merge was applied: repeat while some adjacent pair is in merges",
         "只做了一次合并：只要还有相邻的一对在 merges 里，就继续合并"): ("one_merge",),
}


def _encode_cases() -> list[tuple[list[int], dict[Pair, int]]]:
    classic = _learn(list(b"aaabdaaabac"), 3)
    chinese = _learn(list("你好世界啊，你好世界，你好啊".encode()), 8)
    cases = [(list(b"aaabdaaabac"), classic), (list(b"aaab"), classic), (list("你好世界啊".encode()), chinese),
             (list(b"xyz"), classic), ([], classic), ([97], classic)]
    rng = random.Random(13)
    for _ in range(40):
        alphabet = rng.choice([b"ab", b"abc", b"aab ", "你好".encode()])
        corpus = bytes(rng.choice(alphabet) for _ in range(rng.randint(20, 60)))
        merges = _learn(list(corpus), rng.randint(3, 12))
        cases.append(([rng.choice(alphabet) for _ in range(rng.randint(2, 14))], merges))
    return cases


@exercise("1.3", todo=Text("return the ids of one chunk after replaying the learned merges {{(left, right): new id}}: "
                           "again and again, merge the adjacent pair with the lowest new id, until none is in merges",
                           "返回一个块在重放已学到的合并 {{(左, 右): 新 id}} 之后的 id：反复合并新 id 最小的相邻一对，"
                           "直到没有相邻的一对在 merges 中"),
          done=Text("encoding replays the merges in the order they were learned, like gptlib.tokenizer.apply_merges. "
                    "BPETokenizer.encode adds the pre-split, a cache of encoded chunks, special tokens, and "
                    "bpe_fast.apply_merges_fast (a heap instead of rescanning the chunk after every merge).",
                    "编码按学到的顺序重放合并，与 gptlib.tokenizer.apply_merges 一致。BPETokenizer.encode 还加上了预切分、"
                    "已编码块的缓存、特殊词元，以及 bpe_fast.apply_merges_fast（用堆，而不是每次合并后重扫整个块）。"))
def _encode_chunk(encode_fn: Callable) -> None:
    cases = _encode_cases()
    for ids, merges in cases:
        got = call(encode_fn, list(ids), dict(merges))
        expect(isinstance(got, (list, tuple)), Text("return a list of ids, not a {kind}", "应返回 id 列表，而不是 {kind}"),
               kind=type(got).__name__)
        got, expected = list(got), apply_merges(list(ids), merges)
        if got == expected:
            continue
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
            vocab[new_id] = vocab[a] + vocab[b]
        unknown = [i for i in got if i not in vocab]
        expect(not unknown, Text("id {i} is neither a byte (0..255) nor a learned merge", "id {i} 既不是字节（0..255）"
                                 "也不是学到的合并"), i=unknown[0] if unknown else None)
        expect(b"".join(vocab[i] for i in got) == bytes(ids),
               Text("your ids spell other bytes than the chunk: a merge replaces exactly its two ids by merges[pair]",
                    "你的 id 拼出的字节与原块不同：一次合并只把那两个 id 替换成 merges[pair]"))
        # Two mistakes can give the same ids on one chunk: prefer the one that explains every chunk.
        answers = [_quietly(encode_fn, list(other), dict(other_merges)) for other, other_merges in cases]
        for scope in (list(zip(cases, answers)), [((ids, merges), got)]):
            for hint, mistakes in _ENCODE_MISTAKES.items():
                if any(all(answer == _encode_with(list(chunk), learned, mistake) for (chunk, learned), answer in scope)
                       for mistake in mistakes):
                    raise Wrong(hint)
        raise Wrong(Text("for the chunk {ids} you returned {got}; replaying the merges gives {want}",
                         "对块 {ids} 你返回了 {got}；重放合并应得到 {want}"),
                    ids=_short(ids), got=_short(got), want=_short(expected))


def _quietly(fn: Callable, *args: object) -> object:
    """``fn(*args)`` as a list, or None where it raises or returns something else (used only to diagnose)."""
    try:
        result = fn(*args)
    except Exception:  # any error in the learner's code: this answer simply matches no mistake
        return None
    return list(result) if isinstance(result, (list, tuple)) else None


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


_PER_TOKEN = Text("decoding each token on its own splits a character: 你 is 3 bytes and its bytes can sit in "
                  "different tokens; join the bytes of all tokens first, then decode once",
                  "逐个词元解码会把字符拆开：“你”是 3 个字节，这些字节可能分在不同的词元里；先把所有词元的字节拼起来，再统一解码一次")
_REPLACE = Text("the ids can end inside a character (a model writing 啊 emits its 3 bytes one token at a time): "
                "decode with errors='replace' so the unfinished bytes show as '\ufffd', as tiktoken does",
                "id 序列可能停在一个字符的中间（模型写“啊”时，它的 3 个字节是一个词元一个词元地出来的）：用 "
                "errors='replace' 解码，让没写完的字节显示为 '\ufffd'，和 tiktoken 一样")
_DECODE_MISTAKES = {  # hint -> the mistakes it names, recognised by recomputing them with _decode_with
    _PER_TOKEN: ("per_token_replace", "per_token_ignore", "per_token_backslashreplace"),
    Text("the bytes were read as Latin-1, one byte per character: decode them as UTF-8",
         "字节被当成 Latin-1 读了（一个字节一个字符）：应按 UTF-8 解码"): ("latin-1", "cp1252"),
    Text("an id is not a character code: look up each id's bytes in vocab", "id 不是字符编码：要在 vocab 里查出每个 id 的字节"):
        ("chr",),
    _REPLACE: ("ignore", "backslashreplace"),
}


def _decode_cases() -> list[tuple[list[int], dict[int, bytes]]]:
    cases = []
    for text, corpus, merges in (("the sea shells", "she sells sea shells by the sea shore", 6),
                                 ("你好世界啊", "你好世界啊，你好世界，你好啊", 8)):
        learned = _learn(list(corpus.encode()), merges)
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in sorted(learned.items(), key=lambda kv: kv[1]):
            vocab[new_id] = vocab[a] + vocab[b]
        ids = apply_merges(list(text.encode()), learned)
        cases.append((ids, vocab))
    ids, vocab = cases[1]
    cases.append((ids[:-1], vocab))  # 啊's bytes are cut after its first byte
    rng = random.Random(14)
    ids_of = sorted(vocab)
    cases += [([rng.choice(ids_of) for _ in range(rng.randint(0, 8))], vocab) for _ in range(30)]
    return cases


@exercise("1.4", todo=Text("return the text that ids stand for, given vocab {{id: bytes}}; the bytes of an unfinished "
                           "character become '\ufffd'",
                           "给定 vocab {{id: 字节}}，返回 ids 所代表的文本；没写完的字符的字节变成 '\ufffd'"),
          done=Text("you decode through bytes, like BPETokenizer.decode (errors='replace', as tiktoken). The library "
                    "adds special tokens such as <|endoftext|> and a clear error for an unknown id; decode_bytes "
                    "gives the raw bytes, for text that is still being generated.",
                    "你是通过字节解码的，和 BPETokenizer.decode 一样（errors='replace'，与 tiktoken 相同）。库里还处理了 "
                    "<|endoftext|> 这样的特殊词元，遇到未知 id 会给出清楚的报错；decode_bytes 返回原始字节，"
                    "适合还在生成中的文本。"))
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
        expect(isinstance(got, str), Text("return a str, not {kind}: decode the joined bytes with "
                                          ".decode('utf-8', errors='replace')",
                                          "应返回 str，而不是 {kind}：用 .decode('utf-8', errors='replace') 解码拼好的字节"),
               kind=type(got).__name__)
        if got == expected:
            continue
        for hint, mistakes in _DECODE_MISTAKES.items():
            if any(got == _decode_with(ids, vocab, mistake) for mistake in mistakes):
                raise Wrong(hint)
        raise Wrong(Text("ids {ids} decode to {want}, you returned {got}", "ids {ids} 应解码为 {want}，你返回了 {got}"),
                    ids=_short(ids), want=repr(expected), got=_short(got))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

