"""gptlib.recipes: the one pretraining pipeline (day 5, the course's recipes, the CLI), exact resume,
refusal of changed settings, and the course checkpoint that is rebuilt when missing or stale."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import gptlib.recipes as recipes
from gptlib.checkpoint import CheckpointError, load_checkpoint
from gptlib.recipes import Recipe, load_trained, pretrain

TEXT = recipes.tiny_shakespeare()[:60_000]
QUICK = recipes.DAY5.with_settings(vocab_size=300, context_length=16, emb_dim=16, n_heads=2, n_layers=1,
                                   batch_size=8, max_steps=6, warmup_steps=1, eval_every=3, eval_batches=1)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-exact on CPU needs the same reduction order every time
    yield
    torch.set_num_threads(threads)


def test_pretrain_writes_a_run_folder_and_scores_the_whole_validation_split(tmp_path):
    lines = []
    run = pretrain(TEXT, QUICK, tmp_path / "run", "cpu", progress=False, log=lines.append)
    assert run.tokenizer.n_vocab == 300 and run.model.cfg.emb_dim == 16 and not run.model.training
    assert "training tokens" in lines[0] and "1 process(es)" in lines[0]
    model, tokenizer, ckpt = load_trained(tmp_path / "run", "cpu")
    assert ckpt["step"] == 6 and ckpt["history"]["eval_step"] == [0, 3, 6]
    assert ckpt["extra"]["recipe"] == QUICK.to_dict()
    assert ckpt["extra"]["val_loss"] == pytest.approx(run.val_loss) and 0 < run.val_bits_per_byte < 8
    assert tokenizer.encode("To be") == run.tokenizer.encode("To be")


def test_pretrain_is_deterministic(tmp_path, one_thread):
    a = pretrain(TEXT, QUICK, tmp_path / "a", "cpu", progress=False)
    b = pretrain(TEXT, QUICK, tmp_path / "b", "cpu", progress=False)
    assert a.history["train_loss"] == b.history["train_loss"] and a.val_loss == b.val_loss
    assert (tmp_path / "a/tokenizer.json").read_bytes() == (tmp_path / "b/tokenizer.json").read_bytes()


def quick_modern() -> Recipe:
    """The bonus day's recipe (RoPE, QK-norm, Muon: its optimizer state is Muon's) at QUICK's size."""
    from gptlib.modern import MODERN

    return MODERN.with_settings(**{name: QUICK.setting(name) for name in (
        "vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "batch_size", "max_steps", "warmup_steps",
        "eval_every", "eval_batches")})


@pytest.mark.parametrize("recipe", [QUICK, quick_modern()], ids=["day5", "modern"])
def test_interrupted_run_resumes_exactly(recipe, tmp_path, one_thread):
    straight = pretrain(TEXT, recipe, tmp_path / "straight", "cpu", progress=False)

    class Interrupt(Exception):
        pass

    def interrupt_at_3(step, model, history):
        if step == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        pretrain(TEXT, recipe, tmp_path / "run", "cpu", progress=False, on_eval=interrupt_at_3)
    resumed = pretrain(TEXT, recipe, tmp_path / "run", "cpu", progress=False, resume=True)
    assert resumed.history["train_loss"] == straight.history["train_loss"]
    assert resumed.val_loss == straight.val_loss
    model, _, _ = load_trained(tmp_path / "run", "cpu")  # the model the checkpoint names, with the resumed weights
    assert type(model) is type(straight.model)
    ids = torch.randint(0, 300, (2, 10))
    torch.testing.assert_close(model(ids), resumed.model(ids), rtol=0, atol=0)


@pytest.mark.parametrize("change, key_fact", [
    (dict(max_steps=12), "max_steps"), (dict(lr=1e-2), "lr"), (dict(seed=7), "seed"),
    (dict(batch_size=4), "batch_size"), (dict(tokenizer="gpt2"), "tokenizer"), (dict(emb_dim=32), "emb_dim")])
