"""Day 7: instruction finetuning (指令微调) — teach a pretrained GPT to follow instructions.

A pretrained model continues text; an *assistant* answers. Instruction finetuning trains on
(instruction, input, output) records, each laid out in a fixed prompt template — here the
Alpaca format (Stanford Alpaca, 2023; the one Raschka's chapter 7 uses):

    Below is an instruction that describes a task. Write a response that appropriately completes the request.

    ### Instruction:
    {instruction}

    ### Input:
    {input}                       <- this section is left out when the input is empty

    ### Response:
    {output}<|endoftext|>

The loss is the usual next-token cross-entropy, with two kinds of position masked out by the
ignore index ``-100`` (``F.cross_entropy``'s default ``ignore_index``):

- padding: predicting padding is not a skill, and counting it would make a record's loss
  depend on what it was batched with;
- the prompt (``mask_prompt=True``): the template and the instruction are given, not to be
  produced; only the response's tokens (and the end token) count.

Data: ``load_instruction_json`` reads the real formats (Alpaca, Raschka's ``instruction-data.json``,
JSON Lines). Offline, the course uses ``synthetic_instructions`` (``gptlib.tasks``): small tasks whose
answers can be checked exactly, with held-out test inputs never seen in training.

Too long: a record whose prompt + response + end token exceeds ``max_length`` is *refused*, not
truncated: cutting would remove the answer the model must learn. The data set, padding, loader and
training loop are shared with classification finetuning (``gptlib.finetune``).
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .checks import token_ids_in_range, whole_number
from .finetune import EncodedDataset, encode_text, finetune, make_loader, pad_right, read_utf8
from .tasks import DEFAULT_TASKS, NUMBER_TASKS, TASKS, synthetic_instructions  # the offline data, re-exported
from .tokenizer import end_of_text_id

__all__ = ["ALPACA_PREAMBLE", "IGNORE_INDEX", "format_prompt", "validate_record", "load_instruction_json",
           "synthetic_instructions", "NUMBER_TASKS", "TASKS", "DEFAULT_TASKS", "InstructionDataset",
           "collate_instructions", "instruction_loader", "instruction_loss", "train_instructions", "answer",
           "exact_match"]

ALPACA_PREAMBLE = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.")
IGNORE_INDEX = -100  # positions with this target add nothing to F.cross_entropy's loss

Record = dict[str, str]


# --------------------------------------------------------------------------- records
def validate_record(record: Any, index: int = 0, source: str = "") -> Record:
    """Check one record and return it as ``{"instruction", "input", "output"}`` strings.

    ``instruction`` and ``output`` are required (non-empty strings); ``input`` is optional
    (missing or ``None`` means no input, as in many Alpaca records). Anything else raises a
    ValueError naming the record and the field (after ``source``, e.g. the file's name).
    """
    where = f"{source}: record {index}" if source else f"record {index}"
    if not isinstance(record, dict):
        raise ValueError(f"{where} must be an object with instruction/input/output, got {type(record).__name__}")
    for field in ("instruction", "output"):
        if not isinstance(record.get(field), str) or not record[field].strip():
            raise ValueError(f"{where}: field {field!r} must be a non-empty string, got {record.get(field)!r}")
    inp = "" if record.get("input") is None else record["input"]
    if not isinstance(inp, str):
        raise ValueError(f"{where}: field 'input' must be a string, got {type(inp).__name__}")
    return {"instruction": record["instruction"], "input": inp, "output": record["output"]}


def format_prompt(record: Record) -> str:
    """The Alpaca prompt for ``record``, ending with ``"### Response:\\n"`` (the answer follows)."""
    text = f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{record['instruction']}"
    if record.get("input"):
        text += f"\n\n### Input:\n{record['input']}"
    return text + "\n\n### Response:\n"


def load_instruction_json(path: str | Path) -> list[Record]:
    """Read instruction records from a local UTF-8 file: a JSON list of objects (Alpaca, Raschka's
    ``instruction-data.json``, pretty-printed or not) or JSON Lines (one object per line). Every
    record is checked with ``validate_record``; an empty file or list, a single pretty-printed
    object, another encoding or broken JSON raise a ValueError that says which."""
    path = Path(path)
    text = read_utf8(path)
    try:
        data = _parse_json(text, path.name)
    except json.JSONDecodeError as whole:
        if text.lstrip().startswith("["):
            raise ValueError(f"{path.name} is not valid JSON: {whole}") from None
        data = []  # JSON Lines
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    data.append(_parse_json(line, path.name))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path.name}, line {lineno} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        if len(text.strip().splitlines()) == 1:  # JSON Lines holding one record
            data = [data]
        else:
            raise ValueError(f"{path.name} holds one JSON object, not a list: use [{{...}}, {{...}}] or one per line")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path.name} holds no instruction records "
                         f"({'an empty list' if data == [] else f'a JSON {type(data).__name__}, not a list'})")
    return [validate_record(r, i, path.name) for i, r in enumerate(data)]


def _parse_json(text: str, name: str) -> Any:
    """``json.loads``, with "nested too deeply" (a RecursionError, e.g. ``[[[[...``) as a ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply (thousands of brackets): the file is damaged") from None


# --------------------------------------------------------------------------- encoding and batches
class InstructionDataset(EncodedDataset):
    """Encoded records ``(ids, prompt_length)``: ``ids = encode(format_prompt(r)) + encode(r["output"]) + [end_id]``.

    ``end_id`` defaults to the tokenizer's ``<|endoftext|>`` (one given by hand is checked against its
    vocabulary). A record longer than ``max_length`` tokens is refused (ValueError). Pass the model's
    ``context_length + 1`` at most: the model sees ``ids[:-1]``.
    """

    def __init__(self, records: Sequence[Record], tokenizer, max_length: int, end_id: int | None = None) -> None:
        whole_number("max_length", max_length)
        if end_id is None:
            end_id = end_of_text_id(tokenizer)
        token_ids_in_range([end_id], tokenizer.n_vocab, "end_id")
        self.end_id = end_id
        items = []
        for i, raw in enumerate(records):
            record = validate_record(raw, i)
            prompt = encode_text(tokenizer, format_prompt(record), f"record {i}")
            ids = prompt + encode_text(tokenizer, record["output"], f"record {i}") + [end_id]
            if len(ids) > max_length:
                raise ValueError(f"record {i} has {len(ids)} tokens > max_length={max_length}: shorten or drop it")
            items.append((ids, len(prompt)))
        super().__init__(items)


def collate_instructions(batch: Sequence[tuple[list[int], int]], pad_id: int, ignore_index: int = IGNORE_INDEX,
                         mask_prompt: bool = True, mask_padding: bool = True) -> tuple[Tensor, Tensor]:
    """Pad a batch and build shifted targets: ``(inputs (B, T), targets (B, T))``.

    ``inputs = ids[:-1]`` and ``targets = ids[1:]`` (next-token prediction), right-padded to
    the longest record with ``pad_id``. In ``targets``, padding positions become
    ``ignore_index`` (unless ``mask_padding=False``, which keeps ``pad_id`` there: the naive
    version, shown in the notebook to be wrong), and with ``mask_prompt=True`` so do the
    positions that predict prompt tokens: the first target kept is the response's first token.
    """
    inputs = pad_right([ids[:-1] for ids, _ in batch], pad_id)
    targets = pad_right([ids[1:] for ids, _ in batch], ignore_index if mask_padding else pad_id)
    if mask_prompt:
        for row, (_, prompt_len) in enumerate(batch):
            targets[row, :prompt_len - 1] = ignore_index  # targets[j] is token j+1: 1..prompt_len-1 are prompt
    return inputs, targets


def instruction_loader(records: Sequence[Record], tokenizer, max_length: int, batch_size: int = 16,
                       shuffle: bool = False, seed: int = 123, end_id: int | None = None,
                       pad_id: int | None = None, mask_prompt: bool = True, mask_padding: bool = True) -> DataLoader:
    """A DataLoader of ``collate_instructions`` batches (seeded shuffling). ``pad_id`` defaults
    to the end token (padding is masked, so its value does not matter)."""
    dataset = InstructionDataset(records, tokenizer, max_length, end_id=end_id)
    pad = dataset.end_id if pad_id is None else pad_id
    token_ids_in_range([pad], tokenizer.n_vocab, "pad_id")
    collate = partial(collate_instructions, pad_id=pad, mask_prompt=mask_prompt, mask_padding=mask_padding)
    return make_loader(dataset, collate, batch_size, shuffle, seed)


def instruction_loss(model: nn.Module, batch: tuple[Tensor, Tensor], ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean next-token cross-entropy over the positions whose target is not ``ignore_index``."""
    inputs, targets = batch
    logits = model(inputs)
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=ignore_index)


def train_instructions(model: nn.Module, loader, **settings) -> list[float]:
    """``finetune`` with ``instruction_loss`` (``settings``: epochs, lr, weight_decay, max_steps, grad_clip)."""
    return finetune(model, loader, instruction_loss, **settings)


# --------------------------------------------------------------------------- evaluation
def answer(model: nn.Module, tokenizer, record: Record, max_new_tokens: int = 8, end_id: int | None = None) -> str:
    """The model's greedy response to ``record`` (its output field is ignored), stripped.

    Decoding stops at the end token or after ``max_new_tokens``; uses ``gptlib.generate``.
    A prompt longer than the context raises the model's error rather than being cropped.
    """
    from .generate import generate

    end = end_of_text_id(tokenizer) if end_id is None else end_id
    record = validate_record({**record, "output": "?"})  # the expected output is not needed here
    prompt = tokenizer.encode(format_prompt(record))
    context = model.cfg.context_length if hasattr(model, "cfg") else None
    if context is not None and len(prompt) + max_new_tokens > context:
        raise ValueError(f"prompt of {len(prompt)} tokens + {max_new_tokens} new ones exceed context_length {context}")
    out = generate(model, prompt, max_new_tokens, temperature=0.0, eos_id=end).tolist()[len(prompt):]
    if end in out:
        out = out[:out.index(end)]
    return tokenizer.decode(out).strip()


def exact_match(model: nn.Module, tokenizer, records: Sequence[Record], max_new_tokens: int = 8,
                end_id: int | None = None) -> tuple[float, list[str]]:
    """Share of records whose greedy answer equals the expected output exactly (after
    stripping whitespace), and the answers themselves."""
    if not records:
        raise ValueError("no records to evaluate")
    answers = [answer(model, tokenizer, r, max_new_tokens, end_id) for r in records]
    hits = sum(a == r["output"].strip() for a, r in zip(answers, records))
    return hits / len(records), answers
