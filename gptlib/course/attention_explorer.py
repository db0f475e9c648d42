"""Day 3: the attention-mask explorer — see what the causal mask, the sqrt(d_k) scaling and
the padding mask do to one attention matrix.

The logic is a plain function, ``attention_maps(queries, keys, ...)``, returning the three
matrices the widget draws:

1. ``masked_scores``: ``q @ k^T`` (divided by sqrt(d_k) when ``scale``), with -inf wherever
   the mask hides a key;
2. ``mask``: True where a query may not look (a future token, or a padding token);
3. ``weights``: the row-wise softmax — each row sums to 1, hidden entries are exactly 0.

``toy_queries_keys`` makes deterministic queries and keys for any sentence (day 3 has no trained
model yet; day 5's ``gptlib.course.probe`` plugs a trained model's heads into the same explorer).
``attention_explorer(...)`` builds the ipywidgets UI; it only wires controls to these
functions and to ``plot_attention_maps``. ``tests/test_attention_explorer.py`` tests them all.
"""
from __future__ import annotations

import base64
import functools
import io
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from .exercises import Text
from ..tokenizer import end_of_text_id

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AttentionMaps", "attention_maps", "toy_queries_keys", "split_words",
           "displayable_label", "plot_attention_maps", "AttentionExplorer", "attention_explorer"]

DEFAULT_SENTENCES = ["你好世界啊", "the cat sat on the mat", "Your journey starts with one step"]


@dataclass
class AttentionMaps:
    """The matrices of one attention head for one sequence, all (tokens, tokens), rows = queries."""

    scores: Tensor         # q @ k^T, divided by sqrt(d_k) if scaled; before masking
    mask: Tensor           # bool, True = this query may not look at this key
    masked_scores: Tensor  # scores with -inf where mask is True (what the softmax sees)
    weights: Tensor        # softmax of each row of masked_scores
    tokens: list[str] = field(default_factory=list)


def attention_maps(queries: Tensor, keys: Tensor, *, causal: bool = True, scale: bool = True,
                   padding_mask: Tensor | Sequence[bool] | None = None,
                   tokens: Sequence[str] | None = None) -> AttentionMaps:
    """Scores, mask and softmax weights of one head: ``queries``, ``keys`` are (tokens, d_k).

    causal: hide future keys (query i sees keys 0..i), as GPT does.
    scale: divide the scores by sqrt(d_k). Without it, dot products of d_k-dimensional vectors
        grow like sqrt(d_k), the softmax saturates (one weight ~1, the rest ~0) and gradients vanish.
    padding_mask: (tokens,) bool, True where the token is padding: no query may attend to it.
    A row whose keys are all hidden (e.g. a leading pad under the causal mask) gets weights 0
    instead of the NaN a softmax over only -inf would give.
    """
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape != keys.shape:
        raise ValueError(f"queries and keys must both be (tokens, d_k); got {tuple(queries.shape)} and {tuple(keys.shape)}")
    n, d_k = keys.shape
    scores = queries @ keys.T
    if scale:
        scores = scores / math.sqrt(d_k)
    mask = torch.zeros(n, n, dtype=torch.bool, device=scores.device)
    if causal:
        mask |= torch.triu(torch.ones_like(mask), diagonal=1)
    if padding_mask is not None:
        pad = torch.as_tensor(padding_mask, dtype=torch.bool, device=scores.device)
        if pad.shape != (n,):
            raise ValueError(f"padding_mask must have one entry per token ({n}), got shape {tuple(pad.shape)}")
        mask |= pad.unsqueeze(0)  # hide pad *keys* (columns) from every query
    masked_scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(masked_scores, dim=-1)
    weights = weights.masked_fill(mask.all(dim=-1, keepdim=True), 0.0)
    return AttentionMaps(scores, mask, masked_scores, weights, list(tokens) if tokens is not None else [])


def split_words(text: str) -> list[str]:
    """A tokenizer-free split for the toy explorer: words and punctuation, each Chinese character alone."""
    return re.findall(r"[\u3400-\u9fff]|[^\s\u3400-\u9fff]+", text)