def test_resume_refuses_other_settings(tmp_path, change, key_fact):
    pretrain(TEXT, QUICK, tmp_path / "run", "cpu", progress=False)
    with pytest.raises(CheckpointError, match=key_fact):
        pretrain(TEXT, QUICK.with_settings(**change), tmp_path / "run", "cpu", progress=False, resume=True)


def test_resume_refuses_other_text_and_a_fresh_run_never_overwrites(tmp_path):
    pretrain(TEXT, QUICK, tmp_path / "run", "cpu", progress=False)
    with pytest.raises(CheckpointError, match="text"):
        pretrain(TEXT[:-1000], QUICK, tmp_path / "run", "cpu", progress=False, resume=True)
    before = (tmp_path / "run" / "model.pt").read_bytes()
    with pytest.raises(FileExistsError):
        pretrain(TEXT, QUICK, tmp_path / "run", "cpu", progress=False)
    assert (tmp_path / "run" / "model.pt").read_bytes() == before


def test_a_swapped_tokenizer_is_refused(tmp_path):
    pretrain(TEXT, QUICK, tmp_path / "a", "cpu", progress=False)
    pretrain(TEXT, QUICK.with_settings(vocab_size=290), tmp_path / "b", "cpu", progress=False)
    (tmp_path / "a" / "tokenizer.json").write_bytes((tmp_path / "b" / "tokenizer.json").read_bytes())
    with pytest.raises(CheckpointError, match="not the tokenizer this model was trained with"):
        load_trained(tmp_path / "a", "cpu")


# --------------------------------------------------------------------------- the course's checkpoint
@pytest.fixture
def quick_day5(monkeypatch):
    """Day 5's recipe shrunk to seconds: the same code path on 60k characters and a tiny model."""
    monkeypatch.setattr(recipes, "DAY5", QUICK)
    monkeypatch.setattr(recipes, "tiny_shakespeare", lambda: TEXT)
    return recipes


def test_day5_model_trains_when_missing_then_loads(quick_day5, tmp_path, monkeypatch, capsys):
    model, tokenizer = quick_day5.day5_model(device="cpu", checkpoint_dir=tmp_path)
    assert "training it with its recipe" in capsys.readouterr().out
    assert tokenizer.n_vocab == 300 and model.cfg.emb_dim == 16 and not model.training
    assert (tmp_path / "day5" / "model.pt").is_file() and (tmp_path / "day5" / "tokenizer.json").is_file()
    monkeypatch.setattr(quick_day5, "pretrain", lambda *a, **k: pytest.fail("should have loaded the checkpoint"))
    again, tokenizer2 = quick_day5.day5_model(device="cpu", checkpoint_dir=tmp_path)
    assert capsys.readouterr().out == ""
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert tokenizer2.encode("To be, or not") == tokenizer.encode("To be, or not")


@pytest.mark.parametrize("damage", ["stale recipe", "other tokenizer", "interrupted run"])
def test_day5_model_rebuilds_a_stale_or_damaged_checkpoint(damage, quick_day5, tmp_path, monkeypatch, capsys):
    quick_day5.day5_model(device="cpu", checkpoint_dir=tmp_path)
    folder = quick_day5.run_dir(quick_day5.DAY5, tmp_path)
    if damage == "stale recipe":
        monkeypatch.setattr(quick_day5, "DAY5", replace(QUICK, version=QUICK.version + 1))
    elif damage == "other tokenizer":
        path = folder / "tokenizer.json"
        path.write_text(path.read_text().replace('"version":1', '"version":1 '))
    else:  # a run killed half-way leaves a checkpoint of the same recipe: never a finished model
        for stale in folder.iterdir():
            stale.unlink()

        def stop_at_3(step, model, history):
            if step == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            pretrain(TEXT, QUICK, folder, "cpu", progress=False, on_eval=stop_at_3)
    capsys.readouterr()
    quick_day5.day5_model(device="cpu", checkpoint_dir=tmp_path)
    # an interrupted run of the same recipe is resumed (exactly: test_interrupted_run_resumes_exactly);
    # anything else is trained again from the start
    expected = "resuming it" if damage == "interrupted run" else "training it again"
    assert expected in capsys.readouterr().out
    saved = load_checkpoint(folder / "model.pt")
    assert saved["extra"]["recipe"] == quick_day5.DAY5.to_dict() and "val_bits_per_byte" in saved["extra"]
    assert saved["step"] == QUICK.train.max_steps


