"""Day 6: the logit processors are statistically right, and the generation loop is exact.

Sampling is checked with a chi-square goodness-of-fit test at a fixed seed (and the test is
shown to have the power to reject a wrong distribution); the KV-cache loop is checked token
for token against the plain loop, including prompts that cross the context length.
"""
from __future__ import annotations

import math

import pytest
import torch

from gptlib.generate import (apply_temperature, generate, next_token_probs, sample_next, top_k_filter,
                             top_p_filter)


# --------------------------------------------------------------------------- helpers
def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """p-value of Pearson's chi-square test that ``counts`` were drawn from ``probs``.

    Categories with an expected count below 5 are pooled, as the test requires.
    """
    n = counts.sum().double()
    expected = probs.double() * n
    counts = counts.double()
    small = expected < 5
    if small.any():
        expected = torch.cat([expected[~small], expected[small].sum().view(1)])
        counts = torch.cat([counts[~small], counts[small].sum().view(1)])
    stat = ((counts - expected) ** 2 / expected).sum()
    dof = counts.numel() - 1
    # P(chi2_dof > stat) = upper regularised incomplete gamma Q(dof/2, stat/2)
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.double), stat / 2))


def entropy(probs: torch.Tensor) -> float:
    p = probs[probs > 0]
    return float(-(p * p.log()).sum())


def draw(logits: torch.Tensor, n: int, seed: int, **kwargs) -> torch.Tensor:
    """Counts per token of ``n`` independent draws of ``sample_next`` from one row of logits."""
    gen = torch.Generator().manual_seed(seed)
    ids = sample_next(logits.expand(n, -1), generator=gen, **kwargs).squeeze(1)
    return torch.bincount(ids, minlength=logits.numel())


LOGITS = torch.randn(40, generator=torch.Generator().manual_seed(7)) * 2


# --------------------------------------------------------------------------- sampling statistics
def test_sampled_frequencies_match_softmax():
    counts = draw(LOGITS, 40_000, seed=0, temperature=1.0)
    assert chi_square_p_value(counts, torch.softmax(LOGITS, -1)) > 1e-3
    # the same test rejects a slightly wrong distribution: it can fail
    assert chi_square_p_value(counts, torch.softmax(LOGITS / 1.1, -1)) < 1e-6


def test_temperature_frequencies_match_scaled_softmax():
    counts = draw(LOGITS, 40_000, seed=1, temperature=0.7)
    assert chi_square_p_value(counts, torch.softmax(LOGITS / 0.7, -1)) > 1e-3


def test_temperature_sharpens_below_one_and_flattens_above():
    temps = [0.25, 0.5, 1.0, 2.0, 4.0]
    entropies = [entropy(next_token_probs(LOGITS, t)) for t in temps]
    assert entropies == sorted(entropies) and entropies[0] < entropies[-1]
    for t in temps:  # the ranking never changes
        assert torch.equal(torch.argsort(apply_temperature(LOGITS, t)), torch.argsort(LOGITS))
    assert entropies[-1] < math.log(LOGITS.numel())  # still below uniform


def test_temperature_zero_is_greedy():
    probs = next_token_probs(LOGITS, 0.0)
    assert probs.sum() == 1 and probs[LOGITS.argmax()] == 1
    assert sample_next(torch.stack([LOGITS, -LOGITS]), 0.0).flatten().tolist() == [
        int(LOGITS.argmax()), int(LOGITS.argmin())]


# --------------------------------------------------------------------------- top-k
def test_top_k_never_samples_outside_the_k_most_likely():
    k = 5
    allowed = set(torch.topk(LOGITS, k).indices.tolist())
    counts = draw(LOGITS, 20_000, seed=2, temperature=1.5, top_k=k)
    assert set(torch.nonzero(counts).flatten().tolist()) == allowed
    renormalised = torch.softmax(top_k_filter(LOGITS / 1.5, k), -1)
    assert chi_square_p_value(counts[list(allowed)], renormalised[list(allowed)]) > 1e-3


def test_top_k_keeps_exactly_k_even_with_ties():
    logits = torch.tensor([1.0, 3.0, 3.0, 3.0, 0.0])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.sum() == 2 and kept[1:4].sum() == 2
    assert torch.equal(top_k_filter(logits, 5), logits) and torch.equal(top_k_filter(logits, 99), logits)
    assert torch.isfinite(top_k_filter(logits, 1)).sum() == 1


