"""gptlib.probe: a trained model's attention heads, through day 3's plain functions and explorer."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from gptlib.model import GPTConfig, GPTModel
from gptlib.probe import hidden_states, model_attention_explorer, model_attention_maps


def tiny_model() -> GPTModel:
    torch.manual_seed(0)
    return GPTModel(GPTConfig(vocab_size=50, context_length=16, emb_dim=24, n_heads=3, n_layers=2,
                              drop_rate=0.0, qkv_bias=True)).eval()


class FakeTokenizer:
    """Characters as tokens, like a tiny BPETokenizer / tiktoken Encoding."""

    eot_token = 0

    def encode(self, text):
        return [1 + ord(c) % 40 for c in text]

    def decode(self, ids):
        return "".join(chr(96 + i) for i in ids)


@pytest.mark.parametrize("layer, head", [(0, 0), (1, 2)])
def test_maps_equal_the_layers_real_attention_weights(layer, head):
    model = tiny_model()
    ids = [3, 14, 15, 9, 2, 6, 5]
    attention = model.trf_blocks[layer].att
    attention.use_sdpa = False  # the explicit path passes its softmax weights through att.dropout
    seen = []
    attention.dropout.register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    maps = model_attention_maps(model, ids, layer=layer, head=head)
    torch.testing.assert_close(maps.weights, seen[0][0, head], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="layer must be in"):
        model_attention_maps(model, ids, layer=2, head=0)
    assert not model.training


def test_explorer_over_a_model_has_layer_and_head_sliders():
    model = tiny_model()
    explorer = model_attention_explorer(model, FakeTokenizer(), sentences=["hello"], pad_to=7)
    assert explorer.maps.tokens[-2:] == ["<pad>", "<pad>"] and len(explorer.maps.tokens) == 7
    explorer.pad_side.value = "none"
    explorer.head.value = 2
    explorer.layer.value = 1
    expected = model_attention_maps(model, FakeTokenizer().encode("hello"), layer=1, head=2)
    torch.testing.assert_close(explorer.maps.weights, expected.weights)
    assert explorer.title() == "layer 1, head 2" and len(explorer.output.outputs) == 1


def test_hidden_states_are_the_residual_stream_layer_by_layer():
    model = tiny_model()
    ids = [3, 14, 15, 9]
    states = hidden_states(model, ids)
    assert len(states) == 1 + 2 and all(s.shape == (4, 24) for s in states)
    positions = torch.arange(4)
    torch.testing.assert_close(states[0], (model.tok_emb(torch.tensor(ids)) + model.pos_emb(positions)).detach())
    logits = model.out_head(model.final_norm(states[-1])).detach()
    torch.testing.assert_close(logits, model(torch.tensor([ids]))[0].detach(), rtol=1e-5, atol=1e-5)
    # a token's state after the blocks depends on what came before it; its embedding does not
    other = hidden_states(model, [7, 14, 15, 9])
    assert torch.equal(other[0][1:], states[0][1:]) and not torch.allclose(other[-1][1:], states[-1][1:])
