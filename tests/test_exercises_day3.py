"""Day 3's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

import pytest
from exercise_harness import exercise_sources, verdict

STUBS = exercise_sources("notebooks/day3_attention.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day3_solutions.ipynb")

WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "3.1": [
        ("def scaled_scores(q, k):\n    return q @ k.T", "divide by sqrt(d_k)"),
        ("def scaled_scores(q, k):\n    return q @ k.T / k.shape[-1]", "square root"),
        ("def scaled_scores(q, k):\n    return k @ q.T / math.sqrt(k.shape[-1])", "q @ k.T, not k @ q.T"),
    ],
    "3.2": [
        ("def causal_weights(s):\n    t = s.shape[0]\n    m = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)\n"
         "    return torch.softmax(s.masked_fill(m, 0.0), dim=-1)", "masked with 0 instead of -inf"),
        ("def causal_weights(s):\n    t = s.shape[0]\n    m = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)\n"
         "    return torch.softmax(s.masked_fill(m, float('-inf')), dim=0)", "wrong dimension"),
        ("def causal_weights(s):\n    t = s.shape[0]\n    m = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)\n"
         "    return torch.softmax(s, dim=-1).masked_fill(m, 0.0)", "rows must sum to 1"),
    ],
    "3.3": [
        (SOLUTIONS["3.3"][0].replace("scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)",
                                     "scores = q @ k.transpose(-2, -1)"), "not divided by sqrt(head_dim)"),
        (SOLUTIONS["3.3"][0].replace("scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)",
                                     "scores = q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1])"), "sqrt(d_out)"),
        (SOLUTIONS["3.3"][0].replace('weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)',
                                     "weights = torch.softmax(scores, dim=-1)"), "causal mask is missing"),
        (SOLUTIONS["3.3"][0].replace("return z.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)",
                                     "return z.reshape(b, self.num_heads, t, self.head_dim)")
         .replace("context = (weights @ v).transpose(1, 2).reshape(b, t, -1)",
                  "context = (weights @ v).reshape(b, t, -1)"), "without transposing back"),
        (SOLUTIONS["3.3"][0].replace("context = (weights @ v).transpose(1, 2).reshape(b, t, -1)",
                                     "context = (weights @ v).reshape(b, t, -1)"), "differ from multi-head attention"),
        ("class CausalAttention(nn.Module):\n    def __init__(self, d_in, d_out, num_heads):\n        super().__init__()\n"
         "        self.qkv = nn.Linear(d_in, 3 * d_out)\n    def forward(self, x):\n        return x",
         "named W_query, W_key, W_value and out_proj"),
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
}


@pytest.mark.parametrize("name", sorted(STUBS))
def test_untouched_stub_is_not_done(name):
    result = verdict(name, *STUBS[name])
    assert result.status == "not done", result.line


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_reference_solution_passes(name):
    result = verdict(name, *SOLUTIONS[name])
    assert result.passed, result.line


@pytest.mark.parametrize("name, source, hint", [(n, s, h) for n, cases in WRONG.items() for s, h in cases])
def test_plausible_mistakes_get_their_hint(name, source, hint):
    result = verdict(name, source, STUBS[name][1])
    assert result.status == "wrong" and hint in result.line, result.line


@pytest.mark.parametrize("name", sorted(ALTERNATIVE))
def test_a_differently_written_solution_passes(name):
    result = verdict(name, ALTERNATIVE[name], STUBS[name][1])
    assert result.passed, result.line


def test_every_exercise_is_covered():
    assert set(STUBS) == set(SOLUTIONS) == set(WRONG) == set(ALTERNATIVE) == {"3.1", "3.2", "3.3"}
    assert all(len(cases) >= 2 for cases in WRONG.values())
