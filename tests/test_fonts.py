"""Chinese in plots: the packaged font draws 你好世界 even on a machine with no CJK font of its own."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import pytest

from gptlib.course.fonts import covered_code_points, use_cjk_font

# Run in a fresh process with a fresh MPLCONFIGDIR (so a new font cache is built from what this
# process can see); HIDE_FONTS=list also drops every font but matplotlib's own from that list,
# as on a machine without system fonts. Everything after the marker line must leave stderr empty:
# a missing glyph makes matplotlib warn "Glyph ... missing from font(s)".
SCRIPT = textwrap.dedent("""
    import os, sys
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import font_manager
    if os.environ["HIDE_FONTS"] == "list":
        data = matplotlib.get_data_path()
        font_manager.fontManager.ttflist = [f for f in font_manager.fontManager.ttflist if f.fname.startswith(data)]
        font_manager.fontManager._findfont_cached.cache_clear()
    from gptlib.course.fonts import covered_code_points, use_cjk_font
    visible = sorted({f.name for f in font_manager.fontManager.ttflist})
    print("before:", 0x4F60 in covered_code_points(visible))
    print("family:", use_cjk_font())
    import matplotlib.pyplot as plt
    from gptlib.course.attention_explorer import displayable_label
    print("label:", displayable_label("你"))
    sys.stderr.write("--- render ---\\n")
    fig, ax = plt.subplots()
    ax.set_title("你好世界 → 啊")
    ax.set_xticks([0, 1], [displayable_label("你"), displayable_label("好")])
    import io
    fig.savefig(io.BytesIO(), format="png")
""")


def run_without_system_fonts(tmp_path, hide: str, prefix: list[str] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mplconfig"), "HIDE_FONTS": hide}
    script = tmp_path / "draw_chinese.py"
    script.write_text(SCRIPT, encoding="utf-8")
    return subprocess.run([*prefix, sys.executable, str(script)], capture_output=True, text=True, env=env,
                          timeout=120)


def assert_draws_chinese(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-2000:]
    assert "before: False" in result.stdout, "the test failed to hide the system's CJK fonts"
    assert "family: WenQuanYi Micro Hei" in result.stdout
    assert "label: 你" in result.stdout
    after_render = result.stderr.split("--- render ---\n", 1)[1]
    assert after_render == "", f"drawing Chinese wrote to stderr: {after_render[:500]}"


def test_packaged_font_draws_chinese_when_matplotlib_sees_no_system_font(tmp_path):
    assert_draws_chinese(run_without_system_fonts(tmp_path, hide="list"))


def _can_unshare() -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs Linux, root and `unshare -m` to hide the system's fonts")
def test_packaged_font_draws_chinese_with_system_fonts_really_gone(tmp_path):
    """The same, with every system font folder hidden by empty bind mounts in a private mount namespace."""
    empty = tmp_path / "empty"
    empty.mkdir()
    folders = ["/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.fonts"),
               os.path.expanduser("~/.local/share/fonts")]
    hide = " ".join(f'[ -d "{d}" ] && mount --bind "{empty}" "{d}";' for d in folders)
    result = run_without_system_fonts(tmp_path, hide="mount",
                                      prefix=["unshare", "-m", "sh", "-c", f'{hide} exec "$0" "$@"'])
    assert_draws_chinese(result)


def test_use_cjk_font_is_idempotent_and_keeps_latin_text_in_the_default_font():
    family = use_cjk_font()
    assert family == "WenQuanYi Micro Hei"
    assert use_cjk_font() == family
    families = list(matplotlib.rcParams["font.family"])
    assert families.count(family) == 1 and families[-1] == family and families[0] == "sans-serif"


def test_placeholder_font_does_not_count_as_drawing_chinese():
    assert 0x4F60 not in covered_code_points(["Last Resort High-Efficiency"])
    assert 0x4F60 in covered_code_points(["DejaVu Sans", "WenQuanYi Micro Hei"])


def _warnings_of_a_medium_only_family(caplog) -> list[str]:
    """Ask matplotlib for weight "normal" of a family that exists only at weight 500 (as Debian's WenQuanYi
    Zen Hei does); returns the font manager's warnings."""
    import dataclasses
    import logging

    from matplotlib import font_manager

    dejavu = next(f for f in font_manager.fontManager.ttflist if f.name == "DejaVu Sans")
    medium = dataclasses.replace(dejavu, name="Course Test Medium Only", weight=500)
    font_manager.fontManager.ttflist.append(medium)
    font_manager.fontManager._findfont_cached.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
            font_manager.findfont(font_manager.FontProperties(family="Course Test Medium Only", weight="normal"))
    finally:
        font_manager.fontManager.ttflist.remove(medium)
        font_manager.fontManager._findfont_cached.cache_clear()
    return [r.getMessage() for r in caplog.records if r.name == "matplotlib.font_manager"]


def test_a_font_with_one_weight_writes_nothing_to_stderr(caplog):
    """The red box above day 3's explorer on machines with fonts-wqy-zenhei: gone once use_cjk_font() ran."""
    import logging

    from gptlib.course import fonts

    logger = logging.getLogger("matplotlib.font_manager")
    logger.removeFilter(fonts._not_a_weight_fallback)
    noisy = _warnings_of_a_medium_only_family(caplog)
    assert any("Failed to find font weight normal" in m for m in noisy), noisy  # the case is real without the filter
    caplog.clear()
    use_cjk_font()
    use_cjk_font()
    assert logger.filters.count(fonts._not_a_weight_fallback) == 1
    assert _warnings_of_a_medium_only_family(caplog) == []
