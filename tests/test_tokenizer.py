"""The hand-written BPE tokenizer: same ids as tiktoken's GPT-2, lossless, a correct trainer, and fast twins
(gptlib.bpe_fast) that give exactly what the readable core (gptlib.tokenizer) gives."""
from __future__ import annotations

import doctest
import inspect
import json
import random
import subprocess
import sys
import unicodedata
from collections import Counter

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gptlib
from gptlib import assets, bpe_fast, tokenizer
from gptlib.bpe_fast import apply_merges_fast, learn_merges
from gptlib.tokenizer import (CHARACTER_PATTERN, GPT2_PATTERN, BPETokenizer, apply_merges, get_stats, merge,
                              most_frequent_pair)

# Property tests: reproducible in CI (derandomize), no flaky timing (deadline=None).
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# OpenAI's original GPT-2 pattern (encoder.py); GPT2_PATTERN is tiktoken's faster spelling.
ORIGINAL_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Fragments that stress the pre-split: whitespace of every kind, contractions, digits,
# multi-byte scripts, emoji with modifiers and joiners, the special token's pieces.
FRAGMENTS = [" ", "  ", "\n", "\n\n", "\t", "\r\n", "\u3000", "\xa0", "\x85", "\x1c", "\u2028",
             "'s", "'S", "'ll", "'ve", "'re", "'d", "'m", "'t", "'", "I", "ll", "a", "Hello", "42",
             "٣", "½", "你好", "世界", "é", "e\u0301", "ß", "Ω", "😀", "👍🏽", "👨‍👩‍👧", "#", "!!", "...",
             "<|", "|>", "endoftext", "\x00", "\ufeff", "\U0010ffff"]


