"""The course's pictures, regenerated from gptlib: ``python -m gptlib figures --out figures/``.

Each ``*_figure`` function returns one matplotlib Figure built from library code (never from
copied notebook outputs); ``make_figures`` saves them all. Two kinds:

- diagrams (``DIAGRAM_NAMES``): the seven-day pipeline (plain, and with each day highlighted for
  the top of its notebook), query/key/value (day 3), the Transformer block (day 4) and the
  input/target shift (day 5). They follow the running example 你好世界 → 啊, need no model and
  draw in well under a second each;
- model figures (``MODEL_FIGURE_NAMES``): drawn from day 5's model (``recipes.day5_model``:
  loaded from its checkpoint, or retrained in about a minute).

The diagrams are drawn on a canvas whose data units are inches (``_canvas``), so every position
below reads as "this far from the bottom-left corner of the picture", and the few shared helpers
(``_box``, ``_arrow``, ``_vector``, ``_token``) give all of them the same look: the Blues palette
of the other figures, dark boxes with white text for what matters, grey for what is muted.
"""
from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DAYS = [
    ("1 tokenize", "text → BPE\n→ token ids"),
    ("2 embed", "ids → vectors\n+ positions"),
    ("3 attention", "causal\nmulti-head"),
    ("4 block", "LayerNorm, GELU,\nresiduals"),
    ("5 pretrain", "predict the\nnext token"),
    ("6 generate", "temperature, top-k/p,\nKV cache"),
    ("7 finetune", "classifier, instructions,\nLoRA"),
]
EXAMPLE = "你好世界啊"  # the running example; in the diagrams one character is one token
# GPT-2's token ids of the prompt and the answer (tests/test_figures_unit.py checks them against
# tiktoken): more ids than characters, as each character is 3 UTF-8 bytes and GPT-2 merged few.
GPT2_IDS = {"你好世界": (19526, 254, 25001, 121, 10310, 244, 45911, 234), "啊": (161, 243, 232)}
# What happens to the running example on each day, written under that day's box.
RUNNING_EXAMPLE = (
    f"你好世界 → {GPT2_IDS['你好世界'][0]}, {GPT2_IDS['你好世界'][1]}, …",
    f"{len(GPT2_IDS['你好世界'])} ids → {len(GPT2_IDS['你好世界'])} vectors",
    "界 looks back at 你 好 世",
    "12 blocks refine each vector",
    "learn: 你好世界 → 啊",
    "你好世界 → sample 啊",
    "same model, new tasks",
)

DIAGRAM_NAMES = ("pipeline", *(f"pipeline_day{day}" for day in range(1, len(DAYS) + 1)),
                 "qkv_flow", "transformer_block", "input_target_shift")
MODEL_FIGURE_NAMES = ("attention_causal", "loss_curves", "temperature", "finetune_spam")
FIGURE_NAMES = DIAGRAM_NAMES + MODEL_FIGURE_NAMES  # every file `make_figures` writes, as <name>.png
DPI = 110

# The diagrams' look: shades of the Blues colour map (0 = white, 1 = darkest), one edge colour.
LIGHT, MEDIUM, DARK = 0.18, 0.45, 0.8
EDGE = "0.3"
MUTED_FILL, MUTED_EDGE, MUTED_TEXT = "0.95", "0.78", "0.6"
NOTE = "0.35"  # side notes, in grey so they stay in the background
# Bold only for Latin text, in matplotlib's own font: the CJK font has no bold face, and asking
# for one makes matplotlib log a font warning on every figure.
BOLD = {"weight": "bold", "family": "DejaVu Sans"}


# --------------------------------------------------------------------------- drawing helpers
Point = tuple[float, float]
Color = str | tuple[float, ...]  # a matplotlib colour: a name or grey level ("0.3"), or RGBA


def _blue(level: float) -> tuple[float, ...]:
    """A shade of the Blues colour map, the palette of every course figure."""
    from matplotlib import colormaps

    return colormaps["Blues"](level)


def _ink(level: float) -> str:
    """Text colour that reads on a Blues box of this shade."""
    return "white" if level >= 0.6 else "black"


