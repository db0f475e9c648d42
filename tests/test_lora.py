"""LoRA (gptlib.lora): starts as the base model, trains only the adapters, merges exactly."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gptlib.finetune import count_parameters, freeze, unfreeze
from gptlib.lora import LoRALinear, apply_lora, lora_layers, merge_lora
from gptlib.model import GPTConfig, GPTModel

CFG = GPTConfig(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)


def tiny_model(seed: int = 0) -> GPTModel:
    torch.manual_seed(seed)
    return GPTModel(CFG).eval()


def randomise_adapters(model: nn.Module, seed: int = 1) -> None:
    """B starts at zero; give it values so that the adapters actually change the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.B.copy_(torch.randn(layer.B.shape, generator=g) * 0.05)


IDS = torch.randint(0, CFG.vocab_size, (3, 12), generator=torch.Generator().manual_seed(7))


def test_lora_linear_starts_equal_to_its_base():
    torch.manual_seed(0)
    base = nn.Linear(10, 6)
    lora = LoRALinear(base, rank=3, alpha=6)
    x = torch.randn(4, 5, 10)
    assert torch.equal(lora(x), base(x))  # B = 0, so the update is exactly zero
    assert lora.A.abs().sum() > 0 and torch.count_nonzero(lora.B) == 0
    assert lora.scale == 2.0


def test_lora_linear_forward_is_base_plus_scaled_low_rank_update():
    torch.manual_seed(0)
    base = nn.Linear(10, 6)
    lora = LoRALinear(base, rank=2, alpha=4)
    with torch.no_grad():
        lora.B.normal_()
    x = torch.randn(7, 10)
    expected = x @ (base.weight + 2.0 * lora.B @ lora.A).T + base.bias
    torch.testing.assert_close(lora(x), expected)
    assert not torch.allclose(lora(x), base(x), atol=1e-3)
    assert lora.delta_weight().shape == base.weight.shape
    # the update has rank at most r
    assert torch.linalg.matrix_rank(lora.delta_weight()) <= 2


def test_a_on_the_cpu_then_moved_so_the_seed_gives_the_same_adapter_anywhere():
    """A is drawn on the CPU in float32 (Kaiming-uniform, as ``nn.Linear`` draws its weight) and only then
    given the base layer's dtype and device; B starts at zero there."""
    base = nn.Linear(10, 6).double()  # a dtype other than the default, standing in for another device
    torch.manual_seed(3)
    lora = LoRALinear(base, rank=3)
    torch.manual_seed(3)
    reference = nn.Linear(10, 3).weight  # a (3, 10) matrix drawn exactly as A is
    assert lora.A.dtype == lora.B.dtype == torch.float64
    assert torch.equal(lora.A, reference.double()) and torch.count_nonzero(lora.B) == 0


@pytest.mark.parametrize("rank", [0, -1, 1.5, True, "4"])
def test_rank_below_one_or_not_an_integer_is_refused(rank):
    with pytest.raises(ValueError, match="rank") as info:
        LoRALinear(nn.Linear(4, 4), rank=rank)
    assert repr(rank) in str(info.value)
    model = tiny_model()
    with pytest.raises(ValueError, match="rank"):
        apply_lora(model, rank=rank)
    assert not lora_layers(model) and count_parameters(model)[0] == count_parameters(model)[1]  # nothing changed


@pytest.mark.parametrize("alpha", [0, -2.0, float("nan")])
def test_bad_alpha_and_base_are_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(4, 4), rank=2, alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        apply_lora(tiny_model(), rank=2, alpha=alpha)
    with pytest.raises(TypeError, match="Conv1d"):
        LoRALinear(nn.Conv1d(4, 4, 1), rank=2)


def test_apply_lora_wraps_attention_and_feed_forward_but_not_the_head():
    model = tiny_model()
    before = model(IDS)
    names = apply_lora(model, rank=4, alpha=8)
    expected = {f"trf_blocks.{i}.{n}" for i in range(CFG.n_layers)
                for n in ("att.qkv", "att.out_proj", "ff.layers.0", "ff.layers.2")}
    assert set(names) == expected == set(lora_layers(model))
    assert isinstance(model.out_head, nn.Linear) and not isinstance(model.out_head, LoRALinear)
    assert torch.equal(model(IDS), before)  # still exactly the pretrained model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith((".A", ".B")) for n in trainable)


def test_trainable_share_is_the_adapter_count():
    model = tiny_model()
    _, total_before = count_parameters(model)
    apply_lora(model, rank=2)
    trainable, total = count_parameters(model)
    d = CFG.emb_dim
    per_block = 2 * ((d + 3 * d) + (d + d) + (d + 4 * d) + (4 * d + d))  # r * (d_in + d_out) each
    assert trainable == CFG.n_layers * per_block
    assert total == total_before + trainable
    # with a GPT-2-sized block (d=768) rank 8 adapters are well under 5% of the model
    big = GPTConfig(vocab_size=50257, context_length=64, emb_dim=768, n_heads=12, n_layers=1)
    d = big.emb_dim
    lin = [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)]
    assert sum(8 * (a + b) for a, b in lin) / (12 * d ** 2) < 0.05


def test_only_adapters_get_gradients_and_b_gets_them_first():
    model = tiny_model()
    apply_lora(model, rank=4)
    model(IDS).logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        if name.endswith(".B"):
            assert p.grad is not None and p.grad.abs().sum() > 0
        elif name.endswith(".A"):  # dL/dA = scale * B^T (...) = 0 while B = 0
            assert p.grad is not None and torch.count_nonzero(p.grad) == 0
        else:
            assert p.grad is None, name


def test_merge_gives_plain_linears_and_identical_outputs():
    model = tiny_model()
    apply_lora(model, rank=4, alpha=8)
    randomise_adapters(model)
    with torch.no_grad():
        adapted = model(IDS)
    assert not torch.allclose(adapted, tiny_model()(IDS), atol=1e-4)  # the adapters do something
    merge_lora(model)
    assert not lora_layers(model)
    wrapped = ("qkv", "out_proj", "layers.0", "layers.2")
    assert all(type(m) is nn.Linear for n, m in model.named_modules() if n.endswith(wrapped))
    with torch.no_grad():
        merged = model(IDS)
    torch.testing.assert_close(merged, adapted, rtol=1e-5, atol=1e-5)
    assert count_parameters(model)[1] == count_parameters(tiny_model())[1]


def test_merging_draws_no_random_numbers():
    """The merged layer is built without an initialisation that the copy would overwrite."""
    model = tiny_model()
    apply_lora(model, rank=2)
    state = torch.get_rng_state()
    merge_lora(model)
    assert torch.equal(torch.get_rng_state(), state)


def test_targets_select_layers_and_unknown_targets_fail():
    model = tiny_model()
    assert apply_lora(model, rank=2, targets=("att.qkv",)) == ["trf_blocks.0.att.qkv", "trf_blocks.1.att.qkv"]
    with pytest.raises(ValueError, match="W_query"):
        apply_lora(tiny_model(), rank=2, targets=("W_query",))


def test_freeze_unfreeze_and_training_leaves_base_weights_untouched():
    model = tiny_model()
    apply_lora(model, rank=4)
    unfreeze(model.out_head)
    qkv_before = model.trf_blocks[0].att.qkv.base.weight.clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = model(IDS).logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model.trf_blocks[0].att.qkv.base.weight, qkv_before)
    assert torch.count_nonzero(model.trf_blocks[0].att.qkv.B) > 0
    freeze(model)
    assert count_parameters(model)[0] == 0
