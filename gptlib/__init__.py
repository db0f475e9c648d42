"""gptlib: the companion package of "GPT from scratch in seven days".

Each module holds one idea and belongs to the day of the course that introduces it
(``MODULE_DAYS``, the one list of that mapping: README's day table and ``tests/test_layering.py``
read it). A module may import only modules of its own day or earlier, and the day N notebook
only modules of days 1..N, so the package can be read in the order the course is taught. Day 0
holds helpers every day uses; day 8 holds the tools for after the course (the command line,
the figures, the doctor).

Importing gptlib makes ``tiktoken.get_encoding("gpt2")`` work offline (see ``vocab``).
It does not import torch, so day 1 stays light.
"""
from .vocab import get_encoding, use_offline_vocabularies

__version__ = "0.1.0"

MODULE_DAYS: dict[str, int] = {
    # day 0, everywhere: argument checks, files, device and seeding, the exercise checker
    "checks": 0, "files": 0, "runtime": 0, "exercises": 0,
    # day 1: verified offline data, offline tiktoken, BPE by hand (its fast twins, its safety checks), notebook helpers
    "assets": 1, "vocab": 1, "tokenizer": 1, "bpe_fast": 1, "tokenizer_checks": 1, "notebook": 1, "fonts": 1,
    # day 3: attention (the first part of model.py; day 4 completes it), the mask explorer
    "model": 3, "attention_explorer": 3,
    # day 4: OpenAI's GPT-2 weights in our model
    "weights": 4,
    # day 5: windows, the loop, checkpoints, several processes, the pipeline, what the model learned
    "data": 5, "train": 5, "checkpoint": 5, "distributed": 5, "recipes": 5, "probe": 5,
    # day 6: sampling and the KV cache, the temperature explorer, GPT-2's real weights, a Chinese model
    "generate": 6, "sampling_explorer": 6, "download": 6, "chinese": 6,
    # day 7: finetuning, a classifier, an instruction follower and its offline tasks, LoRA
    "finetune": 7, "classify": 7, "instruct": 7, "tasks": 7, "lora": 7,
    # each day's exercise checks use only what the days so far introduced
    **{f"exercises.day{day}": day for day in range(1, 8)},
    # after the course: the command line, the figures (and their diagrams, drawn in one style), the doctor
    "cli": 8, "__main__": 8, "figures": 8, "diagrams": 8, "drawing": 8, "doctor": 8,
}

use_offline_vocabularies()

__all__ = ["get_encoding", "use_offline_vocabularies", "MODULE_DAYS", "__version__"]