def _canvas(width: float, height: float, title: str = "") -> tuple[Figure, Axes]:
    """A blank figure whose data coordinates are inches from its bottom-left corner, with a title at the top.

    Chinese labels need the packaged CJK font, so it is registered here, before any text is drawn.
    """
    import matplotlib.pyplot as plt

    from .fonts import use_cjk_font

    use_cjk_font()
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    if title:
        ax.text(width / 2, height - 0.25, title, ha="center", va="center", fontsize=12)
    return fig, ax


def _box(ax: Axes, center: Point, size: Point, text: str = "", *, level: float = LIGHT,
         fill: str | None = None, edge: Color = EDGE, lw: float = 1.0, text_color: str | None = None,
         fontsize: float = 10, dashed: bool = False, zorder: float = 2) -> None:
    """A rounded box centred on ``center`` (``size`` = width, height), filled with a Blues ``level`` or ``fill``."""
    from matplotlib.patches import FancyBboxPatch

    (x, y), (w, h) = center, size
    face = fill if fill is not None else _blue(level)
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={min(w, h) * 0.18}",
                                facecolor=face, edgecolor=edge, lw=lw, ls="--" if dashed else "-", zorder=zorder))
    if text:
        color = text_color or ("black" if fill is not None else _ink(level))
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=color, zorder=zorder + 0.1,
                linespacing=1.3)


def _arrow(ax: Axes, start: Point, end: Point, *, color: Color = EDGE, lw: float = 1.3, dashed: bool = False,
           zorder: float = 1) -> None:
    """A straight arrow from ``start`` to ``end``, its tip exactly at ``end``."""
    ax.annotate("", xy=end, xytext=start, zorder=zorder,
                arrowprops={"arrowstyle": "-|>,head_length=0.5,head_width=0.22", "color": color, "lw": lw,
                            "ls": "--" if dashed else "-", "shrinkA": 0, "shrinkB": 0})


def _polyline(ax: Axes, points: Sequence[Point], *, color: Color = EDGE, lw: float = 1.3) -> None:
    """A path through ``points`` with an arrow head on its last segment (a residual bypass, say)."""
    xs, ys = zip(*points[:-1])
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt", zorder=1)
    _arrow(ax, points[-2], points[-1], color=color, lw=lw)


def _column_arrows(ax: Axes, x: float, shapes: Iterable[tuple[float, float]], gap: float = 0.04) -> None:
    """Arrows up a column at ``x``, from each shape to the next; ``shapes``: (centre y, half height) each."""
    ordered = sorted(shapes)
    for (y0, half0), (y1, half1) in itertools.pairwise(ordered):
        _arrow(ax, (x, y0 + half0 + gap), (x, y1 - half1 - gap))


def _vector(ax: Axes, center: Point, values: Sequence[float], *, cell: float = 0.15, height: float = 0.24,
            scale: float = 2.0, zorder: float = 2) -> None:
    """A vector drawn as a strip of cells, each shaded by its value (light = negative, dark = positive)."""
    from matplotlib.patches import Rectangle

    x, y = center
    left = x - cell * len(values) / 2
    for i, value in enumerate(values):
        level = 0.5 + 0.4 * max(-1.0, min(1.0, float(value) / scale))
        ax.add_patch(Rectangle((left + i * cell, y - height / 2), cell, height, facecolor=_blue(level),
                               edgecolor="white", lw=0.8, zorder=zorder))
    ax.add_patch(Rectangle((left, y - height / 2), cell * len(values), height, fill=False, edgecolor=EDGE,
                           lw=0.8, zorder=zorder + 0.1))


def _token(ax: Axes, center: Point, char: str, *, level: float = LIGHT, size: float = 0.5,
           fontsize: float = 15) -> None:
    """One token of the running example as a square tile."""
    _box(ax, center, (size, size), char, level=level, fontsize=fontsize)


