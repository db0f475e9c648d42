"""GPTConfig, TransformerBlock and GPTModel: shapes, parameter counts, errors, KV cache, init."""
from __future__ import annotations

import math

import pytest
import torch

from gptlib.generate import KVCache
from gptlib.model import PRESETS, GPTConfig, GPTModel, MultiHeadAttention, TransformerBlock

TINY = GPTConfig(vocab_size=97, context_length=24, emb_dim=32, n_heads=4, n_layers=3, drop_rate=0.0, qkv_bias=True)


def tiny_model(**overrides) -> GPTModel:
    torch.manual_seed(0)
    return GPTModel(GPTConfig(**{**TINY.to_dict(), **overrides})).eval()


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("name, shape", [
    ("gpt2-small", (50257, 1024, 768, 12, 12)),
    ("gpt2-medium", (50257, 1024, 1024, 16, 24)),
    ("gpt2-large", (50257, 1024, 1280, 20, 36)),
    ("gpt2-xl", (50257, 1024, 1600, 25, 48)),
])
def test_gpt2_presets(name, shape):
    cfg = GPTConfig.preset(name)
    assert (cfg.vocab_size, cfg.context_length, cfg.emb_dim, cfg.n_heads, cfg.n_layers) == shape
    assert cfg.qkv_bias is True and cfg.drop_rate == 0.1


def test_cpu_small_preset_and_overrides():
    cfg = GPTConfig.preset("cpu-small")
    assert (cfg.context_length, cfg.emb_dim, cfg.n_heads, cfg.n_layers, cfg.drop_rate) == (128, 128, 4, 4, 0.0)
    assert GPTConfig.preset("gpt2-small", drop_rate=0.0).drop_rate == 0.0
    assert PRESETS["gpt2-small"].drop_rate == 0.1  # overrides never change the preset itself
    with pytest.raises(ValueError, match="gpt3.*gpt2-small"):
        GPTConfig.preset("gpt3")


@pytest.mark.parametrize("kwargs, message", [
    (dict(emb_dim=100, n_heads=12), "divisible by n_heads"),
    (dict(n_layers=0), "n_layers"),
    (dict(vocab_size=1.5), "vocab_size"),
    (dict(drop_rate=1.0), "drop_rate"),
    (dict(qkv_bias="yes"), "qkv_bias"),
])
def test_config_validation_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        GPTConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_round_trip():
    cfg = GPTConfig.preset("gpt2-medium")
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown GPTConfig field"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_embd": 1})


# ------------------------------------------------------------------ parameters
def test_gpt2_small_parameter_counts(monkeypatch):
    # meta device: shapes only, no memory. Embedding's own normal_() on meta would import
    # torch._dynamo (seconds), and there is nothing to fill anyway.
    monkeypatch.setattr(torch.nn.Embedding, "reset_parameters", lambda self: None)
    with torch.device("meta"):
        no_bias = GPTModel(GPTConfig.preset("gpt2-small", qkv_bias=False))
        gpt2 = GPTModel(GPTConfig.preset("gpt2-small"))
    assert no_bias.num_parameters() == 163_009_536
    assert no_bias.num_parameters(count_out_head=False) == 124_412_160
    # with GPT-2's qkv biases (12 layers x 2304): exactly Hugging Face's GPT2Model count
    assert gpt2.num_parameters() == 163_037_184
    assert gpt2.num_parameters(count_out_head=False) == 124_439_808


def test_state_dict_names_follow_the_contract():
    names = list(tiny_model().state_dict())
    assert names[:2] == ["tok_emb.weight", "pos_emb.weight"]
    assert names[-3:] == ["final_norm.scale", "final_norm.shift", "out_head.weight"]
    assert [n for n in names if n.startswith("trf_blocks.0.")] == [
        "trf_blocks.0.att.qkv.weight", "trf_blocks.0.att.qkv.bias",
        "trf_blocks.0.att.out_proj.weight", "trf_blocks.0.att.out_proj.bias",
        "trf_blocks.0.ff.layers.0.weight", "trf_blocks.0.ff.layers.0.bias",
        "trf_blocks.0.ff.layers.2.weight", "trf_blocks.0.ff.layers.2.bias",
        "trf_blocks.0.norm1.scale", "trf_blocks.0.norm1.shift",
        "trf_blocks.0.norm2.scale", "trf_blocks.0.norm2.shift",
    ]
    assert len(names) == 2 + 3 * 12 + 3


def test_gpt2_style_initialisation():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=2000, context_length=64, emb_dim=256, n_heads=4, n_layers=8)
    model = GPTModel(cfg)
    assert abs(model.tok_emb.weight.std().item() - 0.02) < 1e-3
    assert abs(model.trf_blocks[0].ff.layers[0].weight.std().item() - 0.02) < 1e-3
    residual = 0.02 / math.sqrt(2 * cfg.n_layers)
    assert abs(model.trf_blocks[3].att.out_proj.weight.std().item() - residual) < residual * 0.05
    assert abs(model.trf_blocks[3].ff.layers[2].weight.std().item() - residual) < residual * 0.05
    assert not model.trf_blocks[0].ff.layers[0].bias.any()
    assert torch.equal(model.final_norm.scale, torch.ones(256))
    assert model.out_head.weight.data_ptr() != model.tok_emb.weight.data_ptr()  # not tied


