"""The bad-input table: what a learner can plausibly type, and the clear error it gets (issue 13).

Each row names what the learner typed and the key facts the message must hold (the offending
value, the fix), never its whole wording. Command-line rows run ``python -m gptlib`` in-process
and must exit with status 2 and exactly one line on stderr, no traceback; API rows name the
exception type. Every row once gave a traceback, a misleading message, a hang or a silently
wrong result. Add a row for each new guard; the test for the behaviour itself lives beside its
module's other tests (tests/test_checkpoint.py, test_tokenizer.py, test_download.py, ...).
"""
from __future__ import annotations

import errno
import json
import os
import shutil

import pytest
import torch

from gptlib.assets import tiny_shakespeare
from gptlib.checkpoint import CheckpointError, checkpoint_sha256
from gptlib.cli import main

SMALL = ["--vocab-size", "300", "--context-length", "16", "--emb-dim", "16", "--n-layers", "1", "--n-heads", "2",
         "--batch-size", "4", "--eval-every", "3", "--eval-batches", "2", "--warmup-steps", "1", "--steps", "3",
         "--device", "cpu", "--no-progress", "--sample-tokens", "0"]
GPU = torch.cuda.is_available()


# --------------------------------------------------------------------------- the workspace the rows use
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Files a learner could point the command line at, and one small trained run."""
    root = tmp_path_factory.mktemp("bad-inputs")
    text = tiny_shakespeare()[:20_000]
    (root / "data.txt").write_text(text, encoding="utf-8")
    (root / "latin1.txt").write_bytes(("Caf\u00e9 cr\u00e8me, \u00a35. " * 200).encode("latin-1"))
    (root / "eot.txt").write_text(text[:10_000] + "<|endoftext|>" + text[10_000:], encoding="utf-8")
    (root / "short.txt").write_text(text[:3_000], encoding="utf-8")
    (root / "afile").write_text("not a folder")
    (root / "folder").mkdir()
    assert main(["train", "--data", str(root / "data.txt"), "--out", str(root / "run"), *SMALL]) == 0
    assert main(["train", "--data", str(root / "short.txt"), "--out", str(root / "other-run"), *SMALL]) == 0
    return root


def _copy_run(workspace, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(workspace / "run", copy)
    return copy


def _rewrite_checkpoint(path, change, checksum=True):
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    del ckpt["sha256"]
    if checksum:
        ckpt["sha256"] = checkpoint_sha256(ckpt)
    torch.save(ckpt, path)


def flipped_byte(workspace, tmp_path, monkeypatch):
    run = _copy_run(workspace, tmp_path)
    weight = torch.load(run / "model.pt", weights_only=True)["model"]["trf_blocks.0.att.qkv.weight"]
    data = bytearray((run / "model.pt").read_bytes())
    data[data.find(weight.contiguous().view(-1).view(torch.uint8).numpy().tobytes()) + 11] ^= 0x10
    (run / "model.pt").write_bytes(bytes(data))
    return {"run": run}


def swapped_tokenizer(workspace, tmp_path, monkeypatch):
    run = _copy_run(workspace, tmp_path)
    shutil.copy(workspace / "other-run" / "tokenizer.json", run / "tokenizer.json")
    return {"run": run}


def config_does_not_fit(workspace, tmp_path, monkeypatch):
    run = _copy_run(workspace, tmp_path)
    _rewrite_checkpoint(run / "model.pt", lambda c: c["config"].update(emb_dim=32))
    return {"run": run}


def old_checkpoint(workspace, tmp_path, monkeypatch):
    run = _copy_run(workspace, tmp_path)
    _rewrite_checkpoint(run / "model.pt", lambda c: c.update(format_version=1), checksum=False)
    return {"run": run}


def read_only_folder(workspace, tmp_path, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == str(folder) else real(path, mode))
    return {"out": folder / "run"}


def read_only_file_system(workspace, tmp_path, monkeypatch):
    """Past the up-front check (a file system can turn read-only later): the first save fails."""
    from gptlib import files

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files, "open", refuse, raising=False)
    return {}


def no_download(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("GPTLIB_GPT2_DIR", str(tmp_path / "gpt2"))
    monkeypatch.delenv("GPTLIB_ALLOW_DOWNLOAD", raising=False)
    return {}


def run_to_resume(workspace, tmp_path, monkeypatch):
    return {"run": _copy_run(workspace, tmp_path)}


# ---- set-ups for tokenizer files and GPT-2 downloads (issues 21, 23) ----
def reversed_tokenizer_in_run(workspace, tmp_path, monkeypatch):
    """A run whose tokenizer.json matches right to left ((?r)), its sha256 recorded in a re-checksummed model.pt."""
    import hashlib

    run = _copy_run(workspace, tmp_path)
    path = run / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**data, "pattern": "(?r)" + data["pattern"]}), encoding="utf-8")
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    _rewrite_checkpoint(run / "model.pt", lambda c: c["extra"].update(tokenizer_sha256=sha256))
    return {"run": run}


def gpt2_stand_in_not_safetensors(workspace, tmp_path, monkeypatch):
    """A GPT-2 355M file in the cache whose recorded sha256 matches, but that is not safetensors."""
    cache = tmp_path / "gpt2"
    stand_in_355m_not_safetensors(cache)
    monkeypatch.setenv("GPTLIB_GPT2_DIR", str(cache))
    monkeypatch.delenv("GPTLIB_ALLOW_DOWNLOAD", raising=False)
    return {}


def stand_in_355m_not_safetensors(cache):
    import hashlib

    cache.mkdir()
    (cache / "gpt2-355M.safetensors").write_bytes(b"stand-in weights")
    record = {"sha256": hashlib.sha256(b"stand-in weights").hexdigest()}
    (cache / "gpt2-355M.safetensors.sha256").write_text(json.dumps(record))


TRAIN = ["train", "--data", "{data}", "--out", "{out}", *SMALL]
GENERATE = ["generate", "--checkpoint", "{run}", "--prompt", "ROMEO:", "--device", "cpu", "--max-new-tokens", "5"]

# what the learner typed, the command line, a set-up (or None), key facts of the one-line error
CLI_TABLE = [
    ("train: --data that does not exist", [*TRAIN, "--data", "{root}/nope.txt"], None, ["no such file", "nope.txt"]),
    ("train: --data that is a folder", [*TRAIN, "--data", "{root}/folder"], None, ["is a folder"]),
    ("train: --data in Latin-1", [*TRAIN, "--data", "{root}/latin1.txt"], None, ["not UTF-8", "iconv"]),
    ("train: a text holding <|endoftext|>", [*TRAIN, "--data", "{root}/eot.txt"], None,
     ["'<|endoftext|>'", "character 10,000", "delete or replace"]),  # not "pass allowed_special="
    ("train: --out that is a file", [*TRAIN, "--out", "{root}/afile"], None, ["afile is a file"]),
    ("train: --out under a file", [*TRAIN, "--out", "{root}/afile/run"], None, ["lies under", "which is a file"]),
    ("train: --out in a read-only folder", TRAIN, read_only_folder, ["read-only", "choose a folder"]),
    ("train: the file system turns read-only", TRAIN, read_only_file_system,
     ["cannot write", "tokenizer.json", "read-only", "choose a folder"]),
    ("train: --device foo", [*TRAIN, "--device", "foo"], None, ["'foo'", "available here"]),
    pytest.param("train: --device cuda without a GPU", [*TRAIN, "--device", "cuda"], None, ["cuda", "available here"],
                 marks=pytest.mark.skipif(GPU, reason="this machine has a GPU")),
    ("train: --lr 1e30", [*TRAIN, "--lr", "1e30"], None, ["loss became nan", "Lower the learning rate"]),
    ("train: --time-budget -1", [*TRAIN, "--time-budget", "-1"], None, ["time_budget_s", "-1"]),  # trained 1 step
    ("train: --time-budget 0", [*TRAIN, "--time-budget", "0"], None, ["time_budget_s", "0"]),
    ("train: --vocab-size 100", [*TRAIN, "--vocab-size", "100"], None, ["vocab_size", "got 100"]),  # was "got 99"
    ("train: --context-length 10**12", [*TRAIN, "--context-length", str(10**12)], None,
     ["too big", "GB", "context_length"]),
    ("train: --n-heads 3 with --emb-dim 16", [*TRAIN, "--n-heads", "3"], None, ["divisible", "(3)"]),
    ("train: --steps 0", [*TRAIN, "--steps", "0"], None, ["max_steps", "got 0"]),
    ("train: --drop-rate 1", [*TRAIN, "--drop-rate", "1"], None, ["drop_rate", "1.0"]),
    ("train: --out of a finished run, no --resume", [*TRAIN, "--out", "{run}"], run_to_resume, ["pass --resume"]),
    ("train: --resume with other settings", [*TRAIN, "--out", "{run}", "--resume", "--lr", "0.01"], run_to_resume,
     ["cannot resume", "lr"]),
    ("train: --resume with another text", [*TRAIN, "--out", "{run}", "--resume", "--data", "{root}/short.txt"],
     run_to_resume, ["not the text the run started with"]),
    ("generate: --checkpoint that is no run folder", [*GENERATE, "--checkpoint", "{root}/folder/nope"], None,
     ["not a run folder"]),
    ("generate: a checkpoint with a flipped byte", GENERATE, flipped_byte, ["model.pt is corrupt", "sha256"]),
    ("generate: another run's tokenizer.json", GENERATE, swapped_tokenizer, ["not the tokenizer", "trained with"]),
    ("generate: a config that does not fit the weights", GENERATE, config_does_not_fit,
     ["does not hold a model", "can build"]),
    ("generate: a checkpoint of an older gptlib", GENERATE, old_checkpoint, ["without the checksum", "train again"]),
    ("generate: --temperature -1", [*GENERATE, "--temperature", "-1"], None, ["temperature", "-1.0"]),
    ("generate: --temperature nan", [*GENERATE, "--temperature", "nan"], None, ["temperature", "nan"]),
    ("generate: --top-k 0", [*GENERATE, "--top-k", "0"], None, ["top_k", "got 0"]),
    ("generate: --top-p 2", [*GENERATE, "--top-p", "2"], None, ["top_p", "2.0"]),
    ("generate: --max-new-tokens -1", [*GENERATE, "--max-new-tokens", "-1"], None, ["max_new_tokens", "-1"]),
    ("generate: --prompt ''", [*GENERATE, "--prompt", ""], None, ["empty prompt"]),
    ("generate: --device foo", [*GENERATE, "--device", "foo"], None, ["'foo'", "available here"]),
    ("generate: --gpt2 with downloads off", ["generate", "--gpt2", "124M", "--prompt", "Hi", "--device", "cpu"],
     no_download, ["not in the cache", "GPTLIB_ALLOW_DOWNLOAD=1"]),
    ("generate: --expected-sha256 abc", ["generate", "--gpt2", "124M", "--prompt", "Hi", "--device", "cpu",
                                         "--expected-sha256", "abc"], no_download, ["64 hex digits", "'abc'"]),
    # ---- tokenizer files and GPT-2 downloads (issues 21, 23) ----
    ("generate: a run's tokenizer.json with a (?r) pattern", GENERATE, reversed_tokenizer_in_run,
     ["tokenizer.json", "not one gptlib writes"]),  # was: "Hello world, this is text." came back reversed
    ("train --resume: a run's tokenizer.json with a (?r) pattern", [*TRAIN, "--out", "{run}", "--resume"],
     reversed_tokenizer_in_run, ["tokenizer.json", "not one gptlib writes"]),
    ("generate --gpt2 355M: a verified file that is not safetensors",
     ["generate", "--gpt2", "355M", "--prompt", "Hi", "--device", "cpu"], gpt2_stand_in_not_safetensors,
     ["gpt2-355M.safetensors", "not a safetensors file"]),  # was: a SafetensorError traceback
    # ---- end of tokenizer files and GPT-2 downloads ----
]


@pytest.mark.parametrize("typed, argv, setup, facts", CLI_TABLE, ids=[
    row.values[0] if hasattr(row, "values") else row[0] for row in CLI_TABLE])
def test_command_line(typed, argv, setup, facts, workspace, tmp_path, monkeypatch, capsys):
    places = {"root": workspace, "data": workspace / "data.txt", "out": tmp_path / "new-run", "run": workspace / "run"}
    if setup is not None:
        places.update(setup(workspace, tmp_path, monkeypatch))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([arg.format(**places) for arg in argv])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"python -m gptlib {argv[0]}: error: ")
    assert all(fact in err for fact in facts), (facts, err)


def test_command_line_vocab_size_limit_is_not_off_by_one(workspace, tmp_path, capsys):
    """The largest --vocab-size the message suggests must work, and one more must not."""
    import re

    args = ["train", "--data", str(workspace / "short.txt"), *SMALL]
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "a"), "--vocab-size", "100000"])
    largest = int(re.search(r"vocab_size <= (\d+)", capsys.readouterr().err).group(1))
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "b"), "--vocab-size", str(largest + 1)])
    assert main([*args, "--out", str(tmp_path / "c"), "--vocab-size", str(largest)]) == 0


# --------------------------------------------------------------------------- the library (API)
def _tiny_model(emb_dim: int = 16):
    from gptlib.model import GPTConfig, GPTModel

    torch.manual_seed(0)
    return GPTModel(GPTConfig(vocab_size=40, context_length=16, emb_dim=emb_dim, n_heads=2, n_layers=1)).eval()


def generate_from(ids, **options):
    from gptlib.generate import generate

    return lambda tmp_path: generate(_tiny_model(), ids, 2, **options)


def cache_of_another_model(tmp_path):
    """A cache belongs to its model (KVCache(model)); the models take no cache argument."""
    from gptlib.generate import KVCache

    other, model = _tiny_model(), _tiny_model()
    cache = KVCache(other)
    cache.forward(torch.tensor([[1, 2, 3]]))
    return model(torch.tensor([[4]]), kv_cache=cache)


def cache_indexed_with(key):
    def act(tmp_path):
        from gptlib.generate import KVCache

        return KVCache(_tiny_model())[key]
    return act


def cache_fed_another_batch(tmp_path):
    from gptlib.generate import KVCache

    cache = KVCache(_tiny_model())
    cache.forward(torch.tensor([[1, 2, 3]]))
    return cache.forward(torch.tensor([[4], [5]]))


def saved_checkpoint(change=None, **load_options):
    def act(tmp_path):
        from gptlib.checkpoint import load_checkpoint, load_model, save_checkpoint

        path = save_checkpoint(tmp_path / "c.pt", _tiny_model())
        if change is not None:
            _rewrite_checkpoint(path, change)
        return (load_model if load_options.pop("build", False) else load_checkpoint)(path, **load_options)
    return act


def flipped_checkpoint(tmp_path):
    from gptlib.checkpoint import load_checkpoint, save_checkpoint

    model = _tiny_model()
    path = save_checkpoint(tmp_path / "c.pt", model)
    data = bytearray(path.read_bytes())
    data[data.find(model.tok_emb.weight.detach().view(-1).view(torch.uint8).numpy().tobytes()) + 5] ^= 1
    path.write_bytes(bytes(data))
    return load_checkpoint(path)


def code_in_a_checkpoint(tmp_path):
    from gptlib.checkpoint import load_checkpoint

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"format": "gptlib-checkpoint", "x": Evil()}, tmp_path / "c.pt")
    return load_checkpoint(tmp_path / "c.pt")


def tokenizer_file(pattern=None, **fields):
    def act(tmp_path):
        from gptlib.tokenizer import BPETokenizer

        BPETokenizer({(97, 97): 256}).save(tmp_path / "tokenizer.json")
        data = json.loads((tmp_path / "tokenizer.json").read_text())
        changed = {**data, **fields, **({"pattern": pattern} if pattern is not None else {})}
        (tmp_path / "tokenizer.json").write_text(json.dumps(changed))
        return BPETokenizer.load(tmp_path / "tokenizer.json").encode("a" * 40 + "b")
    return act


def unknown_special(tmp_path):
    from gptlib.tokenizer import BPETokenizer

    return BPETokenizer({}, special_tokens={"<|endoftext|>": 256}).encode("hi <|eot|>", allowed_special={"<|eot|>"})


def classification(examples, max_length=8):
    def act(tmp_path):
        from gptlib.classify import classification_loader
        from gptlib.tokenizer import BPETokenizer

        return classification_loader(examples, BPETokenizer({}), max_length)
    return act


def empty_collate(tmp_path):
    from gptlib.classify import collate_classification

    return collate_classification([])


def instruction_file(content: bytes):
    def act(tmp_path):
        from gptlib.instruct import load_instruction_json

        (tmp_path / "data.json").write_bytes(content)
        return load_instruction_json(tmp_path / "data.json")
    return act


def sms_file_in_latin1(tmp_path):
    from gptlib.classify import read_sms_spam

    (tmp_path / "sms.tsv").write_bytes("spam\tWin \u00a3100 at the caf\u00e9\n".encode("latin-1"))
    return read_sms_spam(tmp_path / "sms.tsv")


def wrong_hash_for_a_verified_file(tmp_path):
    """Issue 13, item 5: a verified GPT-2 355M file and its record; the caller passes a wrong hash, offline."""
    from gptlib.download import gpt2_weights_path, sha256_file

    (tmp_path / "gpt2-355M.safetensors").write_bytes(b"stand-in weights")
    record = {"sha256": sha256_file(tmp_path / "gpt2-355M.safetensors")}
    (tmp_path / "gpt2-355M.safetensors.sha256").write_text(json.dumps(record))
    try:
        return gpt2_weights_path("355M", cache_dir=tmp_path, expected_sha256="0" * 64, allow_download=False)
    finally:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt2-355M.safetensors", "gpt2-355M.safetensors.sha256"]


def reversed_tokenizer_file(tmp_path):
    from gptlib.tokenizer import GPT2_PATTERN

    return tokenizer_file("(?r)" + GPT2_PATTERN)(tmp_path)


def train_with_pattern(prefix, pattern=None):
    def act(tmp_path):
        from gptlib.tokenizer import GPT2_PATTERN, BPETokenizer

        return BPETokenizer.train("a" * 40 + "b", 300, pattern=pattern or prefix + GPT2_PATTERN)
    return act


def gpt2_355m_not_safetensors(tmp_path):
    from gptlib.download import load_gpt2

    stand_in_355m_not_safetensors(tmp_path / "gpt2")
    return load_gpt2("355M", cache_dir=tmp_path / "gpt2", allow_download=False)


def disk_full(tmp_path):
    from gptlib.files import write_atomically

    def fill(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    write_atomically(tmp_path / "model.pt", lambda f: f.write(b"the last good one"))
    try:
        return write_atomically(tmp_path / "model.pt", fill)
    finally:
        assert (tmp_path / "model.pt").read_bytes() == b"the last good one"


def huge_config(tmp_path):
    from gptlib.model import GPTConfig

    return GPTConfig(context_length=10**12)


def _api_table():
    from gptlib.download import DownloadError
    from gptlib.files import WriteError
    from gptlib.generate import KVCache

    deep = b"[" * 100_000
    return [  # what the learner typed, the call, the exception type, key facts of its message
        ("generate(model, batch of zero rows)", generate_from(torch.empty(0, 3, dtype=torch.long)), ValueError,
         ["empty prompt", "(0, 3)"]),
        ("generate(model, ids, eos_id='x')", generate_from([1, 2], eos_id="x"), ValueError, ["eos_id", "'x'"]),
        ("generate(model, 'a str prompt')", generate_from("hello"), TypeError, ["str", "encode the text"]),
        ("generate(model, [1.7, 2.2]) (float ids)", generate_from([1.7, 2.2]), TypeError, ["whole numbers", "1.7"]),
        ("GPTConfig(context_length=10**12)", huge_config, ValueError, ["too big", "GB", "context_length"]),
        ("load_checkpoint: no 'model' entry", saved_checkpoint(lambda c: c.pop("model")), CheckpointError,
         ["c.pt", "'model'"]),
        ("load_checkpoint(restore_rng=True): no 'rng'", saved_checkpoint(lambda c: c.pop("rng"), restore_rng=True),
         CheckpointError, ["c.pt", "'rng'"]),
        ("load_checkpoint: the config is a list", saved_checkpoint(lambda c: c.update(config=[1, 2])),
         CheckpointError, ["'config' is a list"]),
        ("load_model: a config that does not fit the weights",
         saved_checkpoint(lambda c: c["config"].update(emb_dim=32), build=True), CheckpointError,
         ["do not fit", "size mismatch"]),
        ("load_checkpoint: one flipped byte in a tensor", flipped_checkpoint, CheckpointError, ["corrupt", "sha256"]),
        ("load_checkpoint: a pickle that would run code", code_in_a_checkpoint, CheckpointError,
         ["not a gptlib checkpoint", "unsafe"]),
        ("tokenizer.json whose pattern is [a-z]+", tokenizer_file(r"[a-z]+"), ValueError,
         ["tokenizer.json", "not one gptlib writes", "GPT2_PATTERN"]),  # was: "Hello, World 123!" -> "elloorld"
        ("tokenizer.json whose pattern is (a|aa)+$|\\s", tokenizer_file(r"(a|aa)+$|\s"), ValueError,
         ["tokenizer.json", "not one gptlib writes"]),  # was: encode("a"*40+"b") ran for minutes
        ("tokenizer.json whose pattern backtracks", tokenizer_file(r"(?:a|aa)+$|\s|."), ValueError,
         ["tokenizer.json", "not one gptlib writes"]),
        ("encode(..., allowed_special={'<|eot|>'}) (unknown)", unknown_special, ValueError,
         ["'<|eot|>'", "'<|endoftext|>'"]),  # was: encoded as ordinary text
        ("a class label 'spam' (a str)", classification([("hi", 0), ("ho", "spam")]), ValueError,
         ["example 1", "'spam'"]),
        ("a class label 5 of 2 classes", classification([("hi", 5)]), ValueError,
         ["label 5", "num_classes"]),  # was: torch's "Target 5 is out of bounds" while training
        ("collate_classification([])", empty_collate, ValueError, ["empty batch"]),
        ("classification_loader(max_length='5')", classification([("hi", 0)], max_length="5"), ValueError,
         ["max_length", "'5'"]),
        ("an instruction file in Latin-1", instruction_file('[{"instruction": "Caf\u00e9", "output": "x"}]'
                                                            .encode("latin-1")), ValueError, ["not UTF-8", "line 1"]),
        ("a pretty-printed single JSON object", instruction_file(json.dumps({"instruction": "a", "output": "b"},
                                                                            indent=2).encode()),
         ValueError, ["one JSON object, not a list"]),  # was: "line 1 is not valid JSON"
        ("an instruction file '[' * 100000", instruction_file(deep), ValueError, ["nested too deeply"]),
        ("read_sms_spam on a Latin-1 file", sms_file_in_latin1, ValueError,
         ["not UTF-8", "iconv"]),  # was: £ and é silently became U+FFFD
        ("gpt2_weights_path('355M', expected_sha256='0'*64), offline", wrong_hash_for_a_verified_file,
         DownloadError, ["does not match its expected sha256", "left in place"]),  # was: both files deleted
        ("a full disk while saving", disk_full, WriteError, ["disk is full", "last good model.pt is intact"]),
        # ---- the KV cache (helper "model"): it belongs to the model it was made for
        ("KVCache('2')", lambda tmp_path: KVCache("2"), TypeError, ["GPTModel", "str"]),
        ("model(ids, kv_cache=a cache of another model)", cache_of_another_model, TypeError,
         ["kv_cache"]),  # was: a same-shape cache of another model silently used
        ("KVCache(model)['0']", cache_indexed_with("0"), TypeError, ["not subscriptable"]),  # was: int <= str
        ("KVCache(model)[0]", cache_indexed_with(0), TypeError, ["not subscriptable"]),
        ("a KV cache fed another batch size", cache_fed_another_batch, ValueError,
         ["batch of 1 rows", "has 2", "reset()"]),
        # ---- tokenizer files and GPT-2 downloads (issues 21, 23) ----
        ("tokenizer.json whose pattern starts with (?r)", reversed_tokenizer_file, ValueError,
         ["tokenizer.json", "not one gptlib writes"]),  # was: "Hello world, this is text." came back reversed
        ("tokenizer.json with a float merge id", tokenizer_file(merges=[[97, 97, 256.0]]), ValueError,
         ["tokenizer.json", "256.0", "int id"]),  # was: encode returned the float id 256.0
        ("tokenizer.json with float byte ids", tokenizer_file(byte_ids=[float(b) for b in range(256)]), ValueError,
         ["tokenizer.json", "byte_ids", "whole-number"]),  # was: encode returned float ids
        ("BPETokenizer.train(pattern=r'(?:a|aa)+$|\\s|(?s:.)')", train_with_pattern("", r"(?:a|aa)+$|\s|(?s:.)"),
         ValueError, ["not one gptlib writes", "GPT2_PATTERN"]),  # was: ran for minutes on "a"*40+"b"
        ("BPETokenizer.train(pattern='(?r)' + GPT2_PATTERN)", train_with_pattern("(?r)"), ValueError,
         ["not one gptlib writes"]),  # was: accepted, and every text came back reversed
        ("load_gpt2('355M'): a verified file that is not safetensors", gpt2_355m_not_safetensors, DownloadError,
         ["gpt2-355M.safetensors", "not a safetensors file"]),  # was: a SafetensorError traceback
        # ---- end of tokenizer files and GPT-2 downloads ----
    ]


@pytest.mark.parametrize("typed, act, kind, facts", _api_table(), ids=[row[0] for row in _api_table()])
def test_library(typed, act, kind, facts, tmp_path):
    with pytest.raises(kind) as info:
        act(tmp_path)
    message = str(info.value)
    assert "\n" not in message.strip(), message
    assert all(fact in message for fact in facts), (facts, message)


def test_a_temperature_too_small_to_divide_by_is_greedy():
    """Was inf/nan probabilities; the CLI's --temperature 1e-45 is checked in tests/test_cli.py."""
    from gptlib.generate import apply_temperature, next_token_probs

    logits = torch.tensor([[2.0, 1.0, -3.0, 0.5]])
    for t in (1e-45, 1e-30, 1e-8):
        scaled = apply_temperature(logits, t)
        assert not scaled.isnan().any() and scaled[0, 0] == 0 and (scaled[0, 1:] < -1e7).all()
        assert next_token_probs(logits, temperature=t).tolist() == [[1.0, 0.0, 0.0, 0.0]]


