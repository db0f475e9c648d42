"""Day 7 finetuning (gptlib.finetune, gptlib.classify, gptlib.instruct): the shared loop and plumbing,
then each task's data, masks, errors and training."""
from __future__ import annotations

import ast
import json
import math
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

import gptlib
from gptlib.assets import tiny_shakespeare
from gptlib.classify import (ClassificationDataset, balanced_split, class_logits, classification_loader,
                             classification_loss, collate_classification, confusion_matrix, predict,
                             prepare_classifier, read_sms_spam, replace_head, train_classifier)
from gptlib.finetune import count_parameters, finetune, freeze, make_loader, mean_loss, pad_right, unfreeze
from gptlib.instruct import (ALPACA_PREAMBLE, IGNORE_INDEX, InstructionDataset, answer, collate_instructions,
                             exact_match, format_prompt, instruction_loader, instruction_loss, load_instruction_json,
                             synthetic_instructions, train_instructions, validate_record)
from gptlib.model import GPTConfig, GPTModel
from gptlib.tokenizer import END_OF_TEXT, BPETokenizer, end_of_text_id
from gptlib.train import LossNotFiniteError


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(tiny_shakespeare()[:20000], 320, special_tokens={END_OF_TEXT: 320})


def tiny_model(tok, seed: int = 0, context: int = 256, layers: int = 2) -> GPTModel:
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(vocab_size=tok.n_vocab, context_length=context, emb_dim=32, n_heads=2,
                              n_layers=layers, drop_rate=0.0)).eval()


@contextmanager
def raises(kind: type[Exception], *facts: str):
    """Like ``pytest.raises``, but checks the key facts of the message (the offending value, the fix),
    not its wording."""
    with pytest.raises(kind) as info:
        yield info
    for fact in facts:
        assert fact in str(info.value), (fact, str(info.value))


