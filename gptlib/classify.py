"""Day 7: classification finetuning — turn a pretrained GPT into a spam detector.

The recipe (as in Raschka, *Build a Large Language Model (From Scratch)*, chapter 6):

1. Data: labelled messages (text, class). ``read_sms_spam`` reads the SMS Spam Collection;
   ``balanced_split`` undersamples the majority class and splits train/val/test.
2. Model: replace the output head (emb_dim -> vocab_size) by a class head
   (emb_dim -> num_classes); freeze everything but the last block(s), the final LayerNorm and
   the new head (``prepare_classifier``).
3. Read the class from the *last real token* of each message: with a causal mask it is the
   only position that has attended to the whole message (``class_logits``).
4. Train with cross-entropy on those logits; measure accuracy on the held-out test split.

Long messages are *truncated* to their first ``max_length`` tokens: spam is usually recognisable
from its start, and cutting keeps every batch within the model's context (``truncate=False``
refuses them instead). What is shared with instruction finetuning lives in ``gptlib.finetune``.
"""
from __future__ import annotations

import operator
import random
from functools import partial
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .checks import token_ids_in_range, whole_number
from .finetune import (EncodedDataset, encode_text, finetune, freeze, make_loader, model_device, pad_right, read_utf8,
                       unfreeze)
from .runtime import evaluating

__all__ = ["SPAM_CLASSES", "parse_labelled_tsv", "read_sms_spam", "balanced_split", "ClassificationDataset",
           "collate_classification", "classification_loader", "replace_head", "prepare_classifier", "class_logits",
           "classification_loss", "predict", "accuracy", "confusion_matrix", "plot_confusion_matrix",
           "train_classifier"]

SPAM_CLASSES: tuple[str, ...] = ("ham", "spam")  # class index 0 = ham (not spam), 1 = spam

Example = tuple[str, int]  # (text, class index)


# --------------------------------------------------------------------------- data
def parse_labelled_tsv(text: str, classes: Sequence[str] = SPAM_CLASSES, source: str = "data") -> list[Example]:
    """Parse ``label<TAB>text`` lines into ``(text, class index)`` pairs.

    Labels are matched case-insensitively against ``classes``. Blank lines are skipped; a line
    without a tab, with an unknown label or with an empty text raises ValueError naming the
    line, as does a file with no example at all.
    """
    index = {name.lower(): i for i, name in enumerate(classes)}
    examples: list[Example] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, tab, message = line.partition("\t")
        if not tab:
            raise ValueError(f"{source}, line {lineno}: expected 'label<TAB>text', found no tab: {line[:40]!r}")
        key = label.strip().lower()
        if key not in index:
            raise ValueError(f"{source}, line {lineno}: unknown label {label!r}; expected one of {list(classes)}")
        message = message.strip()
        if not message:
            raise ValueError(f"{source}, line {lineno}: the text after the label is empty")
        examples.append((message, index[key]))
    if not examples:
        raise ValueError(f"{source}: no labelled examples found (empty file?)")
    return examples


def read_sms_spam(path: str | Path | None = None) -> list[Example]:
    """SMS messages labelled ham (0) / spam (1).

    ``path=None`` reads the packaged copy, verified by sha256 (``gptlib.assets``, ``"sms_spam.tsv"``):
    4,862 messages (4,220 ham, 642 spam) of the UCI SMS Spam Collection (Almeida & Gómez Hidalgo,
    2011; CC BY 4.0). A ``path`` reads a local file in the same format, e.g. the full collection's
    ``SMSSpamCollection`` (5,574 messages) once you have downloaded and unzipped it yourself.
    """
    if path is None:
        from .assets import read_text_asset

        return parse_labelled_tsv(read_text_asset("sms_spam.tsv"), source="sms_spam.tsv")
    path = Path(path)
    return parse_labelled_tsv(read_utf8(path), source=path.name)


