"""Small helpers for the notebooks: show library code instead of pasting it; Chinese in plots; where answers live.

Notebooks import this module in their set-up cell, and importing it makes matplotlib draw
Chinese with the course's packaged font (``gptlib.course.fonts.use_cjk_font``), on any machine.

The learner works in their own copy of the notebooks (``my-course/``, made by ``course.py lab``);
the exercises' kept answers go beside it, in ``answers_dir()``.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

from .fonts import use_cjk_font

use_cjk_font()


def show_source(obj) -> None:
    """Display the source of a gptlib function or class as a highlighted code block.

    Notebooks never copy the library's code: they show it with this, so what the learner
    reads is exactly what runs.
    """
    from IPython.display import Markdown, display

    source = inspect.getsource(obj)
    module = inspect.getmodule(obj)
    where = f"`{module.__name__}`" if module else "source"
    display(Markdown(f"From {where}:\n\n```python\n{source}```"))


MY_COURSE = "my-course"  # the learner's copy in the course's checkout (course.py's MY_COURSE)


def answers_dir() -> Path:
    """Where the exercises' kept answers and progress go: ``$GPTLIB_WORKSPACE`` (``course.py lab`` sets it to
    ``my-course/answers``), else ``<repo>/my-course/answers`` in the course's checkout, else the user cache."""
    if os.environ.get("GPTLIB_WORKSPACE", "").strip():
        return Path(os.environ["GPTLIB_WORKSPACE"].strip()).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / MY_COURSE / "answers"
    from ..files import user_cache_dir

    return user_cache_dir("answers")


def figures_dir() -> Path:
    """The course's ``figures/`` as a notebook sees it: the first one in the notebook's folder or above it
    (``notebooks/``, ``notebooks/zh/`` and the learner's copy of them all find it)."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "figures").is_dir():
            return folder / "figures"
    raise FileNotFoundError(f"no figures/ folder in {Path.cwd()} or above it: open the notebook from the course")