# --------------------------------------------------------------------------- the day 7 rule
def _gptlib_imports(module: str) -> set[str]:
    """The gptlib modules ``module`` imports anywhere (top level or inside a function)."""
    tree = ast.parse((Path(gptlib.__file__).parent / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gptlib."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("gptlib."))
    return found


def test_day7_modules_import_only_what_day7_taught_before_them():
    """Day 7 teaches finetune, then classify and instruct, then lora: no module imports a later one."""
    assert not _gptlib_imports("finetune") & {"classify", "instruct", "lora"}
    assert not _gptlib_imports("classify") & {"instruct", "lora"}
    assert not _gptlib_imports("instruct") & {"classify", "lora"}
    assert not _gptlib_imports("lora") & {"classify", "instruct"}
    assert "finetune" in _gptlib_imports("lora")  # freeze comes from the first idea of the day


# --------------------------------------------------------------------------- freezing
def test_freeze_unfreeze_and_count_parameters(tok):
    model = tiny_model(tok)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == (total, total)
    assert freeze(model) is model and count_parameters(model) == (0, total)
    unfreeze(model.trf_blocks[1])
    assert count_parameters(model) == (sum(p.numel() for p in model.trf_blocks[1].parameters()), total)
    model.out_head.weight = model.tok_emb.weight  # a shared (tied) tensor counts once
    assert count_parameters(model)[1] == total - model.cfg.vocab_size * model.cfg.emb_dim


# --------------------------------------------------------------------------- batches
def test_pad_right_fills_the_end_of_shorter_rows():
    assert pad_right([[1, 2, 3], [4], [5, 6]], fill=0).tolist() == [[1, 2, 3], [4, 0, 0], [5, 6, 0]]
    assert pad_right([[7]], fill=-100).dtype == torch.long
    with raises(ValueError, "empty batch"):
        pad_right([], fill=0)


def test_make_loader_shuffles_repeatably_and_can_replay_its_order():
    data = list(range(20))
    first = [b.tolist() for b in make_loader(data, torch.tensor, batch_size=5, shuffle=True, seed=4)]
    assert first == [b.tolist() for b in make_loader(data, torch.tensor, batch_size=5, shuffle=True, seed=4)]
    order = [i for batch in first for i in batch]
    assert sorted(order) == data and order != data
    loader = make_loader(data, torch.tensor, batch_size=5, shuffle=True, seed=4)
    list(loader)
    loader.generator.manual_seed(4)  # how the notebook gives every model the same order
    assert [b.tolist() for b in loader] == first
    assert [b.tolist() for b in make_loader(data, torch.tensor, batch_size=10)] == [data[:10], data[10:]]
    with raises(ValueError, "batch_size", "0"):
        make_loader(data, torch.tensor, batch_size=0)


# --------------------------------------------------------------------------- the loop
def regression(seed: int = 0) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A linear layer + LayerNorm (so both 2-D and 1-D parameters) and a few batches to fit."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Dropout(0.5))
    x = torch.randn(12, 4)
    return model, [(x[i:i + 4], x[i:i + 4].flip(-1)) for i in range(0, 12, 4)]


def mse(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


@pytest.mark.parametrize("training", [True, False])
def test_finetune_trains_in_train_mode_and_restores_the_callers_mode(training):
    model, batches = regression()
    model.train(training)
    seen = []

    def probe(m, batch):
        seen.append(m.training)
        return mse(m, batch)

    losses = finetune(model, batches, probe, epochs=2, lr=1e-2)
    assert len(losses) == 6 and all(seen) and model.training is training
    assert mean_loss(model, batches, probe) > 0 and seen[-1] is False and model.training is training


def test_finetune_stops_at_max_steps():
    model, batches = regression()
    assert len(finetune(model, batches, mse, epochs=5, max_steps=4)) == 4


def test_a_nan_loss_stops_finetuning_before_the_update():
    model, batches = regression()
    model.train(False)
    weights = []

    def nan_at_third_step(m, batch):
        weights.append(m[0].weight.detach().clone())
        loss = mse(m, batch)
        return loss * math.nan if len(weights) == 3 else loss

    with raises(LossNotFiniteError, "nan", "step 3", "learning rate") as info:
        finetune(model, batches, nan_at_third_step, lr=1e-2)
    err = info.value
    assert err.step == 2 and len(err.history["train_loss"]) == 2 and err.checkpoint_path is None
    assert torch.equal(model[0].weight, weights[-1])  # the weights of step 2: the NaN step changed nothing
    assert model.training is False  # the mode is restored on the error path too


def test_a_too_large_learning_rate_is_caught_as_a_non_finite_loss(tok):
    model = prepare_classifier(tiny_model(tok), trainable_blocks=None)
    train, _, _ = balanced_split(read_sms_spam(), seed=1)
    loader = classification_loader(train[:64], tok, max_length=24, batch_size=16)
    with raises(LossNotFiniteError, "1e+30"):
        train_classifier(model, loader, epochs=3, lr=1e30, grad_clip=None)


def test_finetune_decays_matrices_but_not_biases_or_layernorm():
    """With a zero gradient, AdamW's only move is the decay: p <- p * (1 - lr * weight_decay)."""
    model, batches = regression()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    def zero_gradient(m, batch):
        return sum((p * 0).sum() for p in m.parameters())

    finetune(model, batches[:1], zero_gradient, lr=0.1, weight_decay=0.5, grad_clip=None)
    for name, p in model.named_parameters():
        expected = before[name] * (1 - 0.1 * 0.5) if p.dim() >= 2 else before[name]
        torch.testing.assert_close(p.detach(), expected, msg=name)


def test_finetune_argument_errors_name_the_argument_and_the_value(tok):
    model, batches = regression()
    with raises(ValueError, "epochs", "0"):
        finetune(model, batches, mse, epochs=0)
    with raises(ValueError, "lr", "-1"):
        finetune(model, batches, mse, lr=-1)
    with raises(ValueError, "max_steps", "0"):
        finetune(model, batches, mse, max_steps=0)
    with raises(ValueError, "no batches"):
        finetune(model, [], mse)
    with raises(ValueError, "no batches"):
        mean_loss(model, [], mse)
    with raises(ValueError, "no trainable parameters"):
        finetune(freeze(model), batches, mse)


# --------------------------------------------------------------------------- classification data
UCI_LINES = ("ham\tGo until jurong point, crazy.. Available only in bugis n great world\r\n"
             "ham\tOk lar... Joking wif u oni...\r\n"
             "spam\tFree entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005.\r\n"
             "\r\n"
             "SPAM\tWINNER!! As a valued network customer you have been selected\r\n")


def test_reads_a_uci_style_tsv_file(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_bytes(UCI_LINES.encode())
    examples = read_sms_spam(path)
    assert [label for _, label in examples] == [0, 0, 1, 1]
    assert examples[0][0].startswith("Go until") and not examples[0][0].endswith("\r")


def test_packaged_sms_data_has_the_pinned_counts():
    examples = read_sms_spam()
    assert len(examples) == 4862
    assert sum(label for _, label in examples) == 642


@pytest.mark.parametrize("text, facts", [
    ("", ["no labelled examples"]),
    ("\n\n", ["no labelled examples"]),
    ("ham no tab here\n", ["line 1", "label<TAB>text"]),
    ("ham\thello\nmaybe\tsomething\n", ["line 2", "'maybe'"]),
    ("spam\t   \n", ["line 1", "empty"]),
])
def test_bad_tsv_is_refused_with_the_line(tmp_path, text, facts):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with raises(ValueError, "bad.tsv", *facts):
        read_sms_spam(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with raises(FileNotFoundError, "nope.tsv"):
        read_sms_spam(tmp_path / "nope.tsv")


def test_a_latin1_file_is_refused_not_silently_damaged(tmp_path):
    """é and £ in Latin-1 used to become U+FFFD without a word; UTF-8 keeps them, and a BOM is dropped."""
    text = "ham\tcaf\u00e9 at 5\nspam\tWin \u00a3100 now\n"
    path = tmp_path / "latin1.tsv"
    path.write_bytes(text.encode("latin-1"))
    with raises(ValueError, "latin1.tsv", "not UTF-8", "line 1", "0xe9", "iconv"):
        read_sms_spam(path)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_sms_spam(path) == [("caf\u00e9 at 5", 0), ("Win \u00a3100 now", 1)]


@pytest.mark.parametrize("label, facts", [
    ("spam", ["example 1", "'spam'", "class index 0..1"]),
    ("1", ["example 1", "'1'"]),
    (1.0, ["example 1", "1.0"]),
    (True, ["example 1", "True"]),
    (5, ["example 1", "label 5", "outside 0..1", "num_classes=6"]),
    (-1, ["example 1", "label -1", "outside 0..1"]),
])
def test_a_bad_class_label_is_refused_when_the_data_set_is_built(tok, label, facts):
    """Not as torch's "Target 5 is out of bounds" in the middle of training."""
    with raises(ValueError, *facts):
        classification_loader([("hello", 0), ("world", label)], tok, max_length=8)


def test_more_classes_need_num_classes(tok):
    np = pytest.importorskip("numpy")
    examples = [("a", 0), ("b", np.int64(2)), ("c", torch.tensor(1))]
    _, _, labels = next(iter(classification_loader(examples, tok, max_length=8, num_classes=3)))
    assert labels.tolist() == [0, 2, 1]
    with raises(ValueError, "example 0", "(text, label) pair"):
        ClassificationDataset([("just text",)], tok, max_length=8)


@pytest.mark.parametrize("max_length", ["5", 0, 2.5, None])
def test_max_length_must_be_a_whole_number(tok, max_length):
    with raises(ValueError, "max_length", repr(max_length)):
        classification_loader([("hello", 0)], tok, max_length=max_length)
    with raises(ValueError, "max_length", repr(max_length)):
        instruction_loader(RECORDS, tok, max_length=max_length)


def test_an_empty_batch_is_a_clear_error():
    with raises(ValueError, "empty batch"):
        collate_classification([])
    with raises(ValueError, "empty batch"):
        collate_instructions([], pad_id=0)


def test_balanced_split_is_balanced_disjoint_stratified_and_repeatable():
    examples = read_sms_spam()
    train, val, test = balanced_split(examples, seed=5)
    for split in (train, val, test):
        labels = [y for _, y in split]
        assert labels.count(0) == labels.count(1) > 0
    assert len(train) + len(val) + len(test) == 2 * 642
    numbered = [(f"message {i}", i % 3 == 0) for i in range(300)]  # unique texts, 100 of class 1
    parts = [{t for t, _ in split} for split in balanced_split([(t, int(y)) for t, y in numbered])]
    assert sum(map(len, parts)) == 200 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert (train, val, test) == balanced_split(examples, seed=5)
    assert train != balanced_split(examples, seed=6)[0]


def test_empty_and_single_class_data_sets_are_refused():
    with raises(ValueError, "empty"):
        balanced_split([])
    with raises(ValueError, "single class"):
        balanced_split([("a", 0), ("b", 0), ("c", 0)])
    with raises(ValueError, "class 0", "too few"):
        balanced_split([("a", 0), ("b", 1)])


def test_long_messages_are_truncated_or_refused(tok):
    long_text = "To be, or not to be, that is the question. " * 10
    data = ClassificationDataset([(long_text, 1), ("short", 0)], tok, max_length=16)
    assert len(data[0][0]) == 16 and data[0][0] == tok.encode(long_text)[:16]
    assert data[1][0] == tok.encode("short") and data.truncated == 1
    with raises(ValueError, "example 0", "max_length=16", "truncate=True"):
        ClassificationDataset([(long_text, 1)], tok, max_length=16, truncate=False)
    with raises(ValueError, "empty"):
        ClassificationDataset([], tok, max_length=16)
    with raises(ValueError, "max_length", "0"):
        ClassificationDataset([("short", 0)], tok, max_length=0)


def test_a_pad_id_outside_the_vocabulary_is_refused_when_the_loader_is_built(tok):
    with raises(ValueError, "pad_id", "321"):
        classification_loader([("short", 0)], tok, max_length=16, pad_id=321)


# --------------------------------------------------------------------------- classification model
def test_class_is_read_at_the_last_real_token_so_padding_changes_nothing(tok):
    model = prepare_classifier(tiny_model(tok), num_classes=2)
    a, b = tok.encode("win a free prize now"), tok.encode("ok")
    inputs, lengths, labels = collate_classification([(a, 1), (b, 0)], pad_id=7)
    assert inputs.shape == (2, len(a)) and lengths.tolist() == [len(a), len(b)] and labels.tolist() == [1, 0]
    assert inputs[1, len(b):].eq(7).all()
    with torch.no_grad():
        batched = class_logits(model, inputs, lengths)
        alone = class_logits(model, torch.tensor([b]), torch.tensor([len(b)]))
    torch.testing.assert_close(batched[1], alone[0])
    assert batched.shape == (2, 2)


def test_the_new_head_is_drawn_on_the_cpu_then_moved(tok):
    """The head must not depend on where the model lives: it is drawn on the CPU in float32 (as
    ``nn.Linear`` is there, from the same seed) and only then given the model's dtype and device."""
    model = tiny_model(tok).double()  # a dtype other than the default, standing in for another device
    torch.manual_seed(5)
    head = replace_head(model, 3)
    torch.manual_seed(5)
    reference = nn.Linear(model.cfg.emb_dim, 3)
    assert model.out_head is head and head.weight.dtype == torch.float64
    assert torch.equal(head.weight, reference.weight.double()) and torch.equal(head.bias, reference.bias.double())
    with raises(ValueError, "num_classes", "1"):
        replace_head(model, 1)


def test_prepare_classifier_freezes_all_but_the_last_block_norm_and_head(tok):
    model = prepare_classifier(tiny_model(tok), num_classes=2, trainable_blocks=1)
    assert model.out_head.out_features == 2
    trainable = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("trf") else "")
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"trf_blocks.1", "final_norm", "out_head"}
    full = prepare_classifier(tiny_model(tok), trainable_blocks=None)
    assert count_parameters(full)[0] == count_parameters(full)[1]
    with raises(ValueError, "trainable_blocks", "3"):
        prepare_classifier(tiny_model(tok), trainable_blocks=3)
    with raises(ValueError, "trainable_blocks", "-1"):
        prepare_classifier(tiny_model(tok), trainable_blocks=-1)


def test_short_classification_training_lowers_the_loss(tok):
    train, _, _ = balanced_split(read_sms_spam(), seed=1)
    loader = classification_loader(train[:96], tok, max_length=24, batch_size=16, shuffle=True, seed=1)
    model = prepare_classifier(tiny_model(tok), num_classes=2, trainable_blocks=None)
    before = mean_loss(model, loader, classification_loss)
    losses = train_classifier(model, loader, epochs=4, lr=3e-3)
    after = mean_loss(model, loader, classification_loss)
    assert len(losses) == 4 * 6
    assert after < 0.8 * before, (before, after)
    model.train()
    preds, labels = predict(model, loader)
    assert (preds == labels).float().mean() > 0.7
    assert model.training  # predict evaluates in eval mode and gives the model back as it was


def test_confusion_matrix_counts_true_rows_predicted_columns():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 1]))
    assert cm.tolist() == [[1, 1], [1, 2]]
    assert confusion_matrix(torch.tensor([2]), torch.tensor([0]), num_classes=3).tolist() == [[0, 0, 1], [0, 0, 0],
                                                                                            [0, 0, 0]]


