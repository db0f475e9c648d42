"""MultiHeadAttention: both paths equal each other and torch's references; later queries alone are exact."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gptlib.model import MultiHeadAttention, causal_mask

D, H, CTX = 32, 4, 16


def make_attention(use_fused: bool = True, **kwargs) -> MultiHeadAttention:
    torch.manual_seed(0)
    args = dict(d_in=D, d_out=D, dropout=0.0, num_heads=H, qkv_bias=True)
    args.update(kwargs)
    mha = MultiHeadAttention(**args).eval()
    mha.use_fused = use_fused
    return mha


def test_causal_mask_plain_and_offset():
    assert torch.equal(causal_mask(3), torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=torch.bool))
    # 2 new queries after 3 cached keys: query 0 is position 3, sees keys 0..3
    assert torch.equal(causal_mask(2, 5), torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], dtype=torch.bool))
    assert not causal_mask(1, 7).any()  # one new token sees everything
    with pytest.raises(ValueError, match="at least as many keys"):
        causal_mask(3, 2)


def test_fused_and_explicit_paths_are_equal():
    mha = make_attention()
    x = torch.randn(3, 11, D)
    fast = mha(x)
    mha.use_fused = False
    slow = mha(x)
    assert fast.shape == (3, 11, D)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_equals_torch_multihead_attention_with_same_weights():
    mha = make_attention(use_fused=False)
    ref = nn.MultiheadAttention(D, H, bias=True, batch_first=True).eval()
    with torch.no_grad():  # nn.MultiheadAttention stacks W_q, W_k, W_v the same way as our qkv
        ref.in_proj_weight.copy_(mha.qkv.weight)
        ref.in_proj_bias.copy_(mha.qkv.bias)
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)
    x = torch.randn(2, 9, D)
    expected, _ = ref(x, x, x, attn_mask=causal_mask(9), need_weights=False)
    torch.testing.assert_close(mha(x), expected, rtol=1e-5, atol=1e-6)
    mha.use_fused = True
    torch.testing.assert_close(mha(x), expected, rtol=1e-5, atol=1e-6)


def test_explicit_formula_equals_scaled_dot_product_attention():
    mha = make_attention()
    x = torch.randn(2, 7, D)
    q, k, v = mha.project_qkv(x)
    assert q.shape == (2, H, 7, D // H)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D // H)
    by_hand = torch.softmax(scores.masked_fill(causal_mask(7), float("-inf")), dim=-1) @ v
    torch.testing.assert_close(mha._explicit(q, k, v), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(by_hand, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("use_fused", [True, False])
def test_causal_future_tokens_do_not_change_the_past(use_fused):
    mha = make_attention(use_fused=use_fused)
    x = torch.randn(1, 8, D)
    y = x.clone()
    y[:, 5:] = torch.randn(1, 3, D)
    torch.testing.assert_close(mha(x)[:, :5], mha(y)[:, :5])
    assert not torch.allclose(mha(x)[:, 5:], mha(y)[:, 5:])


@pytest.mark.parametrize("use_fused", [True, False])
@pytest.mark.parametrize("chunks", [[1] * 10, [4, 1, 1, 4], [3, 3, 2, 2], [10]])
def test_later_queries_over_all_earlier_keys_equal_the_full_pass(use_fused, chunks):
    """What day 6's KV cache does: the last queries alone, over every key so far, give the same rows."""
    mha = make_attention(use_fused=use_fused)
    x = torch.randn(2, 10, D)
    full = mha(x)
    q, k, v = mha.project_qkv(x)
    outs, start = [], 0
    for size in chunks:  # several new queries after earlier keys need the offset mask
        end = start + size
        outs.append(mha.attend(q[:, :, start:end], k[:, :, :end], v[:, :, :end]))
        start = end
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training():
    mha = make_attention(dropout=0.5)
    x = torch.randn(2, 6, D)
    for use_fused in (True, False):
        mha.use_fused = use_fused
        mha.eval()
        torch.testing.assert_close(mha(x), mha(x))
        mha.train()
        torch.manual_seed(1)
        assert not torch.allclose(mha(x), mha.eval()(x))


def test_d_out_must_divide_into_heads():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MultiHeadAttention(10, 10, 0.0, num_heads=3)


def test_gradients_agree_between_paths():
    mha = make_attention()
    x = torch.randn(2, 5, D)
    grads = []
    for use_fused in (True, False):
        mha.use_fused = use_fused
        mha.zero_grad()
        mha(x).pow(2).sum().backward()
        grads.append(mha.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)
