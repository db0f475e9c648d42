"""Day 2's exercises: the embedding lookup as one-hot × matrix, token + position embeddings of a
batch, and the gradient of an embedding table by hand (only the looked-up rows learn).

Day 2 adds no gptlib module, so the references are torch's own: ``F.embedding`` and autograd.
Some usual mistakes make the learner's code raise instead of returning a wrong tensor (an int64
one-hot times float weights, a one-hot too narrow, a position table of the wrong length). For
those, ``_answer`` runs the code again on inputs on which that one mistake does no harm: if it
then runs and is right, that mistake was the cause, and the verdict names it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from . import NotDone, Text, Wrong, call, close, exercise, expect, msg

Probe = tuple[tuple, torch.Tensor, Text, dict]  # (arguments, the right answer for them, the mistake's hint, its values)


def _shape(x: Any) -> tuple | str:
    """A tensor's shape, or the kind of anything else (a verdict then says "got list", never "got ()")."""
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _answer(fn: Callable, args: tuple, probes: Sequence[Probe] = ()) -> Any:
    """``call(fn, *args)``; when the learner's code raises, the hint of the first probe on which it runs and
    is right replaces the bare exception (see the module docstring)."""
    try:
        return call(fn, *args)
    except Wrong:
        for probe_args, expected, hint, values in probes:
            try:
                got = call(fn, *probe_args)
            except (Wrong, NotDone):
                continue
            if isinstance(got, torch.Tensor) and got.shape == expected.shape and close(got, expected):
                raise Wrong(hint, **values) from None
        raise


def _expect_tensor(got: Any) -> None:
    expect(isinstance(got, torch.Tensor), msg("2.1.not_tensor"), kind=type(got).__name__)


INTEGER = msg("2.1.integer")
WIDTH = msg("2.1.width")
WIDTH_AND_INTEGER = msg("2.1.width_and_integer")
ROWS_SET = msg("2.1.rows_set")