# --------------------------------------------------------------------------- instruction data
RECORDS = [
    {"instruction": "Evaluate the following phrase by transforming it into the spelling given.",
     "input": "freind --> friend",
     "output": "The spelling of the given phrase \"freind\" is incorrect, the correct spelling is \"friend\"."},
    {"instruction": "Name a primary color.", "input": "", "output": "Red."},
]


def test_alpaca_prompt_format_with_and_without_input():
    assert format_prompt({"instruction": "Repeat the word.", "input": "moon", "output": "moon"}) == (
        f"{ALPACA_PREAMBLE}\n\n### Instruction:\nRepeat the word.\n\n### Input:\nmoon\n\n### Response:\n")
    assert format_prompt({"instruction": "Name a primary color.", "input": ""}) == (
        f"{ALPACA_PREAMBLE}\n\n### Instruction:\nName a primary color.\n\n### Response:\n")
    assert ALPACA_PREAMBLE.startswith("Below is an instruction that describes a task.")


def test_loads_alpaca_json_and_json_lines(tmp_path):
    path = tmp_path / "instruction-data.json"
    path.write_text(json.dumps(RECORDS))
    assert load_instruction_json(path) == RECORDS
    lines = tmp_path / "data.jsonl"
    lines.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "input"}) for r in RECORDS) + "\n")
    loaded = load_instruction_json(lines)
    assert [r["input"] for r in loaded] == ["", ""] and loaded[1]["output"] == "Red."


