"""Day 4's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, verdict

STUBS = exercise_sources("notebooks/day4_block.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day4_solutions.ipynb")


def solution(name: str, old: str, new: str) -> str:
    """The reference solution of ``name`` with ``old`` replaced by ``new`` (which must occur exactly once)."""
    source = SOLUTIONS[name][0]
    assert source.count(old) == 1, (name, old)
    return source.replace(old, new)


LN_RETURN = "return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift"
LN_VAR = "var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)"
LN_STATS = "mean = x.mean(dim=-1, keepdim=True)                   # one mean per token\n        " + LN_VAR
BLOCK = "x = x + att(norm1(x))      # the stream plus what attention gathered from earlier tokens\n" \
        "    x = x + ff(norm2(x))       # plus what the feed-forward computes for each token"
GELU = "0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))"


def block(body: str) -> str:
    return solution("4.3", BLOCK, body)


def count(expression: str) -> str:
    return f"def block_parameters(d, qkv_bias=True):\n    return {expression}\n"


WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "4.1": [
        (solution("4.1", LN_VAR, "var = x.var(dim=-1, keepdim=True)"), "divided by n-1"),
        (solution("4.1", LN_RETURN, "return self.scale * (x - mean) / (x.std(dim=-1, keepdim=True) + self.eps) + self.shift"),
         "x.std() divides by n-1 and eps is added outside"),
        (solution("4.1", "torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)"), "eps is added outside the square root"),
        (solution("4.1", "torch.sqrt(var + self.eps)", "torch.sqrt(var)"), "eps is missing"),
        (solution("4.1", "torch.sqrt(var + self.eps)", "(var + self.eps)"), "divide by the standard deviation"),
        (solution("4.1", LN_STATS, "mean = x.mean(dim=0, keepdim=True)\n        var = ((x - mean) ** 2).mean(dim=0, keepdim=True)"),
         "normalised over dimension 0 (across the batch)"),
        (solution("4.1", LN_STATS, "mean = x.mean()\n        var = ((x - mean) ** 2).mean()"), "over the whole tensor"),
        (solution("4.1", LN_RETURN, "return (x - mean) / torch.sqrt(var + self.eps)"), "scale and shift are not applied"),
        (solution("4.1", LN_RETURN, "return (x - mean) / torch.sqrt(var + self.eps) + self.shift"), "scale is not applied"),
        (solution("4.1", "self.scale = nn.Parameter(torch.ones(emb_dim))", "self.scale = torch.ones(emb_dim)"),
         "scale must be an nn.Parameter"),
        (solution("4.1", "nn.Parameter(torch.ones(emb_dim))", "nn.Parameter(torch.randn(emb_dim))"), "start with scale = 1"),
        (solution("4.1", LN_RETURN, LN_RETURN + ".detach()"), "no gradient reaches the input"),
    ],
    "4.2": [
        ("def gelu(x):\n    return torch.relu(x)", "that is ReLU"),
        ("def gelu(x):\n    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))", "that is the exact GELU"),
        (solution("4.2", GELU, GELU.replace(" + 0.044715 * x ** 3", "")), "0.044715 * x**3 term is missing"),
        (solution("4.2", GELU, GELU.replace("math.sqrt(2 / math.pi) * ", "")), "multiplied by sqrt(2/pi)"),
        (solution("4.2", GELU, GELU.replace("0.5 * x * ", "x * ")), "twice too large"),
        ("def gelu(x):\n    return x * torch.sigmoid(1.702 * x)", "sigmoid approximation"),
        (solution("4.2", GELU, GELU.replace("x ** 3", "x * 3")), "differs from F.gelu(x, approximate='tanh')"),
        (solution("4.2", GELU, GELU.replace("x ** 3", "x ** 2")), "x squared"),
        (solution("4.2", GELU, GELU.replace("2 / math.pi", "math.pi / 2")), "sqrt(pi / 2)"),
        ("def gelu(x):\n    y = F.gelu(x, approximate='tanh')\n    x.zero_()\n    return y", "changed the tensor it was given"),
        ("def gelu(x):\n    return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
         "your code raised ValueError: only one element tensors"),
        ("def gelu(x):\n    return F.gelu(x, approximate='tanh').numpy()", "not a NumPy"),
        ("def gelu(x):\n    return [F.gelu(v, approximate='tanh') for v in x]", "not a list"),
    ],
    "4.3": [
        (block("x = norm1(x + att(x))\n    x = norm2(x + ff(x))"), "post-LN"),
        (block("x = att(norm1(x))\n    x = ff(norm2(x))"), "no residual connections at all"),
        (block("x = att(norm1(x))\n    x = x + ff(norm2(x))"), "the attention's residual is missing"),
        (block("x = x + att(norm1(x))\n    x = ff(norm2(x))"), "the feed-forward's residual is missing"),
        (block("x = x + ff(norm2(att(norm1(x))))"), "one residual around the whole block"),
        (block("x = x + att(norm1(x))\n    x = x + ff(norm1(x))"), "norm1 is used twice"),
        (block("x = x + att(norm2(x))\n    x = x + ff(norm1(x))"), "swapped"),
        (block("x = x + att(norm1(x)) + ff(norm2(x))"), "parallel block"),
        (block("x = norm1(x) + att(norm1(x))\n    x = norm2(x) + ff(norm2(x))"), "adds the normalised x"),
        (block("x = x + ff(norm2(x))\n    x = x + att(norm1(x))"), "attention comes first"),
        (block("x += att(norm1(x))\n    x += ff(norm2(x))"), "in-place update"),
        (block("x = x[:, -1] + att(norm1(x))[:, -1]"), "so blocks stack"),
        (block("x = x + att(norm1(x))\n    x = x + ff(norm2(x))\n    x = x.tolist()"), "so blocks stack; got list"),
    ],
    "4.4": [
        (count("12 * d * d"), "only the weight matrices"),
        (count("12 * d * d + 4 * d"), "the biases are missing"),
        (count("12 * d * d + (9 if qkv_bias else 6) * d"), "the two LayerNorms are missing"),
        (count("12 * d * d + 13 * d"), "qkv_bias=False"),
        (count("12 * d * d + 10 * d"), "qkv_bias=True"),
        (count("6 * d * d + (10 if qkv_bias else 7) * d"), "expands to 4d"),
        (count("11 * d * d + (12 if qkv_bias else 9) * d"), "out_proj"),
        (count("12 * d * d + (15 if qkv_bias else 12) * d"), "final LayerNorm"),
        (count("12 * d * d + (14 if qkv_bias else 11) * d"), "a block holds 872"),
        (count("str(12 * d * d)"), "return a number"),
        (count("12 * d ** 2 + 13 * d if qkv_bias else 12 * d * d + 10"), "qkv_bias = False you return 778; a block holds 848"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "4.1": "class MyLayerNorm(nn.Module):\n"
           "    def __init__(self, emb_dim, eps=1e-5):\n"
           "        super().__init__()\n"
           "        self.eps = eps\n"
           "        self.scale, self.shift = nn.Parameter(torch.ones(emb_dim)), nn.Parameter(torch.zeros(emb_dim))\n"
           "    def forward(self, x):\n"
           "        var, mean = torch.var_mean(x, dim=-1, unbiased=False, keepdim=True)\n"
           "        return torch.addcmul(self.shift, self.scale, (x - mean) * torch.rsqrt(var + self.eps))",
    # 0.5 * (1 + tanh(z)) == sigmoid(2z)
    "4.2": "def gelu(x):\n    return x * torch.sigmoid(2 * (2 / math.pi) ** 0.5 * (x + 0.044715 * x.pow(3)))",
    "4.3": "def block_forward(x, att, ff, norm1, norm2):\n"
           "    for norm, layer in ((norm1, att), (norm2, ff)):\n"
           "        x = layer(norm(x)) + x\n"
           "    return x",
    "4.4": "def block_parameters(d, qkv_bias=True):\n"
           "    shapes = [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)]            # qkv, out_proj, the two FF layers\n"
           "    biases = [3 * d * qkv_bias, d, 4 * d, d]\n"
           "    return sum(a * b for a, b in shapes) + sum(biases) + 4 * d        # + two LayerNorms",
}


def test_hints_exist_in_chinese_too(chinese_edition):
    wrong = verdict("4.3", WRONG["4.3"][0][0], "block_forward")
    stub = verdict("4.1", *STUBS["4.1"])
    assert wrong.status == "wrong" and "post-LN" in wrong.line and "归一化" in wrong.line, wrong.line
    assert stub.line.startswith("⏳ 未完成 4.1 "), stub.line


def test_a_check_leaves_the_notebooks_random_state_alone():
    import torch

    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    for name in ("4.1", "4.2", "4.3"):
        assert verdict(name, *SOLUTIONS[name]).passed
    assert torch.equal(torch.rand(3), expected)


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"4.1", "4.2", "4.3", "4.4"})
