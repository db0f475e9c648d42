"""Day 6's exercises: the distribution at a temperature, top-k, top-p (the nucleus), and one sampling step
with a seeded generator.

Each check compares the learner's answer with ``gptlib.generate`` on random logits of several shapes,
then recognises the usual mistakes by recomputing the answer with that mistake made on purpose, so
its hint names what went wrong. Checks that draw random numbers do so inside
``torch.random.fork_rng``: they never move the learner's own random stream.
"""
from __future__ import annotations

import torch

from ...generate import top_k_filter, top_p_filter
from . import Text, Wrong, call, close, exercise, expect

INF = float("-inf")


def _logits(shape: tuple[int, ...], seed: int, spread: float = 2.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * spread


def _shape_and_values(got, want_shape: tuple[int, ...], what: Text) -> torch.Tensor:
    """``got`` as a float64 tensor of ``want_shape`` holding probabilities (finite, >= 0), or ``Wrong``."""
    expect(isinstance(got, torch.Tensor) and tuple(got.shape) == want_shape,
           Text("return a tensor shaped like the logits, {want}; got {shape}",
                "应返回与 logits 同形状 {want} 的张量，实际是 {shape}"),
           want=want_shape, shape=tuple(getattr(got, "shape", ())) if isinstance(got, torch.Tensor) else type(got).__name__)
    got = got.detach().double()
    if bool(torch.isneginf(got).any()):
        raise Wrong(Text("your output holds -inf: that is a filtered logit. Return {what}: softmax after the cut",
                         "你的输出里有 -inf：那是过滤后的 logit。应返回{what}：截断之后再做 softmax"),
                    what=what.format())
    return got


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1])


# ---------------------------------------------------------------------------- 6.1 temperature
def _temperature_mistakes(logits: torch.Tensor, t: float) -> dict[str, tuple[torch.Tensor, Text]]:
    """The usual wrong distributions at temperature ``t``, each with its hint."""
    p = torch.softmax(logits, dim=-1)
    return {
        "times": (torch.softmax(logits * t, dim=-1),
                  Text("at T = {t} your distribution is {got} than at T = 1: the logits were multiplied by T. Divide "
                       "them by T: T < 1 must sharpen, T > 1 flatten",
                       "T = {t} 时你的分布比 T = 1 时更{got_zh}：logits 被乘以了 T。应除以 T：T < 1 变尖，T > 1 变平")),
        "ignored": (p, Text("the temperature changes nothing in your output: divide the logits by T before the softmax",
                            "温度对你的输出没有任何影响：softmax 之前先把 logits 除以 T")),
        "probs_divided": (p / t, Text("rows sum to {s:.4g} = 1/T: you divided the probabilities by T; divide the logits, "
                                      "then softmax", "每行之和是 {s:.4g} = 1/T：你把概率除以了 T；应先把 logits 除以 T，再做 softmax")),
        "power": (p ** (1 / t), Text("rows sum to {low:.3g}..{high:.3g}: p ** (1/T) has the right shape but must be "
                                     "renormalised; dividing the logits by T before the softmax does both",
                                     "每行之和是 {low:.3g}..{high:.3g}：p ** (1/T) 的形状对了，但还要重新归一化；"
                                     "在 softmax 之前把 logits 除以 T，一步就能做到这两点")),
        "power_t": (p ** t, Text("rows sum to {low:.3g}..{high:.3g}: temperature was applied to the probabilities "
                                 "(p ** T), unnormalised; divide the logits by T before the softmax",
                                 "每行之和是 {low:.3g}..{high:.3g}：温度被用在了概率上（p ** T），而且没有归一化；"
                                 "应在 softmax 之前把 logits 除以 T")),
        "no_softmax": (torch.exp(logits / t), Text("rows sum to {low:.3g}..{high:.3g}: exp(logits / T) must be divided "
                                                   "by its row's sum (that is the softmax)",
                                                   "每行之和是 {low:.3g}..{high:.3g}：exp(logits / T) 还要除以它那一行的和"
                                                   "（这就是 softmax）")),
        "columns": (torch.softmax(logits / t, dim=0),
                    Text("softmax over the wrong dimension: each row of the vocabulary (the last dimension, dim=-1) "
                         "must sum to 1", "softmax 的维度错了：词表那一维（最后一维，dim=-1）的每一行之和应为 1")),
    }


