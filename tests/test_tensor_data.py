"""cnncourse.tensor_data: the uint8 cache (made once, rebuilt when stale or damaged) and the
seeded tensor loader (coverage, seeding, normalisation, devices, resuming mid-epoch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnncourse import tensor_data
from cnncourse.augment import RandomCrop
from cnncourse.tensor_data import ImageTensors, TensorLoader, load_tensors, split_off

pytestmark = pytest.mark.usefixtures("clean_env", "in_tmp", "no_network")


def cache_file(root: Path, name: str = "cifar10", tag: str = "train") -> Path:
    return root / tensor_data.CACHE_FOLDER / f"{name}-{tag}-v{tensor_data.CACHE_FORMAT}.pt"


def test_cifar_is_decoded_once_into_uint8_and_read_back_from_the_cache(
    tmp_path: Path, fake_cifar, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_cifar(tmp_path / "root", per_batch=8, n_test=None)
    first = load_tensors("cifar10", True, fake.root)
    assert first.images.dtype == torch.uint8 and first.images.shape == (32, 3, 32, 32)
    assert first.labels.dtype == torch.int64 and len(first) == 32
    expected = torch.from_numpy(fake.batches["data_batch_1"][0][:1]).view(1, 3, 32, 32)
    assert torch.equal(first.images[:1], expected)  # CIFAR's rows are C, H, W in that order
    assert "training batches 1-4" in first.split and len(first.classes) == 10
    held_out = load_tensors("cifar10", False, fake.root)
    assert len(held_out) == 8 and "evaluation batch 5" in held_out.split
    assert cache_file(fake.root).is_file()

    def refuse(*args: object) -> None:
        raise AssertionError("decoded again although the cache was valid")

    monkeypatch.setattr(tensor_data, "_decode", refuse)
    again = load_tensors("cifar10", True, fake.root)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)


def test_mnist_like_sets_are_cached_with_a_channel_axis(tmp_path: Path, fake_mnist) -> None:
    fake = fake_mnist(tmp_path / "root", "FashionMNIST", n_train=12, n_test=5)
    train = load_tensors("fashion_mnist", True, fake.root)
    test = load_tensors("fashion_mnist", False, fake.root)
    assert train.images.shape == (12, 1, 28, 28) and test.images.shape == (5, 1, 28, 28)
    assert torch.equal(train.images[:, 0], torch.from_numpy(fake.train_images))
    assert "official test set" in test.split


@pytest.mark.parametrize("damage", ["garbage", "other sources", "other format", "flipped pixel"])
def test_a_stale_or_damaged_cache_is_rebuilt_with_a_one_line_notice(
    tmp_path: Path, fake_cifar, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    fake = fake_cifar(tmp_path / "root", n_test=None)
    good = load_tensors("cifar10", True, fake.root)
    path = cache_file(fake.root)
    capsys.readouterr()
    if damage == "garbage":
        path.write_bytes(b"\x00not a torch file" * 10)
    else:
        payload = torch.load(path, weights_only=True)
        if damage == "other sources":
            payload["sources"]["data_batch_1"] = "0" * 32
        elif damage == "other format":
            payload["format"] = tensor_data.CACHE_FORMAT - 1
        else:
            payload["images"][0, 0, 0, 0] ^= 1
        torch.save(payload, path)
    rebuilt = load_tensors("cifar10", True, fake.root)
    assert torch.equal(rebuilt.images, good.images)
    notice = capsys.readouterr().err.strip()
    assert notice.count("\n") == 0 and notice.startswith("NOTE: the tensor cache")
    assert notice.endswith(("rebuilt from the original files.", "rebuilt."))
    assert load_tensors("cifar10", True, fake.root).images.equal(good.images)
    assert capsys.readouterr().err == ""  # the rebuilt cache is valid


def test_load_tensors_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="name is 'cifar100', but it must be one of mnist"):
        load_tensors("cifar100")  # type: ignore[arg-type]


def toy(n: int = 10, channels: int = 3) -> ImageTensors:
    images = torch.arange(n * channels * 4, dtype=torch.int64).remainder(256).to(torch.uint8)
    return ImageTensors(images.view(n, channels, 2, 2), torch.arange(n), ("a",) * 10, "toy")


def served_labels(loader: TensorLoader) -> list[list[int]]:
    return [labels.tolist() for _, labels in loader]


@pytest.mark.parametrize("drop_last", [False, True])
def test_every_image_is_served_exactly_once_per_epoch(drop_last: bool) -> None:
    loader = TensorLoader(toy(10), 4, drop_last=drop_last, seed=3)
    assert len(loader) == (2 if drop_last else 3)
    for _ in range(3):
        batches = served_labels(loader)
        assert [len(b) for b in batches] == ([4, 4] if drop_last else [4, 4, 2])
        flat = [label for batch in batches for label in batch]
        assert len(flat) == len(set(flat))
        if not drop_last:
            assert sorted(flat) == list(range(10))
    assert loader.epoch == 3


def test_order_follows_the_seed_and_changes_between_epochs() -> None:
    first, same, other = (TensorLoader(toy(50), 50, seed=s) for s in (1, 1, 2))
    epochs = [served_labels(first) for _ in range(2)]
    assert epochs == [served_labels(same) for _ in range(2)]
    assert epochs[0] != epochs[1]
    assert served_labels(other) != epochs[0]
    assert served_labels(TensorLoader(toy(50), 50, shuffle=False)) == [list(range(50))]


def test_batches_are_scaled_normalised_and_laid_out_as_asked() -> None:
    data = toy(4)
    loader = TensorLoader(
        data, 4, shuffle=False, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0), channels_last=True
    )
    images, labels = next(iter(loader))
    expected = (data.images.float() / 255 - torch.tensor([0.5, 0.25, 0.0]).view(1, 3, 1, 1)) / (
        torch.tensor([0.5, 0.25, 1.0]).view(1, 3, 1, 1)
    )
    torch.testing.assert_close(images, expected)
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(labels, torch.arange(4))
    assert torch.equal(data.images, toy(4).images)  # the stored images are untouched


def test_resuming_from_a_state_dict_continues_mid_epoch_exactly() -> None:
    def make() -> TensorLoader:
        return TensorLoader(toy(23), 5, seed=7, augment=[RandomCrop(1)])

    reference = make()
    uninterrupted = [[(x.clone(), y.clone()) for x, y in reference] for _ in range(2)]
    interrupted = make()
    next(iter(interrupted))  # epoch 0 ...
    batches = iter(interrupted)  # ... is cut short; epoch 0 again from its first unserved batch
    assert interrupted.state_dict() == {"epoch": 0, "batch": 1, "seed": 7}
    next(batches)
    next(batches)
    state = interrupted.state_dict()
    assert state == {"epoch": 0, "batch": 3, "seed": 7}
    resumed = make()
    resumed.load_state_dict(state)
    rest = list(resumed) + list(resumed)
    expected = uninterrupted[0][3:] + uninterrupted[1]
    assert len(rest) == len(expected)
    for (x, y), (ex, ey) in zip(rest, expected, strict=True):
        assert torch.equal(x, ex) and torch.equal(y, ey)


def test_a_state_from_another_loader_is_refused_in_one_sentence() -> None:
    loader = TensorLoader(toy(10), 5, seed=1)
    with pytest.raises(ValueError, match="has seed 2, but this loader has seed 1"):
        loader.load_state_dict({"epoch": 0, "batch": 0, "seed": 2})
    with pytest.raises(ValueError, match="at batch 9, but an epoch has only 2 batches"):
        loader.load_state_dict({"epoch": 0, "batch": 9, "seed": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size is 0, but it must be a positive integer"),
        ({"batch_size": 2, "seed": -1}, "seed is -1, but it must be a non-negative integer"),
        ({"batch_size": 2, "mean": (0.5,) * 3}, "mean and std must be given together"),
        (
            {"batch_size": 2, "mean": (0.5,), "std": (0.5,)},
            "have 1 and 1 values, but the images have 3",
        ),
        ({"batch_size": 20, "drop_last": True}, "more than the 10 images"),
    ],
)
def test_bad_loader_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TensorLoader(toy(10), **kwargs)


def test_split_off_is_disjoint_complete_and_seeded() -> None:
    data = toy(30)
    rest, part = split_off(data, 8, seed=4)
    assert len(part) == 8 and len(rest) == 22
    assert sorted(rest.labels.tolist() + part.labels.tolist()) == list(range(30))
    assert torch.equal(split_off(data, 8, seed=4)[1].labels, part.labels)
    assert not torch.equal(split_off(data, 8, seed=5)[1].labels, part.labels)
    assert "validation part (8 images)" in part.split
    with pytest.raises(ValueError, match="n is 30, but it must be an integer between 1 and 29"):
        split_off(data, 30)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_batches_are_made_on_the_gpu() -> None:
    loader = TensorLoader(toy(10), 4, device="cuda", augment=[RandomCrop(1)])
    cpu = TensorLoader(toy(10), 4, device="cpu", augment=[RandomCrop(1)])
    for (x, y), (cx, cy) in zip(loader, cpu, strict=True):
        assert x.is_cuda and y.is_cuda
        assert torch.equal(x.cpu(), cx) and torch.equal(y.cpu(), cy)  # the same draws