@pytest.mark.parametrize("content, facts", [
    ("", ["empty"]),
    ("[]", ["no instruction records"]),
    ('[{"instruction": "x", "input": ""}]', ["record 0", "'output'"]),
    ('[{"instruction": "a", "output": "b"}, {"input": "", "output": "b"}]', ["record 1", "'instruction'"]),
    ('[{"instruction": "a", "output": ""}]', ["record 0", "'output'", "non-empty"]),
    ('["just text"]', ["record 0", "str"]),
    ('[{"instruction": "a", "output": "b", "input": 3}]', ["record 0", "'input'", "int"]),
    ("[{]", ["not valid JSON"]),
    ('{"instruction": "a", "output": "b"}\n{oops}\n', ["line 2", "not valid JSON"]),
    (json.dumps(RECORDS[0], indent=2), ["one JSON object, not a list", "[{...}, {...}]"]),  # was "line 1 is not..."
    ('"just a string"', ["a JSON str, not a list"]),
    ("[" * 100_000, ["nested too deeply"]),  # was a RecursionError
    ("\n".join("[" * 100_000 for _ in range(2)), ["nested too deeply"]),
])
def test_bad_instruction_files_are_refused(tmp_path, content, facts):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with raises(ValueError, "bad.json", *facts):
        load_instruction_json(path)