@exercise("6.1", todo=Text("return softmax(logits / T) over the last dimension: the next-token probabilities at "
                           "temperature T > 0",
                           "返回在最后一维上的 softmax(logits / T)：温度 T > 0 时下一个词元的概率"),
          done=Text("temperature is right: logits / T, then softmax; T < 1 sharpens, T > 1 flattens, and the ranking "
                    "never changes. The library's apply_temperature subtracts each row's largest logit first, so even "
                    "T = 0.01 gives no NaN, and next_token_probs treats T = 0 as greedy decoding, the limit.",
                    "温度正确：先 logits / T，再 softmax；T < 1 使分布变尖，T > 1 使它变平，排序始终不变。库里的 "
                    "apply_temperature 先减去每行最大的 logit，所以 T = 0.01 也不会出 NaN；next_token_probs 把 T = 0 "
                    "当作极限，即贪心解码。"))
def _temperature(probs_fn) -> None:
    # 2-D first, so softmax over dim=0 is caught; then 1-D, 3-D, and a tiny T on spread-out logits
    for shape, t, spread in (((4, 50), 0.5, 2.0), ((6,), 2.0, 2.0), ((2, 3, 17), 0.7, 2.0), ((3, 20), 0.01, 20.0)):
        logits = _logits(shape, seed=sum(shape), spread=spread)
        got = call(probs_fn, logits.clone(), t)
        got = _shape_and_values(got, shape, Text("probabilities", "概率"))
        if not bool(torch.isfinite(got).all()):
            if t < 0.1:
                raise Wrong(Text("at T = {t} some probabilities are NaN or inf: exp(logits / T) overflowed (logits / T "
                                 "reaches {top:.0f}, and exp overflows past 88 in float32). Subtract each row's largest "
                                 "logit first (the softmax does not change), or use torch.softmax",
                                 "T = {t} 时有些概率是 NaN 或 inf：exp(logits / T) 溢出了（logits / T 达到 {top:.0f}，"
                                 "而 float32 的 exp 超过 88 就溢出）。先减去每行最大的 logit（softmax 不变），"
                                 "或直接用 torch.softmax"), t=t, top=float((logits / t).max()))
            raise Wrong(Text("some probabilities are NaN or inf at T = {t}", "T = {t} 时有些概率是 NaN 或 inf"), t=t)
        expected = torch.softmax(logits.double() / t, dim=-1)
        if close(got, expected):
            continue
        _diagnose(got, expected, _temperature_mistakes(logits.double(), t),
                  Text("at T = {t} the probabilities differ from softmax(logits / T) by up to {err:.3g}",
                       "T = {t} 时概率与 softmax(logits / T) 最多相差 {err:.3g}"),
                  t=t, s=float(got.sum(-1).mean()), got="flatter" if t < 1 else "sharper",
                  got_zh="平" if t < 1 else "尖")


def _diagnose(answer: torch.Tensor, reference: torch.Tensor, mistakes: dict[str, tuple[torch.Tensor, Text]],
              differ: Text, **values) -> None:
    """``answer`` is not ``reference``: say which usual mistake it is, or that rows do not sum to 1, or by how
    much it differs (``differ``, with ``err``). Hints may use ``low``/``high`` (the row sums) and ``values``."""
    sums = answer.sum(-1)
    values = {"low": float(sums.min()), "high": float(sums.max()), **values}
    for mistake, hint in mistakes.values():
        if close(answer, mistake):
            raise Wrong(hint, **values)
    expect(close(sums, torch.ones_like(sums)), Text("each row must sum to 1 (yours sum to {low:.3g}..{high:.3g})",
                                                    "每一行之和应为 1（你的是 {low:.3g}..{high:.3g}）"), **values)
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
                  Text("nothing was cut: every token keeps its softmax probability. Set the logits of all but the kept "
                       "tokens to -inf, then softmax", "什么也没有截掉：每个词元都保留了 softmax 概率。应把留下的词元之外的 "
                       "logit 都设为 -inf，再做 softmax")),
        "zero": (torch.softmax(logits.masked_fill(~kept, 0.0), dim=-1),
                 Text("every token still has a probability: the cut tokens' logits were set to 0 instead of -inf? "
                      "exp(0) = 1, so they keep a share; exp(-inf) = 0",
                      "每个词元都还有概率：被截掉的 logit 是设成了 0 而不是 -inf 吗？exp(0) = 1，它们仍分到一份；"
                      "exp(-inf) = 0")),
        "not_renormalised": (torch.softmax(logits, dim=-1) * kept,
                             Text("the right tokens are kept, but their probabilities sum to {low:.2f}..{high:.2f}: "
                                  "renormalise (divide by their sum), or set the others to -inf and softmax after the cut",
                                  "留下的词元对了，但它们的概率之和只有 {low:.2f}..{high:.2f}：要重新归一化（除以它们的和），"
                                  "或者把其余的设为 -inf，截断之后再 softmax")),
    }


