"""Your GPT: a passing answer is kept in the learner's package (mygpt/dayN.py), a wrong one never is, a
re-pass replaces its block, and what is kept is what course.yours imports and assembles into a GPT that
loads gptlib's weights and gives gptlib's logits."""
from __future__ import annotations

import linecache
import math

import pytest
import torch
from torch import nn

from gptlib.course.exercises import check, set_language
from gptlib.course.exercises.keep import blocks, load, source_of
from gptlib.course.yours import PIECES, pieces_line, your_gpt, your_pieces
from gptlib.model import GPTConfig, GPTModel

CFG = GPTConfig(vocab_size=50, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0, qkv_bias=True)


# ---- a learner's answers, written differently from the solutions notebooks
def gelu(x):
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))
    return x * (1 + torch.tanh(inner)) / 2


def gelu_relu(x):  # wrong: ReLU
    return torch.relu(x)


def gelu_again(x):  # right, written a third way
    return 0.5 * x * (1.0 + torch.tanh((2 / math.pi) ** 0.5 * (x + 0.044715 * x * x * x)))


class Norm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.scale, self.shift = nn.Parameter(torch.ones(emb_dim)), nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        centred = x - x.mean(-1, keepdim=True)
        return self.scale * centred / (centred.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() + self.shift


class Attention(nn.Module):
    def __init__(self, d_in, d_out, num_heads):
        super().__init__()
        self.h = num_heads
        self.W_query, self.W_key, self.W_value = (nn.Linear(d_in, d_out, bias=True) for _ in range(3))
        self.out_proj = nn.Linear(d_out, d_out)

    def forward(self, x):
        (b, t, _), c = x.shape, self.out_proj.out_features
        q, k, v = (w(x).reshape(b, t, self.h, c // self.h).permute(0, 2, 1, 3)
                   for w in (self.W_query, self.W_key, self.W_value))
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = (q @ k.transpose(2, 3) / math.sqrt(c // self.h)).masked_fill(mask, float("-inf")).softmax(-1)
        return self.out_proj((att @ v).permute(0, 2, 1, 3).reshape(b, t, c))


class FF(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.out = nn.Linear(4 * emb_dim, emb_dim)   # declared first: found by its sizes, not its order
        self.up = nn.Linear(emb_dim, 4 * emb_dim)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x):
        return self.out(self.act(self.up(x)))


def block(x, att, ff, norm1, norm2):
    h = x + att(norm1(x))
    return h + ff(norm2(h))


def forward(ids, model):
    x = model.tok_emb(ids) + model.pos_emb(torch.arange(ids.shape[1]))
    x = model.drop_emb(x)
    for layer in model.trf_blocks:
        x = layer(x)
    return model.out_head(model.final_norm(x))


ALL = {"3.3": Attention, "4.1": Norm, "4.2": gelu, "4.3": block, "4.5": FF, "4.6": forward}


def test_a_wrong_answer_is_never_kept(workspace, capsys):
    check("4.2", gelu_relu)
    assert "FAIL" in capsys.readouterr().out
    assert not (workspace / "mygpt" / "day4.py").exists()
    check("4.2", gelu)
    check("4.2", gelu_relu)                                   # a wrong try after a pass keeps the pass
    assert blocks(workspace / "mygpt" / "day4.py")["4.2"] == ("gelu", source_of(gelu))


def test_nothing_is_kept_without_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("GPTLIB_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    check("4.2", gelu)
    assert not list(tmp_path.rglob("*.py"))


def test_a_kept_answer_is_what_the_next_day_imports(workspace, capsys):
    for exercise, answer in ALL.items():
        check(exercise, answer)
    out = capsys.readouterr().out
    assert out.count("PASS") == 6 and "not kept" not in out, out
    text = (workspace / "mygpt" / "day4.py").read_text(encoding="utf-8")
    assert "# exercise 4.2: gelu\n" + source_of(gelu) in text and "import torch" in text
    pieces = your_pieces()
    assert list(pieces) == list(PIECES)
    for exercise, answer in ALL.items():                     # the imported object is the kept source, run
        assert pieces[exercise].__module__ == f"mygpt.day{exercise[0]}"
        assert source_of(pieces[exercise]) == source_of(answer)
    x = torch.randn(3, 5)
    assert torch.equal(pieces["4.2"](x), gelu(x))


def test_a_repass_replaces_its_block(workspace):
    check("4.2", gelu)
    check("4.1", Norm)
    check("4.2", gelu_again)
    path = workspace / "mygpt" / "day4.py"
    kept = blocks(path)
    assert kept["4.2"] == ("gelu_again", source_of(gelu_again)) and kept["4.1"][0] == "Norm"
    text = path.read_text(encoding="utf-8")
    assert text.count("# exercise 4.2:") == 1 and "def gelu(" not in text
    assert text.index("# exercise 4.1:") < text.index("# exercise 4.2:")   # in exercise order
    assert load(4)["4.2"].__name__ == "gelu_again"


def test_an_answer_without_readable_source_gets_one_line(workspace, capsys):
    namespace = {}
    exec("def gelu(x):\n    return 0.5 * x * (1 + __import__('torch').tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))",
         namespace)
    check("4.2", namespace["gelu"])
    check("4.2", lambda x: torch.nn.functional.gelu(x, approximate="tanh"))
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith("✅") for line in lines] == [True, False, True, False], lines
    assert "cannot be read" in lines[1] and "no def or class" in lines[3] and "Traceback" not in "".join(lines)
    assert not (workspace / "mygpt" / "day4.py").exists()


def test_a_class_defined_in_a_notebook_cell_is_kept(workspace, capsys):
    cell = "<ipython-input-7-yours>"                          # IPython's cell file: linecache has it, __main__ no file
    source = ("import torch\nfrom torch import nn\n\n\nclass MyLayerNorm(nn.Module):\n"
              + "".join(f"    {line}\n" for line in source_of(Norm).splitlines()[1:]))
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)
    namespace = {"__name__": "__main__"}
    exec(compile(source, cell, "exec"), namespace)
    check("4.1", namespace["MyLayerNorm"])
    assert "not kept" not in capsys.readouterr().out
    assert blocks(workspace / "mygpt" / "day4.py")["4.1"][1].startswith("class MyLayerNorm(nn.Module):")


def test_a_broken_kept_file_is_one_line(workspace):
    check("4.2", gelu)
    path = workspace / "mygpt" / "day4.py"
    path.write_text(path.read_text(encoding="utf-8") + "\nimport nosuchmodule\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"day4.py no longer imports \(ModuleNotFoundError"):
        your_pieces()


@pytest.mark.parametrize("pieces", [{}, {"4.2": gelu, "4.5": FF}, ALL], ids=["none", "some", "all"])
def test_your_gpt_loads_gptlib_weights_and_gives_its_logits(pieces):
    torch.manual_seed(0)
    reference = GPTModel(CFG).eval()
    after_reference = torch.rand(1)
    torch.manual_seed(0)
    mine = your_gpt(CFG, pieces).eval()
    assert torch.equal(torch.rand(1), after_reference)       # the same draws: the same start, same stream after
    assert list(mine.state_dict()) == list(reference.state_dict())
    ids = torch.randint(0, 50, (2, 16))
    assert torch.allclose(mine(ids), reference(ids), atol=1e-5)
    torch.manual_seed(1)
    other = GPTModel(CFG).eval()                             # another model's weights, loaded by name
    mine.load_state_dict(other.state_dict())
    assert torch.allclose(mine(ids), other(ids), atol=1e-5)
    assert not torch.allclose(mine(ids), reference(ids), atol=1e-3)   # proof that the weights were used


def test_your_gpt_trains_its_gptlib_named_weights():
    torch.manual_seed(0)
    mine = your_gpt(CFG, ALL)
    ids = torch.randint(0, 50, (2, 8))
    nn.functional.cross_entropy(mine(ids).flatten(0, 1), ids.flatten()).backward()
    grads = {name: p.grad for name, p in mine.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for name, g in grads.items()), \
        [name for name, g in grads.items() if g is None or g.abs().sum() == 0]


@pytest.mark.parametrize("exercise", PIECES)
def test_every_piece_runs_in_your_gpt(exercise):
    calls = []
    answer = ALL[exercise]
    if isinstance(answer, type):
        class Counted(answer):
            def forward(self, *args):
                calls.append(exercise)
                return super().forward(*args)
        counted = Counted
    else:
        def counted(*args):
            calls.append(exercise)
            return answer(*args)
    your_gpt(CFG, {**ALL, exercise: counted}).eval()(torch.randint(0, 50, (1, 4)))
    assert calls, f"{exercise} never ran"


def test_a_wrong_piece_changes_the_logits():
    """The assembled model really runs the learner's pieces: a wrong GELU shows in its logits."""
    torch.manual_seed(0)
    reference = GPTModel(CFG).eval()
    torch.manual_seed(0)
    mine = your_gpt(CFG, {"4.2": gelu_relu}).eval()
    ids = torch.randint(0, 50, (2, 16))
    assert not torch.allclose(mine(ids), reference(ids), atol=1e-4)


def test_the_pieces_line_in_both_languages():
    assert pieces_line({}).startswith("your GPT: 0 of 6 pieces are yours yet; all are the library's")
    assert pieces_line(ALL) == "your GPT: 6 of 6 pieces are yours — every one"
    some = {ex: ALL[ex] for ex in ("3.3", "4.1", "4.2", "4.3")}
    assert pieces_line(some) == ("your GPT: 4 of 6 pieces are yours; still the library's: FeedForward and "
                                 "the GPT's forward (pass 4.5, 4.6 to make them yours)")
    set_language("zh")
    try:
        assert pieces_line(some) == ("你的 GPT：6 个部件中有 4 个是你写的；仍是库的：FeedForward 和 GPT 的前向"
                                     "（通过练习 4.5, 4.6 就换成你的）")
    finally:
        set_language("en")


def test_your_gpt_follows_the_model_to_another_dtype():
    """``.to()`` gives the parameters new tensors: your layers must read the new ones, not stale views."""
    torch.manual_seed(0)
    reference = GPTModel(CFG).eval().double()
    torch.manual_seed(0)
    mine = your_gpt(CFG, ALL).eval().double()
    with torch.no_grad():
        mine.trf_blocks[0].att.qkv.weight.mul_(2)            # a change made after the move must show too
        reference.trf_blocks[0].att.qkv.weight.mul_(2)
    ids = torch.randint(0, 50, (2, 16))
    assert mine(ids).dtype == torch.float64 and torch.allclose(mine(ids), reference(ids), atol=1e-10)


def test_your_gpt_trains_like_gptlib_s_model():
    """Day 5's loop trains your GPT as it trains GPTModel: same seed, same batches, the same losses."""
    from torch.utils.data import DataLoader, TensorDataset

    from gptlib.train import TrainConfig, train

    tokens = torch.arange(17 * 16).remainder(7).reshape(16, 17)        # a pattern a GPT learns in a few steps
    data = TensorDataset(tokens[:, :-1], tokens[:, 1:])
    cfg = TrainConfig(max_steps=12, lr=3e-3, warmup_steps=2, eval_every=12, eval_batches=1, progress=False)
    histories = []
    for build in (GPTModel, lambda c: your_gpt(c, ALL)):
        torch.manual_seed(0)
        model = build(CFG)
        loader = DataLoader(data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
        histories.append(train(model, loader, loader, cfg)["train_loss"])
    library, yours = histories
    assert yours[-1] < yours[0] - 1.0, yours                             # it learns
    assert max(abs(a - b) for a, b in zip(library, yours)) < 1e-4, (library, yours)


def test_a_name_already_kept_for_another_exercise_is_not_overwritten(workspace, capsys):
    def Net(x):  # noqa: N802 - the learner's name for their GELU
        return gelu(x)

    check("4.2", Net)

    class Net(Norm):  # noqa: F811 - the same name for their LayerNorm
        pass

    check("4.1", Net)
    out = capsys.readouterr().out
    assert "already keeps a Net for exercise 4.2" in out, out
    assert list(blocks(workspace / "mygpt" / "day4.py")) == ["4.2"]
