"""Day 5: turning one long text into (input, target) training pairs.

A language model learns by *self-supervision* (自监督): the text is its own label. For every
window of ``max_length`` tokens, the target is the same window shifted one token to the
right, so each position is asked to predict the token that follows it:

    text     你 好 世 界 啊
    input    你 好 世 界
    target   好 世 界 啊

``GPTDataset`` cuts a token sequence into such windows (a new window every ``stride``
tokens), ``create_dataloader`` batches them in a seeded, reproducible order (and splits them
between processes under ``torchrun``), and ``train_val_split`` holds out the end of a text
for validation.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .checks import fraction, token_ids_in_range, whole_number

__all__ = ["GPTDataset", "create_dataloader", "train_val_split"]

Seq = TypeVar("Seq", str, bytes, list, Tensor)


def _as_token_tensor(token_ids: Sequence[int] | Tensor) -> Tensor:
    ids = token_ids if isinstance(token_ids, Tensor) else torch.tensor(list(token_ids), dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"token_ids must be one flat sequence of ids, got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError(f"token_ids must hold integer token ids, got dtype {ids.dtype}")
    return ids.long()


class GPTDataset(Dataset):
    """Sliding windows over a token sequence: ``(ids[s : s+L], ids[s+1 : s+L+1])`` for s = 0, stride, 2*stride, ...

    ``max_length`` (L) is how many tokens the model sees at once (at most its context
    length). ``stride`` is how far the window moves: ``stride=1`` gives every possible window
    (many, heavily overlapping), ``stride=max_length`` (the default) cuts the text into
    disjoint pieces so each token is a target exactly once per epoch.
    """

    def __init__(self, token_ids: Sequence[int] | Tensor, max_length: int, stride: int | None = None,
                 vocab_size: int | None = None):
        stride = whole_number("stride", max_length if stride is None else stride)
        max_length = whole_number("max_length", max_length)
        self.token_ids = _as_token_tensor(token_ids)
        if vocab_size is not None:  # checked once here, so the model's forward need not
            token_ids_in_range(self.token_ids, vocab_size)
        self.max_length, self.stride = max_length, stride
        n = len(self.token_ids)
        if n < max_length + 1:
            raise ValueError(
                f"text too short for one training window: it has {n} tokens, but max_length={max_length} "
                f"needs {max_length + 1} (the window plus the one-token shift of the targets); "
                f"use more text or a smaller max_length")
        # The last window must still have a target for its last position: s + L + 1 <= n.
        self.starts = range(0, n - max_length, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        s = self.starts[index]
        window = self.token_ids[s: s + self.max_length + 1]
        return window[:-1], window[1:]


def _process_group() -> tuple[int, int]:
    """(world_size, rank) of the running ``torch.distributed`` job, or (1, 0) when there is none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def create_dataloader(token_ids: Sequence[int] | Tensor, batch_size: int = 8, max_length: int = 256,
                      stride: int | None = None, shuffle: bool = True, drop_last: bool = True,
                      seed: int = 123, distributed: bool | None = None, vocab_size: int | None = None) -> DataLoader:
    """Batches of ``(inputs, targets)``, each of shape (batch_size, max_length).

    The order is a pure function of ``seed`` and the epoch (``loader.sampler.set_epoch``), never
    of the global random state, so a resumed run sees exactly the batches the uninterrupted
    run would have seen.

    Under ``torchrun`` (a process group is initialised; ``distributed=None`` detects it) every
    process gets a disjoint share of each global batch: with N processes and ``batch_size`` b
    per process, the N shares of step i together are the same N*b windows that one process
    with ``batch_size=N*b`` would get at step i.
    """
    batch_size = whole_number("batch_size", batch_size)
    dataset = GPTDataset(token_ids, max_length, stride, vocab_size)
    world_size, rank = _process_group() if distributed in (None, True) else (1, 0)
    # One sampler for every case: the single-process order is the N-process order merged.
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last and world_size > 1)
    per_process = len(sampler)
    if drop_last and per_process < batch_size:
        raise ValueError(f"not enough text for one batch: {len(dataset)} windows of max_length={max_length} for "
                         f"{world_size} process(es), but batch_size={batch_size}; use more text or a smaller one")
    # A private generator: creating a DataLoader iterator then draws nothing from torch's global RNG.
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      generator=torch.Generator().manual_seed(seed))


def train_val_split(sequence: Seq, val_fraction: float = 0.1) -> tuple[Seq, Seq]:
    """Split a text (or a token sequence) into its first ``1 - val_fraction`` and its last ``val_fraction``.

    The validation part is the *end* of the text, never shuffled windows from everywhere: the
    model is scored on text it has never seen, not on overlapping copies of training windows.
    """
    fraction("val_fraction", val_fraction, low_open=True, high_open=True)
    n = len(sequence)
    cut = int(round(n * (1 - val_fraction)))
    if not 0 < cut < n:  # both parts need at least one item
        raise ValueError(f"cannot split {n} item(s) with val_fraction={val_fraction}: the "
                         f"{'training' if cut <= 0 else 'validation'} split is empty; use more text")
    return sequence[:cut], sequence[cut:]