def _plus(ax: Axes, center: Point, radius: float = 0.16) -> None:
    """The ⊕ where a residual path is added back to the stream."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle(center, radius, facecolor="white", edgecolor=EDGE, lw=1.3, zorder=3))
    ax.text(*center, "+", ha="center", va="center", fontsize=13, zorder=3.1, **BOLD)


# --------------------------------------------------------------------------- diagrams (no model)
def pipeline_figure(highlight: int | None = None) -> Figure:
    """The seven days as one pipeline, with what happens to 你好世界 written under each day.

    ``highlight``: a day (1-7) to emphasise, for the banner at the top of that day's notebook: its
    box turns dark blue with a heavy border and the other days turn grey, so "you are here" is
    seen at a glance while the whole road stays visible. None (the README's picture) shades the
    days from light to dark blue, as the model is built up.
    """
    if highlight is not None and not 1 <= highlight <= len(DAYS):
        raise ValueError(f"highlight must be a day from 1 to {len(DAYS)} or None, got {highlight!r}")
    pitch, box_size, y = 2.0, (1.74, 1.0), 1.14
    title = "one sentence through the whole pipeline: 你好世界 → 啊"
    if highlight is not None:
        title = f"day {highlight} of {len(DAYS)} — {title}"
    fig, ax = _canvas(pitch * len(DAYS), 2.2, title)
    for i, ((name, what), example) in enumerate(zip(DAYS, RUNNING_EXAMPLE)):
        x, day = pitch * (i + 0.5), i + 1
        if highlight is None:
            level = 0.22 + 0.09 * i
            look, ink = {"level": level}, _ink(level)
        elif day == highlight:
            look, ink = {"level": DARK, "edge": _blue(1.0), "lw": 2.5}, _ink(DARK)
        else:
            look, ink = {"fill": MUTED_FILL, "edge": MUTED_EDGE}, MUTED_TEXT
        _box(ax, (x, y), box_size, **look)
        ax.text(x, y + 0.24, f"day {name}", ha="center", va="center", fontsize=11.5, color=ink, **BOLD)
        ax.text(x, y - 0.18, what, ha="center", va="center", fontsize=9, color=ink, linespacing=1.3)
        ax.text(x, 0.3, example, ha="center", va="center", fontsize=9.5,
                color=_blue(1.0) if highlight in (None, day) else MUTED_TEXT)
        if i < len(DAYS) - 1:
            _arrow(ax, (x + box_size[0] / 2 + 0.03, y), (x + pitch - box_size[0] / 2 - 0.03, y),
                   color=EDGE if highlight is None else MUTED_TEXT)
    return fig


@dataclass
class _AttentionExample:
    """One query's attention on a toy sequence: the numbers the Q/K/V diagram shows."""

    x: torch.Tensor        # (tokens, d_in) the tokens' vectors
    query: torch.Tensor    # (d_k,) q = x[query_index] @ W_query
    keys: torch.Tensor     # (tokens, d_k) k = x @ W_key
    values: torch.Tensor   # (tokens, d_k) v = x @ W_value
    scores: torch.Tensor   # (tokens,) q·k / sqrt(d_k), before the mask
    hidden: torch.Tensor   # (tokens,) bool, True = a future token the causal mask hides
    weights: torch.Tensor  # (tokens,) softmax of the masked scores
    context: torch.Tensor  # (d_k,) weights @ values


def _attention_example(n_tokens: int, query_index: int, d_in: int = 6, d_k: int = 4,
                       seed: int = 123) -> _AttentionExample:
    """Seeded toy numbers (no trained model), run through day 3's ``attention_maps`` so the
    diagram shows exactly what the library computes."""
    from .attention_explorer import attention_maps

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_tokens, d_in, generator=g)
    w_query, w_key, w_value = (torch.randn(d_in, d_k, generator=g) * 0.6 for _ in range(3))
    queries, keys, values = x @ w_query, x @ w_key, x @ w_value
    maps = attention_maps(queries, keys, causal=True, scale=True)
    weights = maps.weights[query_index]
    return _AttentionExample(x, queries[query_index], keys, values, maps.scores[query_index],
                             maps.mask[query_index], weights, weights @ values)


def _signed(value: float) -> str:
    """``+0.42`` / ``−0.42``, with a real minus sign."""
    return f"{value:+.2f}".replace("-", "−")