# --------------------------------------------------------------------------- top-p
def _smallest_nucleus(probs: list[float], p: float) -> set[int]:
    """Brute force: the smallest set of indices whose probability reaches p (most likely first)."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    for size in range(1, len(probs) + 1):
        if sum(probs[i] for i in order[:size]) >= p - 1e-6:
            return set(order[:size])
    return set(order)


def test_top_p_on_a_worked_example():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.15, 0.3]))
    kept = lambda p: set(torch.nonzero(torch.isfinite(top_p_filter(logits, p))).flatten().tolist())  # noqa: E731
    assert kept(0.4) == {1}  # the top token alone reaches 0.4
    assert kept(0.75) == {1, 3}  # 0.5 + 0.3 = 0.8 >= 0.75
    assert kept(0.9) == {1, 3, 2}  # 0.95 >= 0.9
    assert kept(0.99) == {0, 1, 2, 3}
    assert kept(1.0) == {0, 1, 2, 3}


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8, 0.9, 0.97])
def test_top_p_keeps_the_smallest_set_reaching_p(p):
    gen = torch.Generator().manual_seed(3)
    rows = torch.randn(50, 30, generator=gen) * 2.5
    filtered = top_p_filter(rows, p)
    for row, out in zip(rows, filtered):
        probs = torch.softmax(row.double(), -1).tolist()
        kept = set(torch.nonzero(torch.isfinite(out)).flatten().tolist())
        assert kept == _smallest_nucleus(probs, p)
        assert sum(probs[i] for i in kept) >= p - 1e-6
        assert torch.equal(out[list(kept)], row[list(kept)])  # kept logits untouched


def test_top_p_samples_stay_in_the_nucleus_with_renormalised_frequencies():
    p = 0.8
    nucleus = _smallest_nucleus(torch.softmax(LOGITS.double(), -1).tolist(), p)
    counts = draw(LOGITS, 20_000, seed=4, temperature=1.0, top_p=p)
    assert set(torch.nonzero(counts).flatten().tolist()) == nucleus
    expected = torch.softmax(top_p_filter(LOGITS, p), -1)
    assert chi_square_p_value(counts[sorted(nucleus)], expected[sorted(nucleus)]) > 1e-3


# --------------------------------------------------------------------------- argument errors
@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=-3), "top_k"),
    (dict(top_k=2.5), "top_k"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(top_p=-0.1), "top_p"),
])
def test_bad_sampling_arguments_are_clear(kwargs, message, tiny_model):
    full = dict(temperature=1.0) | kwargs
    with pytest.raises(ValueError, match=message):
        sample_next(LOGITS.unsqueeze(0), **full)
    with pytest.raises(ValueError, match=message):
        generate(tiny_model, [1, 2, 3], 2, **full)


def test_apply_temperature_rejects_zero():
    with pytest.raises(ValueError, match="greedy"):
        apply_temperature(LOGITS, 0)


# --------------------------------------------------------------------------- the loop
@pytest.fixture(scope="module")
def tiny_model():
    from gptlib.model import GPTConfig, GPTModel

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.1,
                    qkv_bias=True)
    return GPTModel(cfg).eval()


def naive_greedy(model, ids: list[int], n: int, context: int) -> list[int]:
    """The textbook loop: run the whole (cropped) sequence, take the argmax, append."""
    ids = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids[-context:]]))
            ids.append(int(logits[0, -1].argmax()))
    return ids


def test_empty_prompt_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="empty prompt"):
        generate(tiny_model, [], 5)
    with pytest.raises(ValueError, match="empty prompt"):
        generate(tiny_model, torch.zeros(2, 0, dtype=torch.long), 5)


def test_other_bad_inputs_are_clear(tiny_model):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(tiny_model, [1], -1)
    with pytest.raises(TypeError, match="float32"):
        generate(tiny_model, torch.tensor([0.5, 1.0]), 2)
    with pytest.raises(TypeError, match="1.7"):  # never silently truncated to 1
        generate(tiny_model, [1.7, 2.2], 2)
    with pytest.raises(TypeError, match="encode the text"):
        generate(tiny_model, "to be", 2)
    with pytest.raises(ValueError, match="1-D"):
        generate(tiny_model, torch.zeros(1, 1, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="500"):  # checked where ids enter, not in the model's forward
        generate(tiny_model, [5, 500], 2)
    with pytest.raises(ValueError, match="eos_id"):
        generate(tiny_model, [5], 2, eos_id="x")
    with pytest.raises(ValueError, match="empty prompt"):
        generate(tiny_model, torch.zeros(0, 3, dtype=torch.long), 2)


@pytest.mark.parametrize("prompt_len", [1, 4, 15, 16, 23])
def test_cache_gives_exactly_the_uncached_greedy_tokens(tiny_model, prompt_len):
    """Prompts below, at and beyond context_length=16; 20 new tokens always cross it."""
    prompt = torch.randint(0, 97, (prompt_len,), generator=torch.Generator().manual_seed(prompt_len))
    cached = generate(tiny_model, prompt, 20, use_cache=True)
    uncached = generate(tiny_model, prompt, 20, use_cache=False)
    assert cached.tolist() == uncached.tolist()
    assert cached.tolist() == naive_greedy(tiny_model, prompt.tolist(), 20, context=16)


def test_cached_generate_feeds_the_prompt_once_then_one_token_per_step(tiny_model, monkeypatch):
    """Within the context the cache is used (not silently bypassed); past it, the full window is recomputed."""
    from gptlib.generate import KVCache

    fed = []
    forward = KVCache.forward
    monkeypatch.setattr(KVCache, "forward", lambda cache, ids: fed.append(ids.size(1)) or forward(cache, ids))
    generate(tiny_model, [1, 2, 3, 4, 5], 14)  # the last two steps see 17 and 18 tokens > 16
    assert fed == [5] + [1] * 11
    fed.clear()
    generate(tiny_model, [1, 2, 3], 4, use_cache=False)
    assert fed == []


def test_long_prompt_is_cropped_to_the_last_context_tokens(tiny_model):
    prompt = torch.randint(0, 97, (40,), generator=torch.Generator().manual_seed(5))
    out = generate(tiny_model, prompt, 3)
    assert out[:40].tolist() == prompt.tolist()  # the whole prompt is returned
    assert out[40:].tolist() == generate(tiny_model, prompt[-16:], 3)[16:].tolist()


def test_shapes_lists_and_batches(tiny_model):
    one = generate(tiny_model, [3, 1, 4], 5)
    assert one.dim() == 1 and one.shape[0] == 8 and one.dtype == torch.long
    assert generate(tiny_model, torch.tensor([3, 1, 4]), 5).tolist() == one.tolist()
    batch = torch.tensor([[3, 1, 4], [2, 7, 1]])
    out = generate(tiny_model, batch, 5)
    assert out.shape == (2, 8)
    assert out[0].tolist() == one.tolist() and out[1].tolist() == generate(tiny_model, [2, 7, 1], 5).tolist()
    assert generate(tiny_model, [3, 1, 4], 0).tolist() == [3, 1, 4]


def test_seeded_sampling_is_reproducible(tiny_model):
    def run(seed, **kw):
        return generate(tiny_model, [1, 2, 3], 30, temperature=1.0, generator=torch.Generator().manual_seed(seed),
                        **kw).tolist()
    assert run(11) == run(11)
    assert run(11) != run(12)
    assert run(11, top_k=5, top_p=0.9) == run(11, top_k=5, top_p=0.9)
    torch.manual_seed(3)
    a = generate(tiny_model, [1, 2, 3], 30, temperature=1.0).tolist()
    torch.manual_seed(3)
    assert generate(tiny_model, [1, 2, 3], 30, temperature=1.0).tolist() == a  # global seed works too


def test_generated_first_token_follows_the_model_distribution(tiny_model):
    """End to end: 20,000 one-token continuations of one prompt match softmax of the model's logits."""
    prompt = torch.tensor([[5, 9, 2, 7]])
    with torch.no_grad():
        probs = torch.softmax(tiny_model(prompt)[0, -1].double(), -1)
    out = generate(tiny_model, prompt.expand(20_000, -1), 1, temperature=1.0,
                   generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(out[:, -1], minlength=97)
    assert chi_square_p_value(counts, probs) > 1e-3


def test_eos_stops_generation(tiny_model):
    prompt = [3, 1, 4]
    greedy = generate(tiny_model, prompt, 6).tolist()
    eos = greedy[4]  # the second generated token
    out = generate(tiny_model, prompt, 6, eos_id=eos).tolist()
    assert out == greedy[: greedy.index(eos, 3) + 1]
    batch = generate(tiny_model, torch.tensor([prompt, [2, 7, 1]]), 6, eos_id=eos)
    row = batch[0].tolist()
    assert row[: len(out)] == out and all(t == eos for t in row[len(out):])  # padded with eos


def test_runs_in_eval_mode_and_restores_the_mode(tiny_model):
    tiny_model.train()
    try:
        a = generate(tiny_model, [3, 1, 4], 10)  # dropout would make this random
        assert tiny_model.training
        tiny_model.eval()
        assert generate(tiny_model, [3, 1, 4], 10).tolist() == a.tolist()
        assert not tiny_model.training
    finally:
        tiny_model.eval()


# --------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A tiny run folder, written by the same pipeline as ``python -m gptlib train``."""
    from gptlib.recipes import DAY5, pretrain

    recipe = DAY5.with_settings(name="tiny", vocab_size=281, context_length=24, emb_dim=32, n_heads=4, n_layers=2,
                                batch_size=4, max_steps=2, warmup_steps=1, eval_every=2, eval_batches=1)
    folder = tmp_path_factory.mktemp("run")
    run = pretrain("to be or not to be, that is the question. " * 40, recipe, folder, "cpu", progress=False)
    return folder, run.model, run.tokenizer


def cli(*args: str) -> int:
    from gptlib.cli import main

    try:
        return main(["generate", *args])
    except SystemExit as exc:
        return exc.code


def test_cli_greedy_matches_the_library(saved_run, capsys):
    folder, model, tokenizer = saved_run
    assert cli("--checkpoint", str(folder), "--prompt", "to be", "--max-new-tokens", "12", "--device", "cpu") == 0
    ids = tokenizer.encode("to be")
    expected = "to be" + tokenizer.decode(generate(model, ids, 12)[len(ids):].tolist())
    assert capsys.readouterr().out == expected + "\n"
    # the cache does not change greedy output
    assert cli("--checkpoint", str(folder), "--prompt", "to be", "--max-new-tokens", "12",
               "--no-cache", "--device", "cpu") == 0
    assert capsys.readouterr().out == expected + "\n"


def test_cli_sampling_is_seeded(saved_run, capsys):
    args = ["--checkpoint", str(saved_run[0]), "--prompt", "that is", "--max-new-tokens", "20",
            "--temperature", "1.2", "--top-k", "50", "--top-p", "0.95", "--device", "cpu"]
    cli(*args, "--seed", "1")
    first = capsys.readouterr().out
    cli(*args, "--seed", "1")
    assert capsys.readouterr().out == first
    cli(*args, "--seed", "2")
    assert capsys.readouterr().out != first


@pytest.mark.parametrize("extra, key_fact", [
    (["--temperature", "-1"], "temperature"),
    (["--top-p", "1.5"], "top_p"),
    (["--top-k", "0"], "top_k"),
])
def test_cli_errors_are_one_line(saved_run, capsys, extra, key_fact):
    """Exit status 2 and one line on stderr, no traceback."""
    assert cli("--checkpoint", str(saved_run[0]), "--prompt", "to be", "--device", "cpu", *extra) == 2
    err = capsys.readouterr().err
    assert key_fact in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_gpt2_download_is_off_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GPTLIB_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setenv("GPTLIB_GPT2_DIR", str(tmp_path))
    assert cli("--gpt2", "124M", "--prompt", "Hello", "--device", "cpu") == 2
    assert "GPTLIB_ALLOW_DOWNLOAD=1" in capsys.readouterr().err
    assert cli("--checkpoint", str(tmp_path / "missing"), "--prompt", "Hello", "--device", "cpu") == 2
    assert "run folder" in capsys.readouterr().err


def test_cli_refuses_a_tokenizer_from_another_run(saved_run, tmp_path, capsys):
    import shutil

    from gptlib.tokenizer import BPETokenizer

    folder = tmp_path / "swapped"
    shutil.copytree(saved_run[0], folder)
    BPETokenizer.train("another text entirely " * 30, 265, special_tokens={"<|endoftext|>": 280}).save(
        folder / "tokenizer.json")
    assert cli("--checkpoint", str(folder), "--prompt", "to be", "--device", "cpu") == 2
    assert "not the tokenizer this model was trained with" in capsys.readouterr().err
