"""Day 7's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, more_alternatives_test

STUBS = exercise_sources("notebooks/day7_finetune.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day7_solutions.ipynb")

LORA_INIT = "self.B = nn.Parameter(torch.zeros(base.out_features, rank))"
LORA_FORWARD = "return self.base(x) + self.scale * (x @ self.A.T @ self.B.T)"


def solution_with(name: str, *replacements: tuple[str, str]) -> str:
    """The reference solution of ``name`` with some of its lines made wrong on purpose."""
    source = SOLUTIONS[name][0]
    for old, new in replacements:
        assert old in source, old
        source = source.replace(old, new)
    return source


READ = "def last_token_logits(logits, lengths):\n    return {}"  # 7.2 with the mistake filled in

TARGETS = ("def instruction_batch(batch, pad_id):\n"  # 7.3's reference with one step made wrong
           "    longest = max(len(ids) for ids, _ in batch)\n"
           "    inputs = torch.full((len(batch), longest - 1), pad_id)\n"
           "    targets = torch.full((len(batch), longest - 1), {fill})\n"
           "    for row, (ids, prompt_len) in enumerate(batch):\n"
           "        ids = torch.tensor(ids)\n"
           "        inputs[row, :len(ids) - 1] = ids[:-1]\n"
           "        targets[row, :len(ids) - 1] = {shifted}\n"
           "        {mask}\n"
           "    return inputs, targets\n")


def targets_with(fill="-100", shifted="ids[1:]", mask="targets[row, :prompt_len - 1] = -100") -> str:
    return TARGETS.format(fill=fill, shifted=shifted, mask=mask)


WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "7.1": [
        (solution_with("7.1", (LORA_INIT, "self.B = nn.Parameter(torch.randn(base.out_features, rank))")),
         "B must start at zero"),
        (solution_with("7.1", ("self.base = base.requires_grad_(False)", "self.base = base")),
         "the base layer still trains"),
        (solution_with("7.1", ("self.scale = alpha / rank", "self.scale = rank / alpha")), "scaled by rank / alpha"),
        (solution_with("7.1", (LORA_FORWARD, "return self.base(x) + x @ self.A.T @ self.B.T")), "not scaled"),
        (solution_with("7.1", ("self.scale = alpha / rank", "self.scale = alpha")), "divide by the rank too"),
        (solution_with("7.1", ("self.A = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))",
                               "self.A = nn.Parameter(torch.zeros(rank, base.in_features))")), "A is all zeros"),
        (solution_with("7.1", (LORA_INIT, "self.B = torch.zeros(base.out_features, rank, requires_grad=True)")),
         "made with nn.Parameter"),
        (solution_with("7.1", (LORA_FORWARD, "return self.scale * (x @ self.A.T @ self.B.T)")),
         "is the base layer's output (bias included) added"),
        (solution_with("7.1", (LORA_FORWARD, "return self.base(x) + self.scale * (x @ self.A.T @ self.B.T).detach()")),
         "no gradient reaches A and B"),
        (solution_with("7.1", ("self.base = base.requires_grad_(False)", "self.base = base\n        base.weight.requires_grad_(False)")),
         "the base layer's bias still trains"),
        (solution_with("7.1", ("self.scale = alpha / rank", "self.scale = alpha // rank")), "alpha // rank = 1.5 // 3"),
        (solution_with("7.1", (LORA_FORWARD, "return self.base(x) + self.scale * (x @ self.B @ self.A)")),
         "your code raised RuntimeError"),
        (solution_with("7.1", (LORA_FORWARD, "return self.base(x) + self.scale * (x @ self.A.T @ self.B.T).numpy()")),
         "your code raised"),
    ],
    "7.2": [
        (READ.format("logits[:, -1]"), "you read position -1"),
        (READ.format("logits[:, 0]"), "you read position 0"),
        (READ.format("logits[torch.arange(len(lengths)), lengths]"), "one past the end"),
        (READ.format("logits[torch.arange(len(lengths)), lengths - 2]"), "the token before the last"),
        (READ.format("logits[:, lengths - 1]"), "logits[torch.arange(B), lengths - 1]"),
        (READ.format("logits.mean(dim=1)"), "averaged over every position"),
        (READ.format("[logits[b, n - 1] for b, n in enumerate(lengths)]"), "got list"),
        (READ.format("torch.tensor([logits[b, n - 1].tolist() for b, n in enumerate(lengths.tolist())])"),
         "no gradient flows back"),
    ],
    "7.3": [
        (SOLUTIONS["7.3"][0].replace("        ids = torch.tensor(ids)\n",
                                     "        ids.extend([pad_id] * (longest - len(ids)))\n        ids = torch.tensor(ids)\n")
         .replace("len(ids) - 1] = ids", "longest - 1] = ids"), "changed the list it was given"),  # once passed
        (targets_with(fill="pad_id"), "counts padding positions"),
        (targets_with(mask="pass"), "the prompt is not masked"),
        (targets_with(fill="pad_id", mask="pass"), "nothing is masked"),
        (targets_with(mask="targets[row, :prompt_len] = -100"), "the first answer token is masked"),
        (targets_with(mask="targets[row, :prompt_len - 2] = -100"), "the last prompt token is counted"),
        (targets_with(fill="pad_id", mask="targets[row, :prompt_len - 1] = -100\n"
                                          "        targets[targets == pad_id] = -100"), "the end token is masked"),
        (targets_with(shifted="ids[:-1]"), "the targets are not shifted"),
        (targets_with().replace("torch.full((len(batch), longest - 1), pad_id)",
                                "torch.full((len(batch), longest - 1), -100)"), "the inputs hold -100"),
        (targets_with().replace("longest - 1", "longest"), "(B, longest - 1)"),
        (targets_with().replace("    return inputs, targets", "    return inputs, targets.int()"), "got int64, int32"),
        (targets_with().replace("    return inputs, targets", "    return inputs.to(torch.int32), targets.to(torch.int32)"),
         "got int32, int32"),
        (targets_with().replace("    return inputs, targets", "    return inputs.float(), targets.float()"),
         "must be int64 (torch.long) tensors, got float32, float32"),
        (targets_with().replace("    return inputs, targets", "    return inputs.numpy(), targets.numpy()"), "(B, longest - 1)"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    # Raschka's layout (A is d_in x r, B is r x d_out), and the merged weight formed in full: fine
    "7.1": "class LinearWithLoRA(nn.Module):\n"
           "    def __init__(self, base, rank, alpha):\n"
           "        super().__init__()\n"
           "        for p in base.parameters():\n"
           "            p.requires_grad = False\n"
           "        self.linear, self.rank, self.alpha = base, rank, alpha\n"
           "        self.A = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(base.in_features, rank), a=math.sqrt(5)))\n"
           "        self.B = nn.Parameter(torch.zeros(rank, base.out_features))\n"
           "    def forward(self, x):\n"
           "        weight = self.linear.weight + (self.alpha / self.rank) * (self.A @ self.B).T\n"
           "        return F.linear(x, weight, self.linear.bias)",
    "7.2": "def last_token_logits(logits, lengths):\n"
           "    return torch.stack([row[n - 1] for row, n in zip(logits, lengths)])",
    "7.3": "def instruction_batch(batch, pad_id):\n"
           "    width = max(len(ids) for ids, _ in batch) - 1\n"
           "    rows_in, rows_out = [], []\n"
           "    for ids, prompt_len in batch:\n"
           "        pad = width - (len(ids) - 1)\n"
           "        rows_in.append(ids[:-1] + [pad_id] * pad)\n"
           "        rows_out.append([-100] * (prompt_len - 1) + ids[prompt_len:] + [-100] * pad)\n"
           "    return torch.tensor(rows_in), torch.tensor(rows_out)",
}


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["7.1"] += [
    # once "the base layer still trains": it keeps a detached copy of the weight, and drops the bias
    ("class LinearWithLoRA(nn.Module):\n    def __init__(self, base, rank, alpha):\n        super().__init__()\n"
     "        self.weight = base.weight.detach()\n"
     "        self.A = nn.Parameter(torch.randn(rank, base.in_features) * 0.01)\n"
     "        self.B = nn.Parameter(torch.zeros(base.out_features, rank))\n        self.scale = alpha / rank\n"
     "    def forward(self, x):\n        return x @ self.weight.T + self.scale * (x @ self.A.T @ self.B.T)",
     "is the base layer's output (bias included) added"),
    (solution_with("7.1", ("self.scale = alpha / rank", "self.scale = alpha / math.sqrt(rank)")), "alpha / sqrt(rank)"),
]


WRONG["7.2"] += [(READ.format("logits[:, lengths.max() - 1]"), "the longest message's last position")]

WRONG["7.2"] += [("def last_token_logits(logits, lengths):\n    lengths -= 1\n"
                  "    return logits[torch.arange(len(lengths)), lengths]", "changed the tensor it was given (argument 2")]


test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "7.1": [
        # PEFT's layout: A and B as bias-free nn.Linear layers, B zeroed
        'class LinearWithLoRA(nn.Module):\n'
        '    def __init__(self, base, rank, alpha):\n'
        '        super().__init__()\n'
        '        self.base = base\n'
        '        for p in self.base.parameters():\n'
        '            p.requires_grad_(False)\n'
        '        self.lora_A = nn.Linear(base.in_features, rank, bias=False)\n'
        '        self.lora_B = nn.Linear(rank, base.out_features, bias=False)\n'
        '        nn.init.zeros_(self.lora_B.weight)\n'
        '        self.scaling = alpha / rank\n'
        '    def forward(self, x):\n'
        '        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling',
        # unscaled randn A, merged delta
        'class LinearWithLoRA(nn.Module):\n'
        '    def __init__(self, base, rank, alpha):\n'
        '        super().__init__()\n'
        '        self.base = base.requires_grad_(False)\n'
        '        self.A = nn.Parameter(torch.randn(rank, base.in_features) )\n'
        '        self.B = nn.Parameter(torch.zeros(base.out_features, rank))\n'
        '        self.scale = alpha / rank\n'
        '\n'
        '    def forward(self, x):\n'
        '        return self.base(x) + F.linear(x, self.scale * (self.B @ self.A))\n'
        '\n'
        '',
    ],
    "7.2": [
        # gather
        'def last_token_logits(logits, lengths):\n'
        '    idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, logits.size(-1))\n'
        '    return logits.gather(1, idx).squeeze(1)',
    ],
    "7.3": [
        # pad_sequence
        'from torch.nn.utils.rnn import pad_sequence\n'
        'def instruction_batch(batch, pad_id):\n'
        '    xs, ys = [], []\n'
        '    for ids, n in batch:\n'
        '        t = torch.tensor(ids)\n'
        '        y = t[1:].clone()\n'
        '        y[: n - 1] = -100\n'
        '        xs.append(t[:-1])\n'
        '        ys.append(y)\n'
        '    return pad_sequence(xs, batch_first=True, padding_value=pad_id), pad_sequence(ys, batch_first=True, padding_value=-100)',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"7.1", "7.2", "7.3"})
