"""Data loading from generated files in the real on-disk formats, and the split helpers.

Every test runs in a temporary working directory with the course's environment variables unset
and torchvision's network functions replaced by ones that fail at once (``no_network``).
"""

from __future__ import annotations

import gzip
import pickle
import re
import stat
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar
import torchvision.datasets.mnist as tv_mnist
from fake_data import MNIST_FILES, tree_snapshot, write_mnist_like
from torch.utils.data import Subset, TensorDataset
from torchvision import datasets, transforms

from cnncourse import DataNotFoundError
from cnncourse import data as course_data

pytestmark = pytest.mark.usefixtures("clean_env", "in_tmp", "no_network")


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message, message
    assert message.endswith("."), message
    assert re.search(r"[.!?]\s+[A-Z]", message) is None, message


def assert_clear_data_error(err: DataNotFoundError) -> str:
    """A DataNotFoundError is one sentence, also a FileNotFoundError, and renders as one line."""
    message = str(err)
    assert isinstance(err, FileNotFoundError)
    assert_one_sentence(message)
    rendered = err._render_traceback_()
    assert rendered == [f"DataNotFoundError: {message}"]
    assert "\n" not in rendered[0]
    assert "there, or set CNNCOURSE_DATA to a folder with " in message
    # Under about 250 characters with a learner's data root, such as /home/learner/data.
    typical = re.sub(r"\S*pytest-of-[^/]+/pytest-\d+/[^/]+", "/home/learner", message)
    assert len(typical) < 250, f"{len(typical)} characters: {typical}"
    assert "shared" not in message  # no maintainer's folder offered as an example
    return message


