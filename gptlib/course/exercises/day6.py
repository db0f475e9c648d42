"""Day 6's exercises: the distribution at a temperature, top-k, top-p (the nucleus), one sampling step
with a seeded generator, and the generation loop that crops its input to the context.

Each check compares the learner's answer with ``gptlib.generate`` on random logits of several shapes,
then recognises the usual mistakes by recomputing the answer with that mistake made on purpose, so
its hint names what went wrong. Checks that draw random numbers do so inside
``torch.random.fork_rng``: they never move the learner's own random stream.
"""
from __future__ import annotations

import torch

from ...generate import generate, sample_next, top_k_filter, top_p_filter
from ...model import GPTConfig, GPTModel
from . import Text, Wrong, call, close, exercise, expect, msg

INF = float("-inf")


def _logits(shape: tuple[int, ...], seed: int, spread: float = 2.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * spread


def _shape_and_values(got, want_shape: tuple[int, ...], what: Text) -> torch.Tensor:
    """``got`` as a float64 tensor of ``want_shape`` holding probabilities (finite, >= 0), or ``Wrong``."""
    expect(isinstance(got, torch.Tensor) and tuple(got.shape) == want_shape,
           msg("6.1.shape"),
           want=want_shape, shape=tuple(getattr(got, "shape", ())) if isinstance(got, torch.Tensor) else type(got).__name__)
    got = got.detach().double()
    if bool(torch.isneginf(got).any()):
        raise Wrong(msg("6.1.holds_inf"), what=what.format())
    return got


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1])


# ---------------------------------------------------------------------------- 6.1 temperature
def _temperature_mistakes(logits: torch.Tensor, t: float) -> dict[str, tuple[torch.Tensor, Text]]:
    """The usual wrong distributions at temperature ``t``, each with its hint."""
    p = torch.softmax(logits, dim=-1)
    return {
        "times": (torch.softmax(logits * t, dim=-1),
                  msg("6.1.times")), "ignored": (p, msg("6.1.ignored")),
        "probs_divided": (p / t, msg("6.1.probs_divided")), "power": (p ** (1 / t), msg("6.1.power")),
        "power_t": (p ** t, msg("6.1.power_t")), "no_softmax": (torch.exp(logits / t), msg("6.1.no_softmax")),
        "columns": (torch.softmax(logits / t, dim=0),
                    msg("6.1.columns")), "log": (torch.log_softmax(logits / t, dim=-1), msg("6.1.log_probs")), }


@exercise("6.1", todo=msg("6.1.todo"), done=msg("6.1.done"))
def _temperature(probs_fn) -> None:
    # 2-D first, so softmax over dim=0 is caught; then 1-D, 3-D, and a tiny T on spread-out logits
    for shape, t, spread in (((4, 50), 0.5, 2.0), ((6,), 2.0, 2.0), ((2, 3, 17), 0.7, 2.0), ((3, 20), 0.01, 20.0)):
        logits = _logits(shape, seed=sum(shape), spread=spread)
        got = call(probs_fn, logits.clone(), t)
        got = _shape_and_values(got, shape, msg("6.1.probabilities"))
        if not bool(torch.isfinite(got).all()):
            if t < 0.1:
                raise Wrong(msg("6.1.overflow"), t=t, top=float((logits / t).max()))
            raise Wrong(msg("6.1.nan"), t=t)
        expected = torch.softmax(logits.double() / t, dim=-1)
        if close(got, expected):
            continue
        _diagnose(got, expected, _temperature_mistakes(logits.double(), t),
                  msg("6.1.differs"),
                  t=t, s=float(got.sum(-1).mean()), got=msg("6.1.flatter" if t < 1 else "6.1.sharper").format())


def _diagnose(answer: torch.Tensor, reference: torch.Tensor, mistakes: dict[str, tuple[torch.Tensor, Text]],
              differ: Text, **values) -> None:
    """``answer`` is not ``reference``: say which usual mistake it is, or that rows do not sum to 1, or by how
    much it differs (``differ``, with ``err``). Hints may use ``low``/``high`` (the row sums) and ``values``."""
    sums = answer.sum(-1)
    values = {"low": float(sums.min()), "high": float(sums.max()), **values}
    for mistake, hint in mistakes.values():
        if close(answer, mistake):
            raise Wrong(hint, **values)
    expect(close(sums, torch.ones_like(sums)), msg("6.1.row_sums"), **values)
    raise Wrong(differ, **values, err=float((answer - reference).abs().max()))


