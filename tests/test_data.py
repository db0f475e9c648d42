"""gptlib.data: sliding windows, seeded batches, train/validation split, clear errors."""
from __future__ import annotations

import pytest
import torch

from gptlib.data import GPTDataset, create_dataloader, train_val_split


def test_targets_are_inputs_shifted_by_one():
    ds = GPTDataset(list(range(10)), max_length=4, stride=4)
    x, y = ds[0]
    assert x.tolist() == [0, 1, 2, 3] and y.tolist() == [1, 2, 3, 4]
    assert x.dtype == torch.long


def test_chinese_example_pairs():
    ids = [ord(c) for c in "你好世界啊"]
    x, y = GPTDataset(ids, max_length=4)[0]
    assert "".join(map(chr, x.tolist())) == "你好世界"
    assert "".join(map(chr, y.tolist())) == "好世界啊"


@pytest.mark.parametrize("n, length, stride", [(10, 4, 1), (10, 4, 4), (9, 4, 4), (5, 4, 2), (100, 7, 3)])
def test_window_count_and_every_window_valid(n, length, stride):
    ds = GPTDataset(torch.arange(n), max_length=length, stride=stride)
    # windows start at 0, stride, ...; the last needs length+1 tokens
    assert len(ds) == len(range(0, n - length, stride))
    for i in range(len(ds)):
        x, y = ds[i]
        assert len(x) == len(y) == length
        assert torch.equal(x + 1, y)  # arange: the target is always the next token
        assert int(x[0]) == i * stride


def test_stride_one_vs_stride_max_length():
    ids = list(range(20))
    assert len(GPTDataset(ids, 4, stride=1)) == 16
    assert len(GPTDataset(ids, 4, stride=4)) == 4  # disjoint windows: starts 0, 4, 8, 12
    assert len(GPTDataset(ids, 4)) == 4  # stride defaults to max_length


def test_text_shorter_than_one_window_is_a_clear_error():
    with pytest.raises(ValueError, match=r"too short.*5 tokens.*max_length=8 needs 9"):
        GPTDataset([1, 2, 3, 4, 5], max_length=8)
    GPTDataset(list(range(9)), max_length=8)  # exactly one window is fine


@pytest.mark.parametrize("kwargs", [{"max_length": 0}, {"max_length": 4, "stride": 0}, {"max_length": 2.5}])
def test_bad_window_arguments(kwargs):
    with pytest.raises(ValueError, match="whole number"):
        GPTDataset(list(range(20)), **kwargs)


def test_dataset_rejects_non_integer_and_nested_ids():
    with pytest.raises(TypeError, match="integer"):
        GPTDataset(torch.rand(20), 4)
    with pytest.raises(ValueError, match="flat"):
        GPTDataset(torch.zeros(2, 10, dtype=torch.long), 4)


def test_dataloader_shapes_and_seeded_order():
    ids = list(range(400))
    a = [x for x, _ in create_dataloader(ids, batch_size=4, max_length=8, seed=1)]
    b = [x for x, _ in create_dataloader(ids, batch_size=4, max_length=8, seed=1)]
    c = [x for x, _ in create_dataloader(ids, batch_size=4, max_length=8, seed=2)]
    assert a[0].shape == (4, 8)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


def test_dataloader_does_not_touch_global_rng():
    loader = create_dataloader(list(range(400)), batch_size=4, max_length=8)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    for _ in loader:
        pass
    iter(loader)
    assert torch.equal(before, torch.get_rng_state())


def test_new_epoch_new_order():
    loader = create_dataloader(list(range(400)), batch_size=4, max_length=8)
    first = next(iter(loader))[0]
    loader.sampler.set_epoch(1)
    assert not torch.equal(first, next(iter(loader))[0])


def test_two_process_shares_merge_into_the_single_process_batch(monkeypatch):
    import gptlib.data

    ids = list(range(1000))
    single = list(create_dataloader(ids, batch_size=6, max_length=8))
    shares = []
    for rank in range(2):  # what each torchrun process would get
        monkeypatch.setattr(gptlib.data, "_process_group", lambda rank=rank: (2, rank))
        shares.append(list(create_dataloader(ids, batch_size=3, max_length=8)))
    assert len(shares[0]) == len(shares[1]) == len(single)
    for (x, _), (a, _), (b, _) in zip(single, shares[0], shares[1]):
        assert not set(map(tuple, a.tolist())) & set(map(tuple, b.tolist()))
        assert sorted(map(tuple, torch.cat([a, b]).tolist())) == sorted(map(tuple, x.tolist()))


def test_not_enough_windows_for_a_batch():
    with pytest.raises(ValueError, match="not enough text for one batch.*batch_size=8"):
        create_dataloader(list(range(30)), batch_size=8, max_length=8)
    loader = create_dataloader(list(range(30)), batch_size=8, max_length=8, shuffle=False, drop_last=False)
    assert len(loader) == 1


def test_train_val_split_text_and_ids():
    train, val = train_val_split("abcdefghij", 0.2)
    assert (train, val) == ("abcdefgh", "ij")
    t, v = train_val_split(list(range(100)), 0.1)
    assert t == list(range(90)) and v == list(range(90, 100))


def test_empty_validation_split_is_a_clear_error():
    with pytest.raises(ValueError, match="validation split is empty"):
        train_val_split("abc", 0.1)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split("abcdef", 0.0)
    with pytest.raises(ValueError, match="training split is empty"):
        train_val_split("ab", 0.9)