@pytest.fixture
def read_only():
    """Make a folder tree read-only (restored afterwards so tmp_path can be cleaned)."""
    changed: list[Path] = []

    def make(folder: Path) -> None:
        for path in [folder, *folder.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            changed.append(path)

    yield make
    for path in changed:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def cifar_images(fake, names: list[str]) -> np.ndarray:
    """The generated batches as torchvision's (N, H, W, C) array."""
    stacked = np.concatenate([fake.batches[name][0] for name in names])
    return stacked.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def cifar_labels(fake, names: list[str]) -> list[int]:
    return [label for name in names for label in fake.batches[name][1]]


TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


# --- the generated files ---------------------------------------------------------------------


def test_fake_cifar_batches_are_in_the_real_pickle_format(tmp_path: Path, fake_cifar) -> None:
    fake = fake_cifar(tmp_path)
    with (fake.folder / "data_batch_1").open("rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")  # how the CIFAR-10 page documents it
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert as_bytes[b"data"].dtype == np.uint8 and as_bytes[b"data"].shape == (8, 3072)
    with (fake.folder / "batches.meta").open("rb") as f:
        meta = pickle.load(f, encoding="latin1")  # how torchvision reads it
    assert meta["label_names"][0] == "airplane"


def test_fake_mnist_archives_are_gzipped_idx_files(tmp_path: Path, fake_mnist) -> None:
    fake = fake_mnist(tmp_path)
    assert sorted(p.name for p in fake.raw.iterdir()) == sorted(MNIST_FILES)
    images = gzip.decompress((fake.raw / "train-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((fake.raw / "train-labels-idx1-ubyte.gz").read_bytes())
    assert struct.unpack(">IIII", images[:16]) == (2051, 20, 28, 28)
    assert struct.unpack(">II", labels[:8]) == (2049, 20)
    assert len(images) == 16 + 20 * 28 * 28 and len(labels) == 8 + 20


# --- resolve_root ----------------------------------------------------------------------------


def test_resolve_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert course_data.resolve_root() == Path("data")
    monkeypatch.setenv("CNNCOURSE_DATA", "")
    assert course_data.resolve_root() == Path("data")
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "env"))
    assert course_data.resolve_root() == tmp_path / "env"
    assert course_data.resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert course_data.resolve_root(str(tmp_path / "arg")) == tmp_path / "arg"
    assert course_data.resolve_root("~/x") == Path.home() / "x"


@pytest.mark.parametrize("bad", [5, b"data", ["data"]])
def test_resolve_root_rejects_non_paths(bad: object) -> None:
    with pytest.raises(TypeError, match=r"root is .*, but it must be a path"):
        course_data.resolve_root(bad)  # type: ignore[arg-type]


def test_show_path_keeps_the_path_as_given(in_tmp: Path) -> None:
    assert course_data.show_path(in_tmp / "data" / "MNIST") == str(in_tmp / "data" / "MNIST")
    assert course_data.show_path(Path("data") / "MNIST") == str(Path("data") / "MNIST")


def test_root_source_names_where_the_root_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    assert course_data.root_source() == "the default ./data"
    assert course_data.root_source("somewhere") == "the root argument, DATA_ROOT in a chapter"
    monkeypatch.setenv("CNNCOURSE_DATA", "elsewhere")
    assert course_data.root_source() == "$CNNCOURSE_DATA"


def test_split_label_of_other_data_sets() -> None:
    tensors = TensorDataset(torch.zeros(2, 1))
    assert course_data.split_label(tensors) == "TensorDataset"
    assert course_data.split_label(Subset(Subset(tensors, [0, 1]), [1])) == "TensorDataset"


# --- MNIST and FashionMNIST ------------------------------------------------------------------


@pytest.mark.parametrize("download", [False, True])
def test_mnist_from_the_root_argument(tmp_path: Path, fake_mnist, download: bool) -> None:
    fake = fake_mnist(tmp_path / "root")
    train = course_data.mnist(tmp_path / "root", download=download)
    test = course_data.mnist(str(tmp_path / "root"), train=False, download=download)
    assert isinstance(train, datasets.MNIST)
    assert len(train) == 20 and len(test) == 10
    np.testing.assert_array_equal(train.data.numpy(), fake.train_images)
    np.testing.assert_array_equal(train.targets.numpy(), fake.train_labels)
    np.testing.assert_array_equal(test.data.numpy(), fake.test_images)
    np.testing.assert_array_equal(test.targets.numpy(), fake.test_labels)
    # torchvision extracted the verified archives next to themselves
    for name in MNIST_FILES:
        assert (fake.raw / name.removesuffix(".gz")).is_file()
    image, label = train[3]
    assert label == int(fake.train_labels[3])
    np.testing.assert_array_equal(np.asarray(image), fake.train_images[3])
    assert course_data.split_label(train) == "MNIST official training set"
    assert course_data.split_label(test) == "MNIST official test set"


def test_root_argument_beats_the_environment(
    tmp_path: Path, fake_mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_mnist(tmp_path / "root")
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "nothing-here"))
    train = course_data.mnist(tmp_path / "root", download=False)
    np.testing.assert_array_equal(train.data.numpy(), fake.train_images)


def test_mnist_from_the_environment_variable(
    tmp_path: Path, fake_mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_mnist(tmp_path / "env-root")
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "env-root"))
    test = course_data.mnist(train=False, download=False)
    np.testing.assert_array_equal(test.data.numpy(), fake.test_images)
    assert Path(test.root) == tmp_path / "env-root"


def test_mnist_from_the_default_data_folder(in_tmp: Path, fake_mnist) -> None:
    fake = fake_mnist(in_tmp / "data")
    train = course_data.mnist(download=False)
    assert Path(train.root) == Path("data")
    np.testing.assert_array_equal(train.data.numpy(), fake.train_images)


def test_fashion_mnist_loads_with_its_own_class(tmp_path: Path, fake_mnist) -> None:
    fake = fake_mnist(tmp_path, "FashionMNIST", seed=3)
    train = course_data.fashion_mnist(tmp_path, download=False)
    test = course_data.fashion_mnist(tmp_path, train=False)
    assert type(train) is datasets.FashionMNIST
    np.testing.assert_array_equal(train.data.numpy(), fake.train_images)
    np.testing.assert_array_equal(test.targets.numpy(), fake.test_labels)
    assert course_data.split_label(test) == "FashionMNIST official test set"