# ---------------------------------------------------------------------------- 6.2 top-k
def _kept_are_the_largest(logits: torch.Tensor, kept: torch.Tensor) -> bool:
    """Every kept logit >= every dropped one, in each row."""
    lowest_kept = logits.masked_fill(~kept, float("inf")).amin(-1)
    highest_dropped = logits.masked_fill(kept, INF).amax(-1)
    return bool((lowest_kept >= highest_dropped).all())


def _renormalised(logits: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.masked_fill(~kept, INF), dim=-1)


def _cut_mistakes(logits: torch.Tensor, kept: torch.Tensor) -> dict[str, tuple[torch.Tensor, Text]]:
    """Wrong ways to turn a correct set of kept tokens into probabilities."""
    return {
        "uncut": (torch.softmax(logits, dim=-1),
                  msg("6.2.uncut")), "zero": (torch.softmax(logits.masked_fill(~kept, 0.0), dim=-1), msg("6.2.zero")),
        "not_renormalised": (torch.softmax(logits, dim=-1) * kept,
                             msg("6.2.not_renormalised")), }


def _check_probabilities(got: torch.Tensor, logits: torch.Tensor, kept: torch.Tensor) -> None:
    """``got`` keeps exactly ``kept`` and equals the renormalised softmax over it; hints for the usual mistakes."""
    expected = _renormalised(logits, kept)
    if not close(got, expected):
        _diagnose(got, expected, _cut_mistakes(logits, kept),
                  msg("6.2.differs"))


TOP_K_CASES = (  # (logits, k): a tie at the k-th value in the last case
    (_logits((10,), 1), 3), (_logits((4, 50), 2), 5), (_logits((2, 3, 12), 3), 1), (_logits((5,), 4), 5),
    (torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0, -1.0], [0.5, 3.0, 0.5, -2.0, 0.5, 1.0]]), 3),
)


@exercise("6.2", todo=msg("6.2.todo"), done=msg("6.2.done"))
def _top_k(top_k_fn) -> None:
    for logits, k in TOP_K_CASES:
        got = _shape_and_values(call(top_k_fn, logits.clone(), k), tuple(logits.shape), msg("6.2.probabilities"))
        expect(bool(torch.isfinite(got).all()) and bool((got >= 0).all()),
               msg("6.2.not_probabilities"))
        rows, row_logits = _rows(got), _rows(logits.double())
        kept = rows > 0
        counts = kept.sum(-1)
        vocab = logits.shape[-1]
        values = {"k": k, "n": int(counts.max()), "m": int(counts.min()), "v": vocab}
        if int(counts.max()) > k:
            if int(counts.min()) == vocab:  # names the 0-instead-of--inf mistake
                _check_probabilities(rows, row_logits, torch.isfinite(top_k_filter(row_logits, k)))
            if _kept_are_the_largest(row_logits, kept):
                tied = (row_logits == torch.topk(row_logits, k, dim=-1).values[:, -1:]).sum(-1) > 1
                if bool(tied.any()) and bool((counts[~tied] == k).all()):
                    raise Wrong(msg("6.2.ties"), **values)
                if int(counts.max()) == k + 1:
                    raise Wrong(msg("6.2.off_by_one"), **values)
            raise Wrong(msg("6.2.too_many"), **values)
        expect(int(counts.min()) == k, msg("6.2.too_few"), **values)
        if not _kept_are_the_largest(row_logits, kept):
            smallest = torch.zeros_like(kept).scatter_(-1, torch.topk(row_logits, k, dim=-1, largest=False).indices, True)
            if torch.equal(kept, smallest):
                raise Wrong(msg("6.2.least_likely"))
            raise Wrong(msg("6.2.outside_top_k"))
        _check_probabilities(rows, row_logits, kept)


