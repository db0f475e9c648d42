"""How hard each exercise is (1-3) and about how long it takes, shown on its "not done yet" line.

Difficulty: 1 = one idea, a few lines (a formula, a loop); 2 = several ideas or an edge case that
matters (chunks, masks, a training step); 3 = a whole piece assembled from earlier ones (an attention
class, BPE training, the GPT's forward pass). Minutes: an estimate, not a measurement: no learner was
timed. It is the author's guess for a learner who has just read the day's sections, made from the
reference solution's length (about 3 minutes a line) plus 5-10 minutes to understand what is asked,
rounded to 5 minutes. Once learners' times are known, replace these numbers with their median.
"""
from __future__ import annotations

from . import msg

LABELS: dict[str, tuple[int, int]] = {  # exercise -> (difficulty 1-3, minutes)
    "1.1": (1, 10), "1.2": (2, 15), "1.3": (2, 20), "1.4": (1, 10), "1.5": (3, 25),
    "2.1": (1, 10), "2.2": (1, 10), "2.3": (2, 15),
    "3.1": (1, 5), "3.2": (1, 10), "3.3": (3, 30), "3.4": (2, 15),
    "4.1": (2, 15), "4.2": (1, 5), "4.3": (2, 10), "4.4": (2, 15), "4.5": (1, 10), "4.6": (3, 20),
    "5.1": (2, 15), "5.2": (2, 15), "5.3": (2, 15), "5.4": (2, 15),
    "6.1": (1, 5), "6.2": (2, 10), "6.3": (3, 20), "6.4": (2, 15), "6.5": (2, 20),
    "7.1": (3, 25), "7.2": (2, 15), "7.3": (2, 20),
    "8.1": (1, 10), "8.2": (2, 20), "8.3": (2, 20),
}


def label(name: str) -> str:
    """``[★★☆ ~15 min]`` for exercise ``name`` (in the edition's language), or "" if it has none."""
    if name not in LABELS:
        return ""
    difficulty, minutes = LABELS[name]
    return msg("checker.label").format(stars="★" * difficulty + "☆" * (3 - difficulty), minutes=minutes)

