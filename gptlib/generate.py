"""Day 6: from logits to text — greedy decoding, temperature, top-k, top-p, and the KV cache.

A language model answers one question: given these tokens, how likely is each next token?
Generating is a loop around that answer: pick a token, append it, ask again. This module keeps
the parts apart:

- pure *logit processors* (``apply_temperature``, ``top_k_filter``, ``top_p_filter``,
  ``next_token_probs``, ``sample_next``) turn one row of logits into a choice; the temperature
  explorer and the tests call them directly. Their order is the usual one (Hugging Face,
  nanoGPT): divide by the temperature, cut to the top k, cut to the nucleus p, softmax, sample;
- ``KVCache`` keeps the keys and values of the tokens already seen, so each step feeds the
  model only the new token (``KVCache.forward``: the model's forward pass, fed only the new tokens);
- the loop, ``generate``, with or without the cache.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import Tensor

from tqdm.auto import tqdm

from .checks import fraction, token_ids_in_range, whole_number
from .checks import token_batch as _check_ids
from .model import GPTModel
from .runtime import evaluating

__all__ = ["apply_temperature", "top_k_filter", "top_p_filter", "next_token_probs", "sample_next",
           "KVCache", "generate"]


# --------------------------------------------------------------------------- logit processors
MAX_NEW_TOKENS = 100_000  # generate refuses more in one call (each step appends to one growing tensor)
PROGRESS_FROM = 1_000     # from this many new tokens on, generate shows a progress bar


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    fraction("temperature (0 means greedy)", temperature, high=float("inf"))
    if top_k is not None:
        whole_number("top_k", top_k)
    if top_p is not None:
        fraction("top_p", top_p, low_open=True)


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """``logits / T``: T < 1 sharpens the distribution, T > 1 flattens it; the ranking never changes.

    The row's largest logit is subtracted first (softmax does not change), so even a tiny T gives
    0 for the top token and -inf, never NaN, for the rest. T = 0 is greedy decoding: the limit,
    not a division, so it is rejected here and handled by ``next_token_probs`` / ``sample_next``.
    """
    _check_sampling(temperature, None, None)
    if temperature == 0:
        raise ValueError("temperature 0 means greedy decoding: take logits.argmax(-1) instead of dividing")
    # a T below the dtype's smallest normal number would round to 0 (0 / 0 = NaN): it ranks the same
    return (logits - logits.amax(dim=-1, keepdim=True)) / max(temperature, torch.finfo(logits.dtype).tiny)


def top_k_filter(logits: Tensor, k: int | None) -> Tensor:
    """Keep the ``k`` largest logits of each row, set the rest to -inf (``None``: keep all).

    Exactly k tokens survive even when logits tie at the k-th value (``torch.topk`` picks), so a
    sample is never outside the k most likely.
    """
    _check_sampling(1.0, k, None)
    if k is None or k >= logits.size(-1):
        return logits
    top = torch.topk(logits, k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, top, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: Tensor, p: float | None) -> Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``p``.

    A token is kept while the mass of the tokens ranked before it is still below p, so the top
    token always survives. Unlike top-k the number kept adapts: few tokens when the model is
    sure, many when it hesitates. ``p=None`` or ``p=1`` keeps everything.
    """
    _check_sampling(1.0, None, p)
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
    """The distribution the next token is drawn from: temperature, top-k, top-p, then softmax.

    ``logits`` is (..., vocab). ``temperature=0`` puts all the mass on the argmax (greedy).
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return torch.zeros_like(logits, dtype=torch.float32).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    logits = top_p_filter(top_k_filter(apply_temperature(logits.float(), temperature), top_k), top_p)
    return torch.softmax(logits, dim=-1)


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """The next token for each row of ``logits`` (B, vocab) -> ids (B, 1).

    ``temperature=0`` is greedy (argmax, no randomness); otherwise one draw from
    ``next_token_probs``. A seeded CPU ``generator`` gives the same draws on every device: the
    probabilities are brought to the generator's device for the draw.
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    try:
        if generator is not None and generator.device != probs.device:
            return torch.multinomial(probs.to(generator.device), 1, generator=generator).to(probs.device)
        return torch.multinomial(probs, 1, generator=generator)
    except RuntimeError as exc:  # torch checks the probabilities it draws from (no extra wait for a GPU)
        if "probability tensor" not in str(exc):
            raise
        raise ValueError("cannot sample: a row of logits holds NaN or is -inf everywhere, so it gives no "
                         "probabilities; check the model's output (a NaN weight?) and the filters") from None


