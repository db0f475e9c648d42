"""Day 6: from logits to text — greedy decoding, temperature, top-k, top-p and a KV cache.

A language model only ever answers one question: given these tokens, how likely is each
possible next token? Generating text is a loop around that answer: pick a token, append it,
ask again. This module keeps the two parts apart:

- pure *logit processors* (``apply_temperature``, ``top_k_filter``, ``top_p_filter``,
  ``next_token_probs``, ``sample_next``) that turn one row of logits into a choice; the
  temperature explorer and the tests call them directly;
- the *loop* (``generate``), which feeds the model, with or without a KV cache.

Order of the processors is the usual one (Hugging Face, nanoGPT): divide by the
temperature, cut to the top k, cut to the nucleus p, renormalise with a softmax, sample.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "next_token_probs",
    "sample_next",
    "generate",
]


# --------------------------------------------------------------------------- checks
def _check_temperature(temperature: float) -> None:
    if not isinstance(temperature, (int, float)) or temperature != temperature or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}")


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1 (or None to keep every token), got {top_k!r}")


def _check_top_p(top_p: float | None) -> None:
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1] (or None to switch the nucleus cut off), got {top_p!r}")


# --------------------------------------------------------------------------- logit processors
def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """``logits / temperature``: T < 1 sharpens the distribution, T > 1 flattens it.

    Dividing logits by T is the same as raising every probability to the power 1/T and
    renormalising, so the ranking never changes, only how peaked it is. T = 0 is the limit
    "all mass on the top token" (greedy); it cannot be a division, so it is rejected here
    and handled by ``next_token_probs`` / ``sample_next``.
    """
    _check_temperature(temperature)
    if temperature == 0:
        raise ValueError("temperature 0 means greedy decoding: take logits.argmax(-1) instead of dividing")
    return logits / temperature


def top_k_filter(logits: Tensor, k: int | None) -> Tensor:
    """Keep the ``k`` largest logits of each row and set the rest to -inf.

    Exactly ``k`` tokens survive even when several logits tie at the k-th value (ties go
    to the lower token id, as ``torch.topk`` orders them), so a sample can never be
    outside the k most likely. ``k=None`` or ``k >= vocab`` returns the logits unchanged.
    """
    _check_top_k(k)
    if k is None or k >= logits.size(-1):
        return logits
    top = torch.topk(logits, k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, top, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: Tensor, p: float | None) -> Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``p``.

    Tokens are sorted by probability; a token is kept while the mass *before* it is still
    below ``p``, so the kept set is the shortest prefix whose total is >= p (the top token
    is always kept). Unlike top-k, the number kept adapts: few tokens when the model is
    sure, many when it hesitates. ``p=None`` or ``p=1`` returns the logits unchanged.
    """
    _check_top_p(p)
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False  # never drop everything
    drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_probs(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> Tensor:
    """The distribution the next token is drawn from: temperature, then top-k, then top-p, softmax.

    ``logits`` has shape (..., vocab). With ``temperature=0`` (greedy) the result puts all
    its mass on the argmax (the cuts cannot change the top token, so they are moot).
    """
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    if temperature == 0:
        return torch.zeros_like(logits, dtype=torch.float32).scatter_(
            -1, logits.argmax(-1, keepdim=True), 1.0)
    logits = apply_temperature(logits.float(), temperature)
    logits = top_k_filter(logits, top_k)
    logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Choose the next token for each row of ``logits`` (batch, vocab) -> ids (batch, 1).

    ``temperature=0`` is greedy (``argmax``, no randomness). Otherwise one draw from
    ``next_token_probs``; pass a seeded ``torch.Generator`` to make it reproducible.
    """
    _check_temperature(temperature)
    if temperature == 0:
        _check_top_k(top_k)
        _check_top_p(top_p)
        return logits.argmax(dim=-1, keepdim=True)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.to(generator.device), 1, generator=generator).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator)


# --------------------------------------------------------------------------- the loop
def _as_batch(ids: Tensor | Sequence[int]) -> tuple[Tensor, bool]:
    """(batch, T) LongTensor and whether the caller gave a single 1-D prompt."""
    if not isinstance(ids, Tensor):
        ids = torch.tensor(list(ids), dtype=torch.long)
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"ids must hold integer token ids, got dtype {ids.dtype}")
    if ids.dim() not in (1, 2):
        raise ValueError(f"ids must be 1-D (tokens) or 2-D (batch, tokens), got shape {tuple(ids.shape)}")
    single = ids.dim() == 1
    ids = ids.long().unsqueeze(0) if single else ids.long()
    if ids.size(1) == 0 or ids.size(0) == 0:
        raise ValueError("empty prompt: generate needs at least one token to condition on "
                         "(encode some text, or start from an end-of-text token)")
    return ids, single


def _context_length(model) -> int:
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "context_length", None):
        return int(cfg.context_length)
    return int(model.pos_emb.num_embeddings)


def _new_kv_cache(model, batch_size: int):
    return model.new_kv_cache(batch_size=batch_size)


@torch.no_grad()
def generate(model, ids: Tensor | Sequence[int], max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
             use_cache: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Continue ``ids`` by up to ``max_new_tokens`` tokens; return the prompt with the continuation appended.

    Args:
        model: a ``GPTModel`` (or anything with ``forward(ids, kv_cache=None) -> logits``).
        ids: the prompt, a 1-D LongTensor / list of token ids, or a (batch, tokens) LongTensor.
            The result has the same number of dimensions. Ids outside the vocabulary get the
            model's error.
        max_new_tokens: how many tokens to add (0 returns the prompt).
        temperature: 0 (the default) is greedy decoding — always the most likely token, no
            randomness. T > 0 samples from ``softmax(logits / T)``.
        top_k: sample only among the k most likely tokens (None: no cut).
        top_p: sample only from the nucleus, the smallest set of tokens whose probability
            reaches p, in (0, 1] (None: no cut).
        eos_id: stop once every row has produced this token (it is kept in the output; rows
            that finished early are padded with it).
        use_cache: reuse the keys and values of earlier positions (a KV cache) so each step
            feeds the model one new token instead of the whole sequence. Greedy output is
            identical either way.
        generator: a seeded ``torch.Generator`` makes sampling reproducible; None uses torch's
            global random state.

    Context: the model sees at most ``context_length`` tokens. A longer prompt is cropped to
    its last ``context_length`` tokens, as GPT-2 does (the returned ids still start with the
    whole prompt). Once the sequence outgrows the context, every position shifts at each
    step, so cached keys and values no longer match; the cached path then recomputes the
    last ``context_length`` tokens for each new token, exactly as the uncached path does.

    Runs under ``torch.no_grad()`` in eval mode (dropout off); the model's training/eval mode
    is restored afterwards.
    """
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    ids, single = _as_batch(ids)
    device = next(model.parameters()).device
    ids = ids.to(device)
    context = _context_length(model)

    def pick(last_logits: Tensor) -> Tensor:
        return sample_next(last_logits, temperature, top_k, top_p, generator)

    was_training = model.training
    model.eval()
    try:
        out = ids
        finished = torch.zeros(ids.size(0), dtype=torch.bool, device=device)
        cache = None
        for _ in range(max_new_tokens):
            if use_cache and out.size(1) <= context:
                if cache is None:  # prefill: the whole prompt once
                    cache = _new_kv_cache(model, out.size(0))
                    logits = model(out, kv_cache=cache)
                else:  # one new token, attending to everything cached
                    logits = model(out[:, -1:], kv_cache=cache)
            else:  # no cache, or past the context window: recompute the last `context` tokens
                logits = model(out[:, -context:])
            next_id = pick(logits[:, -1, :])
            if eos_id is not None:
                next_id = torch.where(finished.unsqueeze(1), torch.full_like(next_id, eos_id), next_id)
                finished |= next_id.squeeze(1) == eos_id
            out = torch.cat([out, next_id], dim=1)
            if eos_id is not None and bool(finished.all()):
                break
    finally:
        model.train(was_training)
    return out.squeeze(0) if single else out
