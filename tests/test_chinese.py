"""gptlib.chinese: the Tang poems in Simplified characters (pinned and deterministic), the Chinese recipe,
the model that is rebuilt when its checkpoint is missing, and the tokenizer comparison."""
from __future__ import annotations

import sys

import pytest
import torch

import gptlib.chinese as chinese
from gptlib.assets import AssetError, tang_poems

QUICK = chinese.CHINESE.with_settings(vocab_size=300, context_length=16, emb_dim=16, n_heads=2, n_layers=1,
                                      batch_size=8, max_steps=4, warmup_steps=1, eval_every=2, eval_batches=1)


@pytest.fixture(scope="module")
def corpus() -> str:
    return chinese.chinese_corpus()


def test_to_simplified_converts_characters_one_to_one():
    assert chinese.to_simplified("蘋果說門，你好世界") == "苹果说门，你好世界"
    assert chinese.to_simplified("頭髮 發現") == "头发 发现"  # two Traditional characters merge into one


def test_the_corpus_is_the_poems_in_simplified_characters(corpus):
    traditional = tang_poems()
    assert len(corpus) == len(traditional)  # conversion maps characters one to one here
    assert "蘋" in traditional and "蘋" not in corpus and "苹" not in traditional and "苹" in corpus
    assert corpus.count("\n\n") + 1 == 7418  # the poems, one paragraph each
    assert sum(a != b for a, b in zip(traditional, corpus)) > 0.1 * len(corpus)


def test_the_corpus_is_pinned_by_its_sha256(monkeypatch):
    monkeypatch.setattr(chinese, "to_simplified", lambda text: text.replace("山", "川", 1))
    with pytest.raises(AssetError, match="another OpenCC version"):
        chinese.chinese_corpus.__wrapped__()  # not the cached result: convert again


def test_missing_opencc_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opencc", None)  # import opencc now raises ImportError
    with pytest.raises(ImportError, match="pip install opencc-python-reimplemented==0.1.7"):
        chinese.to_simplified("說")


def test_held_out_text_is_the_end_of_the_corpus(corpus, monkeypatch):
    monkeypatch.setattr(chinese, "chinese_corpus", lambda: corpus)  # the conversion takes seconds: once is enough
    train_text, val_text = chinese.chinese_texts()
    assert train_text + val_text == corpus
    assert 0.09 < len(val_text) / len(corpus) < 0.11


def test_the_recipe_uses_whole_characters_and_fits_the_cpu_budget():
    recipe = chinese.CHINESE
    assert recipe.tokenizer == "chars" and recipe.name == "chinese" and recipe.name != "day5"
    assert recipe.model.drop_rate == 0.0 and recipe.train.max_steps <= 1500  # about 90 s on 2 idle CPU cores


def test_chinese_model_trains_when_missing_then_loads(corpus, tmp_path, monkeypatch, capsys):
    text = corpus[:8_000]
    monkeypatch.setattr(chinese, "CHINESE", QUICK)
    monkeypatch.setattr(chinese, "chinese_corpus", lambda: text)
    model, tokenizer = chinese.chinese_model(device="cpu", checkpoint_dir=tmp_path)
    assert "training it with its recipe" in capsys.readouterr().out
    assert (tmp_path / "chinese" / "model.pt").is_file() and not model.training
    for token_id in range(tokenizer.n_vocab - 1):  # "chars": no token spans two characters
        piece = tokenizer.decode_bytes([token_id])
        try:
            assert len(piece.decode("utf-8")) <= 1
        except UnicodeDecodeError:
            pass  # part of one character's bytes
    again, tokenizer2 = chinese.chinese_model(device="cpu", checkpoint_dir=tmp_path)
    assert capsys.readouterr().out == ""
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert tokenizer2.encode("白日依山尽") == tokenizer.encode("白日依山尽")


def test_tokenizer_comparison_trains_each_tokenizer_with_equal_settings(corpus, tmp_path):
    results = chinese.tokenizer_comparison(tmp_path, corpus[:8_000], recipe=QUICK, device="cpu")
    assert set(results) == {"chars", "bpe"}
    for numbers in results.values():
        assert set(numbers) == {"bytes_per_token", "val_bits_per_byte", "seconds", "total_seconds"}
        assert 1.0 <= numbers["bytes_per_token"] and 0 < numbers["val_bits_per_byte"] < 12
    # BPE over GPT-2's pre-split may merge characters, "chars" never does: its tokens hold at most 3 bytes
    assert results["chars"]["bytes_per_token"] <= 3.0
    assert (tmp_path / "chars" / "model.pt").is_file() and (tmp_path / "bpe" / "model.pt").is_file()
