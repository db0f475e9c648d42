"""The course's diagrams: pictures that need no model, drawn from gptlib in under a second each.

The seven-day pipeline (plain for the README, and with each day highlighted for the top of its
notebook), query/key/value (day 3), the Transformer block (day 4) and the input/target shift
(day 5). They follow the running example 你好世界 → 啊, in the look of ``gptlib.course.drawing``.
``DIAGRAMS`` maps each name to its drawer; ``gptlib.course.figures.make_figures`` saves them as PNGs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch

from .drawing import (BOLD, DARK, EDGE, LIGHT, MEDIUM, MUTED_EDGE, MUTED_FILL, MUTED_TEXT, NOTE, arrow, blue, box,
                      canvas, column_arrows, ink_on, label, plus, polyline, token, vector)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DAYS", "EXAMPLE", "GPT2_IDS", "DIAGRAMS", "DIAGRAM_NAMES", "pipeline_figure", "qkv_figure",
           "block_figure", "shift_figure"]

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
    fig, ax = canvas(pitch * len(DAYS), 2.2, title)
    for i, ((name, what), example) in enumerate(zip(DAYS, RUNNING_EXAMPLE)):
        x, day = pitch * (i + 0.5), i + 1
        if highlight is None:
            level = 0.22 + 0.09 * i
            look, ink = {"level": level}, ink_on(level)
        elif day == highlight:
            look, ink = {"level": DARK, "edge": blue(1.0), "lw": 2.5}, ink_on(DARK)
        else:
            look, ink = {"fill": MUTED_FILL, "edge": MUTED_EDGE}, MUTED_TEXT
        box(ax, (x, y), box_size, **look)
        label(ax, (x, y + 0.24), f"day {name}", fontsize=11.5, color=ink, **BOLD)
        label(ax, (x, y - 0.18), what, fontsize=9, color=ink, linespacing=1.3)
        label(ax, (x, 0.3), example, fontsize=9.5, color=blue(1.0) if highlight in (None, day) else MUTED_TEXT)
        if i < len(DAYS) - 1:
            arrow(ax, (x + box_size[0] / 2 + 0.03, y), (x + pitch - box_size[0] / 2 - 0.03, y),
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
    fig, ax = canvas(11, 5.2, f"Day 3: query, key, value — how {me} gathers context from the tokens up to it")

    # left: one token's vector, three projections
    label(ax, (2.0, 4.45), f"1. each token's vector x is projected\nthree ways (here {me}'s)", fontsize=10.5)
    token(ax, (0.4, 2.6), me, level=DARK)
    vector(ax, (1.15, 2.6), example.x[query_index])
    label(ax, (1.15, 2.3), "x", fontsize=11, style="italic")
    projections = [("q = x W_query", example.query, 3.6, "what am I looking for?"),
                   ("k = x W_key", example.keys[query_index], 2.6, "what do I contain?"),
                   ("v = x W_value", example.values[query_index], 1.6, "what do I hand over?")]
    for formula, values, y, meaning in projections:
        arrow(ax, (1.65, 2.6), (2.05, y))
        vector(ax, (2.4, y), values)
        ax.text(2.75, y + 0.02, formula, ha="left", va="bottom", fontsize=10.5)
        ax.text(2.75, y - 0.02, meaning, ha="left", va="top", fontsize=8.5, color=NOTE)
    ax.plot([4.15, 4.15], [0.5, 4.65], color="0.85", lw=1)

    # right: one row per token
    label(ax, (7.45, 4.45), f"2. {me}'s query meets every key; the causal mask hides the future", fontsize=10.5)
    columns = {"token": 4.55, "key": 5.25, "score": 6.2, "mask": 7.1, "weight": 8.05, "value": 9.3}
    headers = {"token": "token", "key": "key k", "score": "score\nq·k / √d_k", "mask": "causal\nmask",
               "weight": "weight\n= softmax", "value": "value v"}
    for column, header in headers.items():
        label(ax, (columns[column], 3.85), header, fontsize=9.5, color="0.25")
    sum_center, rows_y = (10.3, 1.75), [3.2 - 0.62 * j for j in range(len(tokens))]
    for j, (char, y) in enumerate(zip(tokens, rows_y)):
        hidden, weight = bool(example.hidden[j]), float(example.weights[j])
        token(ax, (columns["token"], y), char, level=DARK if j == query_index else LIGHT, size=0.42, fontsize=13)
        vector(ax, (columns["key"], y), example.keys[j])
        box(ax, (columns["score"], y), (0.66, 0.36), _signed(float(example.scores[j])), fill="white")
        box(ax, (columns["mask"], y), (0.56, 0.36), "−∞" if hidden else "+0", fill="0.15" if hidden else "white",
            text_color="white" if hidden else "black")
        bar_left, bar_width = columns["weight"] - 0.45, 0.6 * weight
        if bar_width > 0.01:
            box(ax, (bar_left + bar_width / 2, y), (bar_width, 0.3), level=MEDIUM, lw=0.6)
        ax.text(bar_left + bar_width + 0.06, y, f"{weight:.2f}", ha="left", va="center", fontsize=10)
        vector(ax, (columns["value"], y), example.values[j])
        arrow(ax, (columns["value"] + 0.34, y), sum_center, color="0.8" if hidden else EDGE, dashed=hidden,
              lw=0.8 + 2.5 * weight)
    if any(example.hidden):
        label(ax, (columns["mask"], rows_y[-1] - 0.5), "future:\nweight 0", fontsize=8.5, color=NOTE)
    box(ax, sum_center, (0.36, 0.36), "Σ", fill="white", fontsize=13, zorder=3)
    arrow(ax, (sum_center[0], sum_center[1] - 0.18), (sum_center[0], 1.12))
    vector(ax, (sum_center[0], 0.97), example.context)
    label(ax, (sum_center[0], 0.6), f"context of {me}\n= Σ weight · v", fontsize=10, linespacing=1.4)
    label(ax, (5.5, 0.25), f"d_k = {example.keys.shape[1]} here (GPT-2 small: 64 per head) · each shade is one "
          "number (light −, dark +) · seeded toy weights, no trained model", fontsize=8.5, color=NOTE)
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
    from ..model import PRESETS

    cfg = PRESETS["gpt2-small"]
    hidden = 4 * cfg.emb_dim  # FeedForward's expansion
    fig, ax = canvas(9.2, 8.6, "Day 4: the Transformer block — pre-LayerNorm, as in GPT-2")

    # left: the whole GPT, read bottom to top
    stack_x, stack_w, block_bottom, block_top = 1.4, 2.2, 2.2, 4.95
    label(ax, (stack_x, 0.55), f"你好世界 → {len(GPT2_IDS['你好世界'])} token ids", fontsize=10)
    for y, h, text, level in [(1.35, 0.7, "token embedding\n+ position embedding", LIGHT),
                              (5.75, 0.45, "final LayerNorm", LIGHT),
                              (6.6, 0.7, f"output head\nLinear {cfg.emb_dim} → {cfg.vocab_size}", MEDIUM)]:
        box(ax, (stack_x, y), (stack_w, h), text, level=level)
    block_y, block_h = (block_bottom + block_top) / 2, block_top - block_bottom
    for offset in (0.16, 0.08):  # a stack of cards: the block repeats
        box(ax, (stack_x + offset, block_y + offset), (stack_w, block_h), level=LIGHT, edge="0.55", lw=0.8)
    box(ax, (stack_x, block_y), (stack_w, block_h), level=DARK)
    label(ax, (stack_x, block_y + 0.28), "Transformer\nblock", fontsize=12, color="white", linespacing=1.3, **BOLD)
    label(ax, (stack_x, block_y - 0.58), f"× {cfg.n_layers}", fontsize=18, color="white", **BOLD)
    label(ax, (stack_x, 7.45), f"logits → next token {EXAMPLE[-1]}", fontsize=10)
    column_arrows(ax, stack_x, [(0.55, 0.12), (1.35, 0.35), (block_y, block_h / 2), (5.75, 0.225), (6.6, 0.35),
                                (7.45, 0.12)])

    # right: one block, zoomed in
    frame_left, frame_right, frame_bottom, frame_top = 3.05, 9.05, 0.3, 7.95
    box(ax, ((frame_left + frame_right) / 2, (frame_bottom + frame_top) / 2),
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
        box(ax, (main_x, y), (box_w, h), text, level=level, fontsize=10.5)
        ax.text(note_x, y, note, ha="left", va="center", fontsize=9, color=NOTE)
    box(ax, (main_x, 5.6), (box_w + 0.3, 1.55), fill="none", edge="0.55", dashed=True, zorder=1.5)
    label(ax, ((lane_x + main_x - box_w / 2 - 0.15) / 2, 5.6), "feed-forward", fontsize=9, color=NOTE, rotation=90)
    adds = [(1.0, 3.55, "x + attention(LayerNorm(x))"), (3.95, 7.2, "x + feed-forward(LayerNorm(x))")]
    for split_y, plus_y, note in adds:
        plus(ax, (main_x, plus_y))
        ax.plot([main_x], [split_y], "o", color=EDGE, ms=4, zorder=3)
        polyline(ax, [(main_x, split_y), (lane_x, split_y), (lane_x, plus_y), (main_x - 0.16, plus_y)])
        ax.text(note_x, plus_y, note, ha="left", va="center", fontsize=9, color=NOTE)
    label(ax, (lane_x - 0.13, 2.3), "residual path: the input skips ahead", fontsize=8.5, color=NOTE, rotation=90)
    label(ax, (main_x, 0.6), f"input x  (tokens, {cfg.emb_dim})", fontsize=10)
    label(ax, (main_x, 7.68), f"output  (tokens, {cfg.emb_dim}) → next block", fontsize=10)
    column_arrows(ax, main_x, [(0.6, 0.12), *((y, h / 2) for y, h, *_ in sublayers),
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
    fig, ax = canvas(10, 4.3, "Day 5: the text is its own label — the target is the input shifted by one")
    pitch, left, size = 0.8, 2.0, 0.56
    text_y, input_y, target_y = 3.35, 2.25, 1.1
    rows = [("text", text_y, range(n + 1), LIGHT), (f"input\ntext[0:{n}]", input_y, range(n), MEDIUM),
            (f"target\ntext[1:{n + 1}]", target_y, range(1, n + 1), DARK)]
    for name, y, columns, level in rows:
        ax.text(left - 0.5, y, name, ha="right", va="center", fontsize=10.5, linespacing=1.3)
        for column in columns:
            token(ax, (left + pitch * column, y), text[column], level=level, size=size)
    for t in range(n):
        x = left + pitch * t
        label(ax, (x, input_y + size / 2 + 0.14), f"t = {t}", fontsize=8.5, color=NOTE)
        arrow(ax, (x + 0.05, input_y - size / 2 - 0.04), (x + pitch - 0.12, target_y + size / 2 + 0.04))
    ax.text(left - 0.5, (input_y + target_y) / 2, "position t\npredicts t + 1", ha="right", va="center",
            fontsize=9, color=NOTE)

    # right: the examples one window holds
    examples_left, target_x = 6.75, 9.35
    label(ax, (8.1, text_y), f"{n} training examples in one window", fontsize=10.5)
    for t in range(n):
        y = text_y - 0.6 - 0.55 * t
        ax.text(examples_left - 0.35, y, f"t = {t}", ha="right", va="center", fontsize=9, color=NOTE)
        for column in range(t + 1):
            token(ax, (examples_left + 0.45 * column, y), text[column], level=MEDIUM, size=0.4, fontsize=12)
        arrow(ax, (examples_left + 0.45 * t + 0.3, y), (target_x - 0.3, y))
        token(ax, (target_x, y), text[t + 1], level=DARK, size=0.4, fontsize=12)
    ax.plot([5.85, 5.85], [0.85, text_y + 0.25], color="0.85", lw=1)
    label(ax, (5.0, 0.38), "each position sees only tokens 0…t (the causal mask) and is scored on token t + 1\n"
          f"one character = one token here; GPT-2 splits {text} into {sum(map(len, GPT2_IDS.values()))} byte tokens "
          "and shifts them the same way", fontsize=8.5, color=NOTE, linespacing=1.5)
    return fig


DIAGRAMS: dict[str, Callable[[], Figure]] = {  # name -> drawer; make_figures saves each as <name>.png
    "pipeline": pipeline_figure,
    **{f"pipeline_day{day}": partial(pipeline_figure, day) for day in range(1, len(DAYS) + 1)},
    "qkv_flow": qkv_figure,
    "transformer_block": block_figure,
    "input_target_shift": shift_figure,
}
DIAGRAM_NAMES = tuple(DIAGRAMS)