def toy_queries_keys(tokens: Sequence[str], d_model: int = 16, d_k: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Deterministic (queries, keys) for ``tokens`` when there is no trained model.

    Each distinct token string gets its own fixed random embedding (seeded by its CRC32, so the
    same word gets the same vector in every sentence), plus a small position signal; seeded
    random W_query and W_key project them to ``d_k`` dimensions.
    """
    rows = []
    for position, token in enumerate(tokens):
        g = torch.Generator().manual_seed(zlib.crc32(token.encode("utf-8")))
        rows.append(torch.randn(d_model, generator=g) + 0.3 * torch.sin(torch.arange(d_model) * 0.5 + position))
    x = torch.stack(rows) if rows else torch.zeros(0, d_model)
    g = torch.Generator().manual_seed(seed)
    w_query = torch.randn(d_model, d_k, generator=g) / math.sqrt(d_model) * 2
    w_key = torch.randn(d_model, d_k, generator=g) / math.sqrt(d_model) * 2
    return x @ w_query, x @ w_key


_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei",
              "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


@functools.lru_cache(maxsize=1)
def _label_fonts() -> tuple[list[str], frozenset[int]]:
    """Font families for tick labels and the code points they cover: matplotlib's default for Latin,
    then the course's packaged CJK font (``gptlib.course.fonts``), then any CJK font the system has."""
    from matplotlib import font_manager

    from .fonts import covered_code_points, use_cjk_font

    packaged = use_cjk_font()
    if packaged:  # it draws every CJK character the course shows: no system font needed (nor its warnings)
        families = ["DejaVu Sans", packaged]
    else:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        families = ["DejaVu Sans", *(name for name in _CJK_FONTS if name in installed)]
    return families, covered_code_points(families)


def displayable_label(token: str) -> str:
    """``token`` as a tick label: whitespace made visible, and characters no available font can draw
    written as ``U+XXXX`` (matplotlib would draw an empty box and warn on stderr)."""
    _, covered = _label_fonts()
    token = token.replace(" ", "\u00b7").replace("\n", "\\n").replace("\t", "\\t")
    return "".join(c if ord(c) in covered and c.isprintable() else f"U+{ord(c):04X}" for c in token)


# What the plots and controls say, in the language ``gptlib.course.exercises.set_language`` picked
# (the Chinese edition of the course calls set_language("zh") in its first code cell).
LABELS = {
    "scores": Text("scores after mask (grey = -inf)", "掩码后的分数（灰色 = -inf）"),
    "mask": Text("mask (black = hidden)", "掩码（黑色 = 遮住）"),
    "weights": Text("weights = softmax of each row", "权重 = 每一行的 softmax"),
    "key": Text("key (attended to)", "键 key（被关注的）"),
    "query": Text("query (attending)", "查询 query（发出关注的）"),
    "sentence": Text("sentence", "句子"),
    "causal": Text("causal mask", "因果掩码"),
    "scale": Text("divide by √d_k", "除以 √d_k"),
    "padding": Text("padding", "填充"),
    "none": Text("none", "无"),
    "right": Text("right", "右侧"),
    "left": Text("left", "左侧"),
    "padding_mask": Text("padding mask", "填充掩码"),
    "toy": Text("random toy projections", "随机的玩具投影"),
    "layer": Text("layer", "层"),
    "head": Text("head", "头"),
    "layer_head": Text("layer {layer}, head {head}", "第 {layer} 层，第 {head} 个头"),
}


# Legible at a laptop's width: the PNG is FIGSIZE * DPI = 960 px wide (shown unscaled in a notebook at
# 1400 px), tick labels TICK_PT * DPI / 72 = 11 px, the weights in the cells 8-10 px.
FIGSIZE, DPI, TICK_PT = (12.0, 4.8), 80, 10


def upright(label: str) -> bool:
    """Whether a tick label stands upright under its column: Chinese (你, 你好); other labels are turned 90°."""
    return bool(label) and all("\u2e80" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in label)


def cell_text(value: float) -> str:
    """A weight as written in its cell: two decimals without the leading zero (.25), so it fits a narrow cell."""
    text = f"{value:.2f}"
    return text[1:] if text.startswith("0.") else text


def plot_attention_maps(maps: AttentionMaps, title: str = "") -> "Figure":
    """Three heatmaps side by side: masked scores (-inf in grey), the mask, the softmax weights."""
    import matplotlib.pyplot as plt
    import numpy as np

    n = maps.weights.size(0)
    families, _ = _label_fonts()
    fig, axes = plt.subplots(1, 3, figsize=FIGSIZE)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.22, top=0.86, wspace=0.5)  # fixed: faster than a layout engine
    scores = np.ma.masked_invalid(maps.masked_scores.detach().cpu().numpy())
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    panels = [  # (data, colours, title, its range is 0..1)
        (scores, cmap, LABELS["scores"], False),
        (maps.mask.cpu().numpy().astype(float), "Greys", LABELS["mask"], True),
        (maps.weights.detach().cpu().numpy(), "viridis", LABELS["weights"], True),
    ]
    for index, (ax, (data, colors, name, unit_range)) in enumerate(zip(axes, panels)):
        image = ax.imshow(data, cmap=colors, vmin=0 if unit_range else None, vmax=1 if unit_range else None)
        ax.set_title(name.format(), fontsize=11)
        ax.set_xlabel(LABELS["key"].format(), fontsize=TICK_PT)
        ax.set_ylabel(LABELS["query"].format(), fontsize=TICK_PT)
        ax.tick_params(labelsize=TICK_PT)
        if maps.tokens:
            labels = [displayable_label(t) for t in maps.tokens]
            ax.set_xticks(range(n), labels, fontsize=TICK_PT, fontfamily=families)
            for tick, label in zip(ax.get_xticklabels(), labels):
                tick.set_rotation(0 if upright(label) else 90)
            ax.set_yticks(range(n), labels, fontsize=TICK_PT, fontfamily=families)
        if index == 2 and n <= 12:
            hidden = maps.mask.cpu().numpy()
            for i in range(n):
                for j in range(n):
                    if hidden[i, j]:
                        continue  # exactly 0: leave the cell blank
                    value = float(data[i, j])
                    ax.text(j, i, cell_text(value), ha="center", va="center", fontsize=9 if n <= 8 else 7.5,
                            color="white" if value < 0.5 else "black")
        if index != 1:
            fig.colorbar(image, ax=ax, shrink=0.7).ax.tick_params(labelsize=TICK_PT)
    if title:
        fig.suptitle(title)
    return fig