def _check_probabilities(got: torch.Tensor, logits: torch.Tensor, kept: torch.Tensor) -> None:
    """``got`` keeps exactly ``kept`` and equals the renormalised softmax over it; hints for the usual mistakes."""
    expected = _renormalised(logits, kept)
    if not close(got, expected):
        _diagnose(got, expected, _cut_mistakes(logits, kept),
                  Text("the kept tokens' probabilities differ from the softmax over the kept logits by up to {err:.3g}",
                       "留下的词元的概率与只在它们的 logits 上做 softmax 的结果最多相差 {err:.3g}"))


TOP_K_CASES = (  # (logits, k): a tie at the k-th value in the last case
    (_logits((10,), 1), 3), (_logits((4, 50), 2), 5), (_logits((2, 3, 12), 3), 1), (_logits((5,), 4), 5),
    (torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0, -1.0], [0.5, 3.0, 0.5, -2.0, 0.5, 1.0]]), 3),
)


@exercise("6.2", todo=Text("return top-k probabilities: the k largest logits of each row keep a probability, "
                           "renormalised to sum to 1; every other token gets exactly 0",
                           "返回 top-k 概率：每行最大的 k 个 logit 保留概率，并重新归一化使其和为 1；其余词元的概率恰好为 0"),
          done=Text("top-k is right: exactly the k most likely tokens keep a probability, renormalised to sum to 1, "
                    "even when logits tie. The library's top_k_filter works on logits (-inf for the rest, so the "
                    "softmax after it gives them exactly 0), on whole batches, and next_token_probs chains it after "
                    "the temperature.",
                    "top-k 正确：恰好是最可能的 k 个词元保留概率，并重新归一化为 1，logit 并列时也一样。库里的 "
                    "top_k_filter 在 logits 上操作（其余设为 -inf，之后的 softmax 给它们恰好 0），一次处理整批，"
                    "next_token_probs 把它接在温度之后。"))
def _top_k(top_k_fn) -> None:
    for logits, k in TOP_K_CASES:
        got = _shape_and_values(call(top_k_fn, logits.clone(), k), tuple(logits.shape), Text("probabilities", "概率"))
        expect(bool(torch.isfinite(got).all()) and bool((got >= 0).all()),
               Text("probabilities must be finite and >= 0; yours hold NaN, inf or negative values",
                    "概率必须是有限且 >= 0 的数；你的结果里有 NaN、inf 或负数"))
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
                    raise Wrong(Text("with logits tied at the k-th largest value, {n} tokens survive where k = {k}: "
                                     "a >= threshold keeps every tie. Keep exactly k, e.g. the indices torch.topk returns",
                                     "当 logit 在第 k 大的值上并列时，k = {k} 却留下了 {n} 个词元：用 >= 阈值会把并列的全留下。"
                                     "应恰好留 k 个，例如用 torch.topk 返回的下标"), **values)
                if int(counts.max()) == k + 1:
                    raise Wrong(Text("{n} tokens kept where k = {k}: off by one, keep exactly k",
                                     "k = {k} 却留下了 {n} 个词元：差了一个，应恰好留 k 个"), **values)
            raise Wrong(Text("up to {n} tokens keep a probability where k = {k}: every other token must get exactly 0",
                             "k = {k} 时最多有 {n} 个词元保留了概率：其余词元必须恰好为 0"), **values)
        expect(int(counts.min()) == k, Text("only {m} tokens keep a probability where k = {k}: keep the k largest",
                                            "k = {k} 时只有 {m} 个词元保留了概率：应保留最大的 k 个"), **values)
        if not _kept_are_the_largest(row_logits, kept):
            smallest = torch.zeros_like(kept).scatter_(-1, torch.topk(row_logits, k, dim=-1, largest=False).indices, True)
            if torch.equal(kept, smallest):
                raise Wrong(Text("you kept the k least likely tokens: take the largest logits (torch.topk's default, "
                                 "or sort in descending order)",
                                 "你留下的是最不可能的 k 个词元：应取最大的 logits（torch.topk 的默认行为，或按降序排序）"))
            raise Wrong(Text("a token outside the k most likely keeps a probability: keep the k largest logits of each "
                             "row (the last dimension)", "有不在最可能的 k 个之内的词元保留了概率：应保留每行（最后一维）最大的 k 个 logit"))
        _check_probabilities(rows, row_logits, kept)


