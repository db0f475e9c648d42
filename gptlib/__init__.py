"""gptlib: the companion package of "GPT from scratch in seven days".

Two floors. This folder is the GPT: what the days build and what a user imports to train, sample
and finetune (tokenizer, model, data, training, checkpoints, generation, finetuning, LoRA, weights,
the command line). ``gptlib.course`` is the classroom around it: explorers, probes, figures, fonts,
the doctor, notebook helpers and the exercise checks. The GPT never imports the classroom
(``__main__`` alone wires the classroom's commands into the command line).

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
    # ---- the GPT (this folder) ----
    # day 0, everywhere: argument checks, files, device and seeding
    "checks": 0, "files": 0, "runtime": 0,
    # day 1: verified offline data, offline tiktoken, BPE by hand (its fast twins, its file checks)
    "assets": 1, "vocab": 1, "tokenizer": 1, "bpe_fast": 1, "tokenizer_checks": 1,
    # day 3: attention (the first part of model.py; day 4 completes it)
    "model": 3,
    # day 4: OpenAI's GPT-2 weights in our model
    "weights": 4,
    # day 5: windows, the loop, checkpoints, several processes, the pipeline
    "data": 5, "train": 5, "checkpoint": 5, "distributed": 5, "waits": 5, "recipes": 5,
    # day 6: sampling and the KV cache, GPT-2's real weights, a Chinese model
    "generate": 6, "download": 6, "chinese": 6,
    # day 7: finetuning, a classifier, an instruction follower and its offline tasks, LoRA
    "finetune": 7, "classify": 7, "instruct": 7, "tasks": 7, "lora": 7,
    # after the course: the command line (``__main__`` also wires in the classroom's commands)
    "cli": 8, "__main__": 8,
    # the bonus day: from GPT-2 to today's LLMs
    "modern": 8,
    # ---- the classroom (gptlib/course/) ----
    "course": 0, "course.exercises": 0,  # the exercise checker
    "course.exercises.labels": 0, "course.exercises.progress": 0,  # difficulty/time labels, the learner's progress
    "course.exercises.keep": 0,  # passing answers kept in the learner's own package, mygpt/
    "course.yours": 4,  # the learner's GPT, assembled from their kept day 3 and 4 answers
    "course.yours_train": 5, "course.yours_sample": 6, "course.yours_lora": 7,  # ... trained, sampled, LoRA'd
    "course.notebook": 1, "course.fonts": 1,  # notebook helpers, the packaged CJK font
    "course.attention_explorer": 3,  # the mask explorer
    "course.probe": 5,  # what the trained model learned
    "course.sampling_explorer": 6,  # the temperature explorer
    # each day's exercise checks use only what the days so far introduced
    **{f"course.exercises.day{day}": day for day in range(1, 9)},
    # after the course: the figures (and their diagrams, drawn in one style), the doctor, their commands
    "course.figures": 8, "course.diagrams": 8, "course.drawing": 8, "course.doctor": 8, "course.commands": 8,
}

use_offline_vocabularies()

__all__ = ["get_encoding", "use_offline_vocabularies", "MODULE_DAYS", "__version__"]
