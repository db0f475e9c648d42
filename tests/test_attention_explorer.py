"""The attention-mask explorer: its plain functions, and the widget wiring them up."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from gptlib.course.attention_explorer import (AttentionExplorer, attention_explorer, attention_maps,
                                       plot_attention_maps, split_words, toy_queries_keys)

WORDS = ["the", "cat", "sat", "on", "the", "mat"]


@pytest.fixture
def qk():
    return toy_queries_keys(WORDS)


def test_rows_sum_to_one_and_masked_entries_are_exactly_zero(qk):
    maps = attention_maps(*qk, causal=True, scale=True, tokens=WORDS)
    assert maps.tokens == WORDS and maps.weights.shape == (6, 6)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(6))
    assert torch.all(maps.weights[maps.mask] == 0.0)
    assert torch.all(maps.weights[~maps.mask] > 0.0)


def test_causal_mask_puts_minus_infinity_above_the_diagonal(qk):
    maps = attention_maps(*qk, causal=True)
    upper = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    assert torch.equal(maps.mask, upper)
    assert torch.all(maps.masked_scores[upper] == float("-inf"))
    assert torch.isfinite(maps.masked_scores[~upper]).all()
    assert torch.equal(maps.masked_scores[~upper], maps.scores[~upper])
    off = attention_maps(*qk, causal=False)
    assert not off.mask.any() and (off.weights > 0).all()


def test_scaling_divides_by_sqrt_dk(qk):
    q, k = qk
    scaled, raw = attention_maps(q, k, scale=True), attention_maps(q, k, scale=False)
    torch.testing.assert_close(raw.scores, q @ k.T)
    torch.testing.assert_close(scaled.scores, raw.scores / math.sqrt(q.size(1)))
    # unscaled scores are larger, so the softmax is peakier (lower entropy)
    def entropy(w):
        return -(w * torch.log(w.clamp_min(1e-12))).sum(-1).mean()
    assert entropy(raw.weights) < entropy(scaled.weights)


def test_padding_mask_zeroes_pad_columns():
    tokens = WORDS + ["<pad>", "<pad>"]
    pad = [False] * 6 + [True, True]
    maps = attention_maps(*toy_queries_keys(tokens), causal=False, padding_mask=pad, tokens=tokens)
    assert torch.all(maps.weights[:, 6:] == 0.0)
    assert torch.all(maps.masked_scores[:, 6:] == float("-inf"))
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(8))
    # left padding under a causal mask: the first pad query sees nothing -> a row of zeros, not NaN
    left = attention_maps(*toy_queries_keys(tokens), causal=True, padding_mask=[True, True] + [False] * 6)
    assert torch.all(left.weights[:2] == 0.0) and torch.isfinite(left.weights).all()
    torch.testing.assert_close(left.weights[2:].sum(-1), torch.ones(6))
    with pytest.raises(ValueError, match="one entry per token"):
        attention_maps(*toy_queries_keys(tokens), padding_mask=[True])


def test_toy_projections_are_deterministic_and_per_word():
    q1, k1 = toy_queries_keys(WORDS)
    q2, k2 = toy_queries_keys(WORDS)
    assert torch.equal(q1, q2) and torch.equal(k1, k2)
    assert not torch.equal(toy_queries_keys(WORDS, seed=1)[0], q1)
    assert split_words("你好世界 hi, there") == ["你", "好", "世", "界", "hi,", "there"]


class FakeTokenizer:
    """Characters as tokens, like a tiny BPETokenizer / tiktoken Encoding."""

    eot_token = 0

    def encode(self, text):
        return [1 + ord(c) % 40 for c in text]

    def decode(self, ids):
        return "".join(chr(96 + i) for i in ids)


def test_explorer_builds_and_controls_redraw():
    explorer = attention_explorer(sentences=["the cat sat", "a b c d e f"])
    assert isinstance(explorer, AttentionExplorer)
    first = explorer.maps
    assert first.tokens == ["the", "cat", "sat", "<pad>", "<pad>", "<pad>", "<pad>", "<pad>"]  # padded to 6 + 2
    assert first.mask[:, 3:].all() and first.mask[0, 1]
    assert len(explorer.output.outputs) == 1  # the figure
    explorer.causal.value = False  # the observer recomputes and redraws
    assert not explorer.maps.mask[0, 1] and explorer.maps.mask[:, 3:].all()
    explorer.mask_padding.value = False
    assert not explorer.maps.mask.any()
    explorer.scale.value = False
    torch.testing.assert_close(explorer.maps.scores, first.scores * math.sqrt(8))
    explorer.pad_side.value = "none"
    assert explorer.maps.tokens == ["the", "cat", "sat"]
    explorer.sentence.value = "a b c d e f"
    assert explorer.maps.tokens == list("abcdef")
    assert len(explorer.output.outputs) == 1
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()


def test_plot_has_three_panels(qk):
    import matplotlib.pyplot as plt

    figure = plot_attention_maps(attention_maps(*qk, tokens=WORDS), title="toy")
    assert [ax.get_title() for ax in figure.axes[:3]] == [
        "scores after mask (grey = -inf)", "mask (black = hidden)", "weights = softmax of each row"]
    plt.close(figure)


def test_labels_any_font_can_draw_and_no_warnings(recwarn):
    import matplotlib.pyplot as plt

    from gptlib.course.attention_explorer import displayable_label

    assert displayable_label(" cat") == "\u00b7cat"
    assert displayable_label("a\n") == "a\\n"
    assert displayable_label("\x80") == "U+0080"
    assert displayable_label("你") == "你"  # the course's packaged CJK font draws it (gptlib.course.fonts)
    tokens = split_words("你好世界啊")
    figure = plot_attention_maps(attention_maps(*toy_queries_keys(tokens), tokens=tokens))
    figure.savefig(__import__("io").BytesIO(), format="png")
    plt.close(figure)
    assert not [w for w in recwarn.list if "Glyph" in str(w.message)]


def test_partial_utf8_tokens_are_labelled_by_their_bytes():
    class ByteTokenizer(FakeTokenizer):
        def decode(self, ids):
            return bytes(ids).decode("utf-8", errors="replace")

        def decode_bytes(self, ids):
            return bytes(ids)

        def encode(self, text):
            return list(text.encode("utf-8"))

    explorer = attention_explorer(ByteTokenizer(), sentences=["a你"], pad_to=4)
    assert explorer.maps.tokens == ["a", "\\xe4", "\\xbd", "\\xa0"]


def test_the_chinese_edition_labels_controls_and_plots_in_chinese(chinese_edition, recwarn):
    import matplotlib.pyplot as plt

    explorer = attention_explorer(sentences=["你好世界"])
    assert [explorer.sentence.description, explorer.causal.description, explorer.pad_side.description] == [
        "句子", "因果掩码", "填充"]
    assert [label for label, _ in explorer.pad_side.options] == ["无", "右侧", "左侧"]
    explorer.pad_side.value = "none"  # the values stay the same in both languages
    assert "<pad>" not in explorer.maps.tokens
    figure = plot_attention_maps(explorer.maps)
    assert [ax.get_title() for ax in figure.axes[:3]] == [
        "掩码后的分数（灰色 = -inf）", "掩码（黑色 = 遮住）", "权重 = 每一行的 softmax"]
    assert figure.axes[0].get_xlabel() == "键 key（被关注的）"
    figure.savefig(__import__("io").BytesIO(), format="png")
    plt.close(figure)
    assert not [w for w in recwarn.list if "Glyph" in str(w.message)]  # the packaged font draws the labels


def test_text_is_legible_at_a_laptops_width_and_chinese_stands_upright():
    """Tick labels >= 10 px and cell numbers >= 8 px in a PNG that a 1400 px wide JupyterLab shows unscaled."""
    import matplotlib.pyplot as plt

    from gptlib.course import attention_explorer as ae

    tokens = [*split_words("你好世界啊"), "<pad>", "\\xe4"]
    figure = plot_attention_maps(attention_maps(*toy_queries_keys(tokens), tokens=tokens))
    figure.canvas.draw()
    px = ae.DPI / 72  # pixels per point in the PNG the explorer shows
    assert figure.get_figwidth() * ae.DPI <= 1000  # no down-scaling in the notebook's output area
    for ax in figure.axes[:3]:
        for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            assert tick.get_fontsize() * px >= 10, (tick.get_text(), tick.get_fontsize())
        rotations = {t.get_text(): t.get_rotation() for t in ax.get_xticklabels()}
        assert rotations["你"] == 0 and rotations["<pad>"] == 90 and rotations["\\xe4"] == 90
    cells = [t for t in figure.axes[2].texts]
    assert cells and min(t.get_fontsize() for t in cells) * px >= 8
    assert ae.cell_text(0.25) == ".25" and ae.cell_text(1.0) == "1.00"
    assert ae.upright("你好") and not ae.upright("is") and not ae.upright("<pad>")
    plt.close(figure)