# ---------------------------------------------------------------------------- 6.3 top-p
def _nucleus(logits: torch.Tensor, p: float, mistake: str | None = None) -> torch.Tensor:
    """The kept set of top-p (bool, like ``logits``), or the set one of the usual mistakes keeps."""
    probs = torch.softmax(logits, dim=-1)
    if mistake == "unsorted":  # the cumulative sum over the vocabulary's order
        return torch.cumsum(probs, dim=-1) - probs < p
    values = logits if mistake == "logits" else probs
    sorted_values, order = torch.sort(values, dim=-1, descending=True)
    cumulative = torch.cumsum(sorted_values, dim=-1)
    keep_sorted = cumulative <= p if mistake == "crossing" else cumulative - sorted_values < p
    if mistake == "not_scattered":  # the right count, applied to the first positions of the unsorted row
        return keep_sorted
    return torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)


TOP_P_MISTAKES = {
    "crossing": Text("the token that crosses p is missing: the kept tokens hold only {mass:.3f} of the probability, "
                     "less than p = {p}. Keep tokens while the mass *before* them is below p, the one that reaches p "
                     "included", "越过 p 的那个词元不见了：留下的词元只占 {mass:.3f} 的概率，小于 p = {p}。"
                                  "只要某个词元之前的累计概率还小于 p 就保留它，达到 p 的那个也要留下"),
    "unsorted": Text("the kept tokens are not the most likely ones: sort the probabilities in descending order before "
                     "the cumulative sum", "留下的不是最可能的那些词元：做累计和之前先把概率按降序排序"),
    "not_scattered": Text("the right number of tokens is kept, but at the wrong places: the mask was found in sorted "
                          "order; put it back at the tokens' own positions with the sort's indices (scatter)",
                          "留下的词元个数对了，位置却错了：掩码是在排序后的顺序里算出来的；要用排序返回的下标把它放回"
                          "词元原来的位置（scatter）"),
    "logits": Text("the cut was made on cumulative logits: p is a probability mass, so add up probabilities "
                   "(softmax first, then sort and cumsum)",
                   "截断是按 logits 的累计和做的：p 是概率质量，应累加概率（先 softmax，再排序、累计求和）"),
}


TOP_P_CASES = (  # (logits, p): a confident row (its top token alone holds more than p) in the last case
    (_logits((12,), 5), 0.9), (_logits((4, 40), 6), 0.5), (_logits((3, 8), 7), 0.95),
    (torch.cat([_logits((1, 10), 8) + torch.tensor([6.0] + [0.0] * 9), _logits((1, 10), 9)]), 0.3),
)


@exercise("6.3", todo=Text("return top-p (nucleus) probabilities: the smallest set of most likely tokens whose "
                           "probabilities add up to at least p, renormalised; every other token gets exactly 0",
                           "返回 top-p（核采样）概率：由最可能的词元组成、概率之和至少为 p 的最小集合保留概率，"
                           "并重新归一化；其余词元的概率恰好为 0"),
          done=Text("top-p is right: the smallest set of most likely tokens reaching p, renormalised, the token that "
                    "crosses p included, so the top token always survives. Unlike top-k the set adapts: one token "
                    "where the model is sure, hundreds where it hesitates. The library's top_p_filter does it on "
                    "logits, one sort per row, for whole batches.",
                    "top-p 正确：由最可能的词元组成、累计概率达到 p 的最小集合保留概率并重新归一化，越过 p 的那个词元也在内，"
                    "所以最可能的词元总会留下。与 top-k 不同，这个集合会自适应：模型有把握时只留一个，犹豫时留几百个。"
                    "库里的 top_p_filter 在 logits 上操作，每行只排序一次，一次处理整批。"))