def text_strategy(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Random text: plain, from every Unicode category, or glued from tricky fragments."""
    return st.one_of(
        st.text(chars, max_size=80),
        st.text(chars.filter(lambda c: unicodedata.category(c)[0] in "LMNPSZ"), max_size=80),
        st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(chars, max_size=3)), max_size=30).map("".join),
    )


def _known_to_tiktoken(char: str) -> bool:
    """False for characters assigned after the Unicode version tiktoken's Rust regex knows.

    The `regex` module ships newer Unicode tables than tiktoken 0.14 (Unicode 16.0), so a
    character assigned since (e.g. U+1B168) is a letter for us and a symbol for tiktoken, and
    text holding one may be pre-split differently. We leave out every character that Python's
    own (older) unicodedata calls unassigned while `regex` knows it.
    """
    return unicodedata.category(char) != "Cn" or regex.match(r"\p{Cn}", char) is not None


ANY_CHAR = st.characters(exclude_categories=["Cs"])  # every code point but lone surrogates
text_like = text_strategy(ANY_CHAR)
text_for_tiktoken = text_strategy(ANY_CHAR.filter(_known_to_tiktoken))


@pytest.fixture(scope="module")
def gpt2() -> BPETokenizer:
    return BPETokenizer.from_gpt2()


@pytest.fixture(scope="module")
def tiktoken_gpt2():
    return gptlib.get_encoding("gpt2")


@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    return BPETokenizer.train(assets.tiny_shakespeare()[:100_000], 512, special_tokens={"<|endoftext|>": 512})


# --- GPT-2: the same ids as tiktoken -------------------------------------------------------

@pytest.mark.parametrize("text, ids", [
    ("hello", [31373]),
    ("tokenization", [30001, 1634]),
    ("你好", [19526, 254, 25001, 121]),
    ("Hello, world!", [15496, 11, 995, 0]),
])
def test_known_gpt2_ids(gpt2, text, ids):
    assert gpt2.encode(text) == ids
    assert gpt2.decode(ids) == text


def test_gpt2_vocabulary_size(gpt2, tiktoken_gpt2):
    assert gpt2.n_vocab == tiktoken_gpt2.n_vocab == 50257
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    assert len(gpt2.merges) == 50_000
    assert all(gpt2.vocab[i] == tiktoken_gpt2.decode_single_token_bytes(i) for i in range(50256))


def _corpus() -> dict[str, str]:
    return {
        "shakespeare": assets.tiny_shakespeare()[:50_000],
        "tang_poems": assets.tang_poems()[:20_000],
        "python_source": inspect.getsource(json.decoder) + inspect.getsource(assets),
        "emoji": "Emoji 😀😃😄 👍🏽👍🏿 👨‍👩‍👧‍👦 🇨🇳🇫🇷 ❤️ ✨🔥 done.",
        "whitespace_runs": "  \n\n\t  x   \n \n  \t\t\n\n\n   y \r\n\r\n\u3000\u3000z\xa0\xa0 ",
        "trailing_spaces": "the end   ",
        "trailing_newlines": "the end\n\n",
        "only_spaces": "     ",
        "contractions": "I'll, you've, he's, they're, I'd, I'm, don't; I'LL 'S 'Tis 'twas ''' ' s",
        "numbers": "0 1 12 123 1234 12345 3.14159 -42 1e10 1,000,000 ٣٤ ½ Ⅻ 0x1F",
        "mixed_scripts": "GPT 你好世界 Привет мир こんにちは 안녕하세요 مرحبا שלום नमस्ते ελληνικά café naïve",
        "special_token_pieces": "<|endoftext| <| endoftext |> <||>",
        "control_chars": "\x00\x01\x1b[31mred\x1b[0m\x7f\x1c\x1d\x85\u200b\ufeff",
        "empty": "",
    }


@pytest.mark.parametrize("name", list(_corpus()))
def test_encode_equals_tiktoken_on_a_varied_corpus(gpt2, tiktoken_gpt2, name):
    text = _corpus()[name]
    ids = gpt2.encode(text)
    assert ids == tiktoken_gpt2.encode(text)
    assert gpt2.decode(ids) == text


@PROPERTY
@given(text=text_for_tiktoken)
def test_encode_equals_tiktoken_on_any_text(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode(text, disallowed_special=()) == tiktoken_gpt2.encode(text, disallowed_special=())


@PROPERTY
@given(text=text_like)
def test_decode_inverts_encode(gpt2, text):
    assert gpt2.decode(gpt2.encode(text, disallowed_special=())) == text


@PROPERTY
@given(text=text_like)
def test_gpt2_pattern_splits_like_the_original_gpt2_pattern(text):
    assert regex.findall(GPT2_PATTERN, text) == regex.findall(ORIGINAL_GPT2_PATTERN, text)


def test_long_chunks_equal_tiktoken(gpt2, tiktoken_gpt2):
    """A 20 kB "word" or a long line of Chinese is one chunk: encoding must not go quadratic."""
    rng = random.Random(0)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20_000))
    chinese = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(5_000))
    for text in (letters, chinese, " " * 10_000 + "x", "\n" * 10_000):
        assert gpt2.encode(text) == tiktoken_gpt2.encode(text)


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "x \ud83d\ude00 y", "\ud83d", "ok\udc80\udc80  "])
def test_lone_surrogates_are_replaced_like_tiktoken(gpt2, tiktoken_gpt2, text):
    """Python strings may hold lone surrogates, which have no UTF-8: both encode U+FFFD instead."""
    assert gpt2.encode(text) == tiktoken_gpt2.encode(text)
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)


def test_decode_replaces_broken_utf8_like_tiktoken(gpt2, tiktoken_gpt2):
    ids = gpt2.encode("你好")[:1]  # the first byte token of a three-byte character
    assert gpt2.decode_bytes(ids) == tiktoken_gpt2.decode_bytes(ids)
    assert gpt2.decode(ids) == tiktoken_gpt2.decode(ids) == "\ufffd"


def test_tokenizer_does_not_use_tiktoken():
    code = ("import sys; from gptlib.tokenizer import BPETokenizer; t = BPETokenizer.from_gpt2();"
            "assert t.decode(t.encode('hi there')) == 'hi there';"
            "assert 'tiktoken' not in sys.modules, 'tiktoken was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- special tokens: tiktoken's rules ---------------------------------------------------------

TEXT_WITH_SPECIAL = "Hello<|endoftext|>world <|endoftext|><|endoftext|> end"


def test_special_token_in_text_is_refused_by_default(gpt2, tiktoken_gpt2):
    with pytest.raises(ValueError):
        tiktoken_gpt2.encode(TEXT_WITH_SPECIAL)
    with pytest.raises(ValueError) as err:
        gpt2.encode(TEXT_WITH_SPECIAL)
    message = str(err.value)
    assert "\n" not in message
    assert "'<|endoftext|>'" in message and "allowed_special=" in message and "disallowed_special=()" in message


@pytest.mark.parametrize("kwargs", [
    {"allowed_special": {"<|endoftext|>"}},
    {"allowed_special": "all"},
    {"disallowed_special": ()},
    {"allowed_special": set(), "disallowed_special": set()},
    {"allowed_special": "all", "disallowed_special": ()},
])
def test_special_token_options_match_tiktoken(gpt2, tiktoken_gpt2, kwargs):
    ids = gpt2.encode(TEXT_WITH_SPECIAL, **kwargs)
    assert ids == tiktoken_gpt2.encode(TEXT_WITH_SPECIAL, **kwargs)
    assert gpt2.decode(ids) == TEXT_WITH_SPECIAL


def test_allowed_special_token_is_one_id(gpt2):
    assert gpt2.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert gpt2.encode("<|endoftext|>", disallowed_special=()) == [27, 91, 437, 1659, 5239, 91, 29]
    assert gpt2.encode_ordinary("<|endoftext|>") == [27, 91, 437, 1659, 5239, 91, 29]


def test_an_unknown_allowed_special_name_is_an_error_not_text(gpt2, tiktoken_gpt2):
    """tiktoken silently encodes "<|foo|>" as text when it is "allowed" but unknown (a typo such as
    "<|endoftext|>" with one bar missing would go unnoticed): we refuse, naming it and the real ones."""
    text = "a <|foo|> hello"
    assert tiktoken_gpt2.encode(text, allowed_special={"<|foo|>"}) == gpt2.encode(text)  # tiktoken: ignored
    with pytest.raises(ValueError, match=r"'<\|foo\|>'.*it has: '<\|endoftext\|>'"):
        gpt2.encode(text, allowed_special={"<|foo|>"})
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>'.*it has: none"):
        BPETokenizer({}).encode("hi", allowed_special={"<|endoftext|>"})
    with pytest.raises(ValueError, match=r"allowed_special names 50256, not a special token"):
        gpt2.encode(text, allowed_special={50256})  # an id for a name: refused as an unknown name
    for tok in (gpt2, tiktoken_gpt2):  # a disallowed string is refused even if not special
        with pytest.raises(ValueError):
            tok.encode(text, disallowed_special={"hello"})


def test_a_bare_string_for_allowed_special_is_a_clear_error(gpt2):
    with pytest.raises(TypeError, match=r"allowed_special=\{'<\|endoftext\|>'\}"):
        gpt2.encode("hi", allowed_special="<|endoftext|>")


# --- decode and input errors --------------------------------------------------------------

@pytest.mark.parametrize("bad_id", [50257, -1, 10**9, "7", 1.5, [3]])
def test_decode_unknown_id_names_the_id_and_the_vocab_size(gpt2, bad_id):
    with pytest.raises(ValueError) as err:
        gpt2.decode([31373, bad_id])
    message = str(err.value)
    assert repr(bad_id) in message and "50257" in message.replace(repr(bad_id), "", 1)


def test_decode_accepts_tensor_like_ids(gpt2):
    np = pytest.importorskip("numpy")
    assert gpt2.decode(np.array([15496, 11, 995, 0])) == "Hello, world!"


@pytest.mark.parametrize("bad_text", [b"hello", None, 42, ["hello"]])
def test_text_must_be_str(gpt2, bad_text):
    type_name = rf"\b{type(bad_text).__name__}\b"  # the message names what it got
    for call in (gpt2.encode, gpt2.encode_ordinary, lambda text: BPETokenizer.train(text, 300)):
        with pytest.raises(TypeError, match=type_name):
            call(bad_text)
    with pytest.raises(TypeError, match="decode"):  # and, for bytes, the fix
        gpt2.encode(b"hello")


@pytest.mark.parametrize("vocab_size", [0, 255, -1, 300.0, "300", True])
def test_train_rejects_a_bad_vocab_size(vocab_size):
    with pytest.raises(ValueError) as err:
        BPETokenizer.train("hello world", vocab_size)
    message = str(err.value)
    assert "vocab_size" in message and "256" in message and repr(vocab_size) in message


def test_train_says_when_the_text_is_too_small_for_the_vocab_size():
    with pytest.raises(ValueError, match=r"vocab_size\D*258"):  # "ab ab" allows 2 merges: the most is 258
        BPETokenizer.train("ab ab", 259)


# --- training --------------------------------------------------------------------------

def test_train_first_merges_by_hand():
    # "aaabdaaabac" is one chunk. Pair counts: aa 4, ab 2, ... -> merge (a, a) = 256.
    # Now [256 a b d 256 a b a c]: (256, a) and (a, b) both occur twice; the tie goes to the
    # smaller pair, (97, 98) -> 257. Then [256 257 d 256 257 a c]: (256, 257) twice -> 258.
    tok = BPETokenizer.train("aaabdaaabac", 259)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_train_never_merges_across_chunks():
    # "ab ab" splits into "ab" and " ab": (a, b) occurs twice, then (" ", ab) once; the space
    # is never merged with the "b" before it.
    tok = BPETokenizer.train("ab ab", 258)
    assert tok.merges == {(97, 98): 256, (32, 256): 257}
    assert tok.vocab[257] == b" ab"


def test_trained_tokenizer_reaches_the_vocab_size_and_compresses(trained):
    text = assets.tiny_shakespeare()[:100_000]
    assert trained.n_vocab == 513 and len(trained.vocab) == 512 and len(trained.merges) == 256
    assert sorted(trained.merges.values()) == list(range(256, 512))
    ids = trained.encode(text)
    assert len(ids) < 0.6 * len(text.encode("utf-8"))
    assert trained.decode(ids) == text


def test_training_is_deterministic(trained):
    again = BPETokenizer.train(assets.tiny_shakespeare()[:100_000], 512, special_tokens={"<|endoftext|>": 512})
    assert again.merges == trained.merges


def test_encoding_the_training_text_follows_the_training_merges():
    """Encoding a training chunk gives exactly the tokens training ended with."""
    text = assets.tiny_shakespeare()[:4000]
    tok = BPETokenizer.train(text, 400)
    for chunk in set(regex.findall(GPT2_PATTERN, text)):
        ids = list(chunk.encode("utf-8"))
        for pair, new_id in tok.merges.items():  # dicts keep the order merges were learned in
            ids = merge(ids, pair, new_id)
        assert tok.encode(chunk) == ids


@PROPERTY
@given(text=text_like)
def test_trained_tokenizer_roundtrips_any_text(trained, text):
    assert trained.decode(trained.encode(text, disallowed_special=())) == text


def test_trained_special_tokens(trained):
    ids = trained.encode("To be<|endoftext|>", allowed_special="all")
    assert ids[-1] == 512 and trained.decode(ids) == "To be<|endoftext|>"
    with pytest.raises(ValueError, match=r"disallowed_special=\(\)"):
        trained.encode("To be<|endoftext|>")


def test_train_replaces_lone_surrogates():
    tok = BPETokenizer.train("ab\ud800ab ab", 258)
    assert tok.decode(tok.encode("ab\ud800")) == "ab\ufffd"


@pytest.mark.parametrize("token", [b"<|eot|>", ""])
def test_special_tokens_must_be_strings(token):
    with pytest.raises(ValueError, match=regex.escape(repr(token))):
        BPETokenizer.train("aaaa", 257, special_tokens={token: 300})


@pytest.mark.parametrize("special_id", [100, 259, -1])
def test_special_token_ids_must_come_after_the_vocabulary(special_id):
    with pytest.raises(ValueError) as err:
        BPETokenizer.train("aaaa bbbb aaaa", 260, special_tokens={"<|endoftext|>": special_id})
    message = str(err.value)
    assert str(special_id) in message and ">= 260" in message


def test_special_token_ids_must_be_distinct():
    with pytest.raises(ValueError, match="distinct"):
        BPETokenizer.train("aaaa", 257, special_tokens={"<|a|>": 300, "<|b|>": 300})


# --- save / load -----------------------------------------------------------------------

def test_save_load_roundtrip_trained(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == trained.merges
    assert list(loaded.merges) == list(trained.merges)
    assert loaded.special_tokens == trained.special_tokens
    assert loaded.pattern == trained.pattern and loaded.byte_ids == trained.byte_ids
    assert loaded.vocab == trained.vocab and loaded.n_vocab == trained.n_vocab
    text = "First Citizen: 'tis 42 😀<|endoftext|>"
    assert loaded.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all")


def test_save_load_roundtrip_gpt2(gpt2, tmp_path):
    path = tmp_path / "gpt2.json"
    gpt2.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == gpt2.merges and loaded.byte_ids == gpt2.byte_ids
    assert loaded.special_tokens == gpt2.special_tokens and loaded.pattern == gpt2.pattern
    text = _corpus()["mixed_scripts"]
    assert loaded.encode(text) == gpt2.encode(text)


def test_save_the_character_pattern(tmp_path):
    tok = BPETokenizer.train("你好世界你好", 260, pattern=CHARACTER_PATTERN)  # merges within characters only
    tok.save(tmp_path / "t.json")
    loaded = BPETokenizer.load(tmp_path / "t.json")
    assert loaded.pattern == CHARACTER_PATTERN and loaded.encode("你好") == tok.encode("你好")


@pytest.mark.parametrize("content", [b"not json at all", b"\xff\xfe\x00", b'{"merges": []}', b"[1, 2]"])
def test_load_refuses_a_file_that_is_not_a_tokenizer(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"other\.json.*BPETokenizer\.save"):  # the file, and what writes one
        BPETokenizer.load(path)


def test_load_refuses_a_damaged_file(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    data = json.loads(path.read_text())
    del data["merges"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"tok\.json.*\bmerges\b"):  # the file, and what it lacks
        BPETokenizer.load(path)


def test_load_refuses_an_unknown_version(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match=r"\b99\b"):
        BPETokenizer.load(path)


# --- only the two pre-split patterns gptlib writes: no lost text, no hang (issues 13, 21, 23) ---------

def _file_with(trained, tmp_path, **fields):
    path = tmp_path / "tokenizer.json"
    trained.save(path)
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return path


OTHER_PATTERNS = [
    r"[a-z]+",  # skips characters: "Hello, World 123!" became "elloorld"
    r"(a|aa)+$|\s",  # a capturing group: findall returned the group
    r"(?:a|aa)+$|\s|(?s:.)",  # keeps everything, but backtracks: train on "a"*40+"b" ran for minutes
    "(?r)" + GPT2_PATTERN,  # matches right to left: "Hello world, this is text." came back reversed
    ORIGINAL_GPT2_PATTERN,  # harmless, but not one gptlib writes
    r"(",
    7,
]


@pytest.mark.parametrize("pattern", OTHER_PATTERNS, ids=lambda p: repr(p)[:24])
def test_a_tokenizer_file_with_another_pattern_is_refused_at_load(trained, tmp_path, pattern):
    with pytest.raises(ValueError) as err:
        BPETokenizer.load(_file_with(trained, tmp_path, pattern=pattern))
    message = str(err.value)
    assert "\n" not in message
    assert all(fact in message for fact in ["tokenizer.json", "not one gptlib writes", "GPT2_PATTERN"]), message


@pytest.mark.parametrize("pattern", OTHER_PATTERNS, ids=lambda p: repr(p)[:24])
def test_train_refuses_another_pattern_before_any_regex_runs(pattern, monkeypatch):
    def no_regex(*args, **kwargs):
        raise AssertionError("a regex ran before the pattern was refused")

    monkeypatch.setattr(regex, "compile", no_regex)
    monkeypatch.setattr(regex, "findall", no_regex)
    with pytest.raises(ValueError, match="not one gptlib writes"):
        BPETokenizer.train("a" * 40 + "b", 260, pattern=pattern)


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, CHARACTER_PATTERN])
@PROPERTY
@given(text=text_like)
def test_both_patterns_keep_every_character(pattern, text):
    assert "".join(regex.findall(pattern, text)) == text


@pytest.mark.parametrize("fields, facts", [
    ({"merges": [[97, 97, 256.0]]}, ["256.0", "int id"]),  # a float id came out of encode
    ({"merges": [[97, 97, -5]]}, ["-5", "int id"]),  # a negative id came out of encode
    ({"byte_ids": [float(b) for b in range(256)]}, ["byte_ids", "whole-number"]),  # floats came out of encode
])
def test_float_or_negative_ids_in_a_tokenizer_file_are_refused(tmp_path, fields, facts):
    path = _file_with(BPETokenizer({(97, 97): 256}), tmp_path, **fields)
    with pytest.raises(ValueError) as err:
        BPETokenizer.load(path)
    assert all(fact in str(err.value) for fact in ["tokenizer.json", *facts]), str(err.value)


@pytest.mark.parametrize("merges", [[[1, 2]], [["a", "b", 300]], [[97, 98, 97]], "nope"])
def test_a_damaged_merge_list_names_the_file(trained, tmp_path, merges):
    path = _file_with(trained, tmp_path, merges=merges)
    with pytest.raises(ValueError, match=r"tokenizer\.json is a damaged"):
        BPETokenizer.load(path)


# --- the fast twins (gptlib.bpe_fast) give exactly what the readable core gives ------------------

def _naive_merges(chunks: list[list[int]], num_merges: int) -> dict[tuple[int, int], int]:
    """Textbook BPE with the core functions: recount every pair of every chunk before each merge.

    Stops early when no pair is left (every chunk is a single token)."""
    merges = {}
    for new_id in range(256, 256 + num_merges):
        stats: dict[tuple[int, int], int] = {}
        for ids in chunks:
            get_stats(ids, stats)
        if not stats:
            break
        pair = most_frequent_pair(stats)
        merges[pair] = new_id
        chunks = [merge(ids, pair, new_id) for ids in chunks]
    return merges


def _chunks(text: str) -> list[list[int]]:
    return [list(chunk.encode("utf-8")) for chunk in regex.findall(GPT2_PATTERN, text)]


# Few distinct bytes make what is hard for incremental counts common: repeated and overlapping
# pairs ("aaaa", "abab"), merges next to merges, and ties.
few_bytes_text = st.text(st.sampled_from("ab  \n你"), max_size=80)
few_bytes_chunk_counts = st.dictionaries(st.lists(st.sampled_from(b"ab "), min_size=1, max_size=12).map(bytes),
                                         st.integers(1, 4), max_size=8)


@pytest.mark.parametrize("text, num_merges", [
    (assets.tiny_shakespeare()[:4000], 150),
    (assets.tang_poems()[:1500], 150),
    ("aaaaaaaaaa bbbbbbbb aaaa abababab " * 3 + "mississippi " * 5, 20),
])
def test_fast_training_learns_the_same_merges_as_the_naive_loop(text, num_merges):
    assert BPETokenizer.train(text, 256 + num_merges).merges == _naive_merges(_chunks(text), num_merges)


@PROPERTY
@given(chunk_counts=few_bytes_chunk_counts, num_merges=st.integers(0, 40))
def test_learn_merges_equals_the_naive_loop_on_random_chunks(chunk_counts, num_merges):
    chunks = [list(chunk) for chunk, count in chunk_counts.items() for _ in range(count)]
    expected = _naive_merges(chunks, num_merges)
    if len(expected) == num_merges:
        assert learn_merges(chunk_counts, num_merges) == expected
    else:  # the chunks ran out of pairs first: the error says how far one can go
        with pytest.raises(ValueError, match=rf"\b{256 + len(expected)}\b"):
            learn_merges(chunk_counts, num_merges)


@PROPERTY
@given(text=st.one_of(few_bytes_text, text_like), num_merges=st.integers(0, 30))
def test_training_equals_the_naive_loop_on_random_text(text, num_merges):
    expected = _naive_merges(_chunks(text), num_merges)
    if len(expected) == num_merges:
        assert BPETokenizer.train(text, 256 + num_merges).merges == expected
    else:
        with pytest.raises(ValueError):
            BPETokenizer.train(text, 256 + num_merges)


@PROPERTY
@given(text=text_like)
def test_fast_merge_loop_equals_the_simple_one(gpt2, trained, text):
    data = text.encode("utf-8", "replace")
    ids = [gpt2.byte_ids[b] for b in data]
    assert apply_merges_fast(ids, gpt2.merges) == apply_merges(ids, gpt2.merges)
    assert apply_merges_fast(list(data), trained.merges) == apply_merges(list(data), trained.merges)


@PROPERTY
@given(train_text=few_bytes_text, text=few_bytes_text, num_merges=st.integers(0, 30))
def test_fast_merge_loop_equals_the_simple_one_on_random_merges(train_text, text, num_merges):
    merges = _naive_merges(_chunks(train_text), num_merges)
    ids = list(text.encode("utf-8"))  # the whole text as one chunk: long runs, many merges
    assert apply_merges_fast(ids, merges) == apply_merges(ids, merges)


# --- the readable core ------------------------------------------------------------------

@pytest.mark.parametrize("module", [tokenizer, bpe_fast], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(module)
    assert attempted > 0 and failed == 0


def test_core_helpers():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([5, 6, 6, 7, 6, 6, 6], (6, 6), 99) == [5, 99, 7, 99, 6]
    assert most_frequent_pair({(3, 4): 2, (1, 9): 2, (0, 1): 1}) == (1, 9)
    assert Counter(get_stats([1, 1, 1])) == Counter({(1, 1): 2})