class AttentionExplorer:
    """The widget returned by ``attention_explorer``: controls + an Output showing the heatmaps.

    ``maps`` holds the ``AttentionMaps`` last drawn; ``update()`` recomputes and redraws (every
    control calls it when its value changes). Displaying the object displays ``ui``. Subclasses
    (day 5's ``gptlib.course.probe.ModelAttentionExplorer``) add controls and compute the maps another way.
    """

    def __init__(self, tokenizer: Any, sentences: Sequence[str], pad_to: int | None, pad_id: int | None,
                 seed: int) -> None:
        import ipywidgets as widgets

        self.tokenizer, self.seed = tokenizer, seed
        self.pad_id = pad_id if pad_id is not None else self._default_pad_id()
        self.pad_to = pad_to or max(len(self.tokenize(s)[0]) for s in sentences) + 2
        self.maps: AttentionMaps | None = None
        self.sentence = widgets.Combobox(options=list(sentences), value=sentences[0],
                                         description=LABELS["sentence"].format(), ensure_option=False,
                                         continuous_update=False)
        self.causal = widgets.Checkbox(value=True, description=LABELS["causal"].format())
        self.scale = widgets.Checkbox(value=True, description=LABELS["scale"].format())
        self.pad_side = widgets.Dropdown(options=[(LABELS[side].format(), side) for side in ("none", "right", "left")],
                                         value="right", description=LABELS["padding"].format())
        self.mask_padding = widgets.Checkbox(value=True, description=LABELS["padding_mask"].format())
        controls = [self.sentence, widgets.HBox([self.causal, self.scale]),
                    widgets.HBox([self.pad_side, self.mask_padding]), *self.extra_controls()]
        self.output = widgets.Output()
        self.ui = widgets.VBox([*controls, self.output])
        for control in controls:
            for child in getattr(control, "children", [control]):
                child.observe(lambda change: self.update(), names="value")
        self.update()

    def extra_controls(self) -> list:
        """More widgets under the standard ones (none here)."""
        return []

    def _default_pad_id(self) -> int:
        try:
            return end_of_text_id(self.tokenizer) if self.tokenizer is not None else 0
        except ValueError:
            return 0

    def tokenize(self, text: str) -> tuple[list[str], list[int]]:
        """(labels, ids): the tokenizer's pieces, or ``split_words`` when there is none (ids then unused)."""
        if self.tokenizer is None:
            words = split_words(text)
            return words, list(range(len(words)))
        ids = list(self.tokenizer.encode(text))
        return [self.token_label(i) for i in ids], ids

    def token_label(self, token_id: int) -> str:
        """The token's text, or its raw bytes (``\\xe4\\xbd``) when it is only part of a UTF-8
        character, as byte-level BPE makes for most Chinese characters."""
        text = self.tokenizer.decode([token_id])
        if "\ufffd" not in text:
            return text
        if hasattr(self.tokenizer, "decode_single_token_bytes"):  # tiktoken
            raw = self.tokenizer.decode_single_token_bytes(token_id)
        elif hasattr(self.tokenizer, "decode_bytes"):  # gptlib's BPETokenizer
            raw = self.tokenizer.decode_bytes([token_id])
        else:
            return text
        return "".join(f"\\x{b:02x}" for b in raw)

    def padded(self) -> tuple[list[str], list[int], list[bool]]:
        """(labels, ids, is_pad) of the current sentence, padded as the controls say."""
        labels, ids = self.tokenize(self.sentence.value or " ")
        pad = [False] * len(labels)
        extra = max(self.pad_to - len(labels), 0) if self.pad_side.value != "none" else 0
        if extra and self.pad_side.value == "right":
            return labels + ["<pad>"] * extra, ids + [self.pad_id] * extra, pad + [True] * extra
        if extra:
            return ["<pad>"] * extra + labels, [self.pad_id] * extra + ids, [True] * extra + pad
        return labels, ids, pad

    def compute(self) -> AttentionMaps:
        """The maps for the current control values (what ``update`` draws): toy queries and keys."""
        labels, ids, pad = self.padded()
        queries, keys = toy_queries_keys(labels, seed=self.seed)
        return attention_maps(queries, keys, causal=self.causal.value, scale=self.scale.value,
                              padding_mask=pad if self.mask_padding.value else None, tokens=labels)

    def title(self) -> str:
        return LABELS["toy"].format()

    def update(self) -> None:
        """Recompute the maps and redraw the three heatmaps in the Output widget."""
        import matplotlib.pyplot as plt

        self.maps = self.compute()
        figure = plot_attention_maps(self.maps, title=self.title())
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=DPI)
        plt.close(figure)
        # replace the Output's content in one assignment (no flicker; works outside a kernel too)
        image = {"image/png": base64.b64encode(png.getvalue()).decode("ascii"), "text/plain": "<attention maps>"}
        self.output.outputs = ({"output_type": "display_data", "data": image, "metadata": {}},)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.ui._repr_mimebundle_(**kwargs)


def attention_explorer(tokenizer: Any = None, sentences: Sequence[str] | None = None, *, pad_to: int | None = None,
                       pad_id: int | None = None, seed: int = 0) -> AttentionExplorer:
    """Build the attention-mask explorer widget (display the returned object in a notebook).

    Queries and keys are ``toy_queries_keys`` of the tokens (deterministic): words and single
    Chinese characters, or a tokenizer's pieces. ``pad_to`` is the length the sentence is padded
    to (default: longest sentence + 2) with ``pad_id`` (default: the tokenizer's ``<|endoftext|>``).
    """
    sentences = list(sentences) if sentences else list(DEFAULT_SENTENCES)
    return AttentionExplorer(tokenizer, sentences, pad_to, pad_id, seed)