def _top_p(top_p_fn) -> None:
    for logits, p in TOP_P_CASES:
        got = _shape_and_values(call(top_p_fn, logits.clone(), p), tuple(logits.shape), Text("probabilities", "概率"))
        rows, row_logits = _rows(got), _rows(logits.double())
        probs = torch.softmax(row_logits, dim=-1)
        empty = ~(torch.isfinite(rows) & (rows > 0)).any(-1)
        if bool(empty.any()):
            top = float(probs[empty].max())
            raise Wrong(Text("a row kept no token (all 0 or NaN): its most likely token alone has probability {top:.3f} "
                             "> p = {p}, and it must stay: keep a token while the mass before it is below p",
                             "有一行一个词元也没留下（全是 0 或 NaN）：它最可能的词元单独就有 {top:.3f} > p = {p} 的概率，"
                             "必须留下：只要某个词元之前的累计概率还小于 p 就保留它"), top=top, p=p)
        expect(bool(torch.isfinite(rows).all()) and bool((rows >= 0).all()),
               Text("probabilities must be finite and >= 0; yours hold NaN, inf or negative values",
                    "概率必须是有限且 >= 0 的数；你的结果里有 NaN、inf 或负数"))
        kept, expected_kept = rows > 0, torch.isfinite(top_p_filter(row_logits, p))  # the library's nucleus
        if not torch.equal(kept, expected_kept):
            for mistake, hint in TOP_P_MISTAKES.items():
                if torch.equal(kept, _nucleus(row_logits, p, mistake)):
                    raise Wrong(hint, p=p, mass=float((probs * kept).sum(-1).min()))
            if not _kept_are_the_largest(row_logits, kept):
                raise Wrong(TOP_P_MISTAKES["unsorted"])
            mass = (probs * kept).sum(-1)
            if bool((mass < p - 1e-6).any()):
                raise Wrong(TOP_P_MISTAKES["crossing"], p=p, mass=float(mass.min()))
            if bool((kept.sum(-1) == probs.shape[-1]).all()):
                _check_probabilities(rows, row_logits, expected_kept)  # names the 0-instead-of--inf mistake
            raise Wrong(Text("{n} tokens kept where the smallest set reaching p = {p} has {want}: stop as soon as the "
                             "mass reaches p", "留下了 {n} 个词元，而达到 p = {p} 的最小集合只有 {want} 个：累计概率一达到 p 就停"),
                        n=int(kept.sum()), want=int(expected_kept.sum()), p=p)
        _check_probabilities(rows, row_logits, kept)


# ---------------------------------------------------------------------------- 6.4 one sampling step
SAMPLE_LOGITS = torch.tensor([2.0, 3.1, 2.6, 1.2, 0.3, -1.5])  # day 6's six words
DRAWS = 20_000  # one frequency's standard deviation is at most sqrt(0.25 / 20000) = 0.0035


def _ids(got, rows: int) -> torch.Tensor:
    expect(isinstance(got, torch.Tensor) and tuple(got.shape) in ((rows,), (rows, 1)) and not got.dtype.is_floating_point,
           Text("return one integer token id per row: a tensor of shape ({rows},), got {shape}",
                "应为每一行返回一个整数词元 id：形状为 ({rows},) 的张量，实际是 {shape}"),
           rows=rows, shape=(f"{tuple(got.shape)} {got.dtype}" if isinstance(got, torch.Tensor) else type(got).__name__))
    return got.reshape(rows).long()


@exercise("6.4", todo=Text("return one token id per row of (B, V) logits: the argmax when temperature is 0, else one "
                           "draw from softmax(logits / T) made with the given torch.Generator",
                           "为 (B, V) logits 的每一行返回一个词元 id：温度为 0 时取 argmax，否则用给定的 torch.Generator "
                           "从 softmax(logits / T) 中抽一次"),
          done=Text("sampling is right: greedy at T = 0; at T > 0 the draws follow softmax(logits / T), and the same "
                    "seed gives the same tokens. The library's sample_next adds top-k and top-p, and draws on the "
                    "generator's own device: pass a CPU generator and a seed gives the same text on every device, even "
                    "when the model runs on a GPU.",
                    "采样正确：T = 0 时是贪心；T > 0 时抽样服从 softmax(logits / T)，同一个种子给出同样的词元。库里的 "
                    "sample_next 还加上了 top-k 和 top-p，并在生成器所在的设备上抽样：传入 CPU 的生成器，"
                    "同一个种子在任何设备上都给出同样的文本，即使模型在 GPU 上运行。"))
