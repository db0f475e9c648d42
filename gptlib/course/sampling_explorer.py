"""Day 6's temperature explorer: see what temperature, top-k and top-p do to one next-token choice.

``sampling_view`` is a plain function (pytest calls it): for a prompt it returns the model's
top candidates with their probabilities before and after the cut, how many tokens survive,
the entropies, and a few sampled continuations. ``plot_sampling_view`` draws it as a bar
chart, and ``sampling_explorer`` only wires those two to ipywidgets (a prompt box and three
sliders), so the notebook's widget holds no logic of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .exercises import Text
from ..generate import generate, next_token_probs

__all__ = ["Candidate", "SamplingView", "sampling_view", "plot_sampling_view", "sampling_explorer"]


@dataclass(frozen=True)
class Candidate:
    """One possible next token."""

    token_id: int
    text: str  # the decoded token, e.g. " the"
    prob_before: float  # softmax(logits / T), before top-k / top-p (T=1 when T=0)
    prob_after: float  # what sampling really uses: after the cuts, renormalised


@dataclass
class SamplingView:
    """Everything the explorer shows for one prompt and one setting of the knobs."""

    prompt: str
    temperature: float
    top_k: int | None
    top_p: float | None
    candidates: list[Candidate]  # the most likely tokens, by prob_before
    kept: int  # how many tokens of the vocabulary can still be sampled
    entropy_before: float  # bits
    entropy_after: float  # bits
    samples: list[str] = field(default_factory=list)  # sampled continuations (prompt excluded)


# What the chart and the controls say, in the language ``gptlib.course.exercises.set_language`` picked.
LABELS = {
    "before": Text("before the cut (after temperature)", "截断前（已除以温度）"),
    "after": Text("after top-k / top-p, renormalised", "top-k / top-p 截断后，重新归一化"),
    "probability": Text("probability", "概率"),
    "off": Text("off", "关"),
    "title": Text("T={t}, top-k={k}, top-p={p}: {kept} tokens can be sampled, entropy {before} → {after} bits",
                  "T={t}，top-k={k}，top-p={p}：可采样 {kept} 个词元，熵 {before} → {after} 比特"),
    "prompt": Text("prompt", "提示词"),
    "temperature": Text("temperature", "温度"),
    "top_k": Text("top-k (0=off)", "top-k（0=关）"),
    "top_p": Text("top-p (1=off)", "top-p（1=关）"),
    "fixed_axis": Text("fixed y-axis 0–1 (compare before/after)", "固定纵轴 0–1（便于前后对比）"),
}


def _entropy_bits(probs: torch.Tensor) -> float:
    p = probs[probs > 0].double()
    return float(-(p * p.log2()).sum())


def _off_if_neutral(top_k: int | None, top_p: float | None) -> tuple[int | None, float | None]:
    """Slider conventions: top_k 0 and top_p 1.0 mean "no cut"."""
    return (None if not top_k else int(top_k)), (None if top_p is None or top_p >= 1.0 else float(top_p))


@torch.no_grad()
def sampling_view(model, tokenizer, prompt: str, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, *, n_candidates: int = 10, n_samples: int = 3,
                  max_new_tokens: int = 20, seed: int = 123) -> SamplingView:
    """Next-token probabilities of ``prompt`` before and after temperature/top-k/top-p, plus samples.

    ``tokenizer`` needs ``encode(str) -> list[int]`` and ``decode(list[int]) -> str`` (gptlib's
    BPETokenizer or a tiktoken encoding). ``top_k=0`` and ``top_p=1.0`` are read as "no cut",
    like the sliders. Samples draw from a CPU ``torch.Generator`` seeded with ``seed`` (the
    probabilities are brought to it), so the same settings show the same continuations on a
    CPU, a GPU or a Mac, up to last-bit differences in the probabilities themselves.
    """
    top_k, top_p = _off_if_neutral(top_k, top_p)
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("empty prompt: type a few words for the model to continue")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        context = model.cfg.context_length if hasattr(model, "cfg") else len(ids)
        logits = model(torch.tensor([ids[-context:]], device=device))[0, -1].float().cpu()
    finally:
        model.train(was_training)
    before = torch.softmax(logits / (temperature if temperature > 0 else 1.0), dim=-1)
    after = next_token_probs(logits, temperature, top_k, top_p)
    top = torch.topk(before, min(n_candidates, before.numel())).indices.tolist()
    candidates = [Candidate(i, tokenizer.decode([i]), float(before[i]), float(after[i])) for i in top]
    samples = []
    if n_samples > 0 and max_new_tokens > 0:
        gen = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on every device
        prompt_ids = torch.tensor(ids, device=device).expand(n_samples, -1)
        out = generate(model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                       generator=gen)
        samples = [tokenizer.decode(row[len(ids):].tolist()) for row in out.cpu()]
    return SamplingView(prompt, float(temperature), top_k, top_p, candidates, int((after > 0).sum()),
                        _entropy_bits(before), _entropy_bits(after), samples)


def plot_sampling_view(view: SamplingView, ax=None, y_max: float | None = None):
    """Bar chart of the candidates' probabilities before (grey) and after (blue) the cut.

    ``y_max`` fixes the probability axis (e.g. 1.0, so two settings can be compared by eye);
    None fits it to the tallest bar.
    """
    import matplotlib.pyplot as plt

    from .fonts import use_cjk_font

    use_cjk_font()  # candidates and labels may be Chinese

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    labels = [repr(c.text)[1:-1] or "∅" for c in view.candidates]
    x = range(len(labels))
    width = 0.4
    ax.bar([i - width / 2 for i in x], [c.prob_before for c in view.candidates], width,
           color="0.7", label=LABELS["before"].format())
    ax.bar([i + width / 2 for i in x], [c.prob_after for c in view.candidates], width,
           color="tab:blue", label=LABELS["after"].format())
    ax.set_xticks(list(x), labels, rotation=45, ha="right")
    ax.set_ylabel(LABELS["probability"].format())
    k = LABELS["off"].format() if view.top_k is None else view.top_k
    p = LABELS["off"].format() if view.top_p is None else f"{view.top_p:.2f}"
    ax.set_title(LABELS["title"].format(t=f"{view.temperature:.2f}", k=k, p=p, kept=f"{view.kept:,}",
                                        before=f"{view.entropy_before:.2f}", after=f"{view.entropy_after:.2f}"),
                 fontsize=9)
    highest = max([c.prob_after for c in view.candidates] + [c.prob_before for c in view.candidates])
    ax.set_ylim(0, y_max if y_max is not None else max(1e-6, highest) * 1.1)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def sampling_explorer(model, tokenizer, prompt: str = "The", *, n_candidates: int = 10, n_samples: int = 3,
                      max_new_tokens: int = 20, seed: int = 123):
    """An ipywidgets UI around ``sampling_view``: a prompt box, sliders for T, top-k (0 = off)
    and top-p (1 = off); the chart and the sampled continuations update live.

    Returns the widget; make it the last line of a notebook cell to show it."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    prompt_box = widgets.Text(value=prompt, description=LABELS["prompt"].format(), continuous_update=False,
                              layout=widgets.Layout(width="60%"))
    temperature = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description=LABELS["temperature"].format(),
                                      continuous_update=False)
    top_k = widgets.IntSlider(value=0, min=0, max=50, description=LABELS["top_k"].format(), continuous_update=False)
    top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description=LABELS["top_p"].format(),
                                continuous_update=False)
    fixed_axis = widgets.Checkbox(value=False, description=LABELS["fixed_axis"].format(), indent=False)
    style = {"description_width": "initial"}
    for w in (prompt_box, temperature, top_k, top_p):
        w.style = style

    def show(prompt, temperature, top_k, top_p, fixed_axis):
        try:
            view = sampling_view(model, tokenizer, prompt, temperature, top_k, top_p, n_candidates=n_candidates,
                                 n_samples=n_samples, max_new_tokens=max_new_tokens, seed=seed)
        except ValueError as exc:
            print(exc)
            return
        fig = plot_sampling_view(view, y_max=1.0 if fixed_axis else None)
        plt.show()
        plt.close(fig)
        for i, text in enumerate(view.samples, 1):
            print(f"{i}. {view.prompt}|{text}")

    out = widgets.interactive_output(show, {"prompt": prompt_box, "temperature": temperature, "top_k": top_k,
                                            "top_p": top_p, "fixed_axis": fixed_axis})
    ui = widgets.VBox([widgets.HBox([prompt_box, fixed_axis]), widgets.HBox([temperature, top_k, top_p]), out])
    return ui

