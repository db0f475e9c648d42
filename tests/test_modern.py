"""gptlib.modern: every part equal to its reference or a by-hand formula, and ModernGPT with every switch
off exactly GPTModel. Each equality is paired with a wrong variant that the same check rejects."""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gptlib.checkpoint import CheckpointError, load_checkpoint
from gptlib.data import create_dataloader
from gptlib.generate import KVCache, generate
from gptlib.model import GPTConfig, GPTModel, LayerNorm, MultiHeadAttention
from gptlib.modern import (GroupedQueryAttention, ModernConfig, ModernGPT, Muon, RMSNorm, SwiGLU, apply_rope,
                           kv_cache_bytes_per_token, muon_split, newton_schulz, rope_cos_sin)
from gptlib.train import TrainConfig, batch_loss, evaluate, optimizer_for, train

TINY = GPTConfig(vocab_size=61, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)
SWITCHES = {"norm": "rms", "positions": "rope", "ffn": "swiglu", "n_kv_heads": 2, "qk_norm": True}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny shapes gain nothing from threads, and on a busy machine two threads wait on each other (40x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def modern(**switches) -> ModernConfig:
    return ModernConfig(**TINY.to_dict(), **switches)


def differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return not torch.allclose(a, b, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- RMSNorm
@pytest.mark.parametrize("fused", [True, False])
def test_rmsnorm_equals_torch_values_and_gradients(fused):
    torch.manual_seed(0)
    ours, ref = RMSNorm(16), nn.RMSNorm(16, eps=1e-5)
    ours.use_fused = fused
    with torch.no_grad():
        ours.scale.copy_(torch.randn(16))
        ref.weight.copy_(ours.scale)
    x = (torch.randn(3, 5, 16) * 4 + 2).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    out.backward(grad := torch.randn_like(out))
    out_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.scale.grad, ref.weight.grad, rtol=1e-4, atol=1e-5)
    # the check can fail: LayerNorm (which also removes the mean) on the same off-centre input differs
    assert differs(LayerNorm(16)(x_ref) * ours.scale, out_ref)
    assert [n for n, _ in ours.named_parameters()] == ["scale"]


# ---------------------------------------------------------------------------- RoPE
def rope_by_complex_numbers(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0,
                            adjacent: bool = False) -> torch.Tensor:
    """RoPE as the paper writes it: pair i is the complex number x_i + j x_{i+D/2} (``adjacent``: the
    paper's and Meta's x_{2i} + j x_{2i+1}), times e^{j p theta_i}, theta_i = base^(-2i/D)."""
    half = x.size(-1) // 2
    theta = base ** (-torch.arange(half, dtype=torch.float64) * 2 / x.size(-1))   # (D/2,)
    turn = torch.polar(torch.ones(len(positions), half, dtype=torch.float64), positions.double()[:, None] * theta)
    real, imag = (x[..., 0::2], x[..., 1::2]) if adjacent else (x[..., :half], x[..., half:])
    z = torch.complex(real.double(), imag.double()) * turn                  # (..., T, D/2)
    out = torch.stack([z.real, z.imag], dim=-1).flatten(-2) if adjacent else torch.cat([z.real, z.imag], dim=-1)
    return out.float()


def test_rope_equals_complex_number_rotation_and_keeps_lengths():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 8)                                             # (B, H, T, D)
    positions = torch.arange(5, 12)                                         # an offset, as after a KV cache
    rotated = apply_rope(x, *rope_cos_sin(positions, 8))
    torch.testing.assert_close(rotated, rope_by_complex_numbers(x, positions), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))    # a rotation keeps lengths
    # the check can fail: the wrong positions (the offset forgotten) give another rotation
    assert differs(apply_rope(x, *rope_cos_sin(torch.arange(7), 8)), rope_by_complex_numbers(x, positions))