def test_instruction_files_pretty_printed_in_one_line_or_in_latin1(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(RECORDS, indent=2))
    assert load_instruction_json(path) == RECORDS
    path.write_text(json.dumps(RECORDS[0]) + "\n")  # JSON Lines with a single record
    assert load_instruction_json(path) == RECORDS[:1]
    records = [{"instruction": "Caf\u00e9?", "output": "Oui."}]
    path.write_bytes(json.dumps(records, ensure_ascii=False).encode("latin-1"))
    with raises(ValueError, "data.json", "not UTF-8", "line 1"):  # was a UnicodeDecodeError
        load_instruction_json(path)


def test_synthetic_tasks_are_deterministic_correct_and_held_out():
    train, test = synthetic_instructions(n_train=200, n_test=60, seed=3)
    assert (train, test) == synthetic_instructions(n_train=200, n_test=60, seed=3)
    assert train != synthetic_instructions(n_train=200, n_test=60, seed=4)[0]
    assert len(train) == 200 and len(test) == 60
    assert len({(r["instruction"], r["input"]) for r in test}) == 60
    assert not {r["input"] for r in train} & {r["input"] for r in test}
    for r in train + test:
        validate_record(r)
        n = int(r["input"])
        expected = {"Is the number even or odd?": "even" if n % 2 == 0 else "odd",
                    "Is the number greater than 500? Answer yes or no.": "yes" if n > 500 else "no",
                    "What is the first digit of the number?": str(n // 100),
                    "What is the last digit of the number?": str(n % 10)}
        assert 100 <= n <= 999 and r["output"] == expected[r["instruction"]]
    instructions = {r["instruction"] for r in train}
    assert {r["instruction"] for r in test} == instructions and len(instructions) == 4


def test_word_tasks_are_held_out_too_and_unknown_tasks_fail():
    train, test = synthetic_instructions(n_train=90, n_test=30, tasks=("repeat", "first_word", "last_word"))
    train_words = {w for r in train for w in r["input"].split(", ")}
    test_words = {w for r in test for w in r["input"].split(", ")}
    assert train_words and test_words and not train_words & test_words
    for r in train + test:
        words = r["input"].split(", ")
        assert r["output"] == {"Repeat the word.": words[0], "What is the first word of the list?": words[0],
                               "What is the last word of the list?": words[-1]}[r["instruction"]]
    with raises(ValueError, "'spell'", "parity"):
        synthetic_instructions(tasks=("spell",))
    with raises(ValueError, "500", "fewer"):
        synthetic_instructions(n_test=500, tasks=("repeat",))
    with raises(ValueError, "n_train", "0"):
        synthetic_instructions(n_train=0)


def test_collate_masks_prompt_and_padding_with_minus_100(tok):
    eot = end_of_text_id(tok)
    short, long = ([1, 2, 3, 4, eot], 3), ([5, 6, 7, 8, 9, 10, eot], 2)
    inputs, targets = collate_instructions([short, long], pad_id=eot)
    assert inputs.tolist() == [[1, 2, 3, 4, eot, eot], [5, 6, 7, 8, 9, 10]]
    # short: prompt = [1, 2, 3] -> targets 2, 3 masked; response 4 and the end token kept; padding masked
    assert targets.tolist() == [[-100, -100, 4, eot, -100, -100], [-100, 7, 8, 9, 10, eot]]
    _, no_prompt_mask = collate_instructions([short, long], pad_id=eot, mask_prompt=False)
    assert no_prompt_mask.tolist() == [[2, 3, 4, eot, -100, -100], [6, 7, 8, 9, 10, eot]]
    _, naive = collate_instructions([short, long], pad_id=eot, mask_prompt=False, mask_padding=False)
    assert naive[0].tolist() == [2, 3, 4, eot, eot, eot]
    assert IGNORE_INDEX == -100


def test_masking_matters_for_the_loss(tok):
    """With padding masked, a record's loss does not depend on its batch mates; without, it does."""
    model = tiny_model(tok)
    data = InstructionDataset(RECORDS[1:] + RECORDS[:1], tok, max_length=257)
    short, long = data[0], data[1]
    assert len(long[0]) > len(short[0]) + 10
    eot = data.end_id

    def loss_of_first(batch, **kw):
        inputs, targets = collate_instructions(batch, pad_id=eot, **kw)
        with torch.no_grad():
            logits = model(inputs)[:1]
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets[:1].flatten()).item()

    assert loss_of_first([short, long]) == pytest.approx(loss_of_first([short]), abs=1e-5)
    assert loss_of_first([short, long], mask_padding=False) != pytest.approx(
        loss_of_first([short], mask_padding=False), abs=1e-3)
    assert loss_of_first([short]) != pytest.approx(loss_of_first([short], mask_prompt=False), abs=1e-3)


