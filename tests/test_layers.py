"""LayerNorm, GELU and FeedForward equal their torch references, values and gradients."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gptlib.model import GELU, FeedForward, LayerNorm


def explicit(layer):
    """The layer running its hand-written formula instead of the fused kernel."""
    layer.use_fused = False
    return layer
from gptlib.model import GPTConfig


def test_layernorm_formula_matches_torch_values_and_gradients():
    torch.manual_seed(0)
    ours, ref = explicit(LayerNorm(16)), nn.LayerNorm(16, eps=1e-5)
    with torch.no_grad():  # non-trivial affine parameters, the same in both
        ours.scale.copy_(torch.randn(16))
        ours.shift.copy_(torch.randn(16))
        ref.weight.copy_(ours.scale)
        ref.bias.copy_(ours.shift)
    x = (torch.randn(3, 5, 16) * 4 + 2).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.scale.grad, ref.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.shift.grad, ref.bias.grad, rtol=1e-4, atol=1e-5)


def test_layernorm_fused_path_equals_formula():
    torch.manual_seed(0)
    norm = LayerNorm(16)
    assert norm.use_fused
    with torch.no_grad():
        norm.scale.copy_(torch.randn(16))
        norm.shift.copy_(torch.randn(16))
    x = torch.randn(4, 16) * 3
    torch.testing.assert_close(norm(x), norm.explicit_forward(x), rtol=1e-5, atol=1e-5)


def test_layernorm_normalises_and_uses_biased_variance():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    y = explicit(LayerNorm(4))(x)
    assert torch.allclose(y.mean(-1), torch.zeros(1), atol=1e-6)
    # biased variance (divide by n) is 1 after normalisation; the unbiased one would be 4/3
    assert torch.allclose(y.var(-1, unbiased=False), torch.ones(1), atol=1e-4)
    assert [n for n, _ in LayerNorm(4).named_parameters()] == ["scale", "shift"]


def test_layernorm_constant_input_is_finite():
    assert torch.isfinite(explicit(LayerNorm(8))(torch.full((2, 8), 3.0))).all()


def test_gelu_formula_matches_torch_tanh_approximation_values_and_gradients():
    x = torch.linspace(-8, 8, 1001, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = explicit(GELU())(x), F.gelu(x_ref, approximate="tanh")
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    y.sum().backward()
    y_ref.sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-10)
    # and it is the approximation, not the exact erf GELU (they differ by ~1e-4 around |x|~2)
    assert (y - F.gelu(x_ref)).abs().max() > 1e-5
    # the default (fused) path is the same function
    assert GELU().use_fused
    torch.testing.assert_close(GELU()(x), y, rtol=1e-12, atol=1e-12)


def test_feedforward_shapes_and_reference():
    cfg = GPTConfig(vocab_size=10, context_length=8, emb_dim=12, n_heads=3, n_layers=1)
    ff = FeedForward(cfg.emb_dim)
    assert ff.layers[0].weight.shape == (48, 12) and ff.layers[2].weight.shape == (12, 48)
    x = torch.randn(2, 5, 12)
    ref = F.linear(F.gelu(F.linear(x, ff.layers[0].weight, ff.layers[0].bias), approximate="tanh"),
                   ff.layers[2].weight, ff.layers[2].bias)
    torch.testing.assert_close(ff(x), ref, rtol=1e-5, atol=1e-6)
