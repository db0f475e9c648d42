"""Day 6's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

import torch
from exercise_harness import exercise_sources, four_way_tests, more_alternatives_test

from gptlib.course.exercises.day6 import TOP_K_CASES, TOP_P_CASES
from gptlib.generate import next_token_probs, top_k_filter, top_p_filter

STUBS = exercise_sources("notebooks/day6_generate.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day6_solutions.ipynb")

TEMPERATURE = "def probs_at_temperature(logits, temperature):\n    return {}"

TOP_K = ("def top_k_probs(logits, k):\n    top = torch.topk(logits, {k}, dim=-1{largest}).indices\n"
         "    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)\n    return {out}")
SOFTMAX_KEPT = 'torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=-1)'

TOP_P = ("def top_p_probs(logits, p):\n    probs = torch.softmax(logits, dim=-1)\n"
         "    sorted_probs, order = torch.sort({sort_what}, dim=-1, descending=True)\n"
         "    keep_sorted = {keep_sorted}\n"
         "    keep = {keep}\n    return {out}")
MASS_BEFORE = "torch.cumsum(sorted_probs, dim=-1) - sorted_probs < p"
SCATTER = "torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)"


def top_p(sort_what="probs", keep_sorted=MASS_BEFORE, keep=SCATTER, out=SOFTMAX_KEPT):
    return TOP_P.format(sort_what=sort_what, keep_sorted=keep_sorted, keep=keep, out=out)


SAMPLE = ("def sample_token(logits, temperature, generator):\n{greedy}"
          "    probs = torch.softmax({scaled}, dim=-1)\n    return {draw}")
GREEDY = "    if temperature == 0:\n        return logits.argmax(dim=-1)\n"
DRAW = "torch.multinomial(probs, 1, generator=generator).squeeze(-1)"


def sample(greedy=GREEDY, scaled="logits / temperature", draw=DRAW):
    return SAMPLE.format(greedy=greedy, scaled=scaled, draw=draw)


WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "6.1": [
        (TEMPERATURE.format("torch.softmax(logits * temperature, dim=-1)"), "multiplied by T"),
        (TEMPERATURE.format("torch.softmax(logits, dim=-1) ** (1 / temperature)"), "must be renormalised"),
        (TEMPERATURE.format("torch.softmax(logits, dim=-1) ** temperature"), "applied to the probabilities"),
        (TEMPERATURE.format("torch.softmax(logits, dim=-1) / temperature"), "divided the probabilities"),
        (TEMPERATURE.format("torch.softmax(logits, dim=-1)"), "changes nothing"),
        (TEMPERATURE.format("torch.softmax(logits / temperature, dim=0)"), "wrong dimension"),
        (TEMPERATURE.format("torch.exp(logits / temperature)"), "divided by its row's sum"),
        ("def probs_at_temperature(logits, temperature):\n    logits /= temperature\n    return torch.softmax(logits, dim=-1)",
         "changed the tensor it was given (argument 1"),
        (TEMPERATURE.format("torch.softmax(logits - temperature, dim=-1)"), "changes nothing"),
        (TEMPERATURE.format("torch.softmax(logits / temperature, dim=-1).tolist()"), "got list"),
        ("def probs_at_temperature(logits, temperature):\n    e = torch.exp(logits / temperature)\n"
         "    return e / e.sum(dim=-1, keepdim=True)", "overflowed"),
    ],
    "6.2": [
        (TOP_K.format(k="k + 1", largest="", out=SOFTMAX_KEPT), "off by one"),
        (TOP_K.format(k="k", largest=", largest=False", out=SOFTMAX_KEPT), "least likely"),
        (TOP_K.format(k="k", largest="", out="torch.softmax(logits.masked_fill(~keep, 0.0), dim=-1)"),
         "set to 0 instead of -inf"),
        (TOP_K.format(k="k", largest="", out="torch.softmax(logits, dim=-1) * keep"), "renormalise"),
        (TOP_K.format(k="k", largest="", out='logits.masked_fill(~keep, float("-inf"))'), "holds -inf"),
        ("def top_k_probs(logits, k):\n    kth = torch.topk(logits, k, dim=-1).values[..., -1:]\n"
         "    return torch.softmax(logits.masked_fill(logits < kth, float('-inf')), dim=-1)", "tied"),
        ("def top_k_probs(logits, k):\n    return torch.softmax(logits, dim=-1)", "nothing was cut"),
    ],
    "6.3": [
        (top_p(keep_sorted="torch.cumsum(sorted_probs, dim=-1) <= p"), "crosses p"),
        (top_p(keep_sorted="torch.cumsum(sorted_probs, dim=-1) < p"), "crosses p"),
        (top_p(keep="torch.cumsum(probs, dim=-1) - probs < p"), "sort the probabilities"),
        (top_p(keep="keep_sorted"), "wrong places"),
        (top_p(sort_what="logits", keep_sorted="torch.cumsum(sorted_probs, dim=-1) - sorted_probs < p"),
         "cumulative logits"),
        (top_p(out="probs * keep"), "renormalise"),
        ("def top_p_probs(logits, p):\n    return torch.softmax(logits, dim=-1)", "nothing was cut"),
        (top_p(out="torch.softmax(logits.masked_fill(~keep, 0.0), dim=-1)"), "set to 0 instead of -inf"),
        (top_p(keep_sorted="torch.cumsum(sorted_probs, dim=-1) - sorted_probs <= p + 0.05"), "stop as soon as"),
        (TOP_P.replace("descending=True", "descending=False").format(sort_what="probs", keep_sorted=MASS_BEFORE,
                                                                   keep=SCATTER, out=SOFTMAX_KEPT), "ascending order"),
        (TOP_P.replace("descending=True", "").format(sort_what="probs", keep_sorted=MASS_BEFORE,
                                                    keep=SCATTER, out=SOFTMAX_KEPT), "ascending order"),
        (top_p(out="torch.softmax(logits.masked_fill(~keep, float('-inf')), dim=-1).numpy()"), "not a NumPy"),
    ],
    "6.4": [
        (sample(draw="torch.multinomial(probs[0], probs.shape[0], replacement=True, generator=generator)"),
         "its own logits"),  # once passed: every row of the check's sampling input was the same
        (sample(draw="probs.argmax(dim=-1)"), "is the most likely token"),
        (sample(draw="torch.multinomial(probs, 1).squeeze(-1)"), "same seed gave different tokens"),
        (sample(scaled="logits"), "follow temperature 1"),
        (sample(scaled="logits * temperature"), "don't multiply"),
        (sample(greedy=""), "T = 0 means greedy"),
        (sample(greedy="    if temperature == 0:\n        return torch.multinomial(torch.softmax(logits, -1), 1, "
                       "generator=generator).squeeze(-1)\n"), "argmax(-1): greedy"),
        (sample(draw="probs"), "one token id per row: an int64 tensor"),
        (sample(draw="torch.multinomial(probs, 1, generator=generator)"), "(20000, 1) column"),
        (sample(greedy="    if temperature == 0:\n        return logits.argmax(dim=-1, keepdim=True)\n"), "(5, 1) column"),
        (sample(draw="torch.multinomial(probs, 1, generator=generator).squeeze(-1).int()"), "torch.int32"),
        (sample(draw="torch.multinomial(probs, 1, generator=generator).squeeze(-1).tolist()"), "got list"),
        (sample(greedy="    if temperature == 0:\n        return logits.argmax()\n"), "got () torch.int64"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "6.1": "def probs_at_temperature(logits, temperature):\n"
           "    z = (logits - logits.max(dim=-1, keepdim=True).values) / temperature\n"
           "    e = z.exp()\n"
           "    return e / e.sum(dim=-1, keepdim=True)",
    "6.2": "def top_k_probs(logits, k):\n"
           "    probs = torch.softmax(logits, dim=-1)\n"
           "    flat = probs.reshape(-1, probs.shape[-1])\n"
           "    out = torch.zeros_like(flat)\n"
           "    for row, o in zip(flat, out):\n"
           "        best = row.argsort(descending=True)[:k]\n"
           "        o[best] = row[best] / row[best].sum()\n"
           "    return out.reshape(probs.shape)",
    "6.3": "def top_p_probs(logits, p):\n"
           "    probs = torch.softmax(logits, dim=-1)\n"
           "    flat = probs.reshape(-1, probs.shape[-1])\n"
           "    out = torch.zeros_like(flat)\n"
           "    for row, o in zip(flat, out):\n"
           "        mass = 0.0\n"
           "        for i in row.argsort(descending=True).tolist():\n"
           "            if mass >= p:\n"
           "                break\n"
           "            o[i] = row[i]\n"
           "            mass += float(row[i])\n"
           "        o /= o.sum()\n"
           "    return out.reshape(probs.shape)",
    "6.4": "def sample_token(logits, temperature, generator):\n"
           "    if not temperature:\n"
           "        return logits.argmax(-1)\n"
           "    cdf = torch.softmax(logits / temperature, -1).cumsum(-1)\n"
           "    u = torch.rand(logits.shape[0], 1, generator=generator)\n"
           "    return (cdf < u).sum(-1).clamp(max=logits.shape[-1] - 1)",
}


def test_the_library_passes_its_own_checks():
    """The checks hold gptlib.generate to the same standard as a learner: its processors pass."""
    library = {
        "6.1": lambda logits, t: next_token_probs(logits, t),
        "6.2": lambda logits, k: torch.softmax(top_k_filter(logits, k), dim=-1),
        "6.3": lambda logits, p: torch.softmax(top_p_filter(logits, p), dim=-1),
    }
    from gptlib.course.exercises import run
    for name, fn in library.items():
        assert run(name, fn).passed, run(name, fn).line


def test_the_cases_test_what_they_claim():
    """A tie at the k-th value really is in the top-k cases, and a row whose top token alone holds more
    than p really is in the top-p cases (so 'keeps a tie' and 'drops the crossing token' are caught)."""
    logits, k = TOP_K_CASES[-1]
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]
    assert bool(((logits == kth).sum(-1) > 1).all())
    logits, p = TOP_P_CASES[-1]
    assert float(torch.softmax(logits, dim=-1).max()) > p


LOOP = SOLUTIONS["6.5"][0]


def loop(old: str, new: str) -> str:
    """The reference generation loop with ``old`` replaced by ``new`` (which must occur exactly once)."""
    assert LOOP.count(old) == 1, old
    return LOOP.replace(old, new)


WRONG["6.5"] = [
    (loop("    for _ in range(max_new_tokens):\n", "    model.train()\n    for _ in range(max_new_tokens):\n"),
     "training mode"),  # once passed: the check's model had no dropout
    (loop("model(ids[:, -context_length:])", "model(ids)"), "crop the input to its last context_length ids"),
    (loop("model(ids[:, -context_length:])", "model(ids[:, :context_length])"), "you kept the first"),
    (loop("model(ids[:, -context_length:])", "model(ids[:, -context_length + 1:])"), "one id less"),
    (loop("pick(logits[:, -1, :])", "pick(logits[:, 0, :])"), "first position's logits"),
    (loop("    for _ in range(max_new_tokens):\n", "    prompt = ids\n    for _ in range(max_new_tokens):\n")
     .replace("model(ids[:, -context_length:])", "model(prompt[:, -context_length:])"), "read the prompt again"),
    (loop("    return ids", "    return ids[:, -max_new_tokens:]"), "only the 7 new ids"),
    (loop("range(max_new_tokens)", "range(max_new_tokens - 1)"), "must be (2, 16)"),
    (loop("    return ids", "    return ids.float()"), "torch.long"),
    (loop("torch.cat([ids, next_id.unsqueeze(1)], dim=1)", "torch.cat([ids, next_id], dim=1)"), "raised RuntimeError"),
    (loop("pick(logits[:, -1, :])", "pick(logits[:, -1, :]) if _ % 2 else logits[:, -1, :].argmax(-1)"),
     "with a sampling pick"),
    (loop("    return ids", "    return ids[0]"), "one row per prompt"),
    (loop("torch.cat([ids, next_id.unsqueeze(1)], dim=1)", "torch.cat([ids, next_id.unsqueeze(1)], dim=1)[:, -context_length:]"),
     "only the last 6 ids"),
]

ALTERNATIVE["6.5"] = (
    "def generate_loop(model, ids, max_new_tokens, context_length, pick):\n"
    "    tokens = [row.tolist() for row in ids]\n"
    "    for _ in range(max_new_tokens):\n"
    "        with torch.no_grad():\n"
    "            window = torch.tensor([row[max(0, len(row) - context_length):] for row in tokens])\n"
    "            chosen = pick(model(window)[:, -1])\n"
    "        for row, token in zip(tokens, chosen.tolist()):\n"
    "            row.append(token)\n"
    "    return torch.tensor(tokens)")


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["6.3"] += [
    (top_p(keep="keep_sorted.gather(-1, order)"), "keep_sorted.gather(-1, order) reads"),  # once "sort ... descending"
    (top_p(keep_sorted=MASS_BEFORE.replace("dim=-1", "dim=0")), "runs down the batch"),
]
WRONG["6.4"] += [
    (sample(draw="torch.multinomial(probs, 1).squeeze(-1)").replace("    probs =", "    torch.manual_seed(0)\n    probs ="),
     "two generators with different seeds gave the same tokens"),
    (sample().replace("temperature, dim=-1)", "temperature, dim=0)"), "uniform over the 6 tokens"),
]
WRONG["6.5"] += [
    (loop("pick(logits[:, -1, :])", "pick(torch.softmax(logits[:, -1, :], dim=-1))"), "you gave it probabilities"),
]


WRONG["6.1"] += [(TEMPERATURE.format("torch.log_softmax(logits / temperature, dim=-1)"), "log-probabilities")]

WRONG["6.2"] += [("def top_k_probs(logits, k):\n    kth = torch.topk(logits, k, dim=-1).values[..., -1:]\n"
                  "    logits[logits < kth] = float('-inf')\n    return torch.softmax(logits, dim=-1)",
                  "changed the tensor it was given (argument 1")]


test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "6.1": [
        # power and renormalise
        'def probs_at_temperature(logits, temperature):\n'
        '    p = torch.softmax(logits.double(), dim=-1) ** (1 / temperature)\n'
        '    return (p / p.sum(-1, keepdim=True)).float()',
    ],
    "6.2": [
        # scatter softmax of values
        'def top_k_probs(logits, k):\n'
        '    top = torch.topk(logits, k)\n'
        '    return torch.zeros_like(logits).scatter(-1, top.indices, top.values.softmax(-1))',
    ],
    "6.3": [
        # computed and returned in float64
        'def top_p_probs(logits, p):\n'
        '    probs = torch.softmax(logits.double(), dim=-1)\n'
        '    s, o = probs.sort(dim=-1, descending=True)\n'
        '    keep = (s.cumsum(-1) - s < p).scatter(-1, o, (s.cumsum(-1) - s < p))\n'
        '    out = torch.where(keep, probs, torch.zeros(()))\n'
        '    return out / out.sum(-1, keepdim=True)',
        # HF shift-right remove
        'def top_p_probs(logits, p):\n'
        '    sorted_logits, idx = torch.sort(logits, descending=True)\n'
        '    cum = sorted_logits.softmax(-1).cumsum(-1)\n'
        '    remove = cum > p\n'
        '    remove[..., 1:] = remove[..., :-1].clone()\n'
        '    remove[..., 0] = False\n'
        '    mask = remove.scatter(-1, idx, remove)\n'
        "    return logits.masked_fill(mask, float('-inf')).softmax(-1)",
    ],
    "6.4": [
        # the temperature clamped away from 0, greedy read off the one-hot that results
        'def sample_token(logits, temperature, generator):\n'
        '    probs = torch.softmax(logits / max(temperature, 1e-8), dim=-1)\n'
        '    if temperature == 0:\n'
        '        return probs.argmax(-1)\n'
        '    return torch.multinomial(probs, 1, True, generator=generator).view(-1)',
        # unnormalised powered probs
        'def sample_token(logits, temperature, generator):\n'
        '    if temperature == 0:\n'
        '        return logits.argmax(dim=-1)\n'
        '    w = torch.softmax(logits, -1) ** (1 / temperature)\n'
        '    return torch.multinomial(w, 1, generator=generator)[:, 0]',
    ],
    "6.5": [
        # list of columns
        'def generate_loop(model, ids, max_new_tokens, context_length, pick):\n'
        '    model.eval()\n'
        '    with torch.inference_mode():\n'
        '        for _ in range(max_new_tokens):\n'
        '            nxt = pick(model(ids[:, max(0, ids.size(1) - context_length):])[:, -1])\n'
        '            ids = torch.cat((ids, nxt[:, None]), dim=-1)\n'
        '    return ids',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"6.1", "6.2", "6.3", "6.4", "6.5"})