def qkv_figure() -> Figure:
    """Query, key, value (day 3): how one token (世) gathers a context vector from the tokens up to it.

    Left: that token's vector x becomes q, k and v through three learned matrices. Right, one row
    per token of 你好世界: its key, the score q·k/√d_k, the causal mask (界 is in 世's future: −∞),
    the softmax weight and the value; the weighted sum of the values is 世's context vector.
    世 rather than 界 is the query so that the mask has something to hide. The numbers are a
    seeded toy example (d_k = 4) computed by ``attention_explorer.attention_maps``.
    """
    tokens, query_index = EXAMPLE[:4], 2
    example = _attention_example(len(tokens), query_index)
    me = tokens[query_index]
    fig, ax = _canvas(11, 5.2, f"Day 3: query, key, value — how {me} gathers context from the tokens up to it")

    # left: one token's vector, three projections
    ax.text(2.0, 4.45, f"1. each token's vector x is projected\nthree ways (here {me}'s)", ha="center",
            va="center", fontsize=10.5)
    _token(ax, (0.4, 2.6), me, level=DARK)
    _vector(ax, (1.15, 2.6), example.x[query_index])
    ax.text(1.15, 2.3, "x", ha="center", va="center", fontsize=11, style="italic")
    projections = [("q = x W_query", example.query, 3.6, "what am I looking for?"),
                   ("k = x W_key", example.keys[query_index], 2.6, "what do I contain?"),
                   ("v = x W_value", example.values[query_index], 1.6, "what do I hand over?")]
    for formula, vector, y, meaning in projections:
        _arrow(ax, (1.65, 2.6), (2.05, y))
        _vector(ax, (2.4, y), vector)
        ax.text(2.75, y + 0.02, formula, ha="left", va="bottom", fontsize=10.5)
        ax.text(2.75, y - 0.02, meaning, ha="left", va="top", fontsize=8.5, color=NOTE)
    ax.plot([4.15, 4.15], [0.5, 4.65], color="0.85", lw=1)

    # right: one row per token
    ax.text(7.45, 4.45, f"2. {me}'s query meets every key; the causal mask hides the future",
            ha="center", va="center", fontsize=10.5)
    columns = {"token": 4.55, "key": 5.25, "score": 6.2, "mask": 7.1, "weight": 8.05, "value": 9.3}
    headers = {"token": "token", "key": "key k", "score": "score\nq·k / √d_k", "mask": "causal\nmask",
               "weight": "weight\n= softmax", "value": "value v"}
    for column, header in headers.items():
        ax.text(columns[column], 3.85, header, ha="center", va="center", fontsize=9.5, color="0.25")
    sum_center, rows_y = (10.3, 1.75), [3.2 - 0.62 * j for j in range(len(tokens))]
    for j, (char, y) in enumerate(zip(tokens, rows_y)):
        hidden, weight = bool(example.hidden[j]), float(example.weights[j])
        _token(ax, (columns["token"], y), char, level=DARK if j == query_index else LIGHT, size=0.42, fontsize=13)
        _vector(ax, (columns["key"], y), example.keys[j])
        _box(ax, (columns["score"], y), (0.66, 0.36), _signed(float(example.scores[j])), fill="white")
        _box(ax, (columns["mask"], y), (0.56, 0.36), "−∞" if hidden else "+0", fill="0.15" if hidden else "white",
             text_color="white" if hidden else "black")
        bar_left, bar_width = columns["weight"] - 0.45, 0.6 * weight
        if bar_width > 0.01:
            _box(ax, (bar_left + bar_width / 2, y), (bar_width, 0.3), level=MEDIUM, lw=0.6)
        ax.text(bar_left + bar_width + 0.06, y, f"{weight:.2f}", ha="left", va="center", fontsize=10)
        _vector(ax, (columns["value"], y), example.values[j])
        _arrow(ax, (columns["value"] + 0.34, y), sum_center, color="0.8" if hidden else EDGE, dashed=hidden,
               lw=0.8 + 2.5 * weight)
    if any(example.hidden):
        ax.text(columns["mask"], rows_y[-1] - 0.5, "future:\nweight 0", ha="center",
                va="center", fontsize=8.5, color=NOTE)
    _box(ax, sum_center, (0.36, 0.36), "Σ", fill="white", fontsize=13, zorder=3)
    _arrow(ax, (sum_center[0], sum_center[1] - 0.18), (sum_center[0], 1.12))
    _vector(ax, (sum_center[0], 0.97), example.context)
    ax.text(sum_center[0], 0.6, f"context of {me}\n= Σ weight · v", ha="center", va="center", fontsize=10,
            linespacing=1.4)
    ax.text(5.5, 0.25, f"d_k = {example.keys.shape[1]} here (GPT-2 small: 64 per head) · each shade is one "
            "number (light −, dark +) · seeded toy weights, no trained model", ha="center", va="center",
            fontsize=8.5, color=NOTE)
    return fig


