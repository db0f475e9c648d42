"""Your GPT on days 5-7: your kept training loop and schedule (5.3, 5.4), sampler and generation loop (6.4,
6.5) and LoRA layer (7.1) are used where they passed, gptlib's stand in elsewhere (a wrong answer never
is), the one line counts them in both languages, and with the stand-ins everything is gptlib's, exactly."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gptlib.course.exercises import check, set_language
from gptlib.course.yours import your_gpt, your_pieces
from gptlib.course.yours_lora import EVERY, TARGETS, add_lora, lora_class, lora_line
from gptlib.course.yours_sample import STAND_INS as SAMPLE_STAND_INS, generate_with, sampler_line
from gptlib.course.yours_train import STAND_INS as TRAIN_STAND_INS, train_with, training_line
from gptlib.generate import generate
from gptlib.lora import LoRALinear, apply_lora
from gptlib.model import GPTModel
from gptlib.train import TrainConfig, train

from test_yours import ALL, CFG


# ---- a learner's answers, written differently from the solutions notebooks
def steps(model, batches, optimizer):
    out = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, model(x).shape[-1]), y.reshape(-1))
        loss.backward()
        optimizer.step()
        out.append(loss.detach().item())
    return out


def steps_no_zero_grad(model, batches, optimizer):  # wrong: gradients pile up
    out = []
    for x, y in batches:
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
        out.append(loss.item())
    return out


def multiplier(step, warmup_steps, max_steps, min_lr_ratio):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * (1 + math.cos(math.pi * t)) / 2


def multiplier_no_floor(step, warmup_steps, max_steps, min_lr_ratio):  # wrong: decays to 0
    return multiplier(step, warmup_steps, max_steps, 0.0)


def sample_token(logits, temperature, generator):
    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    return torch.multinomial(F.softmax(logits / temperature, dim=-1), 1, generator=generator)[:, 0]


def sample_ignoring_t(logits, temperature, generator):  # wrong: the temperature is never used
    if temperature == 0:
        return logits.argmax(-1)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate_loop(model, ids, max_new_tokens, context_length, pick):
    for _ in range(max_new_tokens):
        nxt = pick(model(ids[:, max(0, ids.shape[1] - context_length):])[:, -1])
        ids = torch.cat((ids, nxt[:, None]), 1)
    return ids


class LoRA(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad = False
        self.A = nn.Parameter(torch.randn(rank, base.in_features) * 0.1)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.A.T) @ self.B.T


class LoRABiasTrains(LoRA):  # wrong: the base layer's bias still trains
    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        base.bias.requires_grad = True


LATER = {"5.3": steps, "5.4": multiplier, "6.4": sample_token, "6.5": generate_loop, "7.1": LoRA}


def kept_and_stand_ins():
    pieces = your_pieces(every=EVERY)
    return {**TRAIN_STAND_INS, **SAMPLE_STAND_INS, **pieces, "7.1": lora_class(pieces)}


def test_nothing_kept_gives_the_library_s_pieces(workspace):
    assert your_pieces(every=EVERY) == {}
    assert kept_and_stand_ins() == {**TRAIN_STAND_INS, **SAMPLE_STAND_INS, "7.1": LoRALinear}


def test_a_passing_answer_is_used_and_a_wrong_one_never(workspace, capsys):
    wrong = {"5.3": steps_no_zero_grad, "5.4": multiplier_no_floor, "6.4": sample_ignoring_t,
             "7.1": LoRABiasTrains}
    for exercise, answer in wrong.items():
        check(exercise, answer)
    assert capsys.readouterr().out.count("FAIL") == len(wrong)
    assert kept_and_stand_ins() == {**TRAIN_STAND_INS, **SAMPLE_STAND_INS, "7.1": LoRALinear}  # none kept
    for exercise, answer in LATER.items():
        check(exercise, answer)
    out = capsys.readouterr().out
    assert out.count("PASS") == len(LATER) and "not kept" not in out, out
    pieces = kept_and_stand_ins()
    for exercise, answer in LATER.items():                  # the kept source, imported from mygpt/dayN.py
        assert pieces[exercise].__module__ == f"mygpt.day{exercise[0]}", exercise
        assert pieces[exercise].__name__ == answer.__name__
    for exercise, answer in wrong.items():                  # a wrong try after the pass keeps the pass
        check(exercise, answer)
    assert {ex: p.__name__ for ex, p in kept_and_stand_ins().items()} == {ex: a.__name__ for ex, a in LATER.items()}


def test_the_line_counts_every_day_s_pieces_in_both_languages():
    assert training_line({}).startswith("your GPT: 0 of 8 pieces are yours yet; all are the library's")
    assert sampler_line({**ALL, **LATER}) == "your GPT: 10 of 10 pieces are yours — every one"
    assert lora_line({**ALL, **LATER}) == "your GPT: 11 of 11 pieces are yours — every one"
    some = {**ALL, "5.3": steps}
    assert training_line(some) == ("your GPT: 7 of 8 pieces are yours; still the library's: the learning-rate "
                                   "schedule (pass 5.4 to make them yours)")
    assert lora_line(some) == ("your GPT: 7 of 11 pieces are yours; still the library's: the learning-rate "
                               "schedule, sampling a token, the generation loop and the LoRA layer "
                               "(pass 5.4, 6.4, 6.5, 7.1 to make them yours)")
    set_language("zh")
    try:
        assert training_line(some) == "你的 GPT：8 个部件中有 7 个是你写的；仍是库的：学习率调度（通过练习 5.4 就换成你的）"
        assert lora_line(ALL).startswith("你的 GPT：11 个部件中有 6 个是你写的；仍是库的：训练循环、学习率调度、单步采样、"
                                         "生成循环 和 LoRA 层")
    finally:
        set_language("en")


# ---- day 5: training
def batches(n=10):
    tokens = torch.arange(n * 4 * 17).remainder(7).reshape(n, 4, 17)  # a pattern a GPT learns in a few steps
    return [(b[:, :-1], b[:, 1:]) for b in tokens]


def trained(build, pieces):
    torch.manual_seed(0)
    model = build(CFG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    return train_with(pieces, model, batches(), optimizer, warmup_steps=2, min_lr_ratio=0.1), model


def test_the_stand_ins_train_as_gptlib_s_train_does():
    losses, _ = trained(GPTModel, {})
    torch.manual_seed(0)
    model = GPTModel(CFG)
    cfg = TrainConfig(max_steps=10, lr=3e-3, warmup_steps=2, min_lr_ratio=0.1, weight_decay=0.0, grad_clip=None,
                      eval_every=10**6, eval_batches=1, eval_at_start=False, progress=False)
    loader = DataLoader(TensorDataset(*(torch.cat(t) for t in zip(*batches()))), batch_size=4)   # the same batches
    library = train(model, loader, loader, cfg)["train_loss"]             # its schedule, its (fused) AdamW
    assert max(abs(a - b) for a, b in zip(losses, library)) < 1e-4, (losses, library)
    assert losses[-1] < losses[0] - 1.0


def test_your_gpt_trained_your_way_matches_the_library_and_a_wrong_schedule_shows():
    library, library_model = trained(GPTModel, {})
    stand_ins, _ = trained(lambda c: your_gpt(c, {}), {})
    assert stand_ins == library                                           # all gptlib's: bit for bit
    yours, _ = trained(lambda c: your_gpt(c, ALL), {**ALL, "5.3": steps, "5.4": multiplier})
    assert max(abs(a - b) for a, b in zip(yours, library)) < 1e-4, (yours, library)
    wrong, _ = trained(lambda c: your_gpt(c, ALL), {"5.3": steps, "5.4": multiplier_no_floor})
    assert max(abs(a - b) for a, b in zip(wrong, library)) > 1e-3        # the schedule is really used
    _, frozen = trained(GPTModel, {"5.4": lambda *args: 0.0})
    torch.manual_seed(0)
    start = GPTModel(CFG).state_dict()                                    # lr 0: nothing moves (the check can fail)
    assert all(torch.equal(value, start[key]) for key, value in frozen.state_dict().items())
    assert not all(torch.equal(value, start[key]) for key, value in library_model.state_dict().items())


# ---- day 6: sampling
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_your_sampler_gives_gptlib_s_tokens(temperature):
    torch.manual_seed(0)
    model = GPTModel(CFG).eval()
    prompt = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(3))
    want = generate(model, prompt, 20, temperature=temperature, use_cache=False,
                    generator=torch.Generator().manual_seed(7))            # 25 > 16: the context is cropped
    mine = your_gpt(CFG, ALL)
    mine.load_state_dict(model.state_dict())
    for sampler in ({}, {**ALL, "6.4": sample_token, "6.5": generate_loop}):
        got = generate_with(sampler, mine, prompt, 20, temperature, torch.Generator().manual_seed(7))
        assert torch.equal(got, want), sampler
    wrong = generate_with({"6.4": sample_ignoring_t}, mine, prompt, 20, 0.3,
                          torch.Generator().manual_seed(7))
    assert not torch.equal(wrong, generate(model, prompt, 20, temperature=0.3, use_cache=False,
                                           generator=torch.Generator().manual_seed(7)))


# ---- day 7: LoRA
def moved(model):
    """Move every B (as training would) so that the adapters show in the logits."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".B"):
                p.copy_(torch.randn_like(p))
    return model


