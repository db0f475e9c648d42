"""Chinese in plots on any machine: a CJK font from a pip package, registered with matplotlib.

The course labels its plots in Chinese (你好世界). matplotlib draws a glyph only from a font it
knows; on a machine without a CJK font (a fresh Linux install, CI) it draws empty boxes and warns
"Glyph ... missing" on stderr. It also caches its font list at first import, so a system font
installed later stays invisible until that cache is rebuilt.

So the course brings its own: WenQuanYi Micro Hei (文泉驿微米黑: Simplified and Traditional
Chinese, Apache-2.0, 5 MB), from a pip package pinned in ``requirements-data.txt`` and verified
by sha256 like every other data file (``gptlib.assets``). ``use_cjk_font()`` registers that file
directly (``fontManager.addfont``), which needs neither system fonts nor the cache, and appends
its family to ``rcParams["font.family"]``: Latin text keeps matplotlib's default (DejaVu Sans),
and each character the default font lacks is drawn from the CJK font instead.

A CJK font a system has often comes in one weight only (Debian's WenQuanYi Zen Hei is 500, not
the "normal" 400 that labels ask for). matplotlib then uses it anyway, which is what we want, but
logs "findfont: Failed to find font weight normal for ..., now using 500." to stderr: a red box
in a notebook. ``use_cjk_font()`` drops exactly that message (``quiet_weight_fallback``).

Importing this module does not import matplotlib; calling its functions does.
"""
from __future__ import annotations

import functools
import logging

from ..assets import AssetError, asset_path, read_asset

__all__ = ["CJK_FONT_ASSET", "use_cjk_font", "cjk_font_available", "covered_code_points", "quiet_weight_fallback"]

CJK_FONT_ASSET = "wqy-microhei.ttc"  # its name in gptlib.assets.ASSETS
# matplotlib 3.11 bundles this font as a last resort: its charmap claims every code point, but
# what it draws are placeholder boxes, so it never counts as covering a character.
_PLACEHOLDER_FAMILIES = ("Last Resort High-Efficiency",)


@functools.lru_cache(maxsize=1)
def _register_packaged_font() -> str | None:
    """Verify the packaged font, add it to matplotlib's font list once; its family name, or None if unusable."""
    from matplotlib import font_manager

    try:
        read_asset(CJK_FONT_ASSET)  # checks the sha256: a damaged font is not registered
    except AssetError:
        return None  # `python -m gptlib doctor` names the package to install
    path = str(asset_path(CJK_FONT_ASSET))
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def _not_a_weight_fallback(record: logging.LogRecord) -> bool:
    """False for matplotlib's "Failed to find font weight" message (the font found is used all the same)."""
    return not record.getMessage().startswith("findfont: Failed to find font weight")


def quiet_weight_fallback() -> None:
    """Drop matplotlib's weight-fallback warning (and only it) from its font manager's log. Idempotent."""
    logger = logging.getLogger("matplotlib.font_manager")
    if _not_a_weight_fallback not in logger.filters:
        logger.addFilter(_not_a_weight_fallback)


def use_cjk_font() -> str | None:
    """Let matplotlib draw Chinese with the course's packaged font; returns that font's family name.

    Idempotent: the font is registered once per process, and the family is put (once) at the
    end of ``rcParams["font.family"]``, so calling this again after ``rcdefaults()`` restores it.
    Returns None when the font package is missing or its file is damaged (plots then fall back
    to whatever fonts the machine has).
    """
    quiet_weight_fallback()
    family = _register_packaged_font()
    if family is not None:
        import matplotlib

        families = [f for f in matplotlib.rcParams["font.family"] if f != family]
        matplotlib.rcParams["font.family"] = [*families, family]
    return family


def covered_code_points(families: list[str]) -> frozenset[int]:
    """The code points that the fonts matplotlib finds for ``families`` can draw, together.

    A family this machine lacks adds nothing; neither does matplotlib's placeholder font.
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    covered: set[int] = set()
    for family in families:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:  # no such font on this machine
            continue
        font = FT2Font(path)
        if font.family_name not in _PLACEHOLDER_FAMILIES:
            covered.update(font.get_charmap())
    return frozenset(covered)


def cjk_font_available(text: str = "你好世界啊") -> bool:
    """Whether a plot can draw ``text`` (after ``use_cjk_font()``) with real glyphs, not boxes."""
    import matplotlib

    use_cjk_font()
    covered = covered_code_points(list(matplotlib.rcParams["font.family"]))
    return all(ord(c) in covered for c in text if not c.isspace())