def block_figure() -> Figure:
    """The pre-LayerNorm Transformer block of GPT-2 (day 4), and where it sits in the whole GPT.

    Left, bottom to top: embeddings + positions, the block repeated n_layers times, the final
    LayerNorm and the output head. Right, one block zoomed in, as ``model.TransformerBlock``
    computes it: each sub-layer (attention, then the feed-forward network) reads a LayerNorm'd
    copy of the stream and its output is added back; the residual paths, drawn as bypass
    arrows, carry the input around each sub-layer untouched. The sizes are GPT-2 small's, read
    from ``model.PRESETS`` (768 wide, 12 heads, 3072 in the feed-forward layer).
    """
    from .model import PRESETS

    cfg = PRESETS["gpt2-small"]
    hidden = 4 * cfg.emb_dim  # FeedForward's expansion
    fig, ax = _canvas(9.2, 8.6, "Day 4: the Transformer block — pre-LayerNorm, as in GPT-2")

    # left: the whole GPT, read bottom to top
    stack_x, stack_w, block_bottom, block_top = 1.4, 2.2, 2.2, 4.95
    ax.text(stack_x, 0.55, f"你好世界 → {len(GPT2_IDS['你好世界'])} token ids", ha="center", va="center",
            fontsize=10)
    for y, h, text, level in [(1.35, 0.7, "token embedding\n+ position embedding", LIGHT),
                              (5.75, 0.45, "final LayerNorm", LIGHT),
                              (6.6, 0.7, f"output head\nLinear {cfg.emb_dim} → {cfg.vocab_size}", MEDIUM)]:
        _box(ax, (stack_x, y), (stack_w, h), text, level=level)
    block_y, block_h = (block_bottom + block_top) / 2, block_top - block_bottom
    for offset in (0.16, 0.08):  # a stack of cards: the block repeats
        _box(ax, (stack_x + offset, block_y + offset), (stack_w, block_h), level=LIGHT, edge="0.55", lw=0.8)
    _box(ax, (stack_x, block_y), (stack_w, block_h), level=DARK)
    ax.text(stack_x, block_y + 0.28, "Transformer\nblock", ha="center", va="center", fontsize=12, color="white",
            linespacing=1.3, **BOLD)
    ax.text(stack_x, block_y - 0.58, f"× {cfg.n_layers}", ha="center", va="center", fontsize=18, color="white",
            **BOLD)
    ax.text(stack_x, 7.45, f"logits → next token {EXAMPLE[-1]}", ha="center", va="center", fontsize=10)
    _column_arrows(ax, stack_x, [(0.55, 0.12), (1.35, 0.35), (block_y, block_h / 2), (5.75, 0.225), (6.6, 0.35),
                                 (7.45, 0.12)])

    # right: one block, zoomed in
    frame_left, frame_right, frame_bottom, frame_top = 3.05, 9.05, 0.3, 7.95
    _box(ax, ((frame_left + frame_right) / 2, (frame_bottom + frame_top) / 2),
         (frame_right - frame_left, frame_top - frame_bottom), fill="#f7fbff", edge="0.7", dashed=True, zorder=0)
    for corner_y, frame_y in [(block_bottom, frame_bottom), (block_top, frame_top)]:
        ax.plot([stack_x + stack_w / 2, frame_left], [corner_y, frame_y], color="0.7", lw=0.8, ls="--", zorder=0)
    ax.text(frame_left + 0.3, frame_bottom + 0.2, "one block", ha="left", va="center", fontsize=9.5, color=NOTE)
    main_x, lane_x, note_x, box_w = 5.35, 3.6, 6.82, 2.3
    dropout = f"p = {cfg.drop_rate:g}, in training only"
    sublayers = [(1.5, 0.42, "LayerNorm", LIGHT, "per token: mean 0, variance 1"),
                 (2.3, 0.66, "multi-head\ncausal attention", DARK,
                  f"{cfg.n_heads} heads × {cfg.head_dim} = {cfg.emb_dim}"),
                 (3.03, 0.34, "dropout", 0.05, dropout),
                 (4.4, 0.42, "LayerNorm", LIGHT, "normalise again"),
                 (5.1, 0.32, "Linear", MEDIUM, f"{cfg.emb_dim} → {hidden} (4 ×)"),
                 (5.6, 0.32, "GELU", LIGHT, "smooth non-linearity"),
                 (6.1, 0.32, "Linear", MEDIUM, f"{hidden} → {cfg.emb_dim}"),
                 (6.75, 0.34, "dropout", 0.05, dropout)]
    for y, h, text, level, note in sublayers:
        _box(ax, (main_x, y), (box_w, h), text, level=level, fontsize=10.5)
        ax.text(note_x, y, note, ha="left", va="center", fontsize=9, color=NOTE)
    _box(ax, (main_x, 5.6), (box_w + 0.3, 1.55), fill="none", edge="0.55", dashed=True, zorder=1.5)
    ax.text((lane_x + main_x - box_w / 2 - 0.15) / 2, 5.6, "feed-forward", ha="center", va="center", fontsize=9,
            color=NOTE, rotation=90)
    adds = [(1.0, 3.55, "x + attention(LayerNorm(x))"), (3.95, 7.2, "x + feed-forward(LayerNorm(x))")]
    for split_y, plus_y, note in adds:
        _plus(ax, (main_x, plus_y))
        ax.plot([main_x], [split_y], "o", color=EDGE, ms=4, zorder=3)
        _polyline(ax, [(main_x, split_y), (lane_x, split_y), (lane_x, plus_y), (main_x - 0.16, plus_y)])
        ax.text(note_x, plus_y, note, ha="left", va="center", fontsize=9, color=NOTE)
    ax.text(lane_x - 0.13, 2.3, "residual path: the input skips ahead", ha="center", va="center", fontsize=8.5,
            color=NOTE, rotation=90)
    ax.text(main_x, 0.6, f"input x  (tokens, {cfg.emb_dim})", ha="center", va="center", fontsize=10)
    ax.text(main_x, 7.68, f"output  (tokens, {cfg.emb_dim}) → next block", ha="center", va="center", fontsize=10)
    _column_arrows(ax, main_x, [(0.6, 0.12), *((y, h / 2) for y, h, *_ in sublayers),
                                *((plus_y, 0.16) for _, plus_y, _ in adds), (7.68, 0.12)])
    return fig


