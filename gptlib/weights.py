"""Day 4: load OpenAI's GPT-2 weights (in Hugging Face's layout) into a ``GPTModel``.

Our model has GPT-2's shapes, so loading is a renaming, with two twists:

- Hugging Face's GPT-2 stores its linear layers as ``Conv1D`` with the weight as
  (in_features, out_features), the transpose of ``nn.Linear``'s (out, in): we transpose
  ``c_attn``, ``c_proj``, ``c_fc`` weights while copying.
- GPT-2 ties the output head to the token embedding (``lm_head.weight is wte.weight``); our
  ``out_head`` is a separate matrix, so it receives a copy of ``wte.weight``.

Keys may carry the ``transformer.`` prefix (``GPT2LMHeadModel.state_dict()``) or not
(``model.safetensors`` on the Hub). The causal-mask buffers ``attn.bias`` / ``attn.masked_bias``
that older checkpoints include are ignored: our mask is built on the fly.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from torch import Tensor

from .model import GPTConfig, GPTModel

__all__ = ["load_hf_gpt2", "gpt2_config_from_hf", "hf_to_gptlib_names"]

_MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")
_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_to_gptlib_names(cfg: GPTConfig) -> dict[str, str]:
    """Hugging Face GPT-2 parameter name (no ``transformer.`` prefix) -> our ``state_dict`` name."""
    names = {
        "wte.weight": "tok_emb.weight",
        "wpe.weight": "pos_emb.weight",
        "ln_f.weight": "final_norm.scale",
        "ln_f.bias": "final_norm.shift",
    }
    for i in range(cfg.n_layers):
        hf, ours = f"h.{i}.", f"trf_blocks.{i}."
        names.update({
            hf + "ln_1.weight": ours + "norm1.scale",
            hf + "ln_1.bias": ours + "norm1.shift",
            hf + "attn.c_attn.weight": ours + "att.qkv.weight",
            hf + "attn.c_proj.weight": ours + "att.out_proj.weight",
            hf + "attn.c_proj.bias": ours + "att.out_proj.bias",
            hf + "ln_2.weight": ours + "norm2.scale",
            hf + "ln_2.bias": ours + "norm2.shift",
            hf + "mlp.c_fc.weight": ours + "ff.layers.0.weight",
            hf + "mlp.c_fc.bias": ours + "ff.layers.0.bias",
            hf + "mlp.c_proj.weight": ours + "ff.layers.2.weight",
            hf + "mlp.c_proj.bias": ours + "ff.layers.2.bias",
        })
        if cfg.qkv_bias:
            names[hf + "attn.c_attn.bias"] = ours + "att.qkv.bias"
    return names


def _shape(t: Tensor | torch.Size) -> str:
    return "(" + ", ".join(str(d) for d in (t.shape if isinstance(t, Tensor) else t)) + ")"


def _short_list(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


@torch.no_grad()
def load_hf_gpt2(model: GPTModel, state_dict: Mapping[str, Tensor]) -> GPTModel:
    """Copy a Hugging Face GPT-2 ``state_dict`` into ``model`` (in place) and return the model.

    ``state_dict`` comes from ``GPT2LMHeadModel.state_dict()``, ``GPT2Model.state_dict()`` or
    ``safetensors.torch.load_file("model.safetensors")``. The model's config must match the
    checkpoint (``GPTConfig.preset("gpt2-small")`` for OpenAI's 124M model, or
    ``gpt2_config_from_hf(hf_model.config)``); otherwise a one-line error names the first
    tensor whose shape differs, or the missing / unexpected keys.
    """
    cfg = model.cfg
    names = hf_to_gptlib_names(cfg)
    hint = "the config must match the checkpoint (use GPTConfig.preset('gpt2-small') or gpt2_config_from_hf(...))"

    weights: dict[str, Tensor] = {}
    lm_head = None
    unexpected: list[str] = []
    for key, tensor in state_dict.items():
        short = key.removeprefix("transformer.")
        if short == "lm_head.weight":
            lm_head = tensor
        elif _MASK_BUFFER.fullmatch(short):
            continue  # causal-mask buffers, not parameters
        elif short in names:
            weights[short] = tensor
        else:
            unexpected.append(key)
    if unexpected:
        extra = ""
        if any(k.endswith("attn.c_attn.bias") for k in unexpected) and not cfg.qkv_bias:
            extra = " (GPT-2 has query/key/value biases: set qkv_bias=True)"
        raise ValueError(f"unexpected key(s) in the checkpoint: {_short_list(unexpected)}{extra}; {hint}")
    missing = [k for k in names if k not in weights]
    if missing:
        raise ValueError(f"key(s) missing from the checkpoint: {_short_list(missing)}; {hint}")

    weights["lm_head.weight"] = weights["wte.weight"] if lm_head is None else lm_head  # GPT-2 ties lm_head to wte
    params = model.state_dict()
    for hf_name, our_name in {**names, "lm_head.weight": "out_head.weight"}.items():
        source = weights[hf_name]
        target = params[our_name]
        transposed = hf_name.endswith(_TRANSPOSED)
        expected = target.shape[::-1] if transposed else target.shape  # in the checkpoint's layout
        if tuple(source.shape) != tuple(expected):
            raise ValueError(f"{hf_name}: checkpoint has {_shape(source)}, model expects {_shape(expected)} "
                             f"(for {our_name}); {hint}")
        target.copy_(source.t() if transposed else source)
    return model


def gpt2_config_from_hf(hf_config: Any, **overrides: Any) -> GPTConfig:
    """The ``GPTConfig`` matching a ``transformers.GPT2Config`` (or its ``to_dict()``).

    ``drop_rate`` is taken from ``resid_pdrop``; GPT-2 uses the same rate everywhere.
    """
    get = hf_config.get if isinstance(hf_config, Mapping) else lambda k, d=None: getattr(hf_config, k, d)
    values = dict(vocab_size=get("vocab_size"), context_length=get("n_positions"), emb_dim=get("n_embd"),
                  n_heads=get("n_head"), n_layers=get("n_layer"), drop_rate=float(get("resid_pdrop", 0.1)),
                  qkv_bias=True)
    values.update(overrides)
    return GPTConfig(**values)
