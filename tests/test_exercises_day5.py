"""Day 5's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, more_alternatives_test

STUBS = exercise_sources("notebooks/day5_pretrain.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day5_solutions.ipynb")

PAIRS = ("def input_target_pairs(token_ids, max_length, stride):\n"
         "    starts = {starts}\n"
         "    inputs = torch.stack([token_ids[s:s + max_length] for s in starts])\n"
         "    targets = torch.stack([token_ids[{target}] for s in starts])\n"
         "    return {result}")  # the windows with one mistake filled in


def pairs(starts="range(0, len(token_ids) - max_length, stride)", target="s + 1:s + max_length + 1",
          result="inputs, targets") -> str:
    return PAIRS.format(starts=starts, target=target, result=result)


LOSS = ("def cross_entropy(logits, targets):\n"
        "    log_probs = torch.log_softmax(logits, dim=-1)\n"
        "    return {}")  # a loss with the mistake filled in
PICK = "log_probs.gather(-1, targets.unsqueeze(-1))"


def loop_with(*replacements: tuple[str, str]) -> str:
    """The reference solution of 5.3 with some of its lines made wrong on purpose."""
    source = SOLUTIONS["5.3"][0]
    for old, new in replacements:
        assert old in source, old
        source = source.replace(old, new)
    return source


ZERO = "        optimizer.zero_grad()\n"
BACKWARD = "        loss.backward()\n"
STEP = "        optimizer.step()\n"

WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "5.1": [
        (pairs(target="s:s + max_length"), "targets equal the inputs"),
        (pairs(result="targets, inputs"), "swapped"),
        (pairs(starts="range(0, len(token_ids) - max_length)"), "not every stride"),
        (pairs(starts="range(0, len(token_ids) - max_length, max_length)"), "not every stride"),
        (pairs(starts="range(0, len(token_ids) - max_length - 1, stride)"), "the last window is missing"),
        (pairs(starts="range(0, len(token_ids) - max_length + 1, stride)"), "runs past the end"),
        ("def input_target_pairs(token_ids, max_length, stride):\n"
         "    return [(token_ids[s:s + max_length], token_ids[s + 1:s + max_length + 1])\n"
         "            for s in range(0, len(token_ids) - max_length, stride)]", "list of"),
        (pairs(result="inputs.float(), targets.float()"), "hold float32 numbers"),
        (pairs(result="inputs.int(), targets.int()"), "hold int32 numbers"),
        (pairs(result="inputs, targets.to(torch.int32)"), "hold int32 numbers"),
        (pairs(result="inputs.numpy(), targets.numpy()"), "must be torch tensors, one window per row (torch.stack the windows), got ndarray, ndarray"),
        (pairs(result="inputs.tolist(), targets.tolist()"), "got list, list"),
    ],
    "5.2": [
        (LOSS.format("-torch.softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).mean()"), "without the log"),
        (LOSS.format("-torch.log(logits.gather(-1, targets.unsqueeze(-1))).mean()"), "not of the logits"),
        (LOSS.format(f"-{PICK}.sum()"), "summed over"),
        (LOSS.format(f"-{PICK}.squeeze(-1).sum(-1).mean()"), "averaged only over the batch"),
        (LOSS.format("-torch.log_softmax(logits, dim=1).gather(-1, targets.unsqueeze(-1)).mean()"),
         "wrong dimension"),
        (LOSS.format("-log_probs.mean()"), "every vocabulary entry"),
        (LOSS.format("-log_probs.max(dim=-1).values.mean()"), "most likely token"),
        ("def cross_entropy(logits, targets):\n"
         "    probs = torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)\n"
         "    return -torch.log(probs.gather(-1, targets.unsqueeze(-1))).mean()", "overflows"),
        ("def cross_entropy(logits, targets):\n"
         "    return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()", "return a tensor"),
        ("def cross_entropy(logits, targets):\n"
         "    return torch.tensor(F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item())",
         "no gradient"),
        (LOSS.format(f"-({PICK} / math.log(2)).mean()"), "log base 2"),
        (LOSS.format("-(torch.log2(torch.softmax(logits, dim=-1)).gather(-1, targets.unsqueeze(-1))).mean()"), "log base 2"),
        (LOSS.format("-(F.one_hot(targets, logits.shape[-1]) * log_probs).mean()"), "divided by the vocabulary size"),
        (LOSS.format(f"-{PICK}.mean().item()"), "return a tensor"),
        (LOSS.format(f"-{PICK}.squeeze(-1)"), "one number"),
        (LOSS.format(f"{PICK}.mean()"), "the minus sign is missing"),
        ("def cross_entropy(logits, targets):\n    logits -= logits.max(dim=-1, keepdim=True).values\n"
         "    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())", "used in an in-place operation"),
    ],
    "5.3": [
        (loop_with((ZERO, "")), "gradients accumulate"),
        (loop_with(("loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())",
                    "loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')")),
         "reduction='sum'"),
        (loop_with((STEP, ""), ("        logits = model(inputs)", STEP + "        logits = model(inputs)")),
         "the last batch's step is missing"),
        (loop_with((ZERO + BACKWARD + STEP, STEP + ZERO + BACKWARD)), "between the forward pass and backward()"),
        (loop_with((ZERO + BACKWARD + STEP, ZERO + STEP + BACKWARD)), "never change"),
        (loop_with((BACKWARD, "")), "never change"),
        (loop_with((BACKWARD + STEP, BACKWARD + ZERO + STEP)), "never change"),
        (loop_with(("loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())",
                    "loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()"),
                   ("losses.append(loss.item())", "losses.append(loss)")), "plain number"),
        (loop_with(("F.cross_entropy(logits.flatten(0, 1), targets.flatten())", "F.cross_entropy(logits, targets)")),
         "flatten"),
        (loop_with(("    return losses", "    return losses[:-1]")), "3 losses for 4 batches"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "5.1": "def input_target_pairs(token_ids, max_length, stride):\n"
           "    windows = token_ids.unfold(0, max_length + 1, stride)   # (N, max_length + 1)\n"
           "    return windows[:, :-1], windows[:, 1:]",
    "5.2": "def cross_entropy(logits, targets):\n"
           "    target_logits = logits.gather(-1, targets[..., None])[..., 0]\n"
           "    return (torch.logsumexp(logits, dim=-1) - target_logits).sum() / targets.numel()",
    "5.3": "def train_steps(model, batches, optimizer):\n"
           "    model.train()\n"
           "    history = []\n"
           "    for x, y in batches:\n"
           "        logits = model(x)\n"
           "        log_p = torch.log_softmax(logits, dim=-1)\n"
           "        loss = -log_p.gather(-1, y.unsqueeze(-1)).mean()\n"
           "        loss.backward()\n"
           "        optimizer.step()\n"
           "        optimizer.zero_grad(set_to_none=False)   # cleared after the step, ready for the next batch\n"
           "        history.append(float(loss.detach()))\n"
           "    return history",
}


SCHEDULE = SOLUTIONS["5.4"][0]


def schedule(old: str, new: str) -> str:
    """The reference schedule with ``old`` replaced by ``new`` (which must occur exactly once)."""
    assert SCHEDULE.count(old) == 1, old
    return SCHEDULE.replace(old, new)


PROGRESS = "min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))"
WRONG["5.4"] = [
    (schedule("return (step + 1) / warmup_steps", "return step / warmup_steps"), "the warm-up starts at 0"),
    (schedule("    if step < warmup_steps:\n        return (step + 1) / warmup_steps", "    if False:\n        pass"),
     "there is no warm-up"),
    (schedule("return min_lr_ratio + (1 - min_lr_ratio) * cosine", "return cosine"), "decays to 0"),
    (schedule("return min_lr_ratio + (1 - min_lr_ratio) * cosine", "return min_lr_ratio + cosine"), "added on top"),
    (schedule(PROGRESS, "min(1.0, step / max_steps)"), "counts from step 0"),
    (schedule(PROGRESS, "(step - warmup_steps) / max(1, max_steps - warmup_steps)"), "rises again"),
    (schedule("0.5 * (1 + math.cos(math.pi * progress))", "1 - progress"), "linear decay"),
    (schedule("0.5 * (1 + math.cos(math.pi * progress))", "math.cos(math.pi * progress)"), "shift and halve"),
    (schedule("0.5 * (1 + math.cos(math.pi * progress))", "0.5 * (1 + math.cos(2 * math.pi * progress))"),
     "at step 11 (warmup_steps=10"),
    (schedule("return min_lr_ratio + (1 - min_lr_ratio) * cosine", "return str(cosine)"), "not a str"),
    (schedule("(step - warmup_steps) / max(1, max_steps - warmup_steps)", "(step - warmup_steps) / (max_steps - step)"),
     "raised ZeroDivisionError"),
]

ALTERNATIVE["5.4"] = (
    "def lr_multiplier(step, warmup_steps, max_steps, min_lr_ratio):\n"
    "    warm = (step + 1) / warmup_steps if warmup_steps else 1.0\n"
    "    t = max(0, min(step, max_steps) - warmup_steps) / max(1, max_steps - warmup_steps)\n"
    "    decayed = min_lr_ratio + (1 - min_lr_ratio) * (math.cos(math.pi * t) + 1) / 2\n"
    "    return torch.tensor(warm if step < warmup_steps else decayed)")


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["5.3"] += [
    (loop_with(("    losses = []", "    model.eval()\n    losses = []")), "evaluation mode"),
]
WRONG["5.4"] += [  # once "got 0.9997, expected 0.9997": now a step where the two differ in the digits shown
    (schedule("return min_lr_ratio + (1 - min_lr_ratio) * cosine", "return max(min_lr_ratio, cosine)"),
     "at step 15 (warmup_steps=10, max_steps=100, min_lr_ratio=0.1) got 0.9924, expected 0.9932"),
]


WRONG["5.2"] += [  # once passed: every case's targets held the last id, so F.one_hot(targets) was wide enough
    (LOSS.format("-(F.one_hot(targets) * log_probs).sum(-1).mean()"), "F.one_hot(targets) is only as wide"),
]
WRONG["5.3"] += [  # these three once got "one zero_grad, one backward and one step per batch, in that order"
    (loop_with((BACKWARD, BACKWARD + "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n")),
     "clips the gradients"),
    (loop_with(("    for inputs, targets in batches:\n", "    for _ in batches:\n        inputs, targets = batches[0]\n")),
     "every step trains on the first batch"),
    (loop_with(("    losses = []", "    optimizer = torch.optim.AdamW(model.parameters())\n    losses = []")),
     "your loop made its own"),
]


test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "5.1": [
        # while loop
        'def input_target_pairs(token_ids, max_length, stride):\n'
        '    xs, ys, s = [], [], 0\n'
        '    while s + max_length < len(token_ids):\n'
        '        xs.append(token_ids[s:s + max_length])\n'
        '        ys.append(token_ids[s + 1:s + max_length + 1])\n'
        '        s += stride\n'
        '    return torch.stack(xs), torch.stack(ys)',
    ],
    "5.2": [
        # nll_loss of log_softmax
        'def cross_entropy(logits, targets):\n'
        '    return F.nll_loss(F.log_softmax(logits, dim=-1).flatten(0, 1), targets.flatten())',
        # view(-1)
        'def cross_entropy(logits, targets):\n'
        '    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))',
    ],
    "5.3": [
        # model.zero_grad() before the forward pass
        'def train_steps(model, batches, optimizer):\n'
        '    out = []\n'
        '    for x, y in batches:\n'
        '        model.zero_grad()\n'
        '        loss = F.cross_entropy(model(x).view(-1, model(x).shape[-1]), y.view(-1))\n'
        '        loss.backward()\n'
        '        optimizer.step()\n'
        '        out.append(loss.item())\n'
        '    return out',
        # set_to_none float
        'def train_steps(model, batches, optimizer):\n'
        '    model.train()\n'
        '    losses = []\n'
        '    for inputs, targets in batches:\n'
        '        logits = model(inputs)\n'
        '        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())\n'
        '        optimizer.zero_grad(set_to_none=True)\n'
        '        loss.backward()\n'
        '        optimizer.step()\n'
        '        losses.append(loss.detach().item())\n'
        '    return losses',
    ],
    "5.4": [
        # branchy
        'def lr_multiplier(step, warmup_steps, max_steps, min_lr_ratio):\n'
        '    if step < warmup_steps:\n'
        '        return (step + 1) / warmup_steps\n'
        '    if step >= max_steps:\n'
        '        return min_lr_ratio\n'
        '    ratio = (step - warmup_steps) / (max_steps - warmup_steps)\n'
        '    return min_lr_ratio + 0.5 * (1 - min_lr_ratio) * (1 + math.cos(math.pi * ratio))',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"5.1", "5.2", "5.3", "5.4"})