def test_rope_equals_hugging_face_llama():
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=32, num_attention_heads=4, head_dim=8, max_position_embeddings=64,
                         rope_theta=500000.0)
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 9, 8), torch.randn(2, 2, 9, 8)                # (B, H, T, D), (B, K, T, D)
    positions = torch.arange(3, 12)
    cos, sin = llama.LlamaRotaryEmbedding(config)(q, positions[None])       # (1, T, D)
    q_hf, k_hf = llama.apply_rotary_pos_emb(q, k, cos, sin)
    ours = rope_cos_sin(positions, 8, base=500000.0)
    torch.testing.assert_close(apply_rope(q, *ours), q_hf, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(apply_rope(k, *ours), k_hf, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rope_by_complex_numbers(q, positions, 500000.0), q_hf, rtol=1e-5, atol=1e-5)
    # the check can fail: the paper's adjacent pairs (Hugging Face permutes Meta's weights instead), or
    # another base, give other rotations
    assert differs(rope_by_complex_numbers(q, positions, 500000.0, adjacent=True), q_hf)
    assert differs(apply_rope(q, *rope_cos_sin(positions, 8)), q_hf)


def test_rope_scores_depend_on_distance_only():
    torch.manual_seed(0)
    q, k = torch.randn(8), torch.randn(8)

    def score(m: int, n: int) -> torch.Tensor:
        cos, sin = rope_cos_sin(torch.tensor([m, n]), 8)
        return apply_rope(q, cos[0], sin[0]) @ apply_rope(k, cos[1], sin[1])

    torch.testing.assert_close(score(7, 3), score(104, 100), rtol=1e-4, atol=1e-4)
    assert differs(score(7, 3), score(7, 5))  # the check can fail: another distance, another score


# ---------------------------------------------------------------------------- SwiGLU
def test_swiglu_equals_formula_and_keeps_gelu_mlp_size():
    torch.manual_seed(0)
    ff = SwiGLU(48)
    x = torch.randn(2, 5, 48)
    w_gate, w_up = ff.gate_up.weight.chunk(2, dim=0)
    a = x @ w_gate.T
    by_hand = (a * torch.sigmoid(a) * (x @ w_up.T)) @ ff.down.weight.T     # Swish(x W_g) * (x W_u), then W_d
    torch.testing.assert_close(ff(x), by_hand, rtol=1e-5, atol=1e-5)
    assert differs(F.gelu(a) * (x @ w_up.T) @ ff.down.weight.T, by_hand)  # the check can fail: GELU's gate
    assert ff.hidden == 128  # 8 * 48 / 3, a multiple of 8
    gelu_mlp = 2 * 48 * 4 * 48 + 4 * 48 + 48
    assert abs(sum(p.numel() for p in ff.parameters()) - gelu_mlp) / gelu_mlp < 0.03


# ---------------------------------------------------------------------------- grouped-query attention
def grouped(n_kv_heads: int, **switches) -> GroupedQueryAttention:
    torch.manual_seed(0)
    return GroupedQueryAttention(modern(n_kv_heads=n_kv_heads, **switches)).eval()


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_gqa_equals_sdpa_with_enable_gqa(n_kv_heads, explicit):
    att = grouped(n_kv_heads)
    att.use_fused = not explicit
    x = torch.randn(2, 7, 32)
    q, k, v = att.qkv(x).split(att.split, dim=2)
    q, k, v = (z.view(2, 7, -1, 8).transpose(1, 2) for z in (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    ref = att.out_proj(ref.transpose(1, 2).reshape(2, 7, 32))
    torch.testing.assert_close(att(x), ref, rtol=1e-5, atol=1e-5)
    full = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # the check can fail: no causal mask
    assert differs(att.out_proj(full.transpose(1, 2).reshape(2, 7, 32)), ref)


def multi_head_copy(att: GroupedQueryAttention, repeat) -> MultiHeadAttention:
    """Day 3's multi-head attention whose H key/value heads are copies of ``att``'s K, by ``repeat``."""
    mha = MultiHeadAttention(32, 32, 0.0, 4).eval()
    w_q, w_k, w_v = att.qkv.weight.split(att.split, dim=0)
    per_head = lambda w: repeat(w.view(att.num_kv_heads, att.head_dim, 32)).reshape(32, 32)
    with torch.no_grad():
        mha.qkv.weight.copy_(torch.cat([w_q, per_head(w_k), per_head(w_v)]))
        mha.out_proj.load_state_dict(att.out_proj.state_dict())
    return mha


@pytest.mark.parametrize("explicit", [False, True])
def test_gqa_equals_multi_head_attention_with_repeated_kv_heads(explicit):
    att = grouped(2)
    att.use_fused = not explicit
    x = torch.randn(2, 7, 32)
    right = multi_head_copy(att, lambda w: w.repeat_interleave(2, dim=0))  # heads 0,1 share kv head 0
    torch.testing.assert_close(att(x), right(x), rtol=1e-5, atol=1e-5)
    wrong = multi_head_copy(att, lambda w: w.repeat(2, 1, 1))              # heads 0,2 share kv head 0
    assert differs(att(x), wrong(x))


def test_qk_norm_makes_scores_independent_of_query_and_key_size():
    x = torch.randn(2, 7, 32)
    for qk_norm in (True, False):
        att = grouped(2, qk_norm=qk_norm)
        before = att(x)
        with torch.no_grad():
            att.qkv.weight[:48] *= 10                                      # queries and keys 10x larger
        assert differs(att(x), before) != qk_norm                         # changes nothing only with QK-norm


def test_kv_cache_bytes_per_token_is_what_the_cache_holds():
    for n_kv_heads in (None, 2, 1):
        cfg = modern(n_kv_heads=n_kv_heads, positions="rope")
        cache = (model := ModernGPT(cfg)).new_kv_cache()
        cache.forward(torch.zeros(1, 10, dtype=torch.long))
        held = sum(t.numel() * t.element_size() for t in cache.keys + cache.values)
        assert kv_cache_bytes_per_token(cfg) == held / 10 == 2 * 2 * cfg.kv_heads * 8 * 4
    assert kv_cache_bytes_per_token(TINY) == kv_cache_bytes_per_token(modern()) == 2 * kv_cache_bytes_per_token(
        modern(n_kv_heads=2)) == 512                                      # GQA: H / K = 2 times less


# ---------------------------------------------------------------------------- the model
def test_every_switch_off_is_gpt_model():
    for base in (TINY, replace(TINY, qkv_bias=True, tie_weights=True)):
        torch.manual_seed(0)
        gpt = GPTModel(base).eval()
        torch.manual_seed(0)
        ours = ModernGPT(ModernConfig(**base.to_dict())).eval()
        assert ours.num_parameters() == gpt.num_parameters()
        for (name, p), (name_gpt, p_gpt) in zip(ours.state_dict().items(), gpt.state_dict().items(), strict=True):
            assert name == name_gpt and torch.equal(p, p_gpt)                 # same seed, same weights
        torch.manual_seed(1)
        other = GPTModel(base).eval()                                      # other weights, copied in
        ours.load_state_dict(other.state_dict())
        ids = torch.randint(0, 61, (2, 12))
        torch.testing.assert_close(ours(ids), other(ids), rtol=0, atol=0)
        torch.testing.assert_close(ours.set_use_fused(False)(ids), other.set_use_fused(False)(ids))
        assert differs(ours(ids), gpt(ids))  # the check can fail: the seed-0 weights give other logits


PARTS = {"norm": r"(trf_blocks\.\d\.norm[12]|final_norm)\.shift", "positions": r"pos_emb\.weight",
         "ffn": r"trf_blocks\.\d\.ff\..*", "n_kv_heads": r"trf_blocks\.\d\.att\.qkv\.weight",
         "qk_norm": r"trf_blocks\.\d\.att\.[qk]_norm\.scale"}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_switch_changes_its_part_only(switch):
    """The weights that the switch adds, removes or reshapes are its part's; with every other weight
    copied from the all-off model, the logits change (the switch does something)."""
    base, changed = ModernGPT(modern()).eval(), ModernGPT(modern(**{switch: SWITCHES[switch]})).eval()
    old, new = base.state_dict(), changed.state_dict()
    different = {name for name in old.keys() | new.keys()
                 if name not in old or name not in new or old[name].shape != new[name].shape}
    assert different and all(re.fullmatch(PARTS[switch], name) for name in different), different
    # the check can fail: a name of another part is not the switch's
    assert not re.fullmatch(PARTS[switch], "trf_blocks.0.att.out_proj.weight")
    changed.load_state_dict({name: old[name] if name not in different else value for name, value in new.items()})
    ids = torch.randint(0, 61, (2, 12))
    assert differs(changed(ids), base(ids))


def test_all_switches_fused_equals_explicit_and_generates_with_the_cache():
    torch.manual_seed(0)
    model = ModernGPT(modern(**SWITCHES)).eval()
    assert model.num_parameters() < GPTModel(TINY).num_parameters()  # no position table, fewer kv weights
    ids = torch.randint(0, 61, (2, 12))
    fused = model(ids)
    torch.testing.assert_close(model.set_use_fused(False)(ids), fused, rtol=1e-5, atol=1e-5)
    model.set_use_fused(True)
    with_cache, without = generate(model, ids[:, :5], 8), generate(model, ids[:, :5], 8, use_cache=False)
    assert torch.equal(with_cache, without)
    cache = model.new_kv_cache()  # logits one token at a time equal the full pass (RoPE's offsets)
    stepwise = torch.cat([cache.forward(ids[:, i:i + 1]) for i in range(12)], dim=1)
    torch.testing.assert_close(stepwise, fused, rtol=1e-4, atol=1e-5)
    assert differs(model(ids[:, 6:]), fused[:, 6:])  # the check can fail: positions 0.. instead of 6..


def test_config_errors_say_what_to_do():
    with pytest.raises(ValueError, match="norm must be one of 'layer', 'rms', got 'batch'"):
        modern(norm="batch")
    with pytest.raises(ValueError, match=r"n_kv_heads \(3\) must divide n_heads \(4\)"):
        modern(n_kv_heads=3)
    with pytest.raises(ValueError, match="n_kv_heads must be a whole number >= 1"):
        modern(n_kv_heads=0)
    with pytest.raises(ValueError, match=r"head_dim \(3\) must be even"):
        ModernConfig(**replace(TINY, emb_dim=12).to_dict(), positions="rope")
    with pytest.raises(ValueError, match="unknown preset"):
        ModernConfig.preset("gpt5")
    cfg = ModernConfig.preset("cpu-small", norm="rms", n_kv_heads=2)
    assert (cfg.emb_dim, cfg.norm, cfg.kv_heads) == (128, "rms", 2)
    assert ModernConfig.from_dict(cfg.to_dict()) == cfg
    # day 5's loader (checkpoints, recipes) builds what a config's fields name: a modern model here
    assert type(GPTConfig.from_dict(cfg.to_dict())) is ModernConfig and GPTConfig.from_dict(cfg.to_dict()) == cfg
    assert type(GPTConfig.from_dict(TINY.to_dict())) is GPTConfig
    assert isinstance(cfg.build(), ModernGPT) and type(TINY.build()) is GPTModel
    with pytest.raises(ValueError, match="unknown GPTConfig field.*gptlib.modern"):  # no config has this field
        GPTConfig.from_dict({**cfg.to_dict(), "n_experts": 8})


# ---------------------------------------------------------------------------- Muon
def test_newton_schulz_orthogonalises():
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(24, 24))
    v, _ = torch.linalg.qr(torch.randn(12, 12))
    g = u[:, :12] @ torch.diag(torch.logspace(-1, 1, 12)) @ v.T              # (24, 12), condition number 100
    for matrix in (g, g.T):
        singular = torch.linalg.svdvals(newton_schulz(matrix))
        assert singular.min() > 0.6 and singular.max() < 1.25, singular
        u_, _, vh = torch.linalg.svd(matrix, full_matrices=False)         # the exact answer: U V^T
        assert F.cosine_similarity(newton_schulz(matrix).flatten(), (u_ @ vh).flatten(), dim=0) > 0.98
    assert torch.linalg.svdvals(newton_schulz(g, steps=1)).min() < 0.1  # the check can fail: too few steps
    stacked = newton_schulz(torch.stack([g, 3 * g.flip(0)]))              # a stack: each matrix on its own
    torch.testing.assert_close(stacked, torch.stack([newton_schulz(g), newton_schulz(3 * g.flip(0))]))
    assert not torch.allclose(stacked[1], newton_schulz(g))


def test_muon_step_is_the_orthogonalised_momentum():
    """Each matrix by its own formula, though matrices of one shape are orthogonalised as one stack."""
    torch.manual_seed(0)
    weights = [nn.Parameter(torch.randn(16, 8)), nn.Parameter(torch.randn(8, 8)), nn.Parameter(torch.randn(16, 8))]
    opt = Muon(weights, lr=0.1, momentum=0.9)
    expected = [w.detach().clone() for w in weights]
    buffers = [torch.zeros_like(w) for w in weights]
    for _ in range(2):
        for w, want, buf in zip(weights, expected, buffers):
            w.grad = torch.randn_like(w)
            buf.mul_(0.9).add_(0.1 * w.grad)
            tall = math.sqrt(2) if w.size(0) > w.size(1) else 1.0
            want -= 0.1 * tall * newton_schulz(0.1 * w.grad + 0.9 * buf)      # Nesterov
        opt.step()
    for w, want in zip(weights, expected):
        torch.testing.assert_close(w.detach(), want, rtol=1e-5, atol=1e-6)
    model = ModernGPT(modern(**SWITCHES))
    matrices, others = muon_split(model)
    assert len(matrices) == 2 * 4 and all(p.dim() == 2 for p in matrices)  # qkv, out_proj, gate_up, down
    assert len(matrices) + len(others) == len(list(model.parameters()))


@pytest.mark.parametrize("mistake", [None, "no moments", "L2 instead of decoupled decay"])
def test_muon_adamw_groups_are_torch_adamw(mistake):
    """Muon's use_muon=False groups take torch.optim.AdamW's steps; two plausible slips are caught."""
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(6, 5))
    ref = nn.Parameter(w.detach().clone())
    ours = Muon([dict(params=[w], use_muon=False, lr=0.01, weight_decay=0.1)], betas=(0.9, 0.95))
    torch_adamw = torch.optim.AdamW([ref], lr=0.01, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    for _ in range(3):
        w.grad, ref.grad = (g := torch.randn(6, 5)), g.clone()
        if mistake == "no moments":
            ours._adamw_step = lambda p, group: p.sub_(group["lr"] * p.grad.sign())  # Adam's first step, always
        if mistake == "L2 instead of decoupled decay":  # Adam + L2: the decay goes through the moments
            ours.param_groups[0]["weight_decay"] = 0.0
            w.grad += 0.1 * w.detach()
        ours.step()
        torch_adamw.step()
    assert torch.allclose(w, ref, rtol=1e-5, atol=1e-6) == (mistake is None)


def test_make_optimizer_muon_for_the_blocks_matrices_adamw_for_the_rest():
    model = ModernGPT(modern(**SWITCHES, muon_lr=0.03))
    optimizer = model.make_optimizer(TrainConfig(lr=2e-3, weight_decay=0.2))
    by_kind = {(g["use_muon"], g["weight_decay"]): (g["lr"], len(g["params"])) for g in optimizer.param_groups}
    assert len(by_kind) == 3
    matrices, others = muon_split(model)
    assert by_kind[(True, 0.2)] == (0.03, len(matrices))
    assert by_kind[(False, 0.2)][0] == 2e-3 and by_kind[(False, 0.0)][0] == 2e-3
    assert by_kind[(False, 0.2)][1] + by_kind[(False, 0.0)][1] == len(others)
    plain = ModernGPT(modern(**SWITCHES)).make_optimizer(TrainConfig())
    assert isinstance(plain, torch.optim.AdamW)  # no muon_lr: day 5's optimizer


def test_train_asks_the_model_for_its_optimizer_and_falls_back_to_adamw():
    """optimizer_for: the one place that decides (train, the waits' timing and the benchmarks use it)."""
    model = ModernGPT(modern(**SWITCHES, muon_lr=0.03))
    assert any(g["use_muon"] for g in optimizer_for(model, TrainConfig()).param_groups)
    plain = GPTModel(GPTConfig(vocab_size=64, context_length=8, emb_dim=16, n_heads=2, n_layers=1))
    optimizer = optimizer_for(plain, TrainConfig(lr=2e-3, weight_decay=0.2))
    assert isinstance(optimizer, torch.optim.AdamW) and [g["weight_decay"] for g in optimizer.param_groups] == [0.2, 0.0]


# ---------------------------------------------------------------------------- day 5's pipeline
def pattern_loaders():
    """Mostly "next = previous + 1 (mod 61)", with noise: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(1)
    ids = [0]
    for _ in range(599):
        ids.append((ids[-1] + 1) % 61 if torch.rand((), generator=g) < 0.8 else int(torch.randint(61, (), generator=g)))
    return (create_dataloader(ids[:500], 4, 16, seed=7),
            create_dataloader(ids[500:], 4, 16, shuffle=False, drop_last=False))


def test_trains_with_day5_loop_and_reloads_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ModernGPT(modern(**SWITCHES))
    cfg = TrainConfig(max_steps=40, lr=1e-2, warmup_steps=5, eval_every=20, progress=False,
                      checkpoint_path=str(tmp_path / "modern.pt"))
    history = train(model, *pattern_loaders(), cfg)
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.6
    again = ModernGPT(ModernConfig.from_dict(load_checkpoint(tmp_path / "modern.pt")["config"]))
    load_checkpoint(tmp_path / "modern.pt", again)
    ids = torch.randint(0, 61, (2, 12))
    torch.testing.assert_close(again.eval()(ids), model.eval()(ids), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="n_kv_heads"):  # the check can fail: another switch is refused
        load_checkpoint(tmp_path / "modern.pt", ModernGPT(modern(**{**SWITCHES, "n_kv_heads": 4})))


@pytest.mark.parametrize("lr", [0.05, -0.05])
def test_muon_lowers_the_loss(lr):
    """Muon on the blocks' matrices, AdamW on the rest; a negative learning rate (the wrong sign) must not."""
    torch.manual_seed(0)
    model = ModernGPT(modern(**SWITCHES))
    matrices, others = muon_split(model)
    muon = Muon(matrices, lr=abs(lr))
    muon.param_groups[0]["lr"] = lr                                       # bypass the check for the wrong variant
    adam = torch.optim.AdamW(others, lr=1e-2)
    train_loader, val_loader = pattern_loaders()
    before = evaluate(model, val_loader)
    for (inputs, targets), _ in zip(itertools.cycle(train_loader), range(40)):
        loss = batch_loss(model, inputs, targets)
        model.zero_grad()
        loss.backward()
        for optimizer in (muon, adam):
            optimizer.step()
    assert (evaluate(model, val_loader) < before - 0.6) == (lr > 0)


def test_the_modern_recipe_runs_day5s_pipeline(tmp_path):
    """``pretrain`` builds the ModernGPT its recipe names, and Muon's state goes into the checkpoint (that an
    interrupted run resumes bit for bit: tests/test_recipes.py, for this recipe too)."""
    from gptlib.modern import MODERN
    from gptlib.recipes import pretrain, tiny_shakespeare

    quick = MODERN.with_settings(vocab_size=300, context_length=16, emb_dim=16, n_heads=2, n_layers=1, batch_size=8,
                                 max_steps=6, warmup_steps=1, eval_every=3, eval_batches=1)
    run = pretrain(tiny_shakespeare()[:60_000], quick, tmp_path / "run", "cpu", progress=False)
    assert isinstance(run.model, ModernGPT) and run.model.cfg.muon_lr == MODERN.model.muon_lr
    assert "momentum_buffer" in str(load_checkpoint(tmp_path / "run" / "model.pt")["optimizer"]["state"])



@pytest.mark.parametrize("use_muon", [True, False])
def test_muon_weight_decay_is_decoupled(use_muon):
    """A zero gradient leaves only the decay: the weights shrink by lr * weight_decay, in both kinds of group."""
    w = nn.Parameter(torch.ones(4, 3))
    opt = Muon([dict(params=[w], use_muon=use_muon, lr=0.1, weight_decay=0.5)])
    w.grad = torch.zeros(4, 3)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((4, 3), 1 - 0.1 * 0.5))
    undecayed = nn.Parameter(torch.ones(4, 3))
    Muon([dict(params=[undecayed], use_muon=use_muon, lr=0.1)]).step()  # no grad: untouched, decay included
    assert torch.equal(undecayed.detach(), torch.ones(4, 3))