# =========================================================================== issue 23 (helper "harden")
# Each row below once gave a raw traceback, a misleading line, a hang, a silent result or lost a user's file.
def _pickle_start(path) -> int:
    """Where the pickle stream (``data.pkl``) of a torch checkpoint starts in the file."""
    import zipfile

    info = next(i for i in zipfile.ZipFile(path).infolist() if i.filename.endswith("data.pkl"))
    return info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)


def flipped_pickle_byte(workspace, tmp_path, monkeypatch):
    """One bit of the pickle stream flipped: torch.load raised KeyError: 19 (and IndexError, TypeError...)."""
    run = _copy_run(workspace, tmp_path)
    data = bytearray((run / "model.pt").read_bytes())
    data[_pickle_start(run / "model.pt") + 117] ^= 0x01
    (run / "model.pt").write_bytes(bytes(data))
    return {"run": run}


def empty_data(workspace, tmp_path, monkeypatch):
    (tmp_path / "empty.txt").write_text("")
    return {"data": tmp_path / "empty.txt"}


def users_tokenizer(workspace, tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tokenizer.json").write_text('{"my": "own tokenizer"}')
    return {"out": tmp_path / "mine"}


def figures_into_a_file(workspace, tmp_path, monkeypatch):
    """figures loaded (or trained, for minutes) day 5's model before it found --out unusable."""
    from gptlib.course import figures

    def no_model(*args, **kwargs):
        raise RuntimeError("day 5's model was loaded before --out was checked")

    monkeypatch.setattr(figures, "_model_drawers", no_model)
    return {}


CLI_TABLE_23 = [
    ("generate: a flipped bit in the checkpoint's pickle stream", GENERATE, flipped_pickle_byte,
     ["cannot read checkpoint model.pt", "damaged"]),
    ("train --resume: a flipped bit in the checkpoint's pickle stream", [*TRAIN, "--out", "{run}", "--resume"],
     flipped_pickle_byte, ["cannot read checkpoint model.pt", "damaged"]),
    ("train: an empty --data file", TRAIN, empty_data, ["empty.txt holds no text"]),  # was "use a larger val_fraction"
    pytest.param("train: --data /dev/null", [*TRAIN, "--data", "/dev/null"], None, ["/dev/null holds no text"],
                 marks=pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")),
    ("train: --seed 2**70", [*TRAIN, "--seed", str(2**70)], None, ["seed", str(2**70)]),
    ("generate: --seed 2**70", [*GENERATE, "--seed", str(2**70)], None, ["--seed", str(2**70)]),
    ("train: --out ''", [*TRAIN, "--out", ""], None, ["--out is empty"]),  # was: trained into the current folder
    ("generate: --checkpoint ''", [*GENERATE, "--checkpoint", ""], None, ["--checkpoint is empty"]),
    ("train: --out holding a tokenizer.json gptlib did not write", TRAIN, users_tokenizer,
     ["tokenizer.json exists", "nothing was overwritten"]),  # was: silently replaced
    ("generate: --max-new-tokens 10**9", [*GENERATE, "--max-new-tokens", str(10**9)], None,
     ["max_new_tokens", "100,000"]),  # was: ran for hours without a word
    ("train: --resume with another --emb-dim", [*TRAIN, "--out", "{run}", "--resume", "--emb-dim", "32"],
     run_to_resume, ["emb_dim: 16 in the checkpoint, 32 now"]),  # was: two whole recipe dicts
    ("figures: --out that is a file", ["figures", "--out", "{root}/afile"], figures_into_a_file,
     ["cannot write the figures", "afile"]),
]


@pytest.mark.parametrize("typed, argv, setup, facts", CLI_TABLE_23, ids=[
    row.values[0] if hasattr(row, "values") else row[0] for row in CLI_TABLE_23])
def test_command_line_issue_23(typed, argv, setup, facts, workspace, tmp_path, monkeypatch, capsys):
    from gptlib import __main__

    monkeypatch.setitem(globals(), "main", __main__.main)  # test_command_line's main, with figures (gptlib.__main__)
    monkeypatch.chdir(tmp_path)  # an --out '' that slipped through would land here, not in the checkout
    test_command_line(typed, argv, setup, facts, workspace, tmp_path, monkeypatch, capsys)
    assert "{'" not in capsys.readouterr().err
    assert not (tmp_path / "model.pt").exists()


def _sms(text):
    return classification([(text, 0), ("fine", 1)], max_length=20)


def instruction_record(record):
    def act(tmp_path):
        from gptlib.instruct import InstructionDataset
        from gptlib.tokenizer import BPETokenizer

        return InstructionDataset([record], BPETokenizer({}, special_tokens={"<|endoftext|>": 256}), 100)
    return act


def sample_from(logits):
    from gptlib.generate import sample_next

    return lambda tmp_path: sample_next(torch.tensor([logits]), temperature=1.0)


def nan_weights(c):
    c["model"]["tok_emb.weight"][0, 0] = float("nan")


def _api_table_23():
    from gptlib.data import train_val_split
    from gptlib.generate import generate

    inf, nan = float("inf"), float("nan")
    return [
        ("sample_next(logits all -inf)", sample_from([-inf, -inf, -inf]), ValueError, ["cannot sample", "-inf"]),
        ("sample_next(logits with NaN)", sample_from([0.5, nan, 1.0]), ValueError, ["cannot sample", "NaN"]),
        ("an SMS example holding <|endoftext|>", _sms("win <|endoftext|> now"), ValueError,
         ["example 0", "'<|endoftext|>'", "delete or replace"]),  # was: "pass allowed_special=", not an option here
        ("an instruction record holding <|endoftext|>", instruction_record({"instruction": "a", "output":
                                                                            "b<|endoftext|>"}), ValueError,
         ["record 0", "'<|endoftext|>'", "delete or replace"]),
        ("load_checkpoint: step -5, checksum recomputed", saved_checkpoint(lambda c: c.update(step=-5)),
         CheckpointError, ["c.pt", "negative step"]),  # was: loaded
        ("load_checkpoint: a NaN weight, checksum recomputed", saved_checkpoint(nan_weights), CheckpointError,
         ["c.pt", "NaN or infinite", "tok_emb.weight"]),  # was: loaded
        ("train_val_split('') (an empty text)", lambda tmp_path: train_val_split(""), ValueError,
         ["0 item(s)", "more text"]),  # was: "use a larger val_fraction"
        ("generate(model, ids, 10**9)", lambda tmp_path: generate(_tiny_model(), [1], 10**9), ValueError,
         ["max_new_tokens", "100,000"]),  # was: ran unbounded, silently
    ]


@pytest.mark.parametrize("typed, act, kind, facts", _api_table_23(), ids=[row[0] for row in _api_table_23()])
def test_library_issue_23(typed, act, kind, facts, tmp_path):
    test_library(typed, act, kind, facts, tmp_path)


# --------------------------------------------------------------------------- issue 23: now a correct result
def test_a_temperature_that_float32_rounds_to_zero_is_greedy(workspace, capsys):
    """--temperature 1e-50 / 5e-324 became 0 in float32: 0/0, then a raw multinomial traceback."""
    outputs = []
    for t in ("0", "1e-50", "5e-324"):
        assert main([*(a.format(run=workspace / "run") for a in GENERATE), "--temperature", t]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]


def test_numpy_integers_are_whole_numbers():
    """NumPy integers were refused as "not a whole number"; NumPy bools and floats still are."""
    import numpy as np

    from gptlib.checks import whole_number
    from gptlib.data import create_dataloader
    from gptlib.generate import generate
    from gptlib.train import TrainConfig

    assert whole_number("n", np.int64(3)) == 3 and type(whole_number("n", np.int32(3))) is int
    assert TrainConfig(max_steps=np.int64(5), warmup_steps=np.int32(1)).max_steps == 5
    assert len(create_dataloader(list(range(40)), batch_size=np.int64(2), max_length=np.int32(4))) == 4
    assert generate(_tiny_model(), list(np.array([1, 2])), np.int64(2)).tolist() == \
        generate(_tiny_model(), [1, 2], 2).tolist()
    for bad in (np.float64(3.0), 2.5, True, "3"):
        with pytest.raises(ValueError, match="whole number"):
            whole_number("n", bad)


@pytest.mark.parametrize("home, xdg", [("", ""), ("", "relative/cache"), ("relative-home", "")])
def test_the_cache_follows_the_xdg_rules(home, xdg, monkeypatch):
    """HOME="" wrote /.cache/gptlib; a relative XDG_CACHE_HOME wrote under the current folder."""
    import pwd

    from gptlib.files import user_cache_dir

    monkeypatch.setenv("HOME", home)
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    expected = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".cache", "gptlib", "x")
    assert str(user_cache_dir("x")) == expected and os.path.isabs(expected)
    monkeypatch.setenv("XDG_CACHE_HOME", "/abs/cache")
    assert str(user_cache_dir("x")) == "/abs/cache/gptlib/x"


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_a_resumed_checkpoint_keeps_its_mode(workspace, tmp_path):
    """A learner's chmod 600 model.pt became 0644 at the first save of a resumed run."""
    run = _copy_run(workspace, tmp_path)
    os.chmod(run / "model.pt", 0o600)
    inode = os.stat(run / "model.pt").st_ino
    assert main(["train", "--data", str(workspace / "data.txt"), "--out", str(run), "--resume", *SMALL]) == 0
    assert os.stat(run / "model.pt").st_ino != inode  # saved again (a new file, renamed into place)
    assert oct(os.stat(run / "model.pt").st_mode & 0o777) == "0o600"


@pytest.mark.skipif(os.name == "nt", reason="pids are probed on POSIX only")
def test_a_dead_writers_temporary_file_goes_when_the_checkpoint_is_loaded(workspace, tmp_path):
    """A .model.pt.tmp-<pid> of a killed writer stayed until the next save into that folder."""
    import subprocess
    import sys

    from gptlib.checkpoint import load_checkpoint

    run = _copy_run(workspace, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, alive = run / f".model.pt.tmp-{int(dead.stdout)}", run / f".model.pt.tmp-{os.getppid()}"
    stale.write_bytes(b"half a checkpoint")
    alive.write_bytes(b"a writer still at work")
    load_checkpoint(run / "model.pt")
    assert not stale.exists() and alive.exists()


def test_generate_says_when_it_uses_an_interrupted_run(workspace, tmp_path, capsys):
    """generate used the last checkpoint of a run that stopped half-way without a word."""
    run = _copy_run(workspace, tmp_path)
    _rewrite_checkpoint(run / "model.pt", lambda c: c["extra"].pop("val_bits_per_byte"))
    assert main([*(a.format(run=run) for a in GENERATE)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped at step 3 of 3, before the end" in err and "--resume" in err


def test_a_long_generation_shows_its_progress(capsys):
    """generate(max_new_tokens=...) ran silently however long it took; from 1,000 tokens on it shows a bar."""
    from gptlib.generate import PROGRESS_FROM, generate

    generate(_tiny_model(), [1], PROGRESS_FROM - 1)
    assert "generating" not in capsys.readouterr().err
    generate(_tiny_model(), [1], PROGRESS_FROM)
    assert "generating" in capsys.readouterr().err


def test_every_flipped_bit_of_a_pickle_stream_is_one_clear_line(workspace, tmp_path):
    """2 of 400 random flips gave KeyError: 19 and the like; here every 97th byte of the stream, two bits each."""
    from gptlib.checkpoint import load_checkpoint

    source = (workspace / "run" / "model.pt").read_bytes()
    start, path = _pickle_start(workspace / "run" / "model.pt"), tmp_path / "model.pt"
    for position in range(start, start + 12_000, 97):
        for bit in (0x01, 0x10):
            data = bytearray(source)
            data[position] ^= bit
            path.write_bytes(bytes(data))
            try:
                load_checkpoint(path)
            except CheckpointError as exc:
                assert "\n" not in str(exc)
