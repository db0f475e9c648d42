"""gptlib: the companion package of "GPT from scratch in seven days".

Each module holds one idea, introduced by one day of the course:

- day 1: ``assets`` (verified offline data), ``vocab`` (offline tiktoken), ``tokenizer`` (BPE by hand)
- day 3: ``attention`` (causal multi-head attention, KV cache), ``attention_explorer`` (mask widget)
- day 4: ``layers`` (LayerNorm, GELU, feed-forward), ``model`` (GPTConfig, TransformerBlock, GPTModel),
  ``weights`` (load Hugging Face GPT-2 weights)
- day 5: ``data`` (sliding windows), ``train`` (the loop), ``checkpoint``, ``distributed`` (DDP), ``recipes``
- day 6: ``generate`` (greedy/temperature/top-k/top-p, KV cache), ``sampling_explorer``, ``download``
- day 7: ``classify``, ``instruct``, ``finetune``, ``lora``
- everywhere: ``runtime`` (device, seeding), ``notebook`` (show_source); ``python -m gptlib`` (CLI)

Importing gptlib makes ``tiktoken.get_encoding("gpt2")`` work offline (see ``vocab``).
It does not import torch, so day 1 stays light.
"""
from .vocab import get_encoding, use_offline_vocabularies

__version__ = "0.1.0"

use_offline_vocabularies()

__all__ = ["get_encoding", "use_offline_vocabularies", "__version__"]