# ---------------------------------------------------------------------------- 6.3 top-p
def _nucleus(logits: torch.Tensor, p: float, mistake: str | None = None) -> torch.Tensor:
    """The kept set of top-p (bool, like ``logits``), or the set one of the usual mistakes keeps."""
    probs = torch.softmax(logits, dim=-1)
    if mistake == "unsorted":  # the cumulative sum over the vocabulary's order
        return torch.cumsum(probs, dim=-1) - probs < p
    values = logits if mistake == "logits" else probs
    sorted_values, order = torch.sort(values, dim=-1, descending=mistake != "ascending")
    cumulative = torch.cumsum(sorted_values, dim=0 if mistake == "cumsum_dim" else -1)
    keep_sorted = cumulative <= p if mistake == "crossing" else cumulative - sorted_values < p
    if mistake == "not_scattered":  # the right count, applied to the first positions of the unsorted row
        return keep_sorted
    if mistake == "gathered":  # read through the sort's indices instead of writing back through them
        return keep_sorted.gather(-1, order)
    return torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)


TOP_P_MISTAKES = {
    "crossing": msg("6.3.crossing"), "unsorted": msg("6.3.unsorted"), "ascending": msg("6.3.ascending"),
    "not_scattered": msg("6.3.not_scattered"), "logits": msg("6.3.logits"), "gathered": msg("6.3.gathered"),
    "cumsum_dim": msg("6.3.cumsum_dim"), }


TOP_P_CASES = (  # (logits, p): a confident row (its top token alone holds more than p) in the last case
    (_logits((12,), 5), 0.9), (_logits((4, 40), 6), 0.5), (_logits((3, 8), 7), 0.95),
    (torch.cat([_logits((1, 10), 8) + torch.tensor([6.0] + [0.0] * 9), _logits((1, 10), 9)]), 0.3),
)


@exercise("6.3", todo=msg("6.3.todo"), done=msg("6.3.done"))
def _top_p(top_p_fn) -> None:
    answers = [(logits, p, _shape_and_values(call(top_p_fn, logits.clone(), p), tuple(logits.shape),
                                             msg("6.3.probabilities"))) for logits, p in TOP_P_CASES]
    # a case where the answer cut nothing is judged last: on another case, its cut names the mistake
    for logits, p, got in sorted(answers, key=lambda answer: bool((answer[2] > 0).all())):
        rows, row_logits = _rows(got), _rows(logits.double())
        probs = torch.softmax(row_logits, dim=-1)
        empty = ~(torch.isfinite(rows) & (rows > 0)).any(-1)
        if bool(empty.any()):
            top = float(probs[empty].max())
            raise Wrong(msg("6.3.empty_row"), top=top, p=p)
        expect(bool(torch.isfinite(rows).all()) and bool((rows >= 0).all()),
               msg("6.3.not_probabilities"))
        kept, expected_kept = rows > 0, torch.isfinite(top_p_filter(row_logits, p))  # the library's nucleus
        if not torch.equal(kept, expected_kept):
            for mistake, hint in TOP_P_MISTAKES.items():
                wrong = _nucleus(row_logits, p, mistake)
                if torch.equal(kept, wrong) and not (mistake in ("ascending", "cumsum_dim") and bool(wrong.all())):
                    raise Wrong(hint, p=p, mass=float((probs * kept).sum(-1).min()))
            if not _kept_are_the_largest(row_logits, kept):
                raise Wrong(TOP_P_MISTAKES["unsorted"])
            mass = (probs * kept).sum(-1)
            if bool((mass < p - 1e-6).any()):
                raise Wrong(TOP_P_MISTAKES["crossing"], p=p, mass=float(mass.min()))
            if bool((kept.sum(-1) == probs.shape[-1]).all()):
                _check_probabilities(rows, row_logits, expected_kept)  # names the 0-instead-of--inf mistake
            raise Wrong(msg("6.3.too_many"), n=int(kept.sum()), want=int(expected_kept.sum()), p=p)
        _check_probabilities(rows, row_logits, kept)


# ---------------------------------------------------------------------------- 6.4 one sampling step
SAMPLE_LOGITS = torch.tensor([2.0, 3.1, 2.6, 1.2, 0.3, -1.5])  # day 6's six words
DRAWS = 20_000  # one frequency's standard deviation is at most sqrt(0.25 / 20000) = 0.0035