def shift_figure() -> Figure:
    """Input and target (day 5): the text is its own label.

    The input is the first four tokens of 你好世界啊 and the target is the same window shifted by
    one, so position t of the input is scored on token t+1: one window gives four training
    examples at once (你 → 好, 你好 → 世, 你好世 → 界, 你好世界 → 啊), and the causal mask
    keeps each position from seeing its answer. One character is one token here.
    """
    text, n = EXAMPLE, len(EXAMPLE) - 1
    fig, ax = _canvas(10, 4.3, "Day 5: the text is its own label — the target is the input shifted by one")
    pitch, left, size = 0.8, 2.0, 0.56
    text_y, input_y, target_y = 3.35, 2.25, 1.1
    rows = [("text", text_y, range(n + 1), LIGHT), (f"input\ntext[0:{n}]", input_y, range(n), MEDIUM),
            (f"target\ntext[1:{n + 1}]", target_y, range(1, n + 1), DARK)]
    for label, y, columns, level in rows:
        ax.text(left - 0.5, y, label, ha="right", va="center", fontsize=10.5, linespacing=1.3)
        for column in columns:
            _token(ax, (left + pitch * column, y), text[column], level=level, size=size)
    for t in range(n):
        x = left + pitch * t
        ax.text(x, input_y + size / 2 + 0.14, f"t = {t}", ha="center", va="center", fontsize=8.5, color=NOTE)
        _arrow(ax, (x + 0.05, input_y - size / 2 - 0.04), (x + pitch - 0.12, target_y + size / 2 + 0.04))
    ax.text(left - 0.5, (input_y + target_y) / 2, "position t\npredicts t + 1", ha="right", va="center",
            fontsize=9, color=NOTE)

    # right: the examples one window holds
    examples_left, target_x = 6.75, 9.35
    ax.text(8.1, text_y, f"{n} training examples in one window", ha="center", va="center", fontsize=10.5)
    for t in range(n):
        y = text_y - 0.6 - 0.55 * t
        ax.text(examples_left - 0.35, y, f"t = {t}", ha="right", va="center", fontsize=9, color=NOTE)
        for column in range(t + 1):
            _token(ax, (examples_left + 0.45 * column, y), text[column], level=MEDIUM, size=0.4, fontsize=12)
        _arrow(ax, (examples_left + 0.45 * t + 0.3, y), (target_x - 0.3, y))
        _token(ax, (target_x, y), text[t + 1], level=DARK, size=0.4, fontsize=12)
    ax.plot([5.85, 5.85], [0.85, text_y + 0.25], color="0.85", lw=1)
    ax.text(5.0, 0.38, "each position sees only tokens 0…t (the causal mask) and is scored on token t + 1\n"
            f"one character = one token here; GPT-2 splits {text} into {sum(map(len, GPT2_IDS.values()))} byte tokens "
            "and shifts them the same way",
            ha="center", va="center", fontsize=8.5, color=NOTE, linespacing=1.5)
    return fig


