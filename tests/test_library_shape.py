"""The GPT stays readable in an evening: gptlib's top level is small, no module is long, and checks
do not drown the teaching code (``tools.library_stats`` measures; issue 21 set the targets).

The size bound is for the seven days' GPT: every top-level module except the bonus day's
``modern`` (day 8 in ``MODULE_DAYS``, issue 25: RMSNorm, RoPE, SwiGLU, grouped-query attention),
which a learner reads after the course, not in the evening the bound is about. ``modern`` has a
bound of its own (``MAX_BONUS_CODE_LINES``), so the bonus day cannot grow unseen either. The
checking share is over the whole top level, ``modern`` included.

Each bound is first shown to trip on a synthetic source, so none of these tests can pass vacuously.
"""
from __future__ import annotations

from tools.library_stats import Stats, measure, top_level_modules

MAX_TOP_LEVEL_CODE_LINES = 3000  # issue 21's target ("read it in an evening"); 2,911 when set
BONUS_MODULES = ("modern",)  # the bonus day (issue 25): not in the seven days' bound, bounded on its own
MAX_BONUS_CODE_LINES = 300  # modern measured 219 when this bound was set
MAX_MODULE_CODE_LINES = 300  # one screenful of ideas per module; the longest was 224 (recipes) when set
# Checking share: issue 21's target is 10 %. The top level measured 15.6 % when this test was written
# (461 of 2,964 lines), 14.8 % (431 of 2,911) once the tokenizer files and the download checked less;
# 12.9 % (427 of 3,301) once the bonus day came, 10.97 % (353 of 3,219) after helper "slim" left checks
# at the entry points only, 9.76 % (310 of 3,176) once helper "terse" made most messages one line; the
# ceiling is what holds today and only ever goes down.
CHECKING_SHARE_TARGET = 0.10
CHECKING_SHARE_CEILING = 0.098  # 9.76 % measured


def shape_problems(modules: dict[str, Stats], share_bound: float) -> list[str]:
    """Every bound that ``modules`` (name -> stats) breaks, one line each."""
    problems = [f"{name}: {stats.code_lines} code lines (at most {MAX_MODULE_CODE_LINES}); split it by idea"
                for name, stats in modules.items() if stats.code_lines > MAX_MODULE_CODE_LINES]
    total = Stats(sum(s.code_lines for s in modules.values()), sum(s.checking_lines for s in modules.values()))
    seven_days = sum(s.code_lines for name, s in modules.items() if name not in BONUS_MODULES)
    if seven_days > MAX_TOP_LEVEL_CODE_LINES:
        problems.append(f"top level: {seven_days} code lines in the seven days' modules "
                        f"(at most {MAX_TOP_LEVEL_CODE_LINES})")
    bonus = sum(s.code_lines for name, s in modules.items() if name in BONUS_MODULES)
    if bonus > MAX_BONUS_CODE_LINES:
        problems.append(f"bonus day: {bonus} code lines in {', '.join(BONUS_MODULES)} (at most {MAX_BONUS_CODE_LINES})")
    if total.share > share_bound:
        problems.append(f"checking share {total.share:.1%} ({total.checking_lines} of {total.code_lines} lines) "
                        f"over {share_bound:.1%}: check at entry points, let internal calls trust their callers")
    return problems


def top_level() -> dict[str, Stats]:
    return {path.stem: measure(path.read_text(encoding="utf-8")) for path in top_level_modules()}


SAMPLE = '''"""A module docstring
over two lines."""
import os  # a comment after code is code


def f(x: int) -> int:
    """A function docstring."""
    # a comment-only line
    assert x >= 0
    if (x > 10
            and x < 20):
        raise ValueError(
            "x is in the teens")
    elif x == 3:
        x += 1
    if x == 5:
        print("five")
        raise ValueError("five")
    try:
        return int(os.environ["X"])
    except KeyError:
        return x
    except (ValueError,
            TypeError) as error:
        raise RuntimeError("bad X") from error
'''


def test_measure_counts_code_and_checking_lines_of_a_known_source():
    # code: import, def, assert, if(2), raise(2), elif, x += 1, if, print, raise, try, return,
    # except KeyError, return x, except(2), raise = 19
    # checking: assert, if test(2), raise(2), if x == 5, raise("five"), except header(2), raise = 10
    # (``elif x == 3`` does not end in a raise; ``except KeyError`` does not raise)
    assert measure(SAMPLE) == Stats(code_lines=19, checking_lines=10)


def test_the_bounds_trip_on_synthetic_sources():
    long_module = measure("x = 1\n" * (MAX_MODULE_CODE_LINES + 1))
    assert any("split it by idea" in p for p in shape_problems({"long": long_module}, 1.0))
    many = {f"m{i}": measure("x = 1\n" * 100) for i in range(MAX_TOP_LEVEL_CODE_LINES // 100 + 1)}
    assert any(p.startswith("top level") for p in shape_problems(many, 1.0))
    # the bonus day is left out of the seven days' bound, and has its own
    just_under = {f"m{i}": measure("x = 1\n" * 100) for i in range(MAX_TOP_LEVEL_CODE_LINES // 100)}
    bonus_at_bound = measure("x = 1\n" * MAX_BONUS_CODE_LINES)
    assert shape_problems({**just_under, "modern": bonus_at_bound}, 1.0) == []
    bonus_over = {"modern": measure("x = 1\n" * (MAX_BONUS_CODE_LINES + 1)), "m": measure("x = 1\n")}
    assert any(p.startswith("bonus day") for p in shape_problems(bonus_over, 1.0))
    assert any(p.startswith("top level") for p in shape_problems({**just_under, "m": measure("x = 1\n")}, 1.0))
    checky = measure("x = 1\nif x:\n    raise ValueError('x')\n")  # 2 of 3 lines check
    assert any("checking share" in p for p in shape_problems({"checky": checky}, CHECKING_SHARE_CEILING))
    assert shape_problems({"fine": measure("x = 1\ny = 2\n")}, CHECKING_SHARE_CEILING) == []


def test_the_top_level_is_small_and_checks_stay_under_the_ceiling():
    assert shape_problems(top_level(), CHECKING_SHARE_CEILING) == []


def test_the_checking_share_meets_issue_21s_target():
    assert shape_problems(top_level(), CHECKING_SHARE_TARGET) == []