@pytest.mark.parametrize("whose", ["unreadable", "another recipe", "other text", "a stray tokenizer.json"])
def test_day5_model_never_replaces_a_run_that_is_not_its_own(whose, quick_day5, tmp_path, monkeypatch):
    """Issue 23: a user's folder under checkpoint_dir/day5 was deleted and retrained; a run of the
    right recipe on other text was used (its data_sha256 never compared)."""
    folder = quick_day5.run_dir(quick_day5.DAY5, tmp_path)
    if whose == "unreadable":
        folder.mkdir(parents=True)
        (folder / "model.pt").write_bytes(b"my own notes, not a checkpoint")
    elif whose == "a stray tokenizer.json":
        folder.mkdir(parents=True)
        (folder / "tokenizer.json").write_text('{"mine": true}')
    else:
        recipe, text = (replace(QUICK, name="mine"), TEXT) if whose == "another recipe" else (QUICK, TEXT[:-5000])
        pretrain(text, recipe, folder, "cpu", progress=False)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises((CheckpointError, FileExistsError), match="nothing was (changed|overwritten)"):
        quick_day5.day5_model(device="cpu", checkpoint_dir=tmp_path)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_gptlib_s_own_checkpoint_folder_is_rebuilt_whatever_it_holds(quick_day5, tmp_path, monkeypatch, capsys):
    """<repo>/checkpoints (or the cache) holds only the course's runs: a damaged one there is trained again."""
    monkeypatch.delenv("GPTLIB_CHECKPOINT_DIR", raising=False)
    monkeypatch.setattr(quick_day5, "default_checkpoint_dir", lambda: tmp_path)
    folder = quick_day5.run_dir(quick_day5.DAY5)
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"half a checkpoint of an older gptlib")
    quick_day5.day5_model(device="cpu")
    assert "is not a run of day5 on its text (unreadable" in capsys.readouterr().out
    assert load_checkpoint(folder / "model.pt")["step"] == QUICK.train.max_steps


def test_a_fresh_run_never_replaces_a_tokenizer_json_it_did_not_write(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tokenizer.json").write_text('{"mine": true}')
    with pytest.raises(FileExistsError, match="nothing was overwritten"):
        pretrain(TEXT, QUICK, tmp_path / "run", "cpu", progress=False)
    assert (tmp_path / "run" / "tokenizer.json").read_text() == '{"mine": true}'
    assert not (tmp_path / "run" / "model.pt").exists()


def test_checkpoint_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTLIB_CHECKPOINT_DIR", str(tmp_path / "elsewhere"))
    assert recipes.run_dir(recipes.DAY5) == tmp_path / "elsewhere" / "day5"
    monkeypatch.delenv("GPTLIB_CHECKPOINT_DIR")
    assert recipes.default_checkpoint_dir().name == "checkpoints"


def test_recipe_checks_its_settings():
    with pytest.raises(ValueError, match="tokenizer"):
        QUICK.with_settings(tokenizer="words")
    with pytest.raises(ValueError, match="divisible"):
        QUICK.with_settings(emb_dim=100, n_heads=3)
    with pytest.raises(ValueError, match="vocab_size"):
        QUICK.with_settings(vocab_size=100)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):  # dataclasses.replace's own
        QUICK.with_settings(colour="blue")
    assert Recipe.from_dict(QUICK.to_dict()) == QUICK and QUICK.setting("lr") == QUICK.train.lr
