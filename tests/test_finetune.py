"""Finetuning helpers (gptlib.finetune, gptlib.classify, gptlib.instruct): data, masks, errors, training."""
from __future__ import annotations

import json

import pytest
import torch

from gptlib.assets import tiny_shakespeare
from gptlib.classify import (ClassificationDataset, balanced_split, class_logits, classification_loader,
                             classification_loss, collate_classification, confusion_matrix, parse_labelled_tsv,
                             predict, prepare_classifier, read_sms_spam, train_classifier)
from gptlib.finetune import count_parameters, mean_loss, train_steps
from gptlib.instruct import (ALPACA_PREAMBLE, IGNORE_INDEX, InstructionDataset, answer, collate_instructions,
                             end_token_id, exact_match, format_prompt, instruction_loader, instruction_loss,
                             load_instruction_json, synthetic_instructions, train_instructions, validate_record)
from gptlib.model import GPTConfig, GPTModel
from gptlib.tokenizer import BPETokenizer

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(tiny_shakespeare()[:20000], 320, special_tokens={EOT: 320})


def tiny_model(tok, seed: int = 0, context: int = 256, layers: int = 2) -> GPTModel:
    torch.manual_seed(seed)
    return GPTModel(GPTConfig(vocab_size=tok.n_vocab, context_length=context, emb_dim=32, n_heads=2,
                              n_layers=layers, drop_rate=0.0)).eval()


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


@pytest.mark.parametrize("text, message", [
    ("", "no labelled examples"),
    ("\n\n", "no labelled examples"),
    ("ham no tab here\n", "line 1: expected 'label<TAB>text'"),
    ("ham\thello\nmaybe\tsomething\n", "line 2: unknown label 'maybe'"),
    ("spam\t   \n", "line 1: the text after the label is empty"),
])
def test_bad_tsv_is_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_sms_spam(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_sms_spam(tmp_path / "nope.tsv")


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
    with pytest.raises(ValueError, match="empty"):
        balanced_split([])
    with pytest.raises(ValueError, match="single class"):
        balanced_split([("a", 0), ("b", 0), ("c", 0)])
    with pytest.raises(ValueError, match="too few"):
        balanced_split([("a", 0), ("b", 1)])


def test_long_messages_are_truncated_or_refused(tok):
    long_text = "To be, or not to be, that is the question. " * 10
    data = ClassificationDataset([(long_text, 1), ("short", 0)], tok, max_length=16)
    assert len(data[0][0]) == 16 and data[0][0] == tok.encode(long_text)[:16]
    assert data[1][0] == tok.encode("short") and data.truncated == 1
    with pytest.raises(ValueError, match="more than max_length=16"):
        ClassificationDataset([(long_text, 1)], tok, max_length=16, truncate=False)
    with pytest.raises(ValueError, match="empty"):
        ClassificationDataset([], tok, max_length=16)


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


def test_prepare_classifier_freezes_all_but_the_last_block_norm_and_head(tok):
    model = prepare_classifier(tiny_model(tok), num_classes=2, trainable_blocks=1)
    assert model.out_head.out_features == 2
    trainable = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("trf") else "")
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"trf_blocks.1", "final_norm", "out_head"}
    full = prepare_classifier(tiny_model(tok), trainable_blocks=None)
    assert count_parameters(full)[0] == count_parameters(full)[1]
    with pytest.raises(ValueError, match="trainable_blocks"):
        prepare_classifier(tiny_model(tok), trainable_blocks=3)


def test_short_classification_training_lowers_the_loss(tok):
    train, _, _ = balanced_split(read_sms_spam(), seed=1)
    loader = classification_loader(train[:96], tok, max_length=24, batch_size=16, shuffle=True, seed=1)
    model = prepare_classifier(tiny_model(tok), num_classes=2, trainable_blocks=None)
    before = mean_loss(model, loader, classification_loss)
    losses = train_classifier(model, loader, epochs=4, lr=3e-3)
    after = mean_loss(model, loader, classification_loss)
    assert len(losses) == 4 * 6
    assert after < 0.8 * before, (before, after)
    preds, labels = predict(model, loader)
    assert (preds == labels).float().mean() > 0.7


def test_training_with_everything_frozen_is_an_error(tok):
    model = tiny_model(tok)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_steps(model, [], classification_loss)


def test_confusion_matrix_counts_true_rows_predicted_columns():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 1]))
    assert cm.tolist() == [[1, 1], [1, 2]]


# --------------------------------------------------------------------------- instruction data
RECORDS = [
    {"instruction": "Evaluate the following phrase by transforming it into the spelling given.",
     "input": "freind --> friend", "output": "The spelling of the given phrase \"freind\" is incorrect, the correct spelling is \"friend\"."},
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


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("[]", "no instruction records"),
    ('[{"instruction": "x", "input": ""}]', "record 0 is missing the field 'output'"),
    ('[{"instruction": "a", "output": "b"}, {"input": "", "output": "b"}]', "record 1 is missing the field 'instruction'"),
    ('[{"instruction": "a", "output": ""}]', "'output' must be a non-empty string"),
    ('["just text"]', "record 0 must be an object"),
    ("[{]", "not valid JSON"),
])
def test_bad_instruction_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
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
    assert {r["instruction"] for r in test} == {r["instruction"] for r in train} and len({r["instruction"] for r in train}) == 4


def test_word_tasks_are_held_out_too_and_unknown_tasks_fail():
    train, test = synthetic_instructions(n_train=90, n_test=30, tasks=("repeat", "first_word", "last_word"))
    train_words = {w for r in train for w in r["input"].split(", ")}
    test_words = {w for r in test for w in r["input"].split(", ")}
    assert train_words and test_words and not train_words & test_words
    for r in train + test:
        words = r["input"].split(", ")
        assert r["output"] == {"Repeat the word.": words[0], "What is the first word of the list?": words[0],
                               "What is the last word of the list?": words[-1]}[r["instruction"]]
    with pytest.raises(ValueError, match="unknown task 'spell'"):
        synthetic_instructions(tasks=("spell",))
    with pytest.raises(ValueError, match="distinct test records"):
        synthetic_instructions(n_test=500, tasks=("repeat",))


def test_collate_masks_prompt_and_padding_with_minus_100(tok):
    eot = end_token_id(tok)
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
    assert loss_of_first([short, long], mask_padding=False) != pytest.approx(loss_of_first([short], mask_padding=False), abs=1e-3)
    assert loss_of_first([short]) != pytest.approx(loss_of_first([short], mask_prompt=False), abs=1e-3)


def test_too_long_records_are_refused_not_truncated(tok):
    with pytest.raises(ValueError, match="record 0 has .* tokens .* more than max_length=20"):
        InstructionDataset(RECORDS, tok, max_length=20)
    with pytest.raises(ValueError, match="empty"):
        InstructionDataset([], tok, max_length=200)
    with pytest.raises(ValueError, match="missing the field 'output'"):
        InstructionDataset([{"instruction": "x"}], tok, max_length=200)


def test_end_token_must_exist(tok):
    no_special = BPETokenizer.train("abc abc abd", 258)
    with pytest.raises(ValueError, match="no '<\\|endoftext\\|>'"):
        end_token_id(no_special)
    assert end_token_id(tok) == 320


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
