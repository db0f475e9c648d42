"""load_hf_gpt2: our model gives Hugging Face GPT-2's logits with the same weights; clear errors."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from gptlib.model import GPTConfig, GPTModel
from gptlib.weights import gpt2_config_from_hf, hf_to_gptlib_names, load_hf_gpt2

VOCAB = 1000


@pytest.fixture(scope="module")
def hf_model():
    """A small random GPT-2, every parameter (biases, LayerNorms too) made non-trivial."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(scope="module")
def ids():
    torch.manual_seed(1)
    return torch.randint(0, VOCAB, (2, 64))


def our_model(hf_model) -> GPTModel:
    return GPTModel(gpt2_config_from_hf(hf_model.config)).eval()


def test_logits_match_hugging_face(hf_model, ids):
    state = hf_model.state_dict()
    assert "transformer.h.0.attn.c_attn.weight" in state and "lm_head.weight" in state
    model = load_hf_gpt2(our_model(hf_model), state)
    with torch.no_grad():
        ours, theirs = model(ids), hf_model(ids).logits
    assert (ours - theirs).abs().max().item() < 1e-4
    # GPT-2 ties the head to the embedding; ours is a copy, not the same storage
    assert torch.equal(model.out_head.weight, model.tok_emb.weight)
    assert model.out_head.weight.data_ptr() != model.tok_emb.weight.data_ptr()


def test_explicit_paths_match_too(hf_model, ids):
    model = load_hf_gpt2(our_model(hf_model), hf_model.state_dict()).set_use_fused(False)
    with torch.no_grad():
        assert (model(ids[:, :20]) - hf_model(ids[:, :20]).logits).abs().max().item() < 1e-4


def test_safetensors_file_keyed_like_the_hub(hf_model, ids, tmp_path):
    # openai-community/gpt2's model.safetensors: no "transformer." prefix, no lm_head, and the old
    # causal-mask buffers h.N.attn.bias / h.N.attn.masked_bias stored alongside the weights.
    state = {k: v.contiguous() for k, v in hf_model.transformer.state_dict().items()}
    for i in range(hf_model.config.n_layer):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(state, str(path))
    loaded = safetensors_torch.load_file(str(path))
    assert "h.0.attn.c_attn.weight" in loaded and "wte.weight" in loaded and "lm_head.weight" not in loaded
    model = load_hf_gpt2(our_model(hf_model), loaded)
    with torch.no_grad():
        assert (model(ids) - hf_model(ids).logits).abs().max().item() < 1e-4


def test_every_parameter_is_loaded(hf_model):
    model = our_model(hf_model)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    load_hf_gpt2(model, hf_model.state_dict())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    names = hf_to_gptlib_names(model.cfg)
    assert set(names.values()) | {"out_head.weight"} == set(model.state_dict())


def test_shape_mismatch_names_the_tensor(hf_model):
    state = dict(hf_model.state_dict())
    state["transformer.h.1.mlp.c_fc.weight"] = state["transformer.h.1.mlp.c_fc.weight"].t()  # (256, 64)
    with pytest.raises(ValueError, match=r"^h\.1\.mlp\.c_fc\.weight: checkpoint has \(256, 64\), model expects "
                                         r"\(64, 256\) .*use GPTConfig\.preset\('gpt2-small'\)") as info:
        load_hf_gpt2(our_model(hf_model), state)
    assert "\n" not in str(info.value)


def test_wrong_config_is_reported(hf_model):
    model = GPTModel(gpt2_config_from_hf(hf_model.config, vocab_size=VOCAB + 1))
    with pytest.raises(ValueError, match=r"wte\.weight: checkpoint has \(1000, 64\), model expects \(1001, 64\)"):
        load_hf_gpt2(model, hf_model.state_dict())
    model = GPTModel(gpt2_config_from_hf(hf_model.config, n_layers=1))
    with pytest.raises(ValueError, match=r"unexpected key\(s\) in the checkpoint: transformer\.h\.1\."):
        load_hf_gpt2(model, hf_model.state_dict())
    model = GPTModel(gpt2_config_from_hf(hf_model.config, qkv_bias=False))
    with pytest.raises(ValueError, match=r"c_attn\.bias.*set qkv_bias=True"):
        load_hf_gpt2(model, hf_model.state_dict())


def test_missing_key_is_reported(hf_model):
    state = dict(hf_model.state_dict())
    del state["transformer.h.1.ln_2.bias"]
    with pytest.raises(ValueError, match=r"key\(s\) missing from the checkpoint: h\.1\.ln_2\.bias;"):
        load_hf_gpt2(our_model(hf_model), state)


def test_config_from_hf_object_or_dict(hf_model):
    expected = GPTConfig(vocab_size=VOCAB, context_length=64, emb_dim=64, n_heads=4, n_layers=2,
                         drop_rate=0.0, qkv_bias=True)
    assert gpt2_config_from_hf(hf_model.config) == expected
    assert gpt2_config_from_hf(hf_model.config.to_dict()) == expected
    gpt2 = transformers.GPT2Config()  # the defaults are OpenAI's 124M model
    assert gpt2_config_from_hf(gpt2) == GPTConfig.preset("gpt2-small")
