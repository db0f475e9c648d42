"""The hand-written BPE tokenizer: same ids as tiktoken's GPT-2, lossless, and a correct trainer."""
from __future__ import annotations

import inspect
import json
import random
import unicodedata
import subprocess
import sys
from collections import Counter

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gptlib
from gptlib import assets, tokenizer
from gptlib.tokenizer import (GPT2_PATTERN, BPETokenizer, apply_merges, apply_merges_fast, get_stats, merge,
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


@PROPERTY
@given(text=text_like)
def test_fast_merge_loop_equals_the_simple_one(gpt2, trained, text):
    data = text.encode("utf-8", "replace")
    ids = [gpt2.byte_ids[b] for b in data]
    assert apply_merges_fast(ids, gpt2.merges) == apply_merges(ids, gpt2.merges)
    assert apply_merges_fast(list(data), trained.merges) == apply_merges(list(data), trained.merges)


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


def test_get_encoding_is_reexported():
    assert tokenizer.get_encoding is gptlib.get_encoding


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


def test_unknown_special_names_behave_like_tiktoken(gpt2, tiktoken_gpt2):
    text = "a <|foo|> hello"
    kwargs = {"allowed_special": {"<|foo|>"}}  # not a special token: ignored, encoded as text
    assert gpt2.encode(text, **kwargs) == tiktoken_gpt2.encode(text, **kwargs)
    for tok in (gpt2, tiktoken_gpt2):  # a disallowed string is refused even if not special
        with pytest.raises(ValueError):
            tok.encode(text, disallowed_special={"hello"})


def test_a_bare_string_for_allowed_special_is_a_clear_error(gpt2):
    with pytest.raises(TypeError, match=r"allowed_special=\{'<\|endoftext\|>'\}"):
        gpt2.encode("hi", allowed_special="<|endoftext|>")


# --- decode and input errors --------------------------------------------------------------

@pytest.mark.parametrize("bad_id", [50257, -1, 10**9])
def test_decode_unknown_id_names_the_id_and_the_vocab_size(gpt2, bad_id):
    with pytest.raises(ValueError, match=rf"unknown token id {bad_id}\b.*n_vocab=50257"):
        gpt2.decode([31373, bad_id])


def test_decode_accepts_tensor_like_ids(gpt2):
    np = pytest.importorskip("numpy")
    assert gpt2.decode(np.array([15496, 11, 995, 0])) == "Hello, world!"


@pytest.mark.parametrize("bad_text", [b"hello", None, 42, ["hello"]])
def test_text_must_be_str(gpt2, bad_text):
    with pytest.raises(TypeError, match="text must be a str"):
        gpt2.encode(bad_text)
    with pytest.raises(TypeError, match="text must be a str"):
        BPETokenizer.train(bad_text, 300)


@pytest.mark.parametrize("vocab_size", [0, 255, -1, 300.0, "300"])
def test_train_rejects_a_bad_vocab_size(vocab_size):
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256"):
        BPETokenizer.train("hello world", vocab_size)


def test_train_says_when_the_text_is_too_small_for_the_vocab_size():
    with pytest.raises(ValueError, match=r"only allows 2 merges.*vocab_size <= 258"):
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


def _naive_train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Textbook BPE: recount every pair of every chunk before each merge."""
    chunks = [list(c.encode("utf-8")) for c in regex.findall(GPT2_PATTERN, text)]
    merges = {}
    for new_id in range(256, vocab_size):
        stats: dict[tuple[int, int], int] = {}
        for ids in chunks:
            get_stats(ids, stats)
        pair = most_frequent_pair(stats)
        merges[pair] = new_id
        chunks = [merge(ids, pair, new_id) for ids in chunks]
    return merges


@pytest.mark.parametrize("text, num_merges", [
    (assets.tiny_shakespeare()[:4000], 150),
    (assets.tang_poems()[:1500], 150),
    ("aaaaaaaaaa bbbbbbbb aaaa abababab " * 3 + "mississippi " * 5, 20),
])
def test_fast_training_learns_the_same_merges_as_the_naive_loop(text, num_merges):
    assert BPETokenizer.train(text, 256 + num_merges).merges == _naive_train(text, 256 + num_merges)


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
    with pytest.raises(ValueError, match="disallowed_special=()"):
        trained.encode("To be<|endoftext|>")


def test_train_replaces_lone_surrogates():
    tok = BPETokenizer.train("ab\ud800ab ab", 258)
    assert tok.decode(tok.encode("ab\ud800")) == "ab\ufffd"


def test_special_tokens_must_be_strings():
    with pytest.raises(ValueError, match="special tokens must be non-empty strings"):
        BPETokenizer.train("aaaa", 257, special_tokens={b"<|eot|>": 300})


def test_special_token_ids_must_come_after_the_vocabulary():
    with pytest.raises(ValueError, match="special token ids must be distinct ints >= 260"):
        BPETokenizer.train("aaaa bbbb aaaa", 260, special_tokens={"<|endoftext|>": 100})


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


def test_save_a_custom_pattern(tmp_path):
    tok = BPETokenizer.train("hello world hello world", 260, pattern=r"\S+|\s+")
    tok.save(tmp_path / "t.json")
    assert BPETokenizer.load(tmp_path / "t.json").pattern == r"\S+|\s+"


@pytest.mark.parametrize("content", [b"not json at all", b"\xff\xfe\x00", b'{"merges": []}', b"[1, 2]"])
def test_load_refuses_a_file_that_is_not_a_tokenizer(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="other.json is not a tokenizer file written by BPETokenizer.save"):
        BPETokenizer.load(path)


def test_load_refuses_a_damaged_file(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    data = json.loads(path.read_text())
    del data["merges"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="damaged tokenizer file: it lacks merges"):
        BPETokenizer.load(path)


def test_load_refuses_an_unknown_version(trained, tmp_path):
    path = tmp_path / "tok.json"
    trained.save(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        BPETokenizer.load(path)


# --- the readable core ------------------------------------------------------------------

def test_core_helpers():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([5, 6, 6, 7, 6, 6, 6], (6, 6), 99) == [5, 99, 7, 99, 6]
    assert most_frequent_pair({(3, 4): 2, (1, 9): 2, (0, 1): 1}) == (1, 9)
    assert Counter(get_stats([1, 1, 1])) == Counter({(1, 1): 2})