def _ids(got, rows: int) -> torch.Tensor:
    expect(not (isinstance(got, torch.Tensor) and tuple(got.shape) == (rows, 1)), msg("6.4.column"), rows=rows)
    expect(isinstance(got, torch.Tensor) and tuple(got.shape) == (rows,) and got.dtype == torch.long,
           msg("6.4.not_ids"),
           rows=rows, shape=(f"{tuple(got.shape)} {got.dtype}" if isinstance(got, torch.Tensor) else type(got).__name__))
    return got


@exercise("6.4", todo=msg("6.4.todo"), done=msg("6.4.done"))
def _sample(sample_fn) -> None:
    with torch.random.fork_rng(devices=[]):
        logits = _logits((5, 30), seed=11)
        try:
            greedy = call(sample_fn, logits.clone(), 0.0, torch.Generator().manual_seed(0))
        except Wrong:
            raise Wrong(msg("6.4.zero_raised")) from None
        expect(torch.equal(_ids(greedy, 5), logits.argmax(-1)),
               msg("6.4.not_greedy"))
        rows = SAMPLE_LOGITS.expand(DRAWS, -1).clone()
        for t in (0.5, 1.5):
            torch.manual_seed(1)
            first = _ids(call(sample_fn, rows.clone(), t, torch.Generator().manual_seed(7)), DRAWS)
            torch.manual_seed(2)  # the global random state moves; the generator's seed does not
            again = _ids(call(sample_fn, rows.clone(), t, torch.Generator().manual_seed(7)), DRAWS)
            if bool((first == SAMPLE_LOGITS.argmax()).all()):
                raise Wrong(msg("6.4.always_greedy"), t=t, n=DRAWS)
            expect(torch.equal(first, again),
                   msg("6.4.not_seeded"))
            other = _ids(call(sample_fn, rows.clone(), t, torch.Generator().manual_seed(8)), DRAWS)
            expect(not torch.equal(first, other), msg("6.4.generator_ignored"))
            expect(bool(((first >= 0) & (first < rows.shape[-1])).all()),
                   msg("6.4.out_of_range"), v=rows.shape[-1], low=int(first.min()), high=int(first.max()))
            freq = torch.bincount(first, minlength=rows.shape[-1]).double() / DRAWS
            err = lambda probs: float((freq - probs).abs().max())  # noqa: E731
            want = torch.softmax(SAMPLE_LOGITS.double() / t, dim=-1)
            # 0.02 is 5.7 standard deviations of one frequency; the mistakes below are >= 0.09 away
            if err(want) < 0.02:
                continue
            if err(torch.softmax(SAMPLE_LOGITS.double(), dim=-1)) < 0.02:
                raise Wrong(msg("6.4.temperature_ignored"), t=t)
            if err(torch.softmax(SAMPLE_LOGITS.double() * t, dim=-1)) < 0.02:
                raise Wrong(msg("6.4.times_t"))
            if err(torch.full_like(want, 1 / len(want))) < 0.02:
                raise Wrong(msg("6.4.uniform"), t=t, v=len(want))
            raise Wrong(msg("6.4.differs"), t=t, n=DRAWS, err=err(want))
        mixed = torch.stack([SAMPLE_LOGITS, SAMPLE_LOGITS.flip(0)]).repeat(DRAWS // 2, 1)  # rows that differ
        drawn = _ids(call(sample_fn, mixed.clone(), 1.0, torch.Generator().manual_seed(3)), DRAWS)
        flipped = torch.bincount(drawn[1::2], minlength=mixed.shape[-1]).double() / (DRAWS // 2)
        off = float((flipped - torch.softmax(SAMPLE_LOGITS.flip(0).double(), dim=-1)).abs().max())
        expect(off < 0.03, msg("6.4.rows_mixed"), err=f"{off:.3f}")  # 0.03: 6 standard deviations at 10,000 draws


# ---------------------------------------------------------------------------- 6.5 the generation loop
CONTEXT = 6  # the check's model sees at most 6 tokens; its prompts are longer, shorter, and exactly that


def _greedy(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)                                              # (B, V) -> (B,)


def _sampler(seed: int):
    """A pick function that draws from softmax(logits) with its own seeded generator, as 6.4 does."""
    g = torch.Generator().manual_seed(seed)
    return lambda logits: sample_next(logits, 1.0, None, None, g).squeeze(-1)  # (B, V) -> (B,)


@torch.no_grad()
def _generate_with(model: GPTModel, ids: torch.Tensor, n: int, pick, mistake: str) -> torch.Tensor:
    """The generation loop written out with one of ``LOOP_MISTAKES`` made on purpose."""
    out = ids
    for _ in range(n):
        window = {"crop_first": out[:, :CONTEXT], "crop_short": out[:, -(CONTEXT - 1):],
                  "prompt_only": ids[:, -CONTEXT:]}.get(mistake, out[:, -CONTEXT:])
        logits = model(window)
        last = logits[:, 0 if mistake == "first_position" else -1, :]
        next_id = pick(torch.softmax(last, dim=-1) if mistake == "pick_probs" else last)
        out = torch.cat([out, next_id.unsqueeze(1)], dim=1)
    return out


LOOP_MISTAKES = {  # a usual mistake -> its hint; recognised by recomputing it (_generate_with)
    "crop_first": msg("6.5.crop_first"), "crop_short": msg("6.5.crop_short"),
    "first_position": msg("6.5.first_position"), "prompt_only": msg("6.5.prompt_only"),
    "pick_probs": msg("6.5.pick_probs"), }


def _loop_model() -> GPTModel:
    """A small GPT whose random weights are large enough that every position and window changes the argmax."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(65)
        model = GPTModel(GPTConfig(vocab_size=30, context_length=CONTEXT, emb_dim=16, n_heads=2, n_layers=2,
                                   drop_rate=0.5, qkv_bias=True))  # dropout: a loop that trains the model shows
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_((1.0 if name.endswith("scale") else 0.0) + 0.5 * torch.randn_like(param))
    return model.eval()


@exercise("6.5", todo=msg("6.5.todo"), done=msg("6.5.done"))
def _generation_loop(loop_fn) -> None:
    model = _loop_model()
    g = torch.Generator().manual_seed(5)
    for (b, t), seed in (((2, 9), None), ((1, 3), None), ((3, CONTEXT), None), ((2, 8), 1), ((1, 2), 2)):
        ids, n = torch.randint(0, 30, (b, t), generator=g), 7
        pick = _greedy if seed is None else _sampler(seed)
        try:
            got = call(loop_fn, model, ids.clone(), n, CONTEXT, pick)
        except Wrong as wrong:
            if "exceed context_length" in str(wrong):
                raise Wrong(msg("6.5.no_crop"), t=max(t, CONTEXT + 1), context=CONTEXT) from None
            raise
        expect(not model.training, msg("6.5.train_mode"))
        expect(isinstance(got, torch.Tensor) and got.dim() == 2 and got.shape[0] == b, msg("6.5.not_batch"),
               b=b, shape=tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__)
        expect(tuple(got.shape) != (b, n), msg("6.5.only_new"), n=n)
        expect(t + n <= CONTEXT or tuple(got.shape) != (b, CONTEXT), msg("6.5.cropped_result"), context=CONTEXT)
        expect(tuple(got.shape) == (b, t + n), msg("6.5.shape"), want=(b, t + n), shape=tuple(got.shape))
        expect(got.dtype == torch.long, msg("6.5.dtype"), dtype=str(got.dtype).removeprefix("torch."))
        expect(torch.equal(got[:, :t], ids), msg("6.5.prompt_changed"))
        expected = generate(model, ids, n, temperature=0.0 if seed is None else 1.0, use_cache=False,
                            generator=None if seed is None else torch.Generator().manual_seed(seed))
        if torch.equal(got, expected):
            continue
        for mistake, hint in LOOP_MISTAKES.items():
            if torch.equal(got, _generate_with(model, ids, n, _greedy if seed is None else _sampler(seed), mistake)):
                raise Wrong(hint, context=CONTEXT)
        step = int((got[:, t:] != expected[:, t:]).any(dim=0).nonzero()[0])
        raise Wrong(msg("6.5.differs"), step=step + 1, t=t, how=msg("6.5.greedy" if seed is None else "6.5.sampled").format())
