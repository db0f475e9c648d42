"""gptlib.course.probe: a trained model's attention heads, through day 3's plain functions and explorer."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot
import pytest
import torch

from gptlib.model import GPTConfig, GPTModel
from gptlib.course.probe import (cosine_similarity_matrix, head_statistics, hidden_states, layer_attention_weights,
                          model_attention_explorer, model_attention_maps, nearest_tokens, plot_layer_heads)


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
    attention.use_fused = False  # the explicit path passes its softmax weights through att.dropout
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


def test_layer_attention_weights_stack_every_head_of_a_block():
    model, ids = tiny_model(), [3, 9, 4, 7, 1, 2]
    weights = layer_attention_weights(model, ids, 1)
    assert weights.shape == (3, 6, 6)
    for head in range(3):
        assert torch.equal(weights[head], model_attention_maps(model, ids, 1, head).weights)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 6))
    assert torch.all(weights.triu(1) == 0)  # causal: no weight on the future


def test_head_statistics_name_what_each_head_does():
    t = 5
    previous = torch.zeros(t, t)
    previous[0, 0] = 1
    previous[torch.arange(1, t), torch.arange(t - 1)] = 1          # every query on the token before it
    first = torch.zeros(t, t)
    first[:, 0] = 1                                                  # every query on position 0
    uniform = torch.tril(torch.ones(t, t)) / torch.arange(1, t + 1)[:, None]
    stats = head_statistics(torch.stack([previous, first, uniform]))
    assert stats["previous"].tolist() == pytest.approx([1.0, 0.25, sum(1 / q for q in range(2, t + 1)) / 4])
    assert stats["first"][1] == 1 and stats["itself"][0] == 0
    assert stats["distance"].tolist()[:2] == pytest.approx([1.0, 2.5])        # 1 back; (1 + 2 + 3 + 4) / 4 back
    assert stats["entropy"].tolist() == pytest.approx([0.0, 0.0, sum(math.log2(q) for q in range(2, t + 1)) / 4])
    with pytest.raises(ValueError, match="heads, T, T"):
        head_statistics(torch.ones(5, 5))


def test_plot_layer_heads_draws_one_panel_per_head():
    model, ids = tiny_model(), [3, 9, 4, 7]
    fig = plot_layer_heads(layer_attention_weights(model, ids, 0), ["a", "b", "c", "d"], title="block 0")
    assert len(fig.axes) == 3 and fig.axes[2].get_title().startswith("head 2")
    matplotlib.pyplot.close(fig)


def test_cosine_similarity_and_nearest_tokens():
    emb = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    sims = cosine_similarity_matrix(emb)
    assert torch.allclose(sims.diagonal(), torch.ones(4)) and torch.allclose(sims, sims.T)
    assert sims[0, 3].item() == pytest.approx(-1.0) and sims[0, 2].item() == pytest.approx(0.0, abs=1e-6)
    near = nearest_tokens(emb, 0, k=2)
    assert [i for i, _ in near] == [1, 2] and near[0][1] == pytest.approx(sims[0, 1].item())
    assert [i for i, _ in nearest_tokens(emb, 0, k=2, exclude=[1])] == [2, 3]  # itself and `exclude` left out