# --------------------------------------------------------------------------- figures of day 5's model
def attention_figure(model, tokenizer, text: str = "ROMEO:\nWhat say you?", layer: int | None = None,
                     head: int = 0):
    """Scores, causal mask and softmax weights of one head of the trained model."""
    from .attention_explorer import plot_attention_maps
    from .probe import model_attention_maps

    ids = tokenizer.encode(text)
    layer = len(model.trf_blocks) - 1 if layer is None else layer
    maps = model_attention_maps(model, ids, layer, head, causal=True, scale=True,
                                tokens=[tokenizer.decode([i]) for i in ids])
    return plot_attention_maps(maps, title=f"day 5 model, block {layer}, head {head}: causal self-attention")


def loss_figure(history: dict):
    """Day 5's training and validation loss (nats per token) against the step."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(history["step"], history["train_loss"], color="0.65", lw=0.8, label="train (per step)")
    ax.plot(history["eval_step"], history["eval_train_loss"], "o-", label="train (evaluated)")
    ax.plot(history["eval_step"], history["val_loss"], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("Day 5: pretraining on Tiny Shakespeare, 2 CPU cores")
    ax.legend()
    fig.tight_layout()
    return fig


def temperature_figure(model, tokenizer, prompt: str = "ROMEO:\nWhat", temperatures=(0.5, 1.0, 2.0)):
    """The next-token distribution of one prompt at several temperatures (entropy in each title)."""
    import matplotlib.pyplot as plt

    from .sampling_explorer import plot_sampling_view, sampling_view

    fig, axes = plt.subplots(1, len(temperatures), figsize=(5 * len(temperatures), 3.4))
    for ax, t in zip(axes, temperatures):
        view = sampling_view(model, tokenizer, prompt, temperature=t, n_samples=0)
        plot_sampling_view(view, ax=ax)
        ax.set_title(f"T = {t:g}: entropy {view.entropy_before:.2f} bits")  # no cut here: before == after
        ax.get_legend().remove()
    fig.suptitle(f"Day 6: next token after {prompt!r} — low T sharpens, high T flattens")
    fig.tight_layout()
    return fig


def finetune_figure(model, tokenizer, *, max_length: int = 64, seed: int = 123):
    """Day 7 in one picture: spam test accuracy before/after finetuning the last block, and its confusion matrix."""
    import matplotlib.pyplot as plt

    from .classify import (accuracy, balanced_split, classification_loader, confusion_matrix,
                           plot_confusion_matrix, predict, prepare_classifier, read_sms_spam,
                           train_classifier)

    train_set, _, test_set = balanced_split(read_sms_spam(), seed=seed)
    train_loader = classification_loader(train_set, tokenizer, max_length, shuffle=True, seed=seed)
    test_loader = classification_loader(test_set, tokenizer, max_length)
    torch.manual_seed(seed)
    classifier = prepare_classifier(copy.deepcopy(model), num_classes=2, trainable_blocks=1)
    before = accuracy(classifier, test_loader)
    train_classifier(classifier, train_loader, epochs=2)
    preds, labels = predict(classifier, test_loader)
    after = float((preds == labels).float().mean())

    fig, (bars, matrix) = plt.subplots(1, 2, figsize=(8, 3.4), gridspec_kw={"width_ratios": [1.3, 1]})
    bars.bar(["before", "after"], [before, after], color=["0.7", "tab:blue"])
    for x, value in enumerate((before, after)):
        bars.text(x, value + 0.02, f"{value:.1%}", ha="center")
    bars.set_ylim(0, 1.1)
    bars.set_ylabel("test accuracy (balanced)")
    bars.set_title("SMS spam: finetune last block + head")
    plot_confusion_matrix(confusion_matrix(preds, labels), ax=matrix, title="after finetuning")
    fig.tight_layout()
    return fig


def make_figures(out_dir: str | Path = "figures", checkpoint_dir: str | Path | None = None,
                 device: str | None = None, *, only: Iterable[str] | None = None) -> list[Path]:
    """Draw the figures into ``out_dir`` as ``<name>.png``; returns the paths written, in ``FIGURE_NAMES`` order.

    ``only``: the names to draw (default: all of ``FIGURE_NAMES``). ``only=DIAGRAM_NAMES`` needs no
    model and takes a few seconds; any model figure loads (or first trains) day 5's model.
    PNGs are saved without a "Software" stamp, so the same drawing gives the same bytes.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, works on a server
    import matplotlib.pyplot as plt

    wanted = set(FIGURE_NAMES if only is None else ([only] if isinstance(only, str) else only))
    unknown = sorted(wanted - set(FIGURE_NAMES))
    if unknown:
        raise ValueError(f"unknown figure name(s) {', '.join(unknown)}; choose from {', '.join(FIGURE_NAMES)}")
    drawers = {"pipeline": pipeline_figure, "qkv_flow": qkv_figure, "transformer_block": block_figure,
               "input_target_shift": shift_figure}
    drawers.update({f"pipeline_day{day}": (lambda day=day: pipeline_figure(day)) for day in range(1, len(DAYS) + 1)})
    if wanted & set(MODEL_FIGURE_NAMES):
        drawers.update(_model_drawers(checkpoint_dir, device))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (name for name in FIGURE_NAMES if name in wanted):
        fig = drawers[name]()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


def _model_drawers(checkpoint_dir: str | Path | None, device: str | None) -> dict[str, Callable[[], Figure]]:
    """The drawers of ``MODEL_FIGURE_NAMES``, bound to day 5's model (loaded, or trained first)."""
    from .checkpoint import load_checkpoint
    from .recipes import DAY5, day5_model, run_dir
    from .runtime import seed_everything

    seed_everything(123)
    model, tokenizer = day5_model(device, checkpoint_dir)
    history = load_checkpoint(run_dir(DAY5, checkpoint_dir) / "model.pt")["history"]
    return {
        "attention_causal": lambda: attention_figure(model, tokenizer),
        "loss_curves": lambda: loss_figure(history),
        "temperature": lambda: temperature_figure(model, tokenizer),
        "finetune_spam": lambda: finetune_figure(model, tokenizer),
    }