def test_already_extracted_files_load_without_archives(tmp_path: Path, no_network) -> None:

    fake = write_mnist_like(tmp_path, compressed=False)  # md5 lists left untouched
    train = course_data.mnist(tmp_path, download=False)
    np.testing.assert_array_equal(train.data.numpy(), fake.train_images)
    assert no_network == []


def test_mnist_is_copied_from_a_read_only_mirror(
    tmp_path: Path, fake_mnist, monkeypatch: pytest.MonkeyPatch, read_only
) -> None:
    mirror = tmp_path / "mirror"
    fake = fake_mnist(mirror)
    read_only(mirror)
    before = tree_snapshot(mirror)
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(mirror))
    root = tmp_path / "writable"

    train = course_data.mnist(root, download=False)
    test = course_data.mnist(root, train=False, download=False)

    np.testing.assert_array_equal(train.data.numpy(), fake.train_images)
    np.testing.assert_array_equal(test.targets.numpy(), fake.test_labels)
    assert tree_snapshot(mirror) == before  # nothing added, changed or extracted there
    copied = root / "MNIST" / "raw"
    for name in MNIST_FILES:
        assert (copied / name).read_bytes() == (fake.raw / name).read_bytes()
        assert (copied / name.removesuffix(".gz")).is_file()
    assert not list(root.rglob("*.partial"))


def test_mirror_does_not_overwrite_files_already_in_the_root(
    tmp_path: Path, fake_mnist, monkeypatch: pytest.MonkeyPatch
) -> None:

    write_mnist_like(tmp_path / "mirror", seed=1)
    mine = fake_mnist(tmp_path / "root", seed=2)
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    train = course_data.mnist(tmp_path / "root")
    np.testing.assert_array_equal(train.data.numpy(), mine.train_images)


def test_missing_mnist_with_download_off_is_one_clear_sentence(
    tmp_path: Path, no_network: list[str]
) -> None:
    with pytest.raises(DataNotFoundError) as info:
        course_data.mnist(tmp_path / "nowhere", download=False)
    message = assert_clear_data_error(info.value)
    assert message.startswith(f"MNIST is not in {tmp_path / 'nowhere' / 'MNIST' / 'raw'} and ")
    assert "downloading is switched off" in message
    assert no_network == []  # download=False never reaches for the network


def test_missing_data_names_the_default_folder_even_with_a_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty-mirror").mkdir()
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    with pytest.raises(DataNotFoundError) as info:
        course_data.fashion_mnist(download=False)
    message = assert_clear_data_error(info.value)
    assert message.startswith(f"FashionMNIST is not in {Path('data', 'FashionMNIST', 'raw')} and ")


def test_missing_data_names_the_environment_variable_as_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "env-root"))
    with pytest.raises(DataNotFoundError) as info:
        course_data.mnist(download=False)
    message = assert_clear_data_error(info.value)
    assert f"{tmp_path / 'env-root' / 'MNIST' / 'raw'} and" in message  # absolute, as given


