"""The diagrams of ``gptlib.course.diagrams``, as ``gptlib.course.figures`` saves them: drawn without a model, in
Chinese with no missing glyph, at their intended sizes, showing what they claim, and saved to the
same bytes every time.

(The model figures need day 5's checkpoint: ``tests_e2e/test_figures.py`` runs the whole command.)
"""
from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from gptlib import get_encoding
from gptlib.course import diagrams, figures

# Each diagram's size in inches: notebook width is about 9-11 inches at 110 dpi; the pipeline is a banner.
DIAGRAMS: dict[str, tuple[Callable[[], Figure], tuple[float, float]]] = {
    "pipeline": (diagrams.pipeline_figure, (14, 2.2)),
    "pipeline_day3": (lambda: diagrams.pipeline_figure(3), (14, 2.2)),
    "qkv_flow": (diagrams.qkv_figure, (11, 5.2)),
    "transformer_block": (diagrams.block_figure, (9.2, 8.6)),
    "input_target_shift": (diagrams.shift_figure, (10, 4.3)),
}


@contextmanager
def font_complaints() -> Iterator[list[str]]:
    """What matplotlib says about fonts inside the block: its warnings ("Glyph 20320 ... missing
    from font(s) DejaVu Sans.") and its logger's records ("findfont: ..."), as one list of messages."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger, handler = logging.getLogger("matplotlib"), Collect(level=logging.WARNING)
    old_level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        messages.extend(str(w.message) for w in caught)
        messages[:] = [m for m in messages if "glyph" in m.lower() or "font" in m.lower()]


def png_bytes(fig: Figure) -> bytes:
    """Render ``fig`` fully, as ``make_figures`` saves it (missing glyphs are reported while rendering)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=figures.DPI, metadata={"Software": None})
    return buffer.getvalue()


def test_the_font_check_catches_a_missing_glyph():
    """Without the CJK font, drawing 你 is reported: so an empty list below means something."""
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}), font_complaints() as complaints:
        fig, ax = plt.subplots()
        ax.set_title("你好世界")
        png_bytes(fig)
        plt.close(fig)
    assert any("Glyph" in message for message in complaints), complaints


@pytest.mark.parametrize("name", DIAGRAMS)
def test_diagram_draws_in_chinese_at_its_size(name):
    draw, size = DIAGRAMS[name]
    # start from matplotlib's default fonts, as in a fresh process: the diagram must add the CJK font itself
    with matplotlib.rc_context({"font.family": ["sans-serif"]}), font_complaints() as complaints:
        fig = draw()
        png = png_bytes(fig)
    plt.close(fig)
    assert isinstance(fig, Figure)
    assert tuple(fig.get_size_inches()) == pytest.approx(size)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert complaints == [], f"{name}: matplotlib complained about fonts: {complaints[:3]}"


def box_brightness(fig: Figure) -> list[float]:
    """Mean brightness (0 black .. 1 white) of a text-free patch inside each day's pipeline box."""
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255
    height, dpi, brightness = fig.get_size_inches()[1], fig.dpi, []
    for day in range(1, 8):
        x_inch, y_inch = 2.0 * (day - 0.5) - 0.7, 1.14 - 0.38  # lower left inside the box, below its text
        column, row = int(x_inch * dpi), int((height - y_inch) * dpi)
        brightness.append(float(pixels[row - 2:row + 3, column - 2:column + 3].mean()))
    return brightness


def test_pipeline_highlights_one_day_and_mutes_the_others():
    highlighted, plain = diagrams.pipeline_figure(3), diagrams.pipeline_figure()
    brightness, shades = box_brightness(highlighted), box_brightness(plain)
    plt.close(highlighted)
    plt.close(plain)
    assert brightness[2] < 0.6, "day 3's box should be dark blue"
    assert all(b > 0.9 for day, b in enumerate(brightness, 1) if day != 3), brightness
    assert shades == sorted(shades, reverse=True), "without a highlight, the days darken from 1 to 7"


@pytest.mark.parametrize("day", [0, 8])
def test_pipeline_rejects_a_day_outside_the_week(day):
    with pytest.raises(ValueError, match="from 1 to 7"):
        diagrams.pipeline_figure(day)


def test_qkv_figure_shows_the_causal_mask_and_weights_summing_to_one():
    fig = diagrams.qkv_figure()
    texts = [text.get_text() for text in fig.axes[0].texts]
    plt.close(fig)
    assert texts.count("−∞") == 1, "世 is the query: only 界, its future, is hidden"
    weights = [float(t) for t in texts if t.startswith("0.") or t in ("1.00",)]
    assert len(weights) == 4 and weights[-1] == 0.0
    assert sum(weights) == pytest.approx(1.0, abs=0.02)  # four values rounded to 2 decimals


def test_gpt2_ids_shown_in_the_diagrams_are_gpt2s():
    enc = get_encoding("gpt2")
    for text, ids in diagrams.GPT2_IDS.items():
        assert tuple(enc.encode(text)) == ids, text


def test_make_figures_draws_only_the_diagrams_without_a_model(tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("drawing the diagrams must not load day 5's model")

    monkeypatch.setattr(figures, "_model_drawers", no_model)
    assert figures.FIGURE_NAMES == figures.DIAGRAM_NAMES + figures.MODEL_FIGURE_NAMES
    assert len(set(figures.FIGURE_NAMES)) == len(figures.FIGURE_NAMES)
    assert {f"pipeline_day{day}" for day in range(1, 8)} <= set(figures.DIAGRAM_NAMES)

    written = figures.make_figures(tmp_path / "first", only=figures.DIAGRAM_NAMES)
    assert [path.name for path in written] == [f"{name}.png" for name in figures.DIAGRAM_NAMES]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in written)
    again = figures.make_figures(tmp_path / "again", only=["qkv_flow", "pipeline_day5"])
    for path in again:
        assert path.read_bytes() == (tmp_path / "first" / path.name).read_bytes(), f"{path.name} is not reproducible"


def test_make_figures_names_an_unknown_figure():
    with pytest.raises(ValueError, match="unknown figure name.*pipeline_day9"):
        figures.make_figures("unused", only=["pipeline_day9"])
