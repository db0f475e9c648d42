"""The documented figure command regenerates every README picture into a fresh folder.

Lives here, after the notebooks, because it needs day 5's model: with the checkpoint present it
takes about half a minute; without it, ``day5_model`` retrains it first (about a minute more).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gptlib.figures import FIGURE_NAMES

REPO = Path(__file__).resolve().parents[1]


def test_figures_command_writes_every_readme_figure(tmp_path):
    out = tmp_path / "figures"
    result = subprocess.run([sys.executable, "-m", "gptlib", "figures", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in FIGURE_NAMES:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png.name} is not a PNG"
        assert png.stat().st_size > 10_000, f"{png.name} looks empty"
        assert f"figures/{name}.png" in readme, f"README.md does not show {name}.png"
