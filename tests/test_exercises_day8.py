"""The bonus day's exercises: the untouched stub is "not done", plausible mistakes get their intended hint (in
English and in Chinese, one line each), and the reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, verdict, more_alternatives_test

STUBS = exercise_sources("notebooks/day8_modern.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day8_solutions.ipynb")


def solution(name: str, *replacements: tuple[str, str]) -> str:
    """The reference solution of ``name`` with some of its text made wrong on purpose (each ``old`` occurs once)."""
    source = SOLUTIONS[name][0]
    for old, new in replacements:
        assert source.count(old) == 1, (name, old)
        source = source.replace(old, new)
    return source


RMS = "return scale * x / torch.sqrt(mean_square + eps)"
MEAN_SQUARE = "mean_square = x.pow(2).mean(dim=-1, keepdim=True)"
INV_FREQ = "base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)"
ROTATE = "return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)"
REPEAT = "k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)"
SCALE = "/ math.sqrt(q.shape[-1])"
SOFTMAX = 'weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)'

INTERLEAVED = ("def apply_rotary(x, positions, base=10000.0):\n"   # GPT-J's pairs (2i, 2i + 1)
               "    d = x.shape[-1]\n"
               "    angles = positions.float()[:, None] * base ** (-torch.arange(0, d, 2).float() / d)\n"
               "    cos, sin = angles.cos(), angles.sin()\n"
               "    x1, x2 = x[..., 0::2], x[..., 1::2]\n"
               "    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)")

WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "8.1": [
        (solution("8.1", (RMS, "x = x - x.mean(dim=-1, keepdim=True)\n"
                               "    return scale * x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)")),
         "that is LayerNorm"),
        (solution("8.1", (RMS, "return scale * x / torch.sqrt(x.var(dim=-1, keepdim=True) + eps)")), "standard deviation"),
        (solution("8.1", (RMS, "return scale * x / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps)")),
         "standard deviation"),
        (solution("8.1", (".mean(dim=-1", ".sum(dim=-1")), "summed, not averaged"),
        (solution("8.1", ("torch.sqrt(mean_square + eps)", "(torch.sqrt(mean_square) + eps)")),
         "eps is added outside the square root"),
        (solution("8.1", ("torch.sqrt(mean_square + eps)", "torch.sqrt(mean_square)")), "eps is missing"),
        (solution("8.1", ("torch.sqrt(mean_square + eps)", "(mean_square + eps)")), "divided by the mean square itself"),
        (solution("8.1", ("return scale * x", "return x")), "scale is not applied"),
        (solution("8.1", (".mean(dim=-1", ".mean(dim=0")), "normalised over dimension 0"),
        (solution("8.1", ("mean_square + eps", "mean_square + 1e-5")), "the eps argument is ignored (this call passed eps=0.5)"),
        (solution("8.1", (RMS, "x /= torch.sqrt(mean_square + eps)\n    return scale * x")), "changed the tensor it was given"),
        (solution("8.1", (RMS, "return (scale * x / torch.sqrt(mean_square + eps)).detach()")),
         "no gradient reaches x or scale"),
        (solution("8.1", ("torch.sqrt(mean_square + eps)", "torch.sqrt(mean_square + eps).detach()")),
         "gradients are not those of F.rms_norm"),
        (solution("8.1", ("torch.sqrt(mean_square", "math.sqrt(mean_square")), "your code raised ValueError: only one element tensors"),
        (solution("8.1", (MEAN_SQUARE, "while True:\n        pass")), "ran past 8 s"),
        (solution("8.1", (RMS, "return (scale * x / torch.sqrt(mean_square + eps)).tolist()")), "not a list"),
        (solution("8.1", (RMS, "return (scale * x / torch.sqrt(mean_square + eps)).flatten()")),
         "shaped like x, (4, 16); got (64,)"),
        (solution("8.1", ("mean_square + eps", "mean_square + 1e-6")), "differs from F.rms_norm by up to"),
        ("def rms_norm(x, scale, eps=1e-5):\n"        # divides by the largest value first, for 'stability'
         "    top = x.abs().amax(dim=-1, keepdim=True)\n"
         "    y = x / top\n"
         "    return scale * y / torch.sqrt(y.pow(2).mean(dim=-1, keepdim=True) + eps / top ** 2)",
         "NaN or inf on a token of zeros"),
        (solution("8.1", ("torch.sqrt(mean_square + eps)", "torch.sqrt(mean_square.clamp_min(eps))")),
         "eps is a floor (clamp_min or max), not an offset"),
        (solution("8.1", ("torch.sqrt(mean_square + eps)", "torch.sqrt(mean_square).clamp(min=eps)")),
         "eps is a floor (clamp_min or max), not an offset"),
    ],
    "8.2": [
        (INTERLEAVED, "GPT-J's interleaved layout, another valid convention, but not ours"),
        (solution("8.2", (ROTATE, "return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)")), "the wrong way"),
        (solution("8.2", (INV_FREQ, "base ** (-torch.arange(d // 2, dtype=torch.float32) / d)")), "exponent -i/D"),
        (solution("8.2", (INV_FREQ, "base ** (torch.arange(0, d, 2, dtype=torch.float32) / d)")), "grow with i"),
        (solution("8.2", ("positions.float()", "(positions.float() + 1)")), "positions start at 1"),
        (solution("8.2", ("positions.float()", "torch.arange(x.shape[-2]).float()")), "instead of those given (here from 4)"),
        (solution("8.2", (ROTATE, "return torch.cat([x1 * cos - x2 * sin, x2], dim=-1)")), "only one half of x"),
        (solution("8.2", (ROTATE, "return torch.cat([x1, x1 * sin + x2 * cos], dim=-1)")), "only one half of x"),
        (solution("8.2", ("base ** (", "10000.0 ** (")), "the base argument is ignored (this call passed base=100)"),
        (solution("8.2", (ROTATE, "x1.copy_(x1 * cos - x2 * sin)\n    return x")), "changed the tensor it was given"),
        (solution("8.2", (ROTATE, "return x")), "x comes back unchanged"),
        (solution("8.2", ("positions.float()[:, None]", "positions.float()")), "your code raised RuntimeError"),
        (solution("8.2", (ROTATE, "return x1 * cos - x2 * sin")), "shaped like x, (2, 3, 6, 8); got (2, 3, 6, 4)"),
        (solution("8.2", ("[:, None] * inv_freq", "[:, None] * inv_freq * 2")), "differs from gptlib.modern.apply_rope"),
        (solution("8.2", (ROTATE, "return torch.cat([x1 * sin + x2 * cos, x1 * cos - x2 * sin], dim=-1)")),
         "each half holds the other half's result"),
    ],
    "8.3": [
        (solution("8.3", (REPEAT, "k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)")), "reads key/value head h % K"),
        (solution("8.3", (SOFTMAX, "weights = torch.softmax(scores, dim=-1)")), "there is no causal mask"),
        (solution("8.3", ('float("-inf")', "0.0")), "set to 0, not -inf"),
        (solution("8.3", (SOFTMAX, "weights = torch.softmax(scores, dim=-1).masked_fill(future, 0.0)")),
         "the mask is applied after the softmax"),
        (solution("8.3", (SOFTMAX, 'weights = torch.softmax(scores, dim=-1).masked_fill(future, float("-inf"))')),
         "NaN or inf"),
        (solution("8.3", (SCALE, "")), "not divided by sqrt(D)"),
        (solution("8.3", (SCALE, "/ math.sqrt(q.shape[1] * q.shape[-1])")), "divided by sqrt(H * D)"),
        (solution("8.3", (SCALE, "/ q.shape[-1]")), "divided by D = 8, not by its square root"),
        (solution("8.3", ("return weights @ v", "return (weights @ v).detach()")), "no gradient reaches q, k or v"),
        (solution("8.3", ("return weights @ v", "return weights.detach() @ v")), "no gradient reaches q, k or v"),
        (solution("8.3", (SCALE, ""), ("    future = ", "    scores.data /= math.sqrt(q.shape[-1])\n    future = ")),
         "gradients are not those of F.scaled_dot_product_attention"),
        (solution("8.3", (REPEAT, "k.repeat_interleave(group), v.repeat_interleave(group)")), "your code raised IndexError"),
        (solution("8.3", ("    t = q.shape[2]\n", "    t = q.shape[2]\n    q /= 1.0\n")), "changed the tensor it was given"),
        (solution("8.3", ("return weights @ v", "return (weights @ v).transpose(1, 2)")), "(B, H, T, D) = (2, 4, 5, 8)"),
        (solution("8.3", ("diagonal=1", "diagonal=2")),
         "with H = 4 query heads, K = 2 key/value heads, T = 5, D = 8, the output differs"),
        (solution("8.3", ("diagonal=1", "diagonal=0")), "the diagonal is masked too"),
        (solution("8.3", ("diagonal=1", "diagonal=0"), ('float("-inf")', "-1e9")), "the diagonal is masked too"),
        (solution("8.3", (SOFTMAX, 'weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-2)')),
         "the softmax runs over the queries (dim=-2)"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "8.1": "def rms_norm(x, scale, eps=1e-5):\n"
           "    inverse = torch.rsqrt((x * x).sum(-1, keepdim=True) / x.shape[-1] + eps)\n"
           "    return torch.einsum('...c,c->...c', x * inverse, scale)",
    # (x1 + i x2) e^(i theta) = (x1 cos - x2 sin) + i (x1 sin + x2 cos): the rotation as a complex product
    "8.2": "def apply_rotary(x, positions, base=10000.0):\n"
           "    half = x.shape[-1] // 2\n"
           "    freqs = torch.exp(-math.log(base) * torch.arange(half, dtype=torch.float64) / half)\n"
           "    turn = torch.polar(torch.ones(len(positions), half, dtype=torch.float64), positions[:, None] * freqs)\n"
           "    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * turn\n"
           "    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)",
    # the query heads grouped by the key/value head they share, as gptlib.modern does: no copies of k and v
    "8.3": "def grouped_query_attention(q, k, v):\n"
           "    b, h, t, d = q.shape\n"
           "    kv = k.shape[1]\n"
           "    grouped = q.reshape(b, kv, h // kv, t, d)\n"
           "    scores = torch.einsum('bkgqd,bksd->bkgqs', grouped, k) * d ** -0.5\n"
           "    allowed = torch.ones(t, t, dtype=torch.bool).tril()\n"
           "    weights = scores.masked_fill(~allowed, -math.inf).softmax(dim=-1)\n"
           "    return torch.einsum('bkgqs,bksd->bkgqd', weights, v).reshape(b, h, t, d)",
}


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["8.1"] += [
    (solution("8.1", (RMS, "return scale * x.double() / torch.sqrt(mean_square.double() + eps)")),  # once passed
     "your result is float64, the input is float32"),
]
WRONG["8.3"] += [(solution("8.3", (SCALE, "/ math.sqrt(t)")), "divided by sqrt(T) = sqrt(5)")]


def test_pytorch_s_own_kernels_pass_too():
    """The references themselves, called as a learner might: F.rms_norm and the fused GQA kernel."""
    fused = {
        "8.1": "def rms_norm(x, scale, eps=1e-5):\n    return F.rms_norm(x, scale.shape, scale, eps)",
        "8.3": "def grouped_query_attention(q, k, v):\n"
               "    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)",
    }
    for name, source in fused.items():
        result = verdict(name, source, STUBS[name][1])
        assert result.passed, result.line
WRONG["8.1"] += [
    ("def rms_norm(x, scale, eps=1e-5):\n"
     "    return scale * x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + eps)", "the vector's length"),
    (solution("8.1", ("return scale * x", "return (1 + scale) * x")), "1 + scale (Gemma's convention"),
    (solution("8.1", (MEAN_SQUARE, "x = scale * x\n    " + MEAN_SQUARE), ("return scale * x", "return x")),
     "scale was applied before the normalisation"),
]
WRONG["8.2"] += [(solution("8.2", ("cos, sin = angles.cos(), angles.sin()", "cos, sin = angles.sin(), angles.cos()")),
                  "cos and sin are swapped")]
WRONG["8.3"] += [(solution("8.3", ("return weights @ v", "return weights.double() @ v.double()")),
                  "your result is float64, the input is float32")]


test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "8.1": [
        # rsqrt
        'def rms_norm(x, scale, eps=1e-5):\n'
        '    return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps) * scale',
    ],
    "8.2": [
        # torch.outer for the angles
        'def apply_rotary(x, positions, base=10000.0):\n'
        '    d = x.shape[-1]\n'
        '    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)   # (D/2,): fast to slow\n'
        '    angles = torch.outer(positions.to(inv_freq.dtype), inv_freq)                          # (T, D/2)\n'
        '    cos, sin = angles.cos(), angles.sin()\n'
        '    x1, x2 = x.chunk(2, dim=-1)                                             # (..., T, D/2) each\n'
        '    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)\n'
        '\n'
        '',
        # HF rotate_half
        'def apply_rotary(x, positions, base=10000.0):\n'
        '    d = x.shape[-1]\n'
        '    inv = 1.0 / (base ** (torch.arange(0, d, 2).float() / d))\n'
        '    emb = torch.cat([positions[:, None].float() * inv] * 2, dim=-1)\n'
        '    x1, x2 = x[..., : d // 2], x[..., d // 2 :]\n'
        '    rot = torch.cat([-x2, x1], dim=-1)\n'
        '    return x * emb.cos() + rot * emb.sin()',
    ],
    "8.3": [
        # expand+sdpa
        'def grouped_query_attention(q, k, v):\n'
        '    b, h, t, d = q.shape\n'
        '    g = h // k.shape[1]\n'
        '    k = k[:, :, None].expand(-1, -1, g, -1, -1).reshape(b, h, t, d)\n'
        '    v = v[:, :, None].expand(-1, -1, g, -1, -1).reshape(b, h, t, d)\n'
        '    return F.scaled_dot_product_attention(q, k, v, is_causal=True)',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"8.1", "8.2", "8.3"})