def _sample(sample_fn) -> None:
    with torch.random.fork_rng(devices=[]):
        logits = _logits((5, 30), seed=11)
        try:
            greedy = call(sample_fn, logits.clone(), 0.0, torch.Generator().manual_seed(0))
        except Wrong:
            raise Wrong(Text("temperature 0 raised an error: T = 0 means greedy decoding, return logits.argmax(-1) "
                             "(dividing by 0 gives inf and NaN)", "温度 0 时抛出了错误：T = 0 表示贪心解码，应返回 "
                             "logits.argmax(-1)（除以 0 会得到 inf 和 NaN）")) from None
        expect(torch.equal(_ids(greedy, 5), logits.argmax(-1)),
               Text("at temperature 0 return each row's most likely token, logits.argmax(-1): greedy decoding, no "
                    "randomness", "温度为 0 时应返回每行最可能的词元 logits.argmax(-1)：贪心解码，没有随机性"))
        rows = SAMPLE_LOGITS.expand(DRAWS, -1).clone()
        for t in (0.5, 1.5):
            torch.manual_seed(1)
            first = _ids(call(sample_fn, rows.clone(), t, torch.Generator().manual_seed(7)), DRAWS)
            torch.manual_seed(2)  # the global random state moves; the generator's seed does not
            again = _ids(call(sample_fn, rows.clone(), t, torch.Generator().manual_seed(7)), DRAWS)
            if bool((first == SAMPLE_LOGITS.argmax()).all()):
                raise Wrong(Text("at T = {t} every one of {n:,} draws is the most likely token: that is greedy decoding; "
                                 "draw from the probabilities, e.g. torch.multinomial(probs, 1, generator=generator)",
                                 "T = {t} 时 {n:,} 次抽样全是最可能的词元：那是贪心解码；应从概率中抽样，例如 "
                                 "torch.multinomial(probs, 1, generator=generator)"), t=t, n=DRAWS)
            expect(torch.equal(first, again),
                   Text("the same seed gave different tokens: draw with the generator you are given "
                        "(torch.multinomial(probs, 1, generator=generator)), not with torch's global random state",
                        "同一个种子却给出了不同的词元：应使用传入的生成器抽样（torch.multinomial(probs, 1, "
                        "generator=generator)），而不是 torch 的全局随机状态"))
            expect(bool(((first >= 0) & (first < rows.shape[-1])).all()),
                   Text("token ids must lie in [0, {v}); yours range over {low}..{high}",
                        "词元 id 必须在 [0, {v}) 之内；你的在 {low}..{high}"),
                   v=rows.shape[-1], low=int(first.min()), high=int(first.max()))
            freq = torch.bincount(first, minlength=rows.shape[-1]).double() / DRAWS
            err = lambda probs: float((freq - probs).abs().max())  # noqa: E731
            want = torch.softmax(SAMPLE_LOGITS.double() / t, dim=-1)
            # 0.02 is 5.7 standard deviations of one frequency; the mistakes below are >= 0.09 away
            if err(want) < 0.02:
                continue
            if err(torch.softmax(SAMPLE_LOGITS.double(), dim=-1)) < 0.02:
                raise Wrong(Text("the draws follow temperature 1, not T = {t}: divide the logits by T before the softmax",
                                 "抽样服从的是温度 1，而不是 T = {t}：softmax 之前先把 logits 除以 T"), t=t)
            if err(torch.softmax(SAMPLE_LOGITS.double() * t, dim=-1)) < 0.02:
                raise Wrong(Text("the draws follow softmax(logits * T): divide the logits by T, don't multiply",
                                 "抽样服从的是 softmax(logits * T)：应把 logits 除以 T，而不是乘以 T"))
            raise Wrong(Text("at T = {t} the frequencies of {n:,} draws differ from softmax(logits / T) by up to {err:.3f} "
                             "(chance alone stays below 0.02)",
                             "T = {t} 时 {n:,} 次抽样的频率与 softmax(logits / T) 最多相差 {err:.3f}（仅凭偶然不会超过 0.02）"),
                        t=t, n=DRAWS, err=err(want))

