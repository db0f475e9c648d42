"""Paired differences over seeds, and when one is real: shared by the benchmarks that compare recipes.

Two runs on the same seed share their initial weights and batches, so their difference cancels most of
what a seed changes. A mean difference is called real when it is larger than its 95 % t-interval
(Student's t with seeds - 1 degrees of freedom): with 3 seeds, when ``|mean| > 4.30 * std / sqrt(3)``.
"""
from __future__ import annotations

import math
import statistics

T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}  # Student's t, 95 %


def paired_difference(base: list[float], other: list[float]) -> tuple[float, float]:
    """``(mean of other - base, its 95 % half-interval)``, seed by seed; the interval is inf with one seed."""
    diffs = [o - b for o, b in zip(other, base, strict=True)]
    if len(diffs) < 2:
        return statistics.mean(diffs), math.inf
    return statistics.mean(diffs), T_975.get(len(diffs) - 1, 2.0) * statistics.stdev(diffs) / math.sqrt(len(diffs))
