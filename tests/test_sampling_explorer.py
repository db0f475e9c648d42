"""The temperature explorer's logic (``sampling_view``) is a plain function: test it directly."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from gptlib.generate import generate  # noqa: E402
from gptlib.course.sampling_explorer import plot_sampling_view, sampling_explorer, sampling_view  # noqa: E402


class ByteTokenizer:
    """The simplest tokenizer: one token per UTF-8 byte (vocab 256)."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def model():
    from gptlib.model import GPTConfig, GPTModel

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=256, context_length=32, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)
    m = GPTModel(cfg).eval()
    with torch.no_grad():  # a random model is nearly uniform; sharpen it so the cuts matter
        m.out_head.weight.mul_(20)
    return m


TOK = ByteTokenizer()
PROMPT = "Hello, wor"


def test_no_cut_changes_nothing_and_matches_the_model(model):
    view = sampling_view(model, TOK, PROMPT, temperature=1.0, n_samples=0)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([TOK.encode(PROMPT)]))[0, -1], -1)
    assert view.kept == 256
    assert [c.token_id for c in view.candidates] == torch.topk(probs, 10).indices.tolist()
    for c in view.candidates:
        assert c.prob_before == pytest.approx(float(probs[c.token_id]), abs=1e-6)
        assert c.prob_after == pytest.approx(c.prob_before, abs=1e-6)
        assert c.text == TOK.decode([c.token_id])
    assert view.entropy_after == pytest.approx(view.entropy_before)
    assert view.samples == []


def test_top_k_keeps_k_and_renormalises(model):
    view = sampling_view(model, TOK, PROMPT, temperature=1.0, top_k=3, n_samples=0)
    assert view.kept == 3 and view.top_k == 3
    kept = view.candidates[:3]
    assert all(c.prob_after > 0 for c in kept) and all(c.prob_after == 0 for c in view.candidates[3:])
    total = sum(c.prob_before for c in kept)
    for c in kept:
        assert c.prob_after == pytest.approx(c.prob_before / total, rel=1e-5)
    assert view.entropy_after < view.entropy_before


def test_top_p_keeps_the_smallest_nucleus(model):
    view = sampling_view(model, TOK, PROMPT, temperature=1.0, top_p=0.6, n_candidates=256, n_samples=0)
    before = [c.prob_before for c in view.candidates]  # sorted, most likely first
    smallest = next(i + 1 for i in range(len(before)) if sum(before[: i + 1]) >= 0.6)
    assert view.kept == smallest
    assert sum(c.prob_after for c in view.candidates) == pytest.approx(1.0, abs=1e-5)


def test_temperature_changes_the_entropy(model):
    entropies = [sampling_view(model, TOK, PROMPT, temperature=t, n_samples=0).entropy_before
                 for t in (0.5, 1.0, 2.0)]
    assert entropies[0] < entropies[1] < entropies[2]


def test_greedy_view_and_samples(model):
    view = sampling_view(model, TOK, PROMPT, temperature=0.0, n_samples=2, max_new_tokens=8)
    assert view.kept == 1 and view.candidates[0].prob_after == 1.0
    assert view.entropy_after == 0.0
    greedy = generate(model, TOK.encode(PROMPT), 8)[len(PROMPT):].tolist()
    assert view.samples == [TOK.decode(greedy)] * 2


def test_slider_neutral_values_mean_no_cut(model):
    a = sampling_view(model, TOK, PROMPT, temperature=0.8, top_k=0, top_p=1.0, n_samples=2)
    b = sampling_view(model, TOK, PROMPT, temperature=0.8, top_k=None, top_p=None, n_samples=2)
    assert a == b and a.top_k is None and a.top_p is None


def test_samples_are_seeded(model):
    kwargs = dict(temperature=1.5, n_samples=3, max_new_tokens=12)
    a = sampling_view(model, TOK, PROMPT, seed=1, **kwargs).samples
    assert len(a) == 3 and a == sampling_view(model, TOK, PROMPT, seed=1, **kwargs).samples
    assert a != sampling_view(model, TOK, PROMPT, seed=2, **kwargs).samples


def test_empty_prompt_is_a_clear_error(model):
    with pytest.raises(ValueError, match="empty prompt"):
        sampling_view(model, TOK, "")


def test_plot_and_widget_build(model):
    view = sampling_view(model, TOK, PROMPT, temperature=1.0, top_k=5, n_samples=0)
    fig = plot_sampling_view(view)
    bars = fig.axes[0].patches
    assert len(bars) == 2 * len(view.candidates)
    assert "top-k=5" in fig.axes[0].get_title()
    import ipywidgets

    ui = sampling_explorer(model, TOK, PROMPT, n_samples=1, max_new_tokens=4)
    assert isinstance(ui, ipywidgets.VBox)


def test_samples_are_drawn_with_a_cpu_generator_seeded_with_seed(model):
    """A CPU generator makes a seed mean the same text on every device (tests/test_device.py runs
    the explorer on each device this machine has)."""
    view = sampling_view(model, TOK, PROMPT, temperature=1.5, top_k=20, n_samples=2, max_new_tokens=6, seed=4)
    ids = torch.tensor(TOK.encode(PROMPT)).expand(2, -1)
    out = generate(model, ids, 6, temperature=1.5, top_k=20, generator=torch.Generator().manual_seed(4))
    assert view.samples == [TOK.decode(row[len(PROMPT):].tolist()) for row in out]
    assert view.samples[0] != view.samples[1]  # two different draws: the generator is really used


def test_the_chinese_edition_labels_the_chart_and_sliders_in_chinese(model, chinese_edition, recwarn):
    import ipywidgets
    import matplotlib.pyplot as plt

    fig = plot_sampling_view(sampling_view(model, TOK, PROMPT, top_k=5, n_samples=0))
    assert fig.axes[0].get_ylabel() == "概率" and "可采样" in fig.axes[0].get_title()
    fig.savefig(__import__("io").BytesIO(), format="png")
    plt.close(fig)
    ui = sampling_explorer(model, TOK, PROMPT, n_samples=0)
    sliders = [w for w in ui.children[1].children if isinstance(w, ipywidgets.widgets.ValueWidget)]
    assert [w.description for w in sliders] == ["温度", "top-k（0=关）", "top-p（1=关）"]
    assert ui.children[0].children[1].description == "固定纵轴 0–1（便于前后对比）"
    assert not [w for w in recwarn.list if "Glyph" in str(w.message)]


def test_the_y_axis_can_be_fixed_for_before_after_comparisons(model):
    import ipywidgets
    import matplotlib.pyplot as plt

    view = sampling_view(model, TOK, PROMPT, temperature=2.0, n_samples=0)  # a flat distribution: small bars
    fitted = plot_sampling_view(view)
    assert fitted.axes[0].get_ylim()[1] < 0.9  # by default the axis follows the tallest bar
    fixed = plot_sampling_view(view, y_max=1.0)
    assert fixed.axes[0].get_ylim() == (0.0, 1.0)
    plt.close(fitted)
    plt.close(fixed)
    ui = sampling_explorer(model, TOK, PROMPT, n_samples=0)
    boxes = [w for w in ui.children[0].children if isinstance(w, ipywidgets.Checkbox)]
    assert len(boxes) == 1 and "fixed y-axis" in boxes[0].description and boxes[0].value is False