# --------------------------------------------------------------------------- the KV cache
class KVCache:
    """The keys and values of the tokens one model has seen so far, in every layer: incremental decoding.

    Without a cache, generating token n+1 recomputes the keys and values of all n earlier tokens
    in every layer, though they never change (an old token never sees a new one). ``forward`` runs
    ``GPTModel.forward`` on the new tokens only: each block's attention adds their keys and values
    to the cached ones and attends over all of them. A cache belongs to the model it was made for;
    ``reset()`` empties it.
    """

    def __init__(self, model: GPTModel) -> None:
        if not isinstance(model, GPTModel):
            raise TypeError(f"KVCache(model) needs the GPTModel it caches for, got {type(model).__name__}")
        self.model = model
        self.keys: list[Tensor] = []    # one (B, H, length, D) tensor per layer
        self.values: list[Tensor] = []  # the same shapes

    @property
    def length(self) -> int:
        """How many tokens are cached."""
        return self.keys[0].size(2) if self.keys else 0

    def reset(self) -> None:
        self.keys, self.values = [], []

    def forward(self, new_ids: Tensor) -> Tensor:
        """The model's logits for ``new_ids`` (B, T_new), the tokens after the cached ones: (B, T_new, vocab_size)."""
        model, start = self.model, self.length
        _check_ids(new_ids, start, model.cfg.context_length)
        if self.keys and new_ids.size(0) != self.keys[0].size(0):
            raise ValueError(f"this KV cache holds a batch of {self.keys[0].size(0)} rows, the input has "
                             f"{new_ids.size(0)}: reset() it, or make another KVCache(model)")
        positions = torch.arange(start, start + new_ids.size(1), device=new_ids.device)  # (T_new,): after the cached
        x = model.drop_emb(model.tok_emb(new_ids) + model.pos_emb(positions))  # (B, T_new, C)
        for i, block in enumerate(model.trf_blocks):  # TransformerBlock.forward, with its attention opened up
            q, k, v = block.att.project_qkv(block.norm1(x))                    # each (B, H, T_new, D)
            k, v = self.append(i, k, v)                                        # (B, H, start + T_new, D)
            x = x + block.drop_shortcut(block.att.attend(q, k, v))            # (B, T_new, C)
            x = x + block.drop_shortcut(block.ff(block.norm2(x)))
        return model.out_head(model.final_norm(x))                             # (B, T_new, vocab_size)

    def append(self, layer: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Add one layer's new keys and values to its cache; return all of them."""
        if layer == len(self.keys):  # the first tokens this layer sees
            self.keys.append(keys)
            self.values.append(values)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], keys], dim=2)      # along the tokens
            self.values[layer] = torch.cat([self.values[layer], values], dim=2)
        return self.keys[layer], self.values[layer]

    def __repr__(self) -> str:
        return f"KVCache(n_layers={self.model.cfg.n_layers}, length={self.length})"


# --------------------------------------------------------------------------- the loop
def _as_batch(ids: Tensor | Sequence[int], vocab_size: int) -> tuple[Tensor, bool]:
    """(B, T) tensor of checked ids, and whether the caller gave a single 1-D prompt."""
    if not isinstance(ids, Tensor):
        ids = list(ids)  # a str gives its characters, refused below
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, numbers.Integral):  # NumPy's integers are whole numbers
                raise TypeError(f"token ids must be whole numbers, got {i!r} ({type(i).__name__}): encode the text")
        ids = torch.tensor([int(i) for i in ids], dtype=torch.long)
    single = ids.dim() == 1
    ids = ids.reshape(1, -1) if single else ids  # (B, T); the model refuses ids that are not integers
    if ids.dim() != 2 or ids.numel() == 0:
        raise ValueError(f"empty prompt or wrong shape {tuple(ids.shape)}: ids must be 1-D or (batch, tokens)")
    token_ids_in_range(ids, vocab_size, "prompt token id")
    return ids, single


@torch.no_grad()
def generate(model, ids: Tensor | Sequence[int], max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
             use_cache: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Continue ``ids`` by up to ``max_new_tokens`` tokens; return the prompt with the continuation.

    Args:
        model: a ``GPTModel``.
        ids: the prompt, 1-D (tokens: a list or tensor) or 2-D (batch, tokens); the result has
            the same number of dimensions.
        temperature: 0 (default) is greedy decoding; T > 0 samples from ``softmax(logits / T)``.
        top_k, top_p: sample only among the k most likely tokens / from the nucleus p (None: no cut).
        eos_id: stop once every row has produced this token (kept in the output; rows that
            finished early are padded with it).
        use_cache: reuse earlier positions' keys and values (``KVCache``). The two paths' logits
            agree to float rounding: the same tokens, unless two candidates tie within it.
        generator: a seeded ``torch.Generator`` makes sampling reproducible (a CPU one gives the
            same text on every device); None uses torch's global random state.

    The model sees at most ``context_length`` tokens: a longer prompt is cropped to its last
    ones, as GPT-2 does. Once the sequence outgrows the context every position shifts at each
    step, so cached keys no longer fit and the last ``context_length`` tokens are recomputed.
    Runs in eval mode (dropout off); the model's mode is restored afterwards. At most
    ``MAX_NEW_TOKENS`` tokens per call; from ``PROGRESS_FROM`` on, a progress bar shows how far it is.
    """
    _check_sampling(temperature, top_k, top_p)
    whole_number("max_new_tokens", max_new_tokens, minimum=0, maximum=MAX_NEW_TOKENS)
    if eos_id is not None:
        whole_number("eos_id", eos_id, minimum=0)
    context, device = model.cfg.context_length, next(model.parameters()).device
    out, single = _as_batch(ids, model.cfg.vocab_size)
    out = out.to(device)
    finished = torch.zeros(out.size(0), dtype=torch.bool, device=device)
    new_cache = getattr(model, "new_kv_cache", lambda: KVCache(model))  # a model with its own forward brings its own
    cache = new_cache() if use_cache else None
    with evaluating(model):
        for _ in tqdm(range(max_new_tokens), "generating", disable=max_new_tokens < PROGRESS_FROM, mininterval=1.0):
            if cache is not None and out.size(1) <= context:
                logits = cache.forward(out[:, cache.length:])  # the whole prompt once, then each new token
            else:  # no cache, or past the context window: recompute the last `context` tokens
                logits = model(out[:, -context:])
            next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
            if eos_id is not None:
                next_id = torch.where(finished.unsqueeze(1), torch.full_like(next_id, eos_id), next_id)
                finished |= next_id.squeeze(1) == eos_id
            out = torch.cat([out, next_id], dim=1)
            if eos_id is not None and bool(finished.all()):
                break
    return out.squeeze(0) if single else out
