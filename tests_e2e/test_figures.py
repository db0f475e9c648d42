"""The documented figure command regenerates every picture into a fresh folder, and each picture
is shown where a learner looks for it.

Lives here, after the notebooks, because it needs day 5's model: with the checkpoint present it
takes about 10 seconds; without it, ``day5_model`` retrains it first (about 3 minutes more).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gptlib.course.diagrams import DAYS
from gptlib.course.figures import DIAGRAM_NAMES, FIGURE_NAMES, MODEL_FIGURE_NAMES

REPO = Path(__file__).resolve().parents[1]
# day N's notebook, from DAYS' titles ("3 attention" -> notebooks/day3_attention.ipynb)
NOTEBOOKS = {int(title.split()[0]): f"notebooks/day{title.replace(' ', '_')}.ipynb" for title, _ in DAYS}
# where each picture is shown: the README's pipeline and model figures; each day's banner and
# diagrams at the top of / inside its notebook (as ![...](../figures/<name>.png))
SHOWN_IN = {
    "pipeline": "README.md",
    **{name: "README.md" for name in MODEL_FIGURE_NAMES},
    **{f"pipeline_day{day}": notebook for day, notebook in NOTEBOOKS.items()},
    "qkv_flow": NOTEBOOKS[3],
    "transformer_block": NOTEBOOKS[4],
    "input_target_shift": NOTEBOOKS[5],
}


def test_figures_command_writes_every_figure(tmp_path):
    out = tmp_path / "figures"
    result = subprocess.run([sys.executable, "-m", "gptlib", "figures", "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{name}.png" for name in FIGURE_NAMES)
    assert result.stdout.split() == [str(out / f"{name}.png") for name in FIGURE_NAMES]
    for name in FIGURE_NAMES:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png.name} is not a PNG"
        assert png.stat().st_size > 10_000, f"{png.name} looks empty"
    assert "Glyph" not in result.stderr, f"a figure lacks a Chinese glyph: {result.stderr[-2000:]}"


def test_every_figure_is_shown_where_it_belongs():
    assert set(SHOWN_IN) == set(FIGURE_NAMES), "a new figure needs a place in SHOWN_IN (README or a notebook)"
    assert set(DIAGRAM_NAMES) <= set(SHOWN_IN)
    missing = []
    for name, place in SHOWN_IN.items():
        places = [place]
        chinese = REPO / "notebooks" / "zh" / Path(place).name
        if place.startswith("notebooks/") and chinese.exists():
            places.append(str(chinese.relative_to(REPO)))  # the Chinese edition shows it too
        missing += [f"{where} does not show figures/{name}.png" for where in places
                    if f"figures/{name}.png" not in (REPO / where).read_text(encoding="utf-8")]
    assert not missing, "\n".join(missing)