def test_failed_download_gives_the_same_clear_error(tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(DataNotFoundError) as info:
        course_data.mnist(tmp_path / "here", download=True)
    message = assert_clear_data_error(info.value)
    assert "downloading it failed (<urlopen error network access is switched off" in message
    assert message.startswith(f"MNIST is not in {tmp_path / 'here' / 'MNIST' / 'raw'} and ")
    assert no_network and all("train-images-idx3-ubyte.gz" in url for url in no_network)


def test_a_failed_download_leaves_no_empty_folders_behind(
    tmp_path: Path, no_network: list[str]
) -> None:
    (tmp_path / "root").mkdir()
    for load in (course_data.mnist, course_data.cifar10):
        with pytest.raises(DataNotFoundError):
            load(tmp_path / "root")
    assert no_network, "the downloads were never attempted"
    assert list((tmp_path / "root").iterdir()) == []  # no empty MNIST/raw/, the root itself kept


def test_failed_download_function_gives_the_same_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def failing_download(url: str, *args: object, **kwargs: object) -> None:
        calls.append(url)
        raise URLError("no route to host")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", failing_download)
    with pytest.raises(DataNotFoundError) as info:
        course_data.fashion_mnist(tmp_path)
    message = assert_clear_data_error(info.value)
    assert calls, "the download was never attempted"
    assert message.startswith("FashionMNIST is not in ")
    assert "downloading it failed (<urlopen error no route to host>)" in message


# --- CIFAR-10 --------------------------------------------------------------------------------


def test_cifar10_with_test_batch_is_the_official_split(
    tmp_path: Path, fake_cifar, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setattr(course_data, "_HELD_OUT_NOTICE_SHOWN", False)
    fake = fake_cifar(tmp_path, n_test=6)
    train = course_data.cifar10(tmp_path, download=False)
    test = course_data.cifar10(tmp_path, train=False)
    assert type(train) is datasets.CIFAR10 and type(test) is datasets.CIFAR10
    assert len(train) == 40 and len(test) == 6
    np.testing.assert_array_equal(train.data, cifar_images(fake, TRAIN_BATCHES))
    assert train.targets == cifar_labels(fake, TRAIN_BATCHES)
    np.testing.assert_array_equal(test.data, cifar_images(fake, ["test_batch"]))
    assert test.targets == cifar_labels(fake, ["test_batch"])
    assert train.classes[:2] == ["airplane", "automobile"]
    assert course_data.split_label(train) == "CIFAR-10 official training set"
    assert course_data.split_label(test) == "CIFAR-10 official test set"
    assert capsys.readouterr().err == ""


def test_cifar10_without_test_batch_holds_out_data_batch_5(
    tmp_path: Path, fake_cifar, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setattr(course_data, "_HELD_OUT_NOTICE_SHOWN", False)
    fake = fake_cifar(tmp_path, n_test=None)
    train = course_data.cifar10(tmp_path)
    test = course_data.cifar10(tmp_path, train=False)
    again = course_data.cifar10(tmp_path, train=False)
    assert isinstance(train, course_data.HeldOutCIFAR10)
    assert isinstance(test, course_data.HeldOutCIFAR10)
    assert len(train) == 32 and len(test) == 8 and len(again) == 8
    np.testing.assert_array_equal(train.data, cifar_images(fake, TRAIN_BATCHES[:4]))
    assert train.targets == cifar_labels(fake, TRAIN_BATCHES[:4])
    # the evaluation images are exactly data_batch_5's pixels
    batch5 = fake.batches["data_batch_5"][0].reshape(8, 3, 32, 32)
    image, label = test[5]
    np.testing.assert_array_equal(np.asarray(image), batch5[5].transpose(1, 2, 0))
    assert label == fake.batches["data_batch_5"][1][5]
    np.testing.assert_array_equal(test.data.transpose(0, 3, 1, 2), batch5)
    err = capsys.readouterr().err
    assert err.count("NOTE: CIFAR-10 in") == 1
    assert "the course's offline split: training batches 1-4, evaluation on batch 5" in err
    assert "put CIFAR-10's test_batch there" in err
    assert course_data.split_label(test) == (
        "CIFAR-10 evaluation batch 5 (the course's offline split)"
    )
    assert course_data.split_label(train) == (
        "CIFAR-10 training batches 1-4 (the course's offline split)"
    )
    assert "evaluation batch 5" in course_data.split_label(Subset(test, [0, 1]))


def test_fill_from_mirror_copies_what_the_root_lacks_and_nothing_else(
    tmp_path: Path, fake_mnist, fake_cifar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(course_data, "_HELD_OUT_NOTICE_SHOWN", True)
    mirror, root = tmp_path / "mirror", tmp_path / "root"
    fake_mnist(mirror)
    fake_cifar(mirror, n_test=None)
    fake_mnist(root, "FashionMNIST")  # already in the root; not in the mirror
    monkeypatch.delenv("CNNCOURSE_DATA_MIRROR", raising=False)
    assert course_data.fill_from_mirror(root) == []  # no mirror: nothing to copy
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(mirror))
    before = tree_snapshot(mirror)
    assert course_data.fill_from_mirror(root) == ["MNIST", "CIFAR-10"]
    assert tree_snapshot(mirror) == before
    status = [line.split(maxsplit=1)[1] for line in course_data.data_status(root)]
    assert all(state.startswith("found") for state in status), status
    assert course_data.fill_from_mirror(root) == []  # a second call finds everything there


def test_cifar10_is_copied_from_a_read_only_mirror(
    tmp_path: Path, fake_cifar, monkeypatch: pytest.MonkeyPatch, read_only
) -> None:
    monkeypatch.setattr(course_data, "_HELD_OUT_NOTICE_SHOWN", True)
    mirror = tmp_path / "mirror"
    fake = fake_cifar(mirror, n_test=None)
    read_only(mirror)
    before = tree_snapshot(mirror)
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("CNNCOURSE_DATA", str(tmp_path / "writable"))
    test = course_data.cifar10(train=False)
    assert len(test) == 8
    assert tree_snapshot(mirror) == before
    copied = tmp_path / "writable" / "cifar-10-batches-py"
    assert sorted(p.name for p in copied.iterdir()) == sorted([*TRAIN_BATCHES, "batches.meta"])
    assert tree_snapshot(copied) == tree_snapshot(fake.folder)


def test_missing_cifar10_with_download_off_is_one_clear_sentence(
    tmp_path: Path, no_network: list[str]
) -> None:
    with pytest.raises(DataNotFoundError) as info:
        course_data.cifar10(tmp_path / "void", download=False)
    message = assert_clear_data_error(info.value)
    assert message.startswith(f"CIFAR-10 is not in {tmp_path / 'void' / 'cifar-10-batches-py'} ")
    assert "downloading is switched off" in message
    assert no_network == []


def test_failed_cifar10_download_gives_the_same_clear_error(
    tmp_path: Path, no_network: list[str]
) -> None:
    with pytest.raises(DataNotFoundError) as info:
        course_data.cifar10(tmp_path / "void")
    message = assert_clear_data_error(info.value)
    assert "downloading it failed" in message
    assert no_network == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]


def test_failed_cifar10_download_function_gives_the_same_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_download(*args: object, **kwargs: object) -> None:
        raise URLError("offline")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", failing_download)
    with pytest.raises(DataNotFoundError) as info:
        course_data.cifar10(tmp_path)
    assert "downloading it failed (<urlopen error offline>);" in assert_clear_data_error(info.value)


# --- data_status -----------------------------------------------------------------------------


def test_data_status_lines(
    tmp_path: Path, fake_mnist, fake_cifar, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mnist(tmp_path / "root")
    fake_cifar(tmp_path / "mirror", n_test=3)
    fake_mnist(tmp_path / "mirror", "FashionMNIST")
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    lines = course_data.data_status(tmp_path / "root")
    assert [line.split()[0] for line in lines] == ["MNIST", "FashionMNIST", "CIFAR-10"]
    assert lines[0].endswith("found")
    assert lines[1].endswith("will be copied from $CNNCOURSE_DATA_MIRROR on first use")
    assert "will be copied from $CNNCOURSE_DATA_MIRROR" in lines[2]
    assert str(tmp_path) not in "".join(lines)  # the mirror's own path stays out of outputs
    monkeypatch.delenv("CNNCOURSE_DATA_MIRROR")
    lines = course_data.data_status(tmp_path / "root")
    assert "missing" in lines[1] and "CNNCOURSE_DATA_MIRROR" in lines[1]


# --- subset ----------------------------------------------------------------------------------


@pytest.fixture
def mnist_train(tmp_path: Path, fake_mnist):
    fake = fake_mnist(tmp_path / "root")
    return course_data.mnist(tmp_path / "root", download=False), fake


def test_subset_is_deterministic(mnist_train) -> None:
    dataset, _ = mnist_train
    a = course_data.subset(dataset, 5)
    b = course_data.subset(dataset, 5, seed=0)
    c = course_data.subset(dataset, 5, seed=1)
    assert isinstance(a, Subset) and len(a) == 5
    assert a.indices == b.indices
    assert a.indices != c.indices
    assert len(set(a.indices)) == 5 and all(0 <= i < 20 for i in a.indices)


@pytest.mark.parametrize("n", [None, 20, 21, 10**6])
def test_subset_returns_the_whole_set_when_n_is_none_or_too_large(mnist_train, n) -> None:
    dataset, _ = mnist_train
    assert course_data.subset(dataset, n) is dataset


@pytest.mark.parametrize("bad", [0, -3, 2.5, 25.0, True, "5"])
def test_subset_rejects_bad_n(mnist_train, bad) -> None:
    dataset, _ = mnist_train
    with pytest.raises(ValueError, match=r"^n is .*, but it must be a positive integer or None\."):
        course_data.subset(dataset, bad)


# --- train_val_split -------------------------------------------------------------------------


@pytest.mark.parametrize(("val_size", "n_val"), [(5, 5), (1, 1), (19, 19), (0.25, 5), (0.01, 1)])
def test_train_val_split_sizes(mnist_train, val_size, n_val) -> None:
    dataset, _ = mnist_train
    train, val = course_data.train_val_split(dataset, val_size)
    assert len(val) == n_val and len(train) == 20 - n_val
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted([*train.indices, *val.indices]) == list(range(20))


def test_train_val_split_is_reproducible(mnist_train) -> None:
    dataset, _ = mnist_train
    a_train, a_val = course_data.train_val_split(dataset, 0.3, seed=4)
    b_train, b_val = course_data.train_val_split(dataset, 0.3, seed=4)
    c_train, _ = course_data.train_val_split(dataset, 0.3, seed=5)
    assert list(a_train.indices) == list(b_train.indices)
    assert list(a_val.indices) == list(b_val.indices)
    assert list(a_train.indices) != list(c_train.indices)


@pytest.mark.parametrize("bad", [0, 20, 25, -1, 0.0, 1.0, 1.5, -0.2, 0.99, True, "0.2", None])
def test_train_val_split_rejects_bad_sizes(mnist_train, bad) -> None:
    dataset, _ = mnist_train
    with pytest.raises(ValueError) as info:
        course_data.train_val_split(dataset, bad)
    message = str(info.value)
    assert message.startswith(f"val_size is {bad!r}, but it must be")
    assert "fraction in (0, 1)" in message and "between 1 and 19" in message
    assert "20 items" in message


# --- to_tensors ------------------------------------------------------------------------------


def test_to_tensors_mnist(mnist_train) -> None:
    dataset, fake = mnist_train
    dataset.transform = transforms.Normalize((0.5,), (0.5,))  # ignored by to_tensors
    images, labels = course_data.to_tensors(dataset)
    assert images.shape == (20, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (20,) and labels.dtype == torch.int64
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(images[:, 0].numpy(), fake.train_images / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(labels.numpy(), fake.train_labels)
    images[0] += 1  # a copy: the data set is unchanged
    assert int(dataset.data.max()) <= 255 and dataset.data.dtype == torch.uint8


def test_to_tensors_cifar10(tmp_path: Path, fake_cifar) -> None:
    fake = fake_cifar(tmp_path)
    images, labels = course_data.to_tensors(course_data.cifar10(tmp_path))
    assert images.shape == (40, 3, 32, 32) and images.dtype == torch.float32
    expected = np.concatenate([fake.batches[b][0] for b in TRAIN_BATCHES]).reshape(40, 3, 32, 32)
    np.testing.assert_allclose(images.numpy(), expected / 255.0, rtol=0, atol=1e-7)
    assert labels.tolist() == cifar_labels(fake, TRAIN_BATCHES)


def test_to_tensors_follows_nested_subsets(mnist_train) -> None:
    dataset, fake = mnist_train
    inner = Subset(dataset, [5, 3, 7, 1, 0, 9])
    outer = Subset(inner, [4, 0, 2])
    images, labels = course_data.to_tensors(outer)
    assert images.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(labels.numpy(), fake.train_labels[[0, 5, 7]])
    np.testing.assert_array_equal(
        (images[:, 0] * 255).round().to(torch.uint8).numpy(), fake.train_images[[0, 5, 7]]
    )
    # and agrees with reading the items one by one through torchvision
    dataset.transform = transforms.ToTensor()
    one_by_one = torch.stack([outer[k][0] for k in range(3)])
    assert torch.allclose(images, one_by_one)
    assert labels.tolist() == [outer[k][1] for k in range(3)]


def test_to_tensors_through_split_helpers(mnist_train) -> None:
    dataset, fake = mnist_train
    train, _ = course_data.train_val_split(dataset, 5, seed=2)
    small = course_data.subset(train, 4, seed=3)
    _, labels = course_data.to_tensors(small)
    base_indices = [train.indices[i] for i in small.indices]
    np.testing.assert_array_equal(labels.numpy(), fake.train_labels[base_indices])


def test_to_tensors_rejects_other_data_sets() -> None:
    other = TensorDataset(torch.zeros(3, 1, 2, 2), torch.zeros(3))
    with pytest.raises(TypeError) as info:
        course_data.to_tensors(Subset(other, [0]))
    message = str(info.value)
    assert "TensorDataset" in message
    assert "MNIST-like and CIFAR-10" in message and "DataLoader" in message


# --- channel_stats ---------------------------------------------------------------------------


def test_channel_stats_mnist_matches_numpy(mnist_train) -> None:
    dataset, fake = mnist_train
    mean, std = course_data.channel_stats(dataset)
    pixels = fake.train_images.astype(np.float64) / 255.0
    assert len(mean) == len(std) == 1
    assert mean[0] == pytest.approx(pixels.mean(), rel=1e-6)
    assert std[0] == pytest.approx(pixels.std(ddof=1), rel=1e-6)


def test_channel_stats_cifar10_matches_numpy(tmp_path: Path, fake_cifar, monkeypatch) -> None:
    monkeypatch.setattr(course_data, "_HELD_OUT_NOTICE_SHOWN", True)
    fake = fake_cifar(tmp_path, n_test=None)
    mean, std = course_data.channel_stats(course_data.cifar10(tmp_path))
    pixels = cifar_images(fake, TRAIN_BATCHES[:4]).astype(np.float64) / 255.0  # NHWC
    assert len(mean) == 3
    np.testing.assert_allclose(mean, pixels.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, pixels.reshape(-1, 3).std(axis=0, ddof=1), rtol=1e-6)


def test_channel_stats_of_a_subset(mnist_train) -> None:
    dataset, fake = mnist_train
    mean, _ = course_data.channel_stats(Subset(dataset, [2, 4]))
    assert mean[0] == pytest.approx(fake.train_images[[2, 4]].mean() / 255.0, rel=1e-6)


def test_channel_stats_refuses_an_evaluation_split(tmp_path: Path, fake_mnist) -> None:
    fake_mnist(tmp_path)
    test = course_data.mnist(tmp_path, train=False)
    for dataset in (test, Subset(test, [0, 1])):
        with pytest.raises(ValueError) as info:
            course_data.channel_stats(dataset)
        message = str(info.value)
        assert "MNIST official test set" in message
        assert "training split" in message


def test_channel_stats_refuses_the_held_out_cifar_batch(
    tmp_path: Path, fake_cifar, monkeypatch
) -> None:
    monkeypatch.setattr(course_data, "_HELD_OUT_NOTICE_SHOWN", True)
    fake_cifar(tmp_path, n_test=None)
    with pytest.raises(ValueError, match="evaluation batch 5.*training split"):
        course_data.channel_stats(course_data.cifar10(tmp_path, train=False))


def test_corrupt_held_out_cifar_batch_is_one_clear_sentence_and_kept(
    tmp_path: Path, fake_cifar
) -> None:
    fake_cifar(tmp_path, n_test=None)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"damaged")
    with pytest.raises(course_data.DataNotFoundError) as info:
        course_data.cifar10(tmp_path, download=False)
    message = str(info.value)
    assert_one_sentence(message)
    assert "md5" in message and "cifar-10-batches-py" in message
    assert batch.read_bytes() == b"damaged"  # nothing is deleted behind the learner's back
