"""Day 3's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, more_alternatives_test

STUBS = exercise_sources("notebooks/day3_attention.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day3_solutions.ipynb")

CAUSAL = ("def causal_weights(s):\n    t = s.shape[0]\n    m = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)\n"
          "    return {}")  # a causal softmax with the mistake filled in

DROPOUT = ("def attention_dropout(weights, p, training):\n    if not training:\n        return weights\n"
           "    return {}")  # a training path with the mistake filled in

SCORES = "scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)"
MERGE = "context = (weights @ v).transpose(1, 2).reshape(b, t, -1)"
SOFTMAX = 'weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)'


def solution_with(*replacements: tuple[str, str]) -> str:
    """The reference solution of 3.3 with some of its lines made wrong on purpose."""
    source = SOLUTIONS["3.3"][0]
    for old, new in replacements:
        assert old in source, old
        source = source.replace(old, new)
    return source


WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "3.1": [
        ("def scaled_scores(q, k):\n    return q @ k.T", "divide by sqrt(d_k)"),
        ("def scaled_scores(q, k):\n    return q @ k.T / k.shape[-1]", "square root"),
        ("def scaled_scores(q, k):\n    return k @ q.T / math.sqrt(k.shape[-1])", "q @ k.T, not k @ q.T"),
        ("def scaled_scores(q, k):\n    return q @ k.T / math.sqrt(q.shape[0])", "the number of tokens"),
        ("def scaled_scores(q, k):\n    return q @ k.T * math.sqrt(k.shape[-1])", "multiplied by sqrt(d_k)"),
        ("def scaled_scores(q, k):\n    return (q @ k.T / math.sqrt(k.shape[-1])).numpy()", "not a NumPy ndarray"),
        ("def scaled_scores(q, k):\n    return (q @ k.T / math.sqrt(k.shape[-1])).tolist()", "not a list"),
        ("def scaled_scores(q, k):\n    return q @ k / math.sqrt(k.shape[-1])", "raised RuntimeError"),
        ("def scaled_scores(q, k):\n    return q.T @ k / math.sqrt(k.shape[-1])", "must be a (4, 4) tensor"),
        ("def scaled_scores(q, k):\n    return q @ k.T / math.sqrt(k.shape[-1]) ** 2", "divided by d_k"),
    ],
    "3.2": [
        (CAUSAL.format("torch.softmax(s.masked_fill(m, 0.0), dim=-1)"), "masked with 0 instead of -inf"),
        (CAUSAL.format("torch.softmax(s.masked_fill(m, float('-inf')), dim=0)"), "softmax over the wrong dimension"),
        (CAUSAL.format("torch.softmax(s, dim=-1).masked_fill(m, 0.0)"), "zeroed after the softmax"),
        (CAUSAL.format("torch.softmax(s, dim=-1)"), "every token sees the future"),
        (CAUSAL.format("torch.softmax(s.masked_fill(m.T, float('-inf')), dim=-1)"), "hides the past"),
        (CAUSAL.format("torch.softmax(s.masked_fill(m, -100.0), dim=-1)"), "not exactly 0"),
        (CAUSAL.format("torch.softmax(s.masked_fill(torch.triu(torch.ones_like(m), 0), float('-inf')), dim=-1)"),
         "A token must see itself"),
        (CAUSAL.format("torch.softmax(s.masked_fill(~m, float('-inf')), dim=-1)"), "the mask is inverted"),
        ("def causal_weights(s):\n    t = s.shape[0]\n    m = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)\n"
         "    s.masked_fill_(m, float('-inf'))\n    return torch.softmax(s, dim=-1)", "changed the tensor it was given (argument 1, tensor(5, 5) float32)"),
        (CAUSAL.format("torch.softmax(s.masked_fill(m, float('-inf')), dim=-1).numpy()"), "not a NumPy ndarray"),
        (CAUSAL.format("torch.softmax(s.masked_fill(m, float('-inf')), dim=-1)[:-1]"), "must be (5, 5)"),
        (CAUSAL.format("torch.exp(s.masked_fill(m, float('-inf')))"), "rows must sum to 1"),
        (CAUSAL.format("torch.softmax(s.masked_fill(m, float('-inf')), dim=-1).to('meta')"), "could not use"),
    ],
    "3.3": [
        (solution_with((SCORES, "scores = q @ k.transpose(-2, -1)")), "not divided by sqrt(head_dim)"),
        (solution_with((SCORES, "scores = q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1])")), "sqrt(d_in)"),
        (solution_with((SCORES, "scores = q @ k.transpose(-2, -1) / math.sqrt(self.num_heads * self.head_dim)")),
         "sqrt(d_out)"),
        (solution_with((SOFTMAX, "weights = torch.softmax(scores, dim=-1)")), "causal mask is missing"),
        (solution_with((SOFTMAX, 'weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-2)')),
         "softmax over the wrong dimension"),
        (solution_with(("return z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)",
                        "return z.reshape(b, self.num_heads, t, self.head_dim)"),
                       (MERGE, "context = (weights @ v).reshape(b, t, -1)")), "split without transposing"),
        (solution_with((MERGE, "context = (weights @ v).reshape(b, t, -1)")), "merged without transposing back"),
        (solution_with(("return self.out_proj(context)", "return context")), "out_proj is never applied"),
        (solution_with(("diagonal=1)", "diagonal=0)")), "A token must see itself"),
        (solution_with(("context = (weights @ v)", "context = (weights @ k)")), "differ from multi-head attention"),
        (solution_with(("self.W_query = nn.Linear(d_in, d_out, bias=False)", "self.W_query = nn.Linear(d_out, d_in)")),
         "W_query, W_key, W_value map d_in -> d_out"),
        ("class CausalAttention(nn.Module):\n    def __init__(self, d_in, d_out, num_heads):\n        super().__init__()\n"
         "        self.qkv = nn.Linear(d_in, 3 * d_out)\n    def forward(self, x):\n        return x",
         "named W_query, W_key, W_value and out_proj"),
        (solution_with((SCORES, "scores = q @ k.transpose(-2, -1) * math.sqrt(self.head_dim)")), "multiplied by sqrt(head_dim)"),
        (solution_with((SOFTMAX, "weights = torch.softmax(scores, dim=-1).masked_fill(future, 0.0)")),
         "zeroed after the softmax"),
        (solution_with((SOFTMAX, 'weights = torch.softmax(scores, dim=-1).masked_fill(future, float("-inf"))')),
         "after the softmax, so -inf reaches the output"),
        (solution_with((SOFTMAX, 'weights = torch.softmax(scores.masked_fill(~future, float("-inf")), dim=-1)')),
         "the mask is inverted"),
        (solution_with((MERGE, "context = (weights @ v).transpose(1, 2).view(b, t, -1)")), "use .reshape(...)"),
        (solution_with(("return z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)",
                        "return z.view(b, self.num_heads, t, self.head_dim)"),
                       (MERGE, "context = (weights @ v).reshape(b, t, -1)")), "split without transposing"),
    ],
    "3.4": [
        (DROPOUT.format("weights * (torch.rand_like(weights) >= p)"), "survivors keep their old value"),
        (DROPOUT.format("weights * (torch.rand_like(weights) < p) / (1 - p)"), "not to keep"),
        (DROPOUT.format("weights * (torch.rand_like(weights) >= p) * (1 - p)"), "multiplied by 1 - p"),
        (DROPOUT.format("weights * (torch.rand_like(weights) >= p) / p"), "divided by p"),
        (DROPOUT.format("weights / (1 - p)"), "nothing was dropped"),
        ("def attention_dropout(weights, p, training):\n    return weights * (torch.rand_like(weights) >= p) / (1 - p)",
         "with training=False"),
        ("def attention_dropout(weights, p, training):\n    if not training:\n        return weights\n"
         "    weights[torch.rand_like(weights) < p] = 0\n    return weights / (1 - p)", "changed the tensor it was given"),
        ("def attention_dropout(weights, p, training):\n    if training:\n"
         "        return weights * (torch.rand_like(weights) >= p) / (1 - p)", "not None"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "3.1": "def scaled_scores(q, k):\n    return torch.einsum('id,jd->ij', q, k) * q.shape[1] ** -0.5",
    "3.2": "def causal_weights(s):\n    t = s.shape[0]\n    keep = torch.tril(torch.ones(t, t)).bool()\n"
           "    e = torch.where(keep, torch.exp(s - s.max(dim=1, keepdim=True).values), torch.zeros(()))\n"
           "    return e / e.sum(dim=1, keepdim=True)",
    "3.3": "class CausalAttention(nn.Module):\n"
           "    def __init__(self, d_in, d_out, num_heads):\n"
           "        super().__init__()\n"
           "        self.h = num_heads\n"
           "        self.W_query, self.W_key, self.W_value = (nn.Linear(d_in, d_out) for _ in range(3))\n"
           "        self.out_proj = nn.Linear(d_out, d_out)\n"
           "    def forward(self, x):\n"
           "        heads = []\n"
           "        for q, k, v in zip(*(p(x).chunk(self.h, dim=-1) for p in (self.W_query, self.W_key, self.W_value))):\n"
           "            heads.append(F.scaled_dot_product_attention(q, k, v, is_causal=True))\n"
           "        return self.out_proj(torch.cat(heads, dim=-1))",
    "3.4": "def attention_dropout(weights, p, training):\n"
           "    keep = torch.bernoulli(torch.full_like(weights, 1 - p)) if training else torch.ones_like(weights)\n"
           "    scale = 1 / (1 - p) if training else 1.0\n"
           "    return torch.where(keep.bool(), weights * scale, torch.zeros(()))",
}


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["3.1"] += [
    ("def scaled_scores(q, k):\n    return torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)",
     "already softmax weights"),
]
WRONG["3.3"] += [
    (solution_with(("self.out_proj = nn.Linear(d_out, d_out)", "self.out_proj = nn.Linear(d_out, d_out, bias=False)")),
     "out_proj has no bias"),
]


WRONG["3.3"] += [  # once "the mask starts one above the diagonal" (NaN rows), while the mask was right
    (solution_with((SOFTMAX, 'weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=1)')),
     "the softmax runs over the heads"),
]

WRONG["3.1"] += [("def scaled_scores(q, k):\n    return q @ k.t_() / math.sqrt(q.shape[-1])",
                  "changed the tensor it was given (argument 2")]
WRONG["3.3"] += [  # once "outputs differ from multi-head attention by up to 0.577"
    (solution_with((SCORES, "scores = q @ k.transpose(-2, -1)"),
                   (SOFTMAX, SOFTMAX + " / math.sqrt(self.head_dim)")), "divided by sqrt(head_dim) after the softmax"),
]



test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "3.1": [
        # F.linear
        'def scaled_scores(q, k):\n'
        '    return F.linear(q, k) / torch.tensor(k.size(1)).sqrt()',
    ],
    "3.2": [
        # a large negative number added above the diagonal: exp underflows to exactly 0
        'def causal_weights(s):\n'
        '    t = s.size(0)\n'
        '    return torch.softmax(s + torch.triu(torch.full((t, t), -1e9), 1), dim=-1)',
        # softmax then tril renormalise
        'def causal_weights(s):\n'
        '    w = torch.softmax(s, dim=-1).tril()\n'
        '    return w / w.sum(dim=-1, keepdim=True)',
    ],
    "3.3": [
        # a fixed 1024 x 1024 mask buffer, sliced
        'class CausalAttention(nn.Module):\n'
        '    def __init__(self, d_in, d_out, num_heads):\n'
        '        super().__init__()\n'
        '        self.num_heads, self.head_dim = num_heads, d_out // num_heads\n'
        '        self.W_query = nn.Linear(d_in, d_out, bias=False)\n'
        '        self.W_key = nn.Linear(d_in, d_out, bias=False)\n'
        '        self.W_value = nn.Linear(d_in, d_out, bias=False)\n'
        '        self.out_proj = nn.Linear(d_out, d_out)\n'
        "        self.register_buffer('mask', torch.triu(torch.ones(1024, 1024), diagonal=1).bool())\n"
        '\n'
        '    def forward(self, x):\n'
        '        b, t, _ = x.shape\n'
        '\n'
        '        def heads(z):  # (B, T, d_out) -> (B, heads, T, head_dim)\n'
        '            return z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)\n'
        '\n'
        '        q, k, v = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))\n'
        '        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)\n'
        '        future = self.mask[:t, :t]\n'
        '        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)\n'
        '        context = (weights @ v).transpose(1, 2).reshape(b, t, -1)\n'
        '        return self.out_proj(context)\n'
        '\n'
        '',
        # -1e9 mask, contiguous view, tril buffer-free
        'class CausalAttention(nn.Module):\n'
        '    def __init__(self, d_in, d_out, num_heads):\n'
        '        super().__init__()\n'
        '        self.num_heads, self.head_dim = num_heads, d_out // num_heads\n'
        '        self.W_query = nn.Linear(d_in, d_out, bias=False)\n'
        '        self.W_key = nn.Linear(d_in, d_out, bias=False)\n'
        '        self.W_value = nn.Linear(d_in, d_out, bias=False)\n'
        '        self.out_proj = nn.Linear(d_out, d_out)\n'
        '\n'
        '    def forward(self, x):\n'
        '        b, t, _ = x.shape\n'
        '\n'
        '        def heads(z):  # (B, T, d_out) -> (B, heads, T, head_dim)\n'
        '            return z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)\n'
        '\n'
        '        q, k, v = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))\n'
        '        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)\n'
        '        future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)\n'
        '        weights = torch.softmax(scores.masked_fill(future, -1e9), dim=-1)\n'
        '        context = (weights @ v).transpose(1, 2).contiguous().view(b, t, -1)\n'
        '        return self.out_proj(context)\n'
        '\n'
        '',
    ],
    "3.4": [
        # masked_fill with the dropped positions, then the rescale
        'def attention_dropout(weights, p, training):\n'
        '    if not training or p == 0:\n'
        '        return weights\n'
        '    return weights.masked_fill(torch.rand(weights.shape) < p, 0.0) * (1.0 / (1.0 - p))',
        # F.dropout
        'def attention_dropout(weights, p, training):\n'
        '    return F.dropout(weights, p=p, training=training)',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"3.1", "3.2", "3.3", "3.4"})