def test_too_long_records_are_refused_not_truncated(tok):
    with raises(ValueError, "record 0", "max_length=20"):
        InstructionDataset(RECORDS, tok, max_length=20)
    with raises(ValueError, "empty"):
        InstructionDataset([], tok, max_length=200)
    with raises(ValueError, "'output'"):
        InstructionDataset([{"instruction": "x"}], tok, max_length=200)


def test_the_end_token_comes_from_the_tokenizer_and_ids_given_by_hand_are_checked(tok):
    assert InstructionDataset(RECORDS[1:], tok, max_length=200).end_id == 320
    with raises(ValueError, END_OF_TEXT):
        InstructionDataset(RECORDS[1:], BPETokenizer.train("abc abc abd", 258), max_length=200)
    with raises(ValueError, "end_id", "5000"):
        InstructionDataset(RECORDS[1:], tok, max_length=200, end_id=5000)
    with raises(ValueError, "pad_id", "-1"):
        instruction_loader(RECORDS[1:], tok, max_length=200, pad_id=-1)


def test_instruction_finetuning_teaches_an_answer_exactly(tok):
    """Overfit two records: the masked loss falls and greedy decoding then reproduces the answers."""
    records = [{"instruction": "Repeat the word.", "input": "moon", "output": "moon"},
               {"instruction": "Is the number even or odd?", "input": "427", "output": "odd"}]
    model = tiny_model(tok, layers=1)
    loader = instruction_loader(records, tok, max_length=161, batch_size=2)
    before, _ = exact_match(model, tok, records, max_new_tokens=4)
    first = mean_loss(model, loader, instruction_loss)
    train_instructions(model, loader, epochs=60, lr=1e-2, weight_decay=0.0)
    assert mean_loss(model, loader, instruction_loss) < 0.1 * first
    score, answers = exact_match(model, tok, records, max_new_tokens=4)
    assert before == 0.0 and score == 1.0, answers
    assert answer(model, tok, {"instruction": "Repeat the word.", "input": "moon"}) == "moon"
    assert not model.training  # it came in eval mode (tiny_model) and goes back in eval mode
