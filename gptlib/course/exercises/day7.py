"""Day 7's exercises: a LoRA linear layer, the class scores at each message's last real token, and the
shifted, masked targets of instruction finetuning.

Each check recognises the usual mistakes by recomputing the answer with that mistake made on purpose
(``_lora_scale_mistakes``, ``_last_token_mistakes``, ``_target_mistakes``), so its hint names what went
wrong instead of guessing. Checks that draw random numbers do so inside ``torch.random.fork_rng``: they
never move the learner's own random stream.
"""
from __future__ import annotations

import torch
from torch import nn

from ...classify import class_logits
from ...instruct import IGNORE_INDEX, collate_instructions
from . import NotDone, Text, Wrong, call, close, exercise, expect, msg


def _shape(t) -> tuple | str:
    """A tensor's shape, or the kind of anything else (a verdict then says "got list", never "got ()")."""
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


# ---------------------------------------------------------------------------- 7.1 a LoRA linear layer
@exercise("7.1", todo=msg("7.1.todo"), done=msg("7.1.done"))
def _lora_linear(lora_cls) -> None:
    # d_in, d_out and rank all differ, so A and B are told apart by their shapes; alpha / rank, rank / alpha,
    # alpha and 1 all differ, so each wrong scale is recognised
    for d_in, d_out, rank, alpha in ((6, 4, 2, 8.0), (10, 7, 3, 1.5), (16, 12, 4, 16.0)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(d_in)
            _check_lora(lora_cls, d_in, d_out, rank, alpha)


def _check_lora(lora_cls, d_in: int, d_out: int, rank: int, alpha: float) -> None:
    base = nn.Linear(d_in, d_out)
    original = base.weight.detach().clone(), base.bias.detach().clone()
    layer = call(lora_cls, base, rank, alpha)
    expect(isinstance(layer, nn.Module), msg("7.1.not_module"))
    params = dict(layer.named_parameters())
    if not params:  # the untouched stub keeps nothing
        raise NotDone
    x = torch.randn(3, d_in)
    with torch.no_grad():
        expected_at_init = base(x)
    trainable = {name: p for name, p in params.items() if p.requires_grad}
    base_params = [p for p in params.values() if p.shape in ((d_out, d_in), (d_out,))]
    held = {id(p) for p in params.values()}  # a base the layer does not hold (a detached copy) trains nowhere
    if (base.weight.requires_grad and id(base.weight) in held) or any(
            p.requires_grad for p in base_params if p.shape == (d_out, d_in)):
        raise Wrong(msg("7.1.base_trains"), n=d_out * d_in)
    if (base.bias.requires_grad and id(base.bias) in held) or any(p.requires_grad for p in base_params):
        raise Wrong(msg("7.1.bias_trains"), n=d_out)
    a = [p for p in trainable.values() if p.shape in ((rank, d_in), (d_in, rank))]
    b = [p for p in trainable.values() if p.shape in ((d_out, rank), (rank, d_out))]
    expect(len(a) == 1 and len(b) == 1 and len(trainable) == 2,
           msg("7.1.parameters"), d_in=d_in, d_out=d_out, rank=rank,
           found=", ".join(f"{n} {tuple(p.shape)}" for n, p in trainable.items()) or "none")
    a, b = a[0], b[0]
    got = call(layer, x)
    expect(isinstance(got, torch.Tensor) and got.shape == (3, d_out),
           msg("7.1.shape"), want=(3, d_out), shape=_shape(got))
    if not close(got, expected_at_init):
        if bool((b != 0).any()):
            raise Wrong(msg("7.1.init_differs"), err=float((got - expected_at_init).detach().abs().max()))
        raise Wrong(msg("7.1.init_not_base"), err=float((got - expected_at_init).detach().abs().max()))
    if not bool((a != 0).any()):
        raise Wrong(msg("7.1.a_zero"))
    # training has moved B: now the scale shows
    with torch.no_grad():
        b.copy_(torch.randn(b.shape))
    a_mat = a if a.shape == (rank, d_in) else a.T
    b_mat = b if b.shape == (d_out, rank) else b.T
    x = torch.randn(2, 5, d_in, requires_grad=True)  # a batch of sequences, as inside a Transformer block
    got = call(layer, x)
    expect(isinstance(got, torch.Tensor) and got.shape == (2, 5, d_out),
           msg("7.1.leading_dims"), want=(2, 5, d_out), shape=_shape(got))
    with torch.no_grad():
        plain, update = base(x), x @ a_mat.T @ b_mat.T
    if not close(got, plain + alpha / rank * update, 1e-4):
        for scale, hint in _lora_scale_mistakes(rank, alpha):
            if close(got, plain + scale * update, 1e-4):
                raise Wrong(hint, rank=rank, alpha=alpha, want=alpha / rank)
        if close(got, plain, 1e-4):
            raise Wrong(msg("7.1.never_added"))
        raise Wrong(msg("7.1.differs"), err=float((got - plain - alpha / rank * update).detach().abs().max()))
    got.square().sum().backward()
    expect(a.grad is not None and b.grad is not None and bool(a.grad.abs().sum() > 0) and bool(b.grad.abs().sum() > 0),
           msg("7.1.no_gradient"))
    expect(base.weight.grad is None and torch.equal(base.weight.detach(), original[0])
           and torch.equal(base.bias.detach(), original[1]),
           msg("7.1.base_changed"))


def _lora_scale_mistakes(rank: int, alpha: float) -> list[tuple[float, Text]]:
    """The usual wrong scales of the low-rank update, each with its hint."""
    return [*([(alpha // rank, msg("7.1.floor"))] if alpha // rank != alpha / rank else []),
        (1.0, msg("7.1.not_scaled")), (rank / alpha, msg("7.1.rank_over_alpha")), (alpha, msg("7.1.alpha_only")),
        (alpha / rank ** 0.5, msg("7.1.sqrt_rank")), ]


# ---------------------------------------------------------------------------- 7.2 the last real token
class _Fixed(nn.Module):
    """A stand-in model that returns the same logits whatever it is given (to run the library's class_logits)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.logits


def _last_token_mistakes(logits: torch.Tensor, lengths: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    rows, t = torch.arange(logits.shape[0]), logits.shape[1]
    mistakes = {
        "last": (logits[:, -1], msg("7.2.last")), "first": (logits[:, 0], msg("7.2.first")),
        "two": (logits[rows, lengths - 2],  # a length-1 row reads position -1, as the learner's code would
                msg("7.2.two")), "mean": (logits.mean(dim=1), msg("7.2.mean")),
        "longest": (logits[:, int(lengths.max()) - 1], msg("7.2.longest")), }
    if bool((lengths < t).all()):  # with a full-length row, reading position lengths fails instead
        mistakes["length"] = (logits[rows, lengths], msg("7.2.one_past"))
    return mistakes


@exercise("7.2", todo=msg("7.2.todo"), done=msg("7.2.done"))
def _last_token(read_fn) -> None:
    # the first case has no full-length row, so "lengths" (one too far) reads padding instead of failing
    for lengths, t, c in (([3, 5, 1, 6], 7, 2), ([4, 9, 2], 9, 3), ([1], 1, 2)):
        g = torch.Generator().manual_seed(t * c)
        logits = torch.randn(len(lengths), t, c, generator=g, requires_grad=True)
        n = torch.tensor(lengths)
        got = call(read_fn, logits, n.clone())
        expected = class_logits(_Fixed(logits.detach()), torch.zeros(len(lengths), t, dtype=torch.long), n)
        b = len(lengths)
        if isinstance(got, torch.Tensor) and got.shape == (b, b, c) and b > 1:
            raise Wrong(msg("7.2.every_position"), shape=_shape(got))
        expect(isinstance(got, torch.Tensor) and got.shape == (b, c),
               msg("7.2.shape"), c=c, want=(b, c), shape=_shape(got))
        if not close(got, expected):
            for name, (wrong, hint) in _last_token_mistakes(logits.detach(), n).items():
                if close(got, wrong):
                    raise Wrong(hint)
            raise Wrong(msg("7.2.differs"), err=float((got - expected).detach().abs().max()))
        expect(got.requires_grad and got.grad_fn is not None,
               msg("7.2.no_gradient"))
        got.sum().backward()
        reached = (logits.grad.abs().sum(-1) > 0).nonzero().tolist()
        expect(reached == [[row, length - 1] for row, length in enumerate(lengths)],
               msg("7.2.wrong_positions"), got=reached)


# ---------------------------------------------------------------------------- 7.3 masked targets
def _records(lengths_and_prompts, end: int, seed: int) -> list[tuple[list[int], int]]:
    """(ids, prompt length) records: prompt + answer + [end], the layout of InstructionDataset."""
    g = torch.Generator().manual_seed(seed)
    records = []
    for length, prompt in lengths_and_prompts:
        ids = torch.randint(1, end, (length - 1,), generator=g).tolist() + [end]  # the end id occurs once, at the end
        records.append((ids, prompt))
    return records


def _target_mistakes(batch, pad_id: int, end: int) -> dict[str, tuple[torch.Tensor, torch.Tensor, Text]]:
    """The usual wrong (inputs, targets) of a batch, each with its hint (``{pad}``: the pad id)."""
    ref_inputs, ref_targets = collate_instructions(batch, pad_id)

    def shifted_mask(row_mask) -> torch.Tensor:  # the reference targets with another prompt mask per row
        targets = collate_instructions(batch, pad_id, mask_prompt=False)[1]
        for row, (_, prompt) in enumerate(batch):
            targets[row, :row_mask(prompt)] = IGNORE_INDEX
        return targets

    return {
        "padding": (ref_inputs, collate_instructions(batch, pad_id, mask_padding=False)[1], msg("7.3.padding")),
        "prompt": (ref_inputs, collate_instructions(batch, pad_id, mask_prompt=False)[1], msg("7.3.prompt")),
        "neither": (ref_inputs, collate_instructions(batch, pad_id, mask_prompt=False, mask_padding=False)[1], msg("7.3.neither")),
        "prompt_plus_one": (ref_inputs, shifted_mask(lambda prompt: prompt), msg("7.3.prompt_plus_one")),
        "prompt_minus_one": (ref_inputs, shifted_mask(lambda prompt: prompt - 2), msg("7.3.prompt_minus_one")),
        "end": (ref_inputs, ref_targets.masked_fill(ref_targets == end, IGNORE_INDEX), msg("7.3.end")), }


NOT_SHIFTED = msg("7.3.not_shifted")


@exercise("7.3", todo=msg("7.3.todo"), done=msg("7.3.done"))
def _instruction_targets(collate_fn) -> None:
    end = 50
    cases = (  # (record length, prompt length) per record; pad = the end token (as gptlib does), then another id
        ([(9, 5), (6, 4), (12, 6)], end),
        ([(7, 6), (11, 3)], 0),
        ([(5, 4)], end),
    )
    for i, (shape, pad_id) in enumerate(cases):
        batch = _records(shape, end, seed=i)
        got = call(collate_fn, [(list(ids), p) for ids, p in batch], pad_id)
        expect(isinstance(got, (tuple, list)) and len(got) == 2,
               msg("7.3.not_pair"))
        inputs, targets = got
        want = (len(batch), max(len(ids) for ids, _ in batch) - 1)
        expect(isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)
               and inputs.shape == want and targets.shape == want,
               msg("7.3.shape"), want=want, a=_shape(inputs), b=_shape(targets))
        expect(inputs.dtype == targets.dtype == torch.long, msg("7.3.not_long"),
               dtypes=f"{inputs.dtype}, {targets.dtype}".replace("torch.", ""))
        ref_inputs, ref_targets = collate_instructions(batch, pad_id)
        if torch.equal(inputs, ref_inputs) and torch.equal(targets, ref_targets):
            continue
        if bool((inputs == IGNORE_INDEX).any()):
            raise Wrong(msg("7.3.inputs_hold_ignore"))
        for wrong_inputs, wrong_targets, hint in _target_mistakes(batch, pad_id, end).values():
            if torch.equal(inputs, wrong_inputs) and torch.equal(targets, wrong_targets):
                raise Wrong(hint, pad=pad_id)
        counted = (targets != IGNORE_INDEX) & (inputs != pad_id)
        if bool(counted.any()) and torch.equal(targets[counted], inputs[counted]):
            raise Wrong(NOT_SHIFTED)
        if not torch.equal(inputs, ref_inputs):
            raise Wrong(msg("7.3.inputs_differ"), pad=pad_id)
        counted, want_counted = int((targets != IGNORE_INDEX).sum()), int((ref_targets != IGNORE_INDEX).sum())
        raise Wrong(msg("7.3.differs"), counted=counted, want=want_counted)