def balanced_split(examples: Sequence[Example], fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                   seed: int = 123, balance: bool = True) -> tuple[list[Example], list[Example], list[Example]]:
    """Deterministic stratified train/val/test split, undersampling to balanced classes.

    With ``balance=True`` every class is cut (at random, seeded) to the size of the smallest, so that
    accuracy means something: on the raw SMS data, always answering "ham" already scores 87%. Each
    class is then split by ``fractions`` and each split shuffled. An empty data set, a single class,
    or fractions that leave a split without an example of some class raise ValueError.
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions!r}")
    by_class: dict[int, list[Example]] = {}
    for ex in examples:
        by_class.setdefault(ex[1], []).append(ex)
    if len(by_class) < 2:
        raise ValueError(f"the data set is empty or has a single class ({sorted(by_class)}): a classifier needs two")
    rng = random.Random(seed)
    smallest = min(len(v) for v in by_class.values())
    splits: tuple[list[Example], list[Example], list[Example]] = ([], [], [])
    for label in sorted(by_class):
        items = list(by_class[label])
        rng.shuffle(items)
        if balance:
            items = items[:smallest]
        n_train = int(round(fractions[0] * len(items)))
        n_val = int(round(fractions[1] * len(items)))
        parts = (items[:n_train], items[n_train:n_train + n_val], items[n_train + n_val:])
        if any(not p for p in parts):
            raise ValueError(f"class {label} has only {len(items)} example(s): too few to split by {fractions}")
        for split, part in zip(splits, parts):
            split.extend(part)
    for split in splits:
        rng.shuffle(split)
    return splits


class ClassificationDataset(EncodedDataset):
    """Encoded ``(token ids, class)`` pairs, each text cut to its first ``max_length`` tokens (at most the
    model's context length), or refused with ``truncate=False``. Each label must be a class index
    ``0 .. num_classes - 1`` (checked here, not as an out-of-bounds error in the loss)."""

    def __init__(self, examples: Sequence[Example], tokenizer, max_length: int, truncate: bool = True,
                 num_classes: int = len(SPAM_CLASSES)) -> None:
        whole_number("max_length", max_length)
        whole_number("num_classes", num_classes, minimum=2)
        self.max_length = max_length
        self.truncated = 0  # how many texts were cut
        items = []
        for i, example in enumerate(examples):
            text, label = _text_and_label(example, i, num_classes)
            ids = encode_text(tokenizer, text, f"example {i}")
            if not ids:
                raise ValueError(f"example {i} encodes to no tokens (empty text)")
            if len(ids) > max_length:
                if not truncate:
                    raise ValueError(f"example {i} has {len(ids)} tokens > max_length={max_length}: pass truncate=True")
                ids = ids[:max_length]
                self.truncated += 1
            items.append((ids, label))
        super().__init__(items)


def _text_and_label(example, i: int, num_classes: int) -> Example:
    """``example`` as ``(text, class index)``, or a ValueError naming example ``i`` and what is wrong."""
    if not isinstance(example, (tuple, list)) or len(example) != 2:
        raise ValueError(f"example {i} must be a (text, label) pair, got {example!r:.60}")
    text, label = example
    try:
        index = operator.index(label)  # ints, NumPy and 0-d tensor ints; not 1.0, "1" or True
    except TypeError:
        index = -1
    if isinstance(label, bool) or not 0 <= index < num_classes:
        raise ValueError(f"example {i} has the label {label!r}, outside 0..{num_classes - 1}: a label is a class "
                         f"index 0..{num_classes - 1}, or pass num_classes={max(index, num_classes) + 1}")
    return text, index


def collate_classification(batch: Sequence[tuple[list[int], int]], pad_id: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Right-pad a batch to its longest sequence: ``(inputs (B, T), lengths (B,), labels (B,))``.

    ``pad_id`` can be any valid token id: causal attention means real tokens never see the
    padding that follows them, and the class is read at position ``lengths - 1``.
    """
    inputs = pad_right([ids for ids, _ in batch], pad_id)
    lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
    labels = torch.tensor([label for _, label in batch], dtype=torch.long)
    return inputs, lengths, labels


def classification_loader(examples: Sequence[Example], tokenizer, max_length: int, batch_size: int = 16,
                          shuffle: bool = False, seed: int = 123, pad_id: int = 0,
                          truncate: bool = True, num_classes: int = len(SPAM_CLASSES)) -> DataLoader:
    """A DataLoader of ``collate_classification`` batches; shuffling is seeded (repeatable). ``pad_id`` is
    checked against the tokenizer's vocabulary here, once, rather than in the model."""
    token_ids_in_range([pad_id], tokenizer.n_vocab, "pad_id")
    dataset = ClassificationDataset(examples, tokenizer, max_length, truncate=truncate, num_classes=num_classes)
    return make_loader(dataset, partial(collate_classification, pad_id=pad_id), batch_size, shuffle, seed)


# --------------------------------------------------------------------------- model
def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Swap ``model.out_head`` (emb_dim -> vocab) for a fresh ``emb_dim -> num_classes`` layer.

    The new head is initialised on the CPU from torch's global generator (seed before calling),
    then moved to the device and dtype of the old head: the same seed gives the same head on
    a CPU, a GPU or a Mac. Returns the new head.
    """
    whole_number("num_classes", num_classes, minimum=2)
    old = model.out_head
    head = nn.Linear(old.in_features, num_classes).to(device=old.weight.device, dtype=old.weight.dtype)
    model.out_head = head
    return head


def prepare_classifier(model: nn.Module, num_classes: int = 2, trainable_blocks: int | None = 1) -> nn.Module:
    """Make ``model`` a classifier in place: new class head, and freeze what should not train.

    ``trainable_blocks=k`` freezes everything, then unfreezes the last k Transformer blocks,
    the final LayerNorm and the new head (k=0: head and final norm only). ``None`` leaves every
    parameter trainable (full finetuning). Returns ``model``. (Why freeze: see ``gptlib.finetune``.)
    """
    replace_head(model, num_classes)
    if trainable_blocks is None:
        unfreeze(model)
        return model
    n_blocks = len(model.trf_blocks)
    if whole_number("trainable_blocks", trainable_blocks, minimum=0) > n_blocks:
        raise ValueError(f"trainable_blocks must be None or <= the model's {n_blocks} blocks, got {trainable_blocks}")
    freeze(model)
    for block in list(model.trf_blocks)[n_blocks - trainable_blocks:]:
        unfreeze(block)
    unfreeze(model.final_norm)
    unfreeze(model.out_head)
    return model


def class_logits(model: nn.Module, inputs: Tensor, lengths: Tensor) -> Tensor:
    """Class scores ``(B, num_classes)``, read at each sequence's last real token."""
    logits = model(inputs)  # (B, T, num_classes)
    rows = torch.arange(inputs.size(0), device=logits.device)
    return logits[rows, lengths.to(logits.device) - 1]


def classification_loss(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Cross-entropy of the last-real-token class scores against the labels."""
    inputs, lengths, labels = batch
    return nn.functional.cross_entropy(class_logits(model, inputs, lengths), labels)


def predict(model: nn.Module, loader) -> tuple[Tensor, Tensor]:
    """``(predicted classes, true classes)`` over a loader, in eval mode (the model's mode is restored)."""
    device = model_device(model)
    preds, labels = [], []
    with evaluating(model):
        for inputs, lengths, y in loader:
            preds.append(class_logits(model, inputs.to(device), lengths).argmax(-1).cpu())
            labels.append(y)
    return torch.cat(preds), torch.cat(labels)


def accuracy(model: nn.Module, loader) -> float:
    """Share of examples whose predicted class is right."""
    preds, labels = predict(model, loader)
    return (preds == labels).float().mean().item()


def confusion_matrix(preds: Tensor, labels: Tensor, num_classes: int = 2) -> Tensor:
    """Counts ``cm[true, predicted]`` (rows: true class, columns: predicted class)."""
    whole_number("num_classes", num_classes, minimum=2)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for t, p in zip(labels.tolist(), preds.tolist()):
        cm[t, p] += 1
    return cm


def plot_confusion_matrix(cm: Tensor, class_names: Sequence[str] = SPAM_CLASSES, ax=None, title: str | None = None):
    """Draw ``cm`` as a labelled heatmap with the count in each cell; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.0))
    values = cm.numpy()
    ax.imshow(values, cmap="Blues")
    ticks = range(len(class_names))
    ax.set(xticks=ticks, xticklabels=class_names, yticks=ticks, yticklabels=class_names, xlabel="predicted",
           ylabel="true", title=title or "")
    threshold = values.max() / 2
    for i in ticks:
        for j in ticks:
            ax.text(j, i, str(values[i, j]), ha="center", va="center",
                    color="white" if values[i, j] > threshold else "black")
    return ax


def train_classifier(model: nn.Module, train_loader, **settings) -> list[float]:
    """``finetune`` with ``classification_loss`` (``settings``: epochs, lr, weight_decay, max_steps, grad_clip)."""
    return finetune(model, train_loader, classification_loss, **settings)
