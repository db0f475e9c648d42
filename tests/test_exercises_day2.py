"""Day 2's exercises: the untouched stub is "not done", plausible mistakes get their intended hint, and the
reference solution and a differently written correct one pass."""
from __future__ import annotations

from exercise_harness import exercise_sources, four_way_tests, more_alternatives_test

STUBS = exercise_sources("notebooks/day2_embed.ipynb")
SOLUTIONS = exercise_sources("notebooks/solutions/day2_solutions.ipynb")

WRONG = {  # exercise -> [(answer source, a fragment of the hint it must get)]
    "2.1": [
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids, weight.shape[0]) @ weight",
         "F.one_hot returns int64"),
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids).float() @ weight", "Pass num_classes"),
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids) @ weight", "two fixes"),
        ("def one_hot_lookup(ids, weight):\n    return weight.T @ F.one_hot(ids, len(weight)).float().T",
         "one_hot @ weight, not weight.T @ one_hot.T"),
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids, len(weight)).float()", "the one-hot itself"),
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids, len(weight)).float() @ weight.detach()",
         "no gradient reaches the weight"),
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids + 1, len(weight) + 1)[:, :-1].float() @ weight",
         "row n must be row ids[n]"),
        ("def one_hot_lookup(ids, weight):\n    return weight[ids]", "you read the rows directly"),
        ("def one_hot_lookup(ids, weight):\n    return F.embedding(ids, weight)", "you read the rows directly"),
        ("def one_hot_lookup(ids, weight):\n    return torch.index_select(weight, 0, ids)", "you read the rows directly"),
        ("def one_hot_lookup(ids, weight):\n    oh = torch.zeros(len(ids), len(weight))\n    oh[ids] = 1\n"
         "    return oh @ weight", "oh[ids] = 1 sets whole rows"),
        ("def one_hot_lookup(ids, weight):\n    return (F.one_hot(ids, len(weight)).float() @ weight).numpy()",
         "your code raised RuntimeError"),
        ("def one_hot_lookup(ids, weight):\n    return F.one_hot(ids, len(weight)).float() @ weight.T", "your code raised"),
    ],
    "2.2": [
        ("def embed_batch(ids, tok, pos):\n    return tok[ids]", "position embeddings are missing"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos[1:ids.shape[1] + 1]", "positions start at 0"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + torch.arange(ids.shape[1]).unsqueeze(-1)",
         "position numbers 0..T-1 themselves"),
        ("def embed_batch(ids, tok, pos):\n    return ids.unsqueeze(-1) + pos[:ids.shape[1]]", "token ids themselves"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos[torch.arange(len(ids))]", "T = ids.shape[1]"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos", "whole position table"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos[:ids.shape[0]].unsqueeze(1)",
         "same position vector"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos[:ids.numel()].view(*ids.shape, -1)",
         "starts again at position 0"),
        ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos[ids]", "indexed by token ids"),
        ("def embed_batch(ids, tok, pos):\n"
         "    return torch.cat([tok[ids], pos[:ids.shape[1]].expand(ids.shape[0], -1, -1)], dim=-1)",
         "don't concatenate"),
    ],
    "2.3": [
        ("def embedding_grad(ids, grad_out, vocab_size):\n    grad = torch.zeros(vocab_size, grad_out.shape[1])\n"
         "    grad[ids] += grad_out\n    return grad", "keeps only one"),
        ("def embedding_grad(ids, grad_out, vocab_size):\n    grad = torch.zeros(vocab_size, grad_out.shape[1])\n"
         "    grad[ids] = grad_out\n    return grad", "keeps only one"),
        ("def embedding_grad(ids, grad_out, vocab_size):\n    return grad_out.sum(0).expand(vocab_size, -1)",
         "never looked up"),
        ("def embedding_grad(ids, grad_out, vocab_size):\n    return grad_out", "one gradient per lookup"),
        ("def embedding_grad(ids, grad_out, vocab_size):\n    return grad_out.T @ F.one_hot(ids, vocab_size).float()",
         "the gradient is transposed"),
        ("def embedding_grad(ids, grad_out, vocab_size):\n    one_hot = F.one_hot(ids, vocab_size).float()\n"
         "    return (one_hot.T @ grad_out) / one_hot.sum(0).clamp(min=1).unsqueeze(1)", "the mean"),
        ("def embedding_grad(ids, grad_out, vocab_size):\n    return F.one_hot(ids, vocab_size).T @ grad_out",
         "gradients are integers"),
    ],
}

ALTERNATIVE = {  # exercise -> a correct answer written differently from the reference
    "2.1": "def one_hot_lookup(ids, weight):\n"
           "    return torch.einsum('nv,vc->nc', F.one_hot(ids, num_classes=len(weight)).to(weight.dtype), weight)",
    "2.2": "def embed_batch(ids, tok_weight, pos_weight):\n"
           "    b, t = ids.shape\n"
           "    out = torch.empty(b, t, tok_weight.shape[1])\n"
           "    for i in range(b):\n"
           "        for j in range(t):\n"
           "            out[i, j] = tok_weight[ids[i, j]] + pos_weight[j]\n"
           "    return out",
    "2.3": "def embedding_grad(ids, grad_out, vocab_size):\n"
           "    return F.one_hot(ids, vocab_size).float().T @ grad_out",
}


# A review's further plausible mistakes: each once passed, got no line, or got a wrong or size-only hint.
WRONG["2.2"] += [
    ("def embed_batch(ids, tok, pos):\n    return tok[ids] + pos[:ids.shape[1]].detach()", "no gradient reaches pos_weight"),
]
WRONG["2.3"] += [  # once passed: the values were compared, not the dtype
    ("def embedding_grad(ids, grad_out, vocab_size):\n"
     "    return torch.zeros(vocab_size, grad_out.shape[1], dtype=torch.float64).index_add_(0, ids, grad_out.double())",
     "your gradient is float64 and grad_out is float32"),
]


test_more_differently_written_solutions_pass = more_alternatives_test(STUBS, {  # a review's correct answers
    "2.1": [
        # scatter_ builds the one-hot
        'def one_hot_lookup(ids, weight):\n'
        '    oh = torch.zeros(ids.numel(), weight.size(0), dtype=weight.dtype).scatter_(1, ids.view(-1, 1), 1.0)\n'
        '    return torch.mm(oh, weight)',
        # eye rows
        'def one_hot_lookup(ids, weight):\n'
        '    return torch.eye(len(weight))[ids] @ weight',
    ],
    "2.2": [
        # stack rows
        'def embed_batch(ids, tok, pos):\n'
        '    return torch.stack([tok[row] for row in ids]) + pos[torch.arange(ids.size(-1))]',
    ],
    "2.3": [
        # index_add
        'def embedding_grad(ids, grad_out, vocab_size):\n'
        '    return torch.zeros(vocab_size, grad_out.size(1), dtype=grad_out.dtype).index_add_(0, ids, grad_out)',
    ],
})


(test_untouched_stub_is_not_done, test_reference_solution_passes, test_plausible_mistakes_get_their_hint,
 test_plausible_mistakes_fail_in_chinese_too, test_a_differently_written_solution_passes,
 test_every_exercise_is_covered) = four_way_tests(
    STUBS, SOLUTIONS, WRONG, ALTERNATIVE, {"2.1", "2.2", "2.3"})