@pytest.mark.parametrize("pieces", [{}, ALL], ids=["stand-ins", "yours"])
def test_lora_in_your_gpt_is_apply_lora_in_gptlib_s(pieces):
    torch.manual_seed(0)
    library = GPTModel(CFG)
    names = apply_lora(library, rank=2, alpha=4.0)
    torch.manual_seed(0)
    mine = your_gpt(CFG, pieces)
    assert add_lora(mine, LoRALinear, 2, 4.0) == names
    assert list(mine.state_dict()) == list(library.state_dict())
    mine.load_state_dict(library.state_dict())                            # same draws would do; same weights for sure
    torch.manual_seed(1)
    moved(library)
    mine.load_state_dict(library.state_dict())
    ids = torch.randint(0, 50, (2, 16))
    assert torch.allclose(mine.eval()(ids), library.eval()(ids), atol=1e-5)
    plain = your_gpt(CFG, pieces)
    plain.load_state_dict({k.replace(".base.", "."): v for k, v in library.state_dict().items()
                           if not k.endswith((".A", ".B"))}, strict=True)
    assert not torch.allclose(plain.eval()(ids), mine(ids), atol=1e-3)  # the adapters really run


def test_your_lora_trains_only_its_adapters_in_your_gpt():
    calls = []

    class Counted(LoRA):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    torch.manual_seed(0)
    model = your_gpt(CFG, ALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = add_lora(model, Counted, 2, 4.0)
    assert len(names) == len(TARGETS) * CFG.n_layers
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{name}.{ab}" for name in names for ab in "AB"}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = [loss for batch in batches(8) for loss in steps(model, [batch], optimizer)]
    assert calls and losses[-1] < losses[0] - 0.2, losses                 # measured: 3.95 -> 3.54
    after = model.state_dict()
    for key, value in before.items():                                     # the base weights never move
        assert torch.equal(after[key.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
                                 if any(key.startswith(n + ".") for n in names) else key], value), key


def test_add_lora_refuses_a_model_without_gpt_layers():
    class NotAGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.trf_blocks = nn.ModuleList([nn.Linear(3, 3)])

    with pytest.raises(ValueError, match="no layer named att.qkv"):
        add_lora(NotAGPT(), LoRALinear, 2, 4.0)
    assert EVERY[-1] == "7.1"


class SequentialFF(nn.Module):  # a learner's feed-forward network held in an nn.Sequential
    def __init__(self, emb_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(emb_dim, 4 * emb_dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * emb_dim, emb_dim))

    def forward(self, x):
        return self.net(x)


def test_lora_reaches_layers_inside_a_sequential_and_survives_a_deepcopy():
    import copy

    pieces = {**ALL, "4.5": SequentialFF}
    torch.manual_seed(0)
    library = GPTModel(CFG)
    apply_lora(library, rank=2, alpha=4.0)
    torch.manual_seed(0)
    mine = your_gpt(CFG, pieces)
    add_lora(mine, LoRALinear, 2, 4.0)
    torch.manual_seed(1)
    mine.load_state_dict(moved(library).state_dict())
    ids = torch.randint(0, 50, (2, 16))
    assert torch.allclose(mine.eval()(ids), library.eval()(ids), atol=1e-5)
    twin = copy.deepcopy(mine)                                            # its layers call the twin's adapters
    assert torch.equal(twin(ids), mine(ids))
    with torch.no_grad():
        twin.trf_blocks[0].ff.layers[0].B.mul_(3)
        twin.trf_blocks[1].att.qkv.B.mul_(3)
    assert torch.allclose(mine(ids), library(ids), atol=1e-5)             # the original is untouched
    assert not torch.allclose(twin(ids), mine(ids), atol=1e-3)            # and the twin uses its own adapters
