"""The committed studies the notebooks read (``figures/*.json``, written by ``benchmarks/``): each verdict they
print ("real", "within the noise") follows from their own runs, and each was made with today's recipe."""
from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest

from gptlib.modern import MODERN
from gptlib.recipes import DAY5, Recipe

REPO = Path(__file__).resolve().parents[1]


def _paired():
    spec = importlib.util.spec_from_file_location("paired", REPO / "benchmarks" / "paired.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


paired = _paired()


def study(name: str) -> dict:
    return json.loads((REPO / "figures" / name).read_text(encoding="utf-8"))


def test_paired_difference_is_the_t_interval_of_the_seedwise_differences():
    mean, margin = paired.paired_difference([2.0, 2.1, 2.2], [1.9, 2.05, 2.0])  # differences -0.1, -0.05, -0.2
    assert mean == pytest.approx(-0.35 / 3)
    assert margin == pytest.approx(4.30 * statistics.stdev([-0.1, -0.05, -0.2]) / math.sqrt(3))
    assert paired.paired_difference([1.0], [0.5]) == (-0.5, math.inf)  # one seed: no interval, nothing is real
    with pytest.raises(ValueError):
        paired.paired_difference([1.0, 2.0], [1.0])  # unpaired runs


def test_the_ablation_s_verdicts_follow_from_its_runs():
    ablation = study("modern_ablation.json")
    assert Recipe.from_dict(ablation["modern_recipe"]) == MODERN
    rows = ablation["rows"]
    assert rows[0]["variant"].startswith("day 5") and len(ablation["seeds"]) >= 3
    for row in rows:
        assert len(row["bpb"]) == len(ablation["seeds"])
        mean, margin = paired.paired_difference(rows[0]["bpb"], row["bpb"])
        assert row["mean"] == pytest.approx(statistics.mean(row["bpb"]))
        assert (row["diff"], row["diff_margin"]) == pytest.approx((mean, margin))
        assert row["real"] == (row is not rows[0] and abs(mean) > margin), row["variant"]
        assert row["steps"] == round(ablation["budget_s"] / row["seconds_per_step"])  # equal time


def test_the_stride_study_s_verdict_follows_from_its_runs():
    strides = study("stride.json")
    assert Recipe.from_dict(strides["recipe"]) == DAY5 and strides["steps"] == DAY5.train.max_steps
    by_stride = {s: [r for r in strides["runs"] if r["stride"] == s] for s in (DAY5.model.context_length, 1)}
    assert all([r["seed"] for r in runs] == strides["seeds"] for runs in by_stride.values())
    assert len(strides["seeds"]) >= 3
    mean, margin = paired.paired_difference(*([r["bits_per_byte"] for r in runs] for runs in by_stride.values()))
    assert (strides["diff"], strides["diff_margin"]) == pytest.approx((mean, margin))
    assert strides["real"] == (abs(mean) > margin)
