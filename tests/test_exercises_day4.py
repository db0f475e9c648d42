"""Day 4's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, verdict, more_alternatives_test

STUBS = exercise_sources("notebooks/day4_block.ipynb")
SOLUTIONS = {name: source for name, source in exercise_sources("notebooks/solutions/day4_solutions.ipynb").items()
             if name.startswith("4.")}  # day 4's solutions check day 3's attention again, to keep it for "Your GPT"


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


FF = "    def forward(self, x):\n        return self.fc2(self.act(self.fc1(x)))"
FF_SOURCE = "class MyFeedForward(nn.Module):\n    def __init__(self, emb_dim):\n        super().__init__()\n" \
            "        self.fc1 = nn.Linear(emb_dim, {w})\n        self.act = {act}\n        self.fc2 = nn.Linear({w}, emb_dim)\n" \
            "    def forward(self, x):\n        return {body}"


def ff(act: str = 'nn.GELU(approximate="tanh")', body: str = "self.fc2(self.act(self.fc1(x)))",
       w: str = "4 * emb_dim") -> str:
    """A feed-forward class with some of its parts made wrong on purpose."""
    return FF_SOURCE.format(act=act, body=body, w=w)


GPT = ("def gpt_forward(ids, model):\n    x = {emb}\n    x = model.drop_emb(x)\n    for block in model.trf_blocks{blocks}:\n"
       "        x = block(x)\n    return {out}")


def gpt(emb: str = "model.tok_emb(ids) + model.pos_emb(torch.arange(ids.shape[1]))", blocks: str = "",
        out: str = "model.out_head(model.final_norm(x))") -> str:
    """A GPT forward pass with some of its parts made wrong on purpose."""
    return GPT.format(emb=emb, blocks=blocks, out=out)


WRONG.update({
    "4.5": [
        (ff(act="nn.GELU()"), "approximate='tanh'"),
        (ff(act="nn.ReLU()"), "that is ReLU"),
        (ff(body="self.fc2(self.fc1(x))"), "no activation between"),
        (ff(body="self.act(self.fc2(self.act(self.fc1(x))))"), "also after the second layer"),
        (ff(body="self.fc2(self.fc1(self.act(x)))"), "before the first layer"),
        (ff(body="x + self.fc2(self.act(self.fc1(x)))"), "residual connection belongs to the block"),
        (ff(w="2 * emb_dim"), "4 times wider"),
        (ff().replace("nn.Linear(emb_dim, 4 * emb_dim)", "nn.Linear(emb_dim, 4 * emb_dim, bias=False)"), "bias=False"),
        (ff(body="self.fc2(self.act(self.fc1(x))).detach()"), "no gradient reaches"),
        (ff(body="self.fc2(torch.tanh(self.fc1(x)))"), "differ from gptlib's FeedForward"),
        (ff().replace("        self.act = ", "        self.extra = nn.Linear(emb_dim, emb_dim)\n        self.act = "),
         "exactly two layers"),
    ],
    "4.6": [
        (gpt(emb="model.tok_emb(ids)"), "position embeddings are missing"),
        (gpt(out="model.out_head(x)"), "final_norm is not applied"),
        (gpt(out="torch.softmax(model.out_head(model.final_norm(x)), dim=-1)"), "these are probabilities"),
        (gpt(blocks="[:1]"), "only the first block ran"),
        ("def gpt_forward(ids, model):\n    x = model.drop_emb(model.tok_emb(ids) + model.pos_emb(torch.arange(ids.shape[1])))\n"
         "    h = x\n    for block in model.trf_blocks:\n        h = block(x)\n    return model.out_head(model.final_norm(h))",
         "each block must read the previous block's output"),
        (gpt().replace("    x = model.drop_emb(x)\n", ""), "drop_emb is never applied"),
        (gpt().replace("    x = model.drop_emb(x)\n", "    x = model.drop_emb(model.drop_emb(x))\n"), "right in eval mode"),
        (gpt(out="model.final_norm(x)"), "must be (2, 7, 40)"),
        (gpt(emb="model.tok_emb(ids) + model.pos_emb(ids)"), "raised IndexError"),
        (gpt(emb="model.final_norm(model.tok_emb(ids) + model.pos_emb(torch.arange(ids.shape[1])))",
             out="model.out_head(x)"), "before the blocks"),
        (gpt(out="model.out_head(model.final_norm(x)).detach()"), "no gradient reaches"),
        ("def gpt_forward(ids, model):\n    return model(ids)", "you called model(ids)"),
    ],
})

ALTERNATIVE.update({
    "4.5": "class MyFeedForward(nn.Module):\n    def __init__(self, emb_dim):\n        super().__init__()\n"
           "        self.net = nn.Sequential(nn.Linear(emb_dim, 4 * emb_dim), nn.Identity(), nn.Linear(4 * emb_dim, emb_dim))\n"
           "    def forward(self, x):\n        h = self.net[0](x)\n"
           "        h = 0.5 * h * (1 + torch.tanh((2 / math.pi) ** 0.5 * (h + 0.044715 * h ** 3)))\n"
           "        return F.linear(h, self.net[2].weight, self.net[2].bias)",
    "4.6": "def gpt_forward(ids, model):\n    b, t = ids.shape\n"
           "    x = model.tok_emb.weight[ids] + model.pos_emb.weight[:t]\n    x = model.drop_emb(x)\n"
           "    x = torch.nn.Sequential(*model.trf_blocks)(x)\n    x = model.final_norm(x)\n"
           "    return x @ model.out_head.weight.T",
})


def test_feed_forward_layers_made_in_the_other_order_pass():
    source = ("class MyFeedForward(nn.Module):\n    def __init__(self, emb_dim):\n        super().__init__()\n"
              "        self.down = nn.Linear(4 * emb_dim, emb_dim)\n        self.up = nn.Linear(emb_dim, 4 * emb_dim)\n"
              "    def forward(self, x):\n        return self.down(F.gelu(self.up(x), approximate='tanh'))")
    result = verdict("4.5", source, "MyFeedForward")
    assert result.passed, result.line


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


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["4.2"] += [
    (solution("4.2", GELU, GELU.replace("x ** 3", "x ^ 3")), "your code raised NotImplementedError"),  # once "not done"
    (solution("4.2", GELU, GELU.replace("0.5 * x * ", "0.5 * ")), "the gate 0.5 * (1 + tanh(...)) alone"),
]
WRONG["4.4"] += [(count("12 * d ** 2 + (13 if qkv_bias else 10) * d * 1.0"), "return an int")]
WRONG["4.5"] += [
    (ff().replace("        self.act = ", "        self.drop = nn.Dropout(0.1)\n        self.act = ")
     .replace("return self.fc2(self.act(self.fc1(x)))", "return self.drop(self.fc2(self.act(self.fc1(x))))"),
     "no dropout of its own"),
]


WRONG["4.2"] += [
    (solution("4.2", GELU, "0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x + 0.044715 * x ** 3))"),
     "sits outside the product with sqrt(2/pi)"),
    (solution("4.2", GELU, GELU.replace("2 / math.pi", "2 * math.pi")), "the factor is sqrt(2 * pi)"),
]
WRONG["4.3"] += [
    (block("h = x + att(norm1(x))\n    x = x + ff(norm2(h))"), "the second residual adds the block's input x"),
    (block("x = x + norm1(att(x))\n    x = x + norm2(ff(x))"), "each sub-layer's output is normalised"),
    (block(BLOCK + "\n    x = norm2(x)"), "normalised once more at the end"),
]
WRONG["4.6"] += [
    (gpt(blocks="[::-1]"), "the blocks run in reverse order"),
    (gpt(out="model.out_head(x)").replace("        x = block(x)", "        x = model.final_norm(block(x))"),
     "final_norm is applied after every block"),
    (gpt(emb="model.tok_emb(ids) + model.pos_emb(torch.arange(1, ids.shape[1] + 1))"), "positions start at 1"),
]
WRONG["4.1"] += [(solution("4.1", "eps=1e-5", "eps=1e-6"), "eps is 1e-06")]  # once "differs ... by up to 0.599"
WRONG["4.5"] += [(ff(act="nn.Identity()", body="self.fc2(self.fc1(x) * torch.sigmoid(1.702 * self.fc1(x)))"),
                  "the sigmoid approximation")]  # once "outputs differ from gptlib's FeedForward by up to 0.0968"



test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "4.1": [
        # torch.var with correction=0
        'class MyLayerNorm(nn.Module):\n'
        '    def __init__(self, emb_dim, eps=1e-5):\n'
        '        super().__init__()\n'
        '        self.eps = eps\n'
        '        self.scale = nn.Parameter(torch.ones(emb_dim))\n'
        '        self.shift = nn.Parameter(torch.zeros(emb_dim))\n'
        '\n'
        '    def forward(self, x):\n'
        '        mean = x.mean(dim=-1, keepdim=True)                   # one mean per token\n'
        '        var = x.var(dim=-1, keepdim=True, correction=0)     # divide by n\n'
        '        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift\n'
        '\n'
        '',
        # nn.functional.layer_norm
        'class MyLayerNorm(nn.Module):\n'
        '    def __init__(self, emb_dim, eps=1e-5):\n'
        '        super().__init__()\n'
        '        self.eps = eps\n'
        '        self.scale = nn.Parameter(torch.ones(emb_dim))\n'
        '        self.shift = nn.Parameter(torch.zeros(emb_dim))\n'
        '    def forward(self, x):\n'
        '        return F.layer_norm(x, x.shape[-1:], self.scale, self.shift, self.eps)',
    ],
    "4.2": [
        # tensor sqrt
        'def gelu(x):\n'
        '    c = torch.sqrt(torch.tensor(2.0 / torch.pi))\n'
        '    return x * 0.5 * (1.0 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3))))',
    ],
    "4.3": [
        # one expression
        'def block_forward(x, att, ff, norm1, norm2):\n'
        '    h = att(norm1(x)) + x\n'
        '    return h + ff(norm2(h))',
    ],
    "4.4": [
        # from modules
        'def block_parameters(d, qkv_bias=True):\n'
        '    layers = [nn.Linear(d, d, bias=qkv_bias) for _ in range(3)] + [nn.Linear(d, d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d), nn.LayerNorm(d), nn.LayerNorm(d)]\n'
        '    return sum(p.numel() for m in layers for p in m.parameters())',
    ],
    "4.5": [
        # nn.GELU('tanh'), the approximation given positionally
        'class MyFeedForward(nn.Module):\n'
        '    def __init__(self, emb_dim):\n'
        '        super().__init__()\n'
        '        self.fc1 = nn.Linear(emb_dim, 4 * emb_dim)\n'
        "        self.gelu = nn.GELU('tanh')\n"
        '        self.fc2 = nn.Linear(4 * emb_dim, emb_dim)\n'
        '    def forward(self, x):\n'
        '        return self.fc2(self.gelu(self.fc1(x)))',
        # ModuleList
        'class MyFeedForward(nn.Module):\n'
        '    def __init__(self, emb_dim):\n'
        '        super().__init__()\n'
        '        self.layers = nn.ModuleList([nn.Linear(emb_dim, emb_dim * 4), nn.Linear(emb_dim * 4, emb_dim)])\n'
        '    def forward(self, x):\n'
        '        h = self.layers[0](x)\n'
        "        return self.layers[1](nn.functional.gelu(h, approximate='tanh'))",
    ],
    "4.6": [
        # functional reduce
        'import functools\n'
        'def gpt_forward(ids, model):\n'
        '    pos = model.pos_emb.weight[: ids.size(1)]\n'
        '    x = model.drop_emb(F.embedding(ids, model.tok_emb.weight) + pos)\n'
        '    x = functools.reduce(lambda h, blk: blk(h), model.trf_blocks, x)\n'
        '    return model.out_head(model.final_norm(x))',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"4.1", "4.2", "4.3", "4.4", "4.5", "4.6"})
