"""The checker itself: one line for every misuse (an unknown or non-string id, a missing answer, a NumPy
result), a learner's exception as a FAIL line naming it and its input, an endless loop stopped by the
time limit while the kernel's interrupt still works, and verdict words that read without emoji fonts."""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest
import torch

import gptlib.course.exercises as exercises
from gptlib.course.exercises import check, run


def _scores(q, k):
    return q @ k.T / k.shape[-1] ** 0.5


def test_verdicts_carry_a_word():
    assert run("3.1", _scores).line.startswith("✅ PASS 3.1 ")
    assert run("3.1", lambda q, k: q @ k.T).line.startswith("❌ FAIL 3.1 ")
    assert run("3.1", lambda q, k: None).line.startswith("⏳ TODO 3.1 ")


def test_chinese_verdicts_carry_a_word(chinese_edition):
    assert run("3.1", _scores).line.startswith("✅ 通过 3.1 ")
    assert run("3.1", lambda q, k: q @ k.T).line.startswith("❌ 未通过 3.1 ")
    assert run("3.1", lambda q, k: None).line.startswith("⏳ 未完成 3.1 ")


@pytest.mark.parametrize("name, fragment", [("9.1", "no exercise '9.1'; the exercises are 1.1, 1.2"),
                                            ("3.9", "no exercise '3.9'"), ("x", "no exercise 'x'"),
                                            (3.2, 'check("3.2", your_answer)')])
def test_a_wrong_id_gets_one_line(name, fragment, capsys):
    check(name, _scores)
    out = capsys.readouterr().out
    assert out.startswith("❌ FAIL") and fragment in out and out.count("\n") == 1, out


def test_an_answer_that_is_not_a_function_gets_one_line():
    line = run("3.1", 42).line
    assert line == '❌ FAIL 3.1 pass the function or class you wrote (its name, without calling it): check("3.1", ' \
                   'your_function), not a int', line


def test_a_function_shows_by_name_never_by_address():
    def my_answer(q, k):
        return q @ k.T
    assert exercises.describe(my_answer) == "my_answer" and exercises.describe(torch.nn.Linear) == "Linear"
    assert exercises.describe(torch.nn.Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"
    assert exercises.describe(torch.nn.Sequential(torch.nn.Linear(2, 3))) == "Sequential"
    assert exercises.describe(torch.zeros(2, 3, dtype=torch.int64)) == "tensor(2, 3) int64"


def test_a_missing_answer_gets_one_line(capsys):
    check("3.1")
    out = capsys.readouterr().out
    assert out.startswith("❌ FAIL 3.1 ") and 'check("3.1", your_function_or_class)' in out, out


@pytest.mark.parametrize("answer, fragment", [
    (lambda q, k: (q @ k.T / k.shape[-1] ** 0.5).numpy(), "not a NumPy ndarray"),
    (lambda q, k: (q @ k.T / k.shape[-1] ** 0.5).tolist(), "list"),
    (lambda q, k: "q @ k.T / sqrt(d)", "str"),
    (lambda q, k: np.float64(1.0), "return a torch tensor, not a float64"),  # a NumPy float is a float
])
def test_answers_of_another_kind_get_a_clear_line(answer, fragment):
    line = run("3.1", answer).line
    assert line.startswith("❌ FAIL 3.1 ") and fragment in line and "got (" not in line, line


def test_an_exception_names_its_kind_message_and_input():
    def scores(q, k):
        return q @ k  # (T, d) @ (T, d): the shapes do not fit
    line = run("3.1", scores).line
    assert line.startswith("❌ FAIL 3.1 your code raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"), line
    assert "(on input tensor(" in line and "float32" in line and "\n" not in line, line


def test_an_endless_loop_is_stopped_and_the_timer_is_given_back(monkeypatch):
    monkeypatch.setattr(exercises, "TIME_LIMIT", 0.5)
    handler = signal.getsignal(signal.SIGALRM)

    def scores(q, k):
        while True:
            try:
                time.sleep(0.01)
            except Exception:  # a learner's catch-all does not swallow the time-out
                pass
    start = time.monotonic()
    line = run("3.1", scores).line
    assert time.monotonic() - start < 5
    assert line.startswith("❌ FAIL 3.1 your code ran past 0.5 s on input tensor("), line
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert run("3.1", _scores).passed  # a right answer after a time-out still passes


def test_the_kernels_interrupt_still_stops_a_check():
    def scores(q, k):
        raise KeyboardInterrupt  # what Jupyter's interrupt button raises in the running cell
    with pytest.raises(KeyboardInterrupt):
        run("3.1", scores)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_results_are_compared_on_the_cpu_whatever_their_device():
    meta = torch.empty(2, device="meta")  # stands for a CUDA or MPS tensor on a machine without one
    assert exercises._on_cpu(torch.ones(2)).device.type == "cpu"
    assert exercises._on_cpu((torch.ones(2), 3))[1] == 3
    with pytest.raises(NotImplementedError):  # proves _on_cpu does move a non-CPU tensor (meta cannot move)
        exercises._on_cpu(meta)
    assert exercises.close(torch.ones(2, dtype=torch.float16), torch.ones(2))


def test_an_answer_that_loops_only_on_a_later_case_is_stopped_once(monkeypatch):
    """1.3 recomputes the answer on every case to name a mistake: a time-out there ends the diagnosis
    instead of waiting out the limit once per remaining case."""
    monkeypatch.setattr(exercises, "TIME_LIMIT", 0.3)

    def encode_chunk(ids, merges):
        while len(ids) > 11:  # 15 of the 47 cases; the first has 11 ids
            pass
        return list(ids)  # no merge at all: wrong on the first case, which then runs every case
    start = time.monotonic()
    line = run("1.3", encode_chunk).line
    assert time.monotonic() - start < 3 and line.startswith("❌ FAIL 1.3 "), (time.monotonic() - start, line)
    # proof that the bound tells: with the early stop undone, the limit is waited out once per looping case
    from gptlib.course.exercises import day1

    class Never(Exception):
        pass
    monkeypatch.setattr(day1, "TimedOut", Never)
    start = time.monotonic()
    run("1.3", encode_chunk)
    assert time.monotonic() - start > 3


def test_an_operation_torch_has_not_implemented_is_a_bug_not_a_stub():
    """``x ^ 3`` on a float tensor raises NotImplementedError inside torch: that is the learner's bug (a FAIL
    line naming it), while their own ``raise NotImplementedError`` still reads as an untouched stub."""
    def gelu(x):
        return 0.5 * x * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * x ^ 3)))

    def stub(x):
        raise NotImplementedError("write gelu")
    line = run("4.2", gelu).line
    assert line.startswith("❌ FAIL 4.2 your code raised NotImplementedError: \"bitwise_xor_cpu\" not implemented"), line
    assert run("4.2", stub).status == "not done"