# ------------------------------------------------------------------ forward
def test_forward_shape_and_block_residual():
    model = tiny_model()
    logits = model(torch.randint(0, 97, (2, 7)))
    assert logits.shape == (2, 7, 97)
    block = TransformerBlock(TINY)
    x = torch.randn(2, 5, 32)
    expected = x + block.att(block.norm1(x))
    expected = expected + block.ff(block.norm2(expected))
    torch.testing.assert_close(block.eval()(x), expected)


def test_fused_and_explicit_model_logits_agree():
    model = tiny_model()
    ids = torch.randint(0, 97, (2, 20))
    fast = model(ids)
    assert model.set_use_fused(False) is model
    assert not model.trf_blocks[1].att.use_fused and not model.trf_blocks[1].ff.layers[1].use_fused
    assert not model.final_norm.use_fused
    torch.testing.assert_close(model(ids), fast, rtol=1e-4, atol=1e-5)
    model.set_use_fused(True)
    assert model.trf_blocks[0].att.use_fused and model.trf_blocks[0].norm2.use_fused


def test_day3_and_day4_sources_hold_no_kv_cache_code():
    """Day 3 shows MultiHeadAttention, day 4 TransformerBlock and GPTModel.forward: the cache is day 6's."""
    import inspect

    for shown in (MultiHeadAttention, TransformerBlock, GPTModel.forward):
        source = inspect.getsource(shown).lower()
        assert "cache" not in source, shown
    assert "cache" in inspect.getsource(KVCache).lower()  # the check can fail: it finds the word where it is


@pytest.mark.parametrize("ids, error, key_fact", [
    (torch.zeros(1, 25, dtype=torch.long), ValueError, "context_length 24"),
    (torch.tensor([[1.0, 2.0]]), TypeError, "float32"),
    (torch.tensor([1, 2]), ValueError, "unsqueeze(0)"),
    (torch.zeros(1, 0, dtype=torch.long), ValueError, "at least one token"),
    ([[1, 2]], TypeError, "list"),
])
def test_clear_input_errors(ids, error, key_fact):
    with pytest.raises(error) as info:
        tiny_model()(ids)
    assert key_fact in str(info.value) and "\n" not in str(info.value)


def test_forward_checks_shapes_only_so_it_never_waits_for_a_gpu():
    """The checks must not read token values (a device-to-host sync on a GPU): on the meta device,
    where tensors have shapes but no values, reading one would raise."""
    with torch.device("meta"):
        model = GPTModel(TINY)
        logits = model(torch.zeros(2, 5, dtype=torch.long))
    assert logits.shape == (2, 5, 97)


# ------------------------------------------------------------------ KV cache (day 6)
@pytest.mark.parametrize("use_fused", [True, False])
def test_incremental_decoding_with_cache_equals_full_recompute_at_every_position(use_fused):
    model = tiny_model().set_use_fused(use_fused)
    ids = torch.randint(0, 97, (2, 24))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(model)
        prompt = cache.forward(ids[:, :5])  # prefill, then one token at a time
        steps = [cache.forward(ids[:, t:t + 1]) for t in range(5, 24)]
    assert cache.length == 24 and len(cache.keys) == 3 and cache.keys[0].shape == (2, 4, 24, 8)
    torch.testing.assert_close(torch.cat([prompt, *steps], dim=1), full, rtol=1e-4, atol=1e-5)
    # the position of each step is the cache length: feeding a chunk after a cache also matches
    cache.reset()
    assert cache.length == 0
    with torch.no_grad():
        chunks = [cache.forward(ids[:, a:b]) for a, b in [(0, 7), (7, 8), (8, 20), (20, 24)]]
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-4, atol=1e-5)


def test_cache_errors():
    model = tiny_model()
    cache = KVCache(model)
    cache.forward(torch.zeros(1, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="20 cached"):
        cache.forward(torch.zeros(1, 5, dtype=torch.long))
    assert cache.length == 20  # nothing was appended by the failed call
    with pytest.raises(ValueError, match="batch of 1 rows, the input has 2"):
        cache.forward(torch.zeros(2, 1, dtype=torch.long))
    assert cache.length == 20 and repr(cache) == "KVCache(n_layers=3, length=20)"
    with pytest.raises(TypeError, match="needs the GPTModel"):
        KVCache(model.cfg)


def test_training_step_reduces_loss():
    model = tiny_model().train()
    ids = torch.randint(0, 97, (4, 16))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(5):
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(97), abs=0.3)  # untrained: close to uniform
    assert losses[-1] < losses[0] - 0.5


def test_tied_weights_share_one_matrix_and_survive_a_checkpoint(tmp_path):
    from gptlib.checkpoint import load_checkpoint, save_checkpoint

    model = tiny_model(tie_weights=True).train()
    assert model.out_head.weight is model.tok_emb.weight
    untied = tiny_model()
    assert model.num_parameters() == untied.num_parameters() - 97 * 32 == model.num_parameters(count_out_head=False)
    ids = torch.randint(0, 97, (2, 9))
    loss = torch.nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()  # the shared matrix gets both gradients: as input embedding and as output head
    assert model.tok_emb.weight.grad is model.out_head.weight.grad
    save_checkpoint(tmp_path / "tied.pt", model)
    again = GPTModel(GPTConfig.from_dict(load_checkpoint(tmp_path / "tied.pt")["config"]))
    again.load_state_dict(load_checkpoint(tmp_path / "tied.pt")["model"])
    assert again.out_head.weight is again.tok_emb.weight
    torch.testing.assert_close(again.eval()(ids), model.eval()(ids))