def _rows_set(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """What ``oh = zeros(N, V); oh[ids] = 1; oh @ weight`` gives (ids below N): whole rows set to 1."""
    oh = torch.zeros(len(ids), weight.shape[0], dtype=weight.dtype)
    oh[ids] = 1
    return oh @ weight


@exercise("2.1", todo=msg("2.1.todo"), done=msg("2.1.done"))
def _one_hot_lookup(lookup_fn) -> None:
    for n, vocab, dim in ((6, 20, 8), (1, 7, 3), (12, 50, 16)):
        g = torch.Generator().manual_seed(n * vocab + dim)
        ids = torch.randint(0, vocab - 1, (n,), generator=g)  # never the last id: a one-hot of width ids.max() + 1 is short
        weight = torch.randn(vocab, dim, generator=g, requires_grad=True)
        integer_weight = torch.randint(-9, 10, (vocab, dim), generator=g)
        with_last = torch.cat([ids, torch.tensor([vocab - 1])])
        width = {"vocab": vocab, "width": int(ids.max()) + 1}
        small = ids % n  # ids below N, where oh[ids] = 1 (whole rows) runs
        got = _answer(lookup_fn, (ids.clone(), weight), [
            ((small.clone(), weight.detach().clone()), _rows_set(small, weight.detach()), ROWS_SET, {}),
            ((ids.clone(), integer_weight), F.embedding(ids, integer_weight), INTEGER, {}),
            ((with_last.clone(), weight.detach().clone()), F.embedding(with_last, weight.detach()), WIDTH, width),
            ((with_last.clone(), integer_weight), F.embedding(with_last, integer_weight), WIDTH_AND_INTEGER, width),
        ])
        _expect_tensor(got)
        expected = F.embedding(ids, weight.detach())
        if got.shape == (dim, n) and close(got.detach().T, expected):
            raise Wrong(msg("2.1.transposed"), dim=dim, n=n)
        if got.shape == (n, vocab):
            raise Wrong(msg("2.1.one_hot_itself"), n=n, vocab=vocab, dim=dim)
        expect(got.shape == (n, dim), msg("2.1.shape"), n=n, dim=dim, shape=_shape(got))
        if got.shape == (n, dim) and int(ids.max()) < n and close(got.detach(), _rows_set(ids, weight.detach())):
            raise Wrong(ROWS_SET)
        expect(close(got.detach(), expected),
               msg("2.1.differs"), err=float((got.detach().double() - expected.double()).abs().max()))
        no_gradient = msg("2.1.no_gradient")
        expect(got.requires_grad, no_gradient)
        got.sum().backward()
        uses = torch.bincount(ids, minlength=vocab).to(weight.dtype)[:, None].expand(vocab, dim)
        expect(weight.grad is not None and close(weight.grad, uses), no_gradient)
        # one-hot x matrix multiplies every row of the weight, looked up or not: a NaN in a row no id uses
        # reaches every output (0 * NaN = NaN); reading the rows directly (weight[ids]) never sees it
        poisoned = weight.detach().clone()
        poisoned[-1] = float("nan")
        expect(not bool(torch.isfinite(call(lookup_fn, ids.clone(), poisoned)).all()), msg("2.1.indexed"))


POSITION_MISTAKES = {  # a usual mistake -> (the wrong answer it gives, its hint); recognised by recomputing each
    "no_positions": (lambda tok, pos, ids: tok[ids],
                     msg("2.2.no_positions")), "from_one": (lambda tok, pos, ids: tok[ids] + pos[1: ids.shape[1] + 1],
                 msg("2.2.from_one")),
    "position_numbers": (lambda tok, pos, ids: tok[ids] + torch.arange(ids.shape[1])[:, None],
                         msg("2.2.position_numbers")),
    "token_numbers": (lambda tok, pos, ids: ids[..., None] + pos[: ids.shape[1]],
                      msg("2.2.token_numbers")),
    "by_row": (lambda tok, pos, ids: tok[ids] + pos[: ids.shape[0]][:, None, :],
               msg("2.2.by_row")),
    "across_batch": (lambda tok, pos, ids: tok[ids] + pos[: ids.numel()].view(*ids.shape, -1),
                     msg("2.2.across_batch")), "by_token": (lambda tok, pos, ids: tok[ids] + pos[ids],
                 msg("2.2.by_token")), }


@exercise("2.2", todo=msg("2.2.todo"), done=msg("2.2.done"))
def _token_and_position(embed_fn) -> None:
    vocab, context, dim = 20, 24, 8
    g = torch.Generator().manual_seed(2)
    tok, pos = torch.randn(vocab, dim, generator=g), torch.randn(context, dim, generator=g)

    def right(ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, tok) + F.embedding(torch.arange(ids.shape[1]), pos)

    for batch, t in ((2, 5), (3, 7), (1, 1)):
        ids = torch.randint(0, vocab, (batch, t), generator=g)
        whole_table, square = torch.randint(0, vocab, (2, context), generator=g), torch.randint(0, vocab, (t, t), generator=g)
        got = _answer(embed_fn, (ids.clone(), tok.clone(), pos.clone()), [
            ((whole_table, tok.clone(), pos.clone()), right(whole_table),
             msg("2.2.whole_table"), {"context": context}), ((square, tok.clone(), pos.clone()), right(square),
             msg("2.2.counted_along_batch"), {}), ])
        _expect_tensor(got)
        got = got.detach()
        if got.shape == (batch, t, 2 * dim):
            raise Wrong(msg("2.2.concatenated"), width=2 * dim, dim=dim)
        expect(got.shape == (batch, t, dim), msg("2.2.shape"), want=(batch, t, dim), shape=tuple(got.shape))
        expected = right(ids)
        if close(got, expected):
            continue
        for wrong, hint in POSITION_MISTAKES.values():
            if close(got, wrong(tok, pos, ids)):
                raise Wrong(hint)
        raise Wrong(msg("2.2.differs"), err=float((got.double() - expected.double()).abs().max()))
    ids = torch.randint(0, vocab, (2, 5), generator=g)          # both tables train: a gradient must reach each
    leaves = tok.clone().requires_grad_(), pos.clone().requires_grad_()
    got = call(embed_fn, ids.clone(), *leaves)
    if getattr(got, "requires_grad", False):
        got.sum().backward()
    uses = [torch.bincount(ids.flatten(), minlength=vocab), torch.bincount(torch.arange(5).repeat(2), minlength=context)]
    missing = [name for name, leaf, n in zip(("tok_weight", "pos_weight"), leaves, uses)
               if leaf.grad is None or not close(leaf.grad, n[:, None].float().expand_as(leaf))]
    expect(not missing, msg("2.2.no_gradient"), which=" / ".join(missing))


@exercise("2.3", todo=msg("2.3.todo"), done=msg("2.3.done"))
def _embedding_gradient(grad_fn) -> None:
    g = torch.Generator().manual_seed(3)
    cases = ((torch.tensor([3, 1, 3, 0, 3, 5]), 8, 4), (torch.randint(0, 30, (20,), generator=g), 30, 5),
             (torch.tensor([2]), 3, 2))
    for ids, vocab, dim in cases:
        grad_out = torch.randn(len(ids), dim, generator=g)
        weight = torch.zeros(vocab, dim, requires_grad=True)
        F.embedding(ids, weight).backward(grad_out)
        expected = weight.grad
        integer_grad = torch.randint(-9, 10, (len(ids), dim), generator=g)
        got = _answer(grad_fn, (ids.clone(), grad_out.clone(), vocab), [
            ((ids.clone(), integer_grad, vocab), torch.zeros(vocab, dim, dtype=torch.long).index_add_(0, ids, integer_grad),
             msg("2.3.integer"), {}), ])
        _expect_tensor(got)
        got = got.detach()
        n = len(ids)
        if got.shape == (dim, vocab) and close(got.T, expected):
            raise Wrong(msg("2.3.transposed"), dim=dim, vocab=vocab)
        if got.shape == (n, dim) and n != vocab:
            raise Wrong(msg("2.3.per_lookup"), n=n, dim=dim, vocab=vocab)
        expect(got.shape == (vocab, dim), msg("2.3.shape"), want=(vocab, dim), shape=tuple(got.shape))
        uses = torch.bincount(ids, minlength=vocab)
        leak = got.abs().amax(dim=1) * (uses == 0)
        if leak.max() > 0:
            row = int(leak.argmax())
            raise Wrong(msg("2.3.never_looked_up"), row=row, value=float(got[row].abs().max()))
        once = uses == 1
        expect(close(got[once], expected[once]),
               msg("2.3.used_once"))
        for row in (uses > 1).nonzero().flatten().tolist():
            if close(got[row], expected[row]):
                continue
            occurrences = grad_out[ids == row]
            values = {"row": row, "k": len(occurrences)}
            if any(close(got[row], occurrence) for occurrence in occurrences):
                raise Wrong(msg("2.3.keeps_one"), **values)
            if close(got[row], occurrences.mean(0)):
                raise Wrong(msg("2.3.mean"), **values)
            raise Wrong(msg("2.3.sum"), **values)
        expect(got.dtype == grad_out.dtype, msg("2.3.dtype"), got=str(got.dtype).removeprefix("torch."),
               want=str(grad_out.dtype).removeprefix("torch."))
