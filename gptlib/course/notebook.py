"""Small helpers for the notebooks: show library code instead of pasting it; Chinese in plots.

Notebooks import this module in their set-up cell, and importing it makes matplotlib draw
Chinese with the course's packaged font (``gptlib.course.fonts.use_cjk_font``), on any machine.
"""
from __future__ import annotations

import inspect

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
