"""Day 7: synthetic instruction tasks — offline data whose answers can be checked exactly.

Real instruction data (Alpaca, Raschka's ``instruction-data.json``: ``gptlib.instruct.load_instruction_json``
reads them) must be downloaded, and a free-form answer can only be judged by eye. ``synthetic_instructions``
makes records in the same ``{"instruction", "input", "output"}`` layout, seeded, from a word list and the
numbers 100..999, with every test input held out from training: whether finetuning taught the model to
follow instructions then has an exact answer (``gptlib.instruct.exact_match``).
"""
from __future__ import annotations

import random
from typing import Sequence

from .checks import whole_number

__all__ = ["WORDS", "NUMBER_TASKS", "TASKS", "DEFAULT_TASKS", "synthetic_instructions"]

Record = dict[str, str]  # {"instruction", "input", "output"}

WORDS: tuple[str, ...] = tuple("""
apple river stone cloud bread horse light sword crown flower table water green night house queen music
tiger paper bird ship snow rain fire gold silver king moon star tree book door lamp road wind wolf fish
milk salt ring hill lake rose bell coat drum frog goat iron kite leaf mask nest pear rope seed sand tent
wall yard heart honey lemon candle garden window forest castle summer winter mirror bridge island letter
monkey orange pencil rabbit silk violet
""".split())  # the order matters: the seeded shuffle starts from it

NUMBER_TASKS = {  # task -> (instruction, answer for the number n)
    "parity": ("Is the number even or odd?", lambda n: "even" if n % 2 == 0 else "odd"),
    "above": ("Is the number greater than 500? Answer yes or no.", lambda n: "yes" if n > 500 else "no"),
    "first_digit": ("What is the first digit of the number?", lambda n: str(n)[0]),
    "last_digit": ("What is the last digit of the number?", lambda n: str(n)[-1]),
}
TASKS: tuple[str, ...] = (*NUMBER_TASKS, "repeat", "first_word", "last_word")
DEFAULT_TASKS: tuple[str, ...] = tuple(NUMBER_TASKS)


def _make_record(task: str, rng: random.Random, words: Sequence[str], numbers: Sequence[int]) -> Record:
    n = rng.choice(numbers)  # drawn for every task, so the seeded stream moves the same way whatever the mix
    if task in NUMBER_TASKS:
        instruction, reply = NUMBER_TASKS[task]
        return {"instruction": instruction, "input": str(n), "output": reply(n)}
    if task == "repeat":
        w = rng.choice(words)
        return {"instruction": "Repeat the word.", "input": w, "output": w}
    a, b, c = rng.sample(list(words), 3)  # first_word / last_word
    which = task.split("_")[0]
    return {"instruction": f"What is the {which} word of the list?", "input": f"{a}, {b}, {c}",
            "output": a if which == "first" else c}


def synthetic_instructions(n_train: int = 400, n_test: int = 80, seed: int = 123,
                           tasks: Sequence[str] = DEFAULT_TASKS) -> tuple[list[Record], list[Record]]:
    """Deterministic instruction records whose answers can be checked exactly.

    Default tasks (``NUMBER_TASKS``), on three-digit numbers: short answers a small model learns on
    a CPU in seconds, e.g. "Is the number even or odd?" / ``347`` -> ``odd``. Harder tasks, through
    ``tasks=``: ``repeat`` ("Repeat the word." / ``river`` -> ``river``), ``first_word`` /
    ``last_word`` (``apple, moon, kite`` -> ``apple``). They need the model to *copy* a multi-token
    word from the prompt, which day 5's tiny model does not learn within the notebook's budget.
    Letter-level tasks (reverse, uppercase) are left out on purpose: a BPE model sees tokens, not letters.

    Held out: the numbers 100..999 and the words are split (seeded) into a training pool (80%)
    and a test pool (20%); test records use only the test pool, so every test input is new to
    the model (the instruction wordings are shared). Training records cycle through ``tasks``
    so each is equally common; test records are distinct (a task whose held-out pool runs out
    of distinct inputs leaves its place to the others).
    """
    whole_number("n_train", n_train)
    whole_number("n_test", n_test)
    if not tasks or not set(tasks) <= set(TASKS):
        raise ValueError(f"tasks must name at least one of {TASKS}, got {tasks!r}")
    rng = random.Random(seed)
    words = list(WORDS)
    numbers = list(range(100, 1000))
    rng.shuffle(words)
    rng.shuffle(numbers)
    cut_w, cut_n = len(words) * 4 // 5, len(numbers) * 4 // 5
    train_pool, test_pool = (words[:cut_w], numbers[:cut_n]), (words[cut_w:], numbers[cut_n:])
    train = [_make_record(tasks[i % len(tasks)], rng, *train_pool) for i in range(n_train)]
    test: dict[tuple[str, str], Record] = {}  # distinct (instruction, input) pairs, in the order drawn
    for attempt in range(100 * n_test):
        record = _make_record(tasks[attempt % len(tasks)], rng, *test_pool)
        test.setdefault((record["instruction"], record["input"]), record)
        if len(test) == n_test:
            return train, list(test.values())
    raise ValueError(f"cannot make {n_test} distinct test records from the held-out pool; ask for fewer")
