"""The look of the course's diagrams (``gptlib.course.diagrams``), in a few drawing helpers.

Every diagram is drawn on a canvas whose data units are inches (``canvas``), so a position reads as
"this far from the bottom-left corner of the picture", and with the same few shapes (``box``,
``arrow``, ``vector``, ``token``...), so all of them look alike: the Blues palette of the other
figures, dark boxes with white text for what matters, grey for what is muted.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LIGHT", "MEDIUM", "DARK", "EDGE", "MUTED_FILL", "MUTED_EDGE", "MUTED_TEXT", "NOTE", "BOLD", "blue",
           "ink_on", "canvas", "label", "box", "arrow", "polyline", "column_arrows", "vector", "token", "plus"]

# The diagrams' look: shades of the Blues colour map (0 = white, 1 = darkest), one edge colour.
LIGHT, MEDIUM, DARK = 0.18, 0.45, 0.8
EDGE = "0.3"
MUTED_FILL, MUTED_EDGE, MUTED_TEXT = "0.95", "0.78", "0.6"
NOTE = "0.35"  # side notes, in grey so they stay in the background
# Bold only for Latin text, in matplotlib's own font: the CJK font has no bold face, and asking
# for one makes matplotlib log a font warning on every figure.
BOLD = {"weight": "bold", "family": "DejaVu Sans"}

Point = tuple[float, float]
Color = str | tuple[float, ...]  # a matplotlib colour: a name or grey level ("0.3"), or RGBA


def blue(level: float) -> tuple[float, ...]:
    """A shade of the Blues colour map, the palette of every course figure."""
    from matplotlib import colormaps

    return colormaps["Blues"](level)


def ink_on(level: float) -> str:
    """Text colour that reads on a Blues box of this shade."""
    return "white" if level >= 0.6 else "black"


def canvas(width: float, height: float, title: str = "") -> tuple[Figure, Axes]:
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
        label(ax, (width / 2, height - 0.25), title, fontsize=12)
    return fig, ax


def label(ax: Axes, center: Point, text: str, **style) -> None:
    """``text`` centred on ``center``; ``style``: matplotlib's text settings (fontsize, color...)."""
    ax.text(*center, text, **{"ha": "center", "va": "center", **style})


def box(ax: Axes, center: Point, size: Point, text: str = "", *, level: float = LIGHT,
        fill: str | None = None, edge: Color = EDGE, lw: float = 1.0, text_color: str | None = None,
        fontsize: float = 10, dashed: bool = False, zorder: float = 2) -> None:
    """A rounded box centred on ``center`` (``size`` = width, height), filled with a Blues ``level`` or ``fill``."""
    from matplotlib.patches import FancyBboxPatch

    (x, y), (w, h) = center, size
    face = fill if fill is not None else blue(level)
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={min(w, h) * 0.18}",
                                facecolor=face, edgecolor=edge, lw=lw, ls="--" if dashed else "-", zorder=zorder))
    if text:
        color = text_color or ("black" if fill is not None else ink_on(level))
        label(ax, center, text, fontsize=fontsize, color=color, zorder=zorder + 0.1, linespacing=1.3)


def arrow(ax: Axes, start: Point, end: Point, *, color: Color = EDGE, lw: float = 1.3, dashed: bool = False,
          zorder: float = 1) -> None:
    """A straight arrow from ``start`` to ``end``, its tip exactly at ``end``."""
    ax.annotate("", xy=end, xytext=start, zorder=zorder,
                arrowprops={"arrowstyle": "-|>,head_length=0.5,head_width=0.22", "color": color, "lw": lw,
                            "ls": "--" if dashed else "-", "shrinkA": 0, "shrinkB": 0})


def polyline(ax: Axes, points: Sequence[Point], *, color: Color = EDGE, lw: float = 1.3) -> None:
    """A path through ``points`` with an arrow head on its last segment (a residual bypass, say)."""
    xs, ys = zip(*points[:-1])
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt", zorder=1)
    arrow(ax, points[-2], points[-1], color=color, lw=lw)


def column_arrows(ax: Axes, x: float, shapes: Iterable[tuple[float, float]], gap: float = 0.04) -> None:
    """Arrows up a column at ``x``, from each shape to the next; ``shapes``: (centre y, half height) each."""
    ordered = sorted(shapes)
    for (y0, half0), (y1, half1) in itertools.pairwise(ordered):
        arrow(ax, (x, y0 + half0 + gap), (x, y1 - half1 - gap))


def vector(ax: Axes, center: Point, values: Sequence[float], *, cell: float = 0.15, height: float = 0.24,
           scale: float = 2.0, zorder: float = 2) -> None:
    """A vector drawn as a strip of cells, each shaded by its value (light = negative, dark = positive)."""
    from matplotlib.patches import Rectangle

    x, y = center
    left = x - cell * len(values) / 2
    for i, value in enumerate(values):
        level = 0.5 + 0.4 * max(-1.0, min(1.0, float(value) / scale))
        ax.add_patch(Rectangle((left + i * cell, y - height / 2), cell, height, facecolor=blue(level),
                               edgecolor="white", lw=0.8, zorder=zorder))
    ax.add_patch(Rectangle((left, y - height / 2), cell * len(values), height, fill=False, edgecolor=EDGE,
                           lw=0.8, zorder=zorder + 0.1))


def token(ax: Axes, center: Point, char: str, *, level: float = LIGHT, size: float = 0.5,
          fontsize: float = 15) -> None:
    """One token of the running example as a square tile."""
    box(ax, center, (size, size), char, level=level, fontsize=fontsize)


def plus(ax: Axes, center: Point, radius: float = 0.16) -> None:
    """The ⊕ where a residual path is added back to the stream."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle(center, radius, facecolor="white", edgecolor=EDGE, lw=1.3, zorder=3))
    label(ax, center, "+", fontsize=13, zorder=3.1, **BOLD)
