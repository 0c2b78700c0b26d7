"""The course's data sets (MNIST, FashionMNIST, CIFAR-10) through torchvision's own classes.

Where the data lives, in order of precedence:

1. the ``root`` argument;
2. the ``CNNCOURSE_DATA`` environment variable;
3. ``./data``.

When the root lacks a data set and ``CNNCOURSE_DATA_MIRROR`` names a folder of pristine archives
in torchvision's layout (``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``, ``cifar-10-batches-py/``),
the files are copied from it first: the mirror may be read-only, and torchvision extracts the MNIST
archives next to themselves. Otherwise torchvision downloads, where there is a network.

Where the root holds CIFAR-10's five training batches but not its official ``test_batch``, the
course's offline split is used: training on ``data_batch_1`` to ``data_batch_4`` (40,000 images)
and evaluation on ``data_batch_5`` (10,000 images); :func:`split_label` names the split in every
output.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, random_split
from torchvision import datasets

from cnncourse.errors import DataNotFoundError, one_line

__all__ = [
    "DATA_ENV",
    "MIRROR_ENV",
    "channel_stats",
    "cifar10",
    "data_status",
    "fashion_mnist",
    "fill_from_mirror",
    "mnist",
    "resolve_root",
    "root_source",
    "show_path",
    "split_label",
    "subset",
    "to_tensors",
    "train_val_split",
]

DATA_ENV = "CNNCOURSE_DATA"
MIRROR_ENV = "CNNCOURSE_DATA_MIRROR"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
OFFLINE_SPLIT = "the course's offline split: training batches 1-4, evaluation on batch 5"
_MNIST_LIKE_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
_HELD_OUT_NOTICE_SHOWN = False

Transform = Callable[[Any], Any] | None


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``$CNNCOURSE_DATA``, else ``./data``."""
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root is {root!r}, but it must be a path (str or Path) or None.")
    chosen = root if root is not None else os.environ.get(DATA_ENV) or "data"
    return Path(chosen).expanduser()


def root_source(root: str | os.PathLike[str] | None = None) -> str:
    """Where :func:`resolve_root` took the data root from, in words."""
    if root is not None:
        return "the root argument, DATA_ROOT in a chapter"
    return f"${DATA_ENV}" if os.environ.get(DATA_ENV) else "the default ./data"


def _mirror() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def show_path(path: Path) -> str:
    """A path as messages show it: built from the data root as it was given, never rewritten.

    A learner who gave an absolute path sees that absolute path; one who gave ``data`` sees
    ``data/...``, so the path in a message is the one they can find.
    """
    return str(path)


def _reason(err: BaseException, limit: int = 64) -> str:
    """An underlying error's last line, shortened, for quoting inside a one-sentence message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = one_line(Exception(lines[-1])) if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def _tidy_on_failure(*folders: Path) -> Iterator[None]:
    """Remove those of ``folders`` that did not exist before and are still empty, on failure.

    torchvision creates a data set's folders before it tries to download into them; a failed
    attempt must not leave an empty ``MNIST/raw/`` that looks like a data set is half there.
    """
    new = [folder for folder in folders if not folder.exists()]
    try:
        yield
    except BaseException:
        for folder in sorted(new, key=lambda f: len(f.parts), reverse=True):
            with suppress(OSError):  # not empty, or already gone: leave it
                folder.rmdir()
        raise


def _copy_missing(source_dir: Path, target_dir: Path, names: tuple[str, ...]) -> None:
    """Copy each named file that exists in ``source_dir`` and is absent from ``target_dir``."""
    for name in names:
        src, dst = source_dir / name, target_dir / name
        if src.is_file() and not dst.exists():
            target_dir.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(dst.suffix + ".partial")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)


def _load_mnist_like(
    cls: type[datasets.MNIST],
    root: str | os.PathLike[str] | None,
    train: bool,
    transform: Transform,
    download: bool,
) -> datasets.MNIST:
    base = resolve_root(root)
    name = cls.__name__
    raw = base / name / "raw"
    mirror = _mirror()
    try:
        with _tidy_on_failure(base, base / name, raw):
            if mirror is not None:
                _copy_missing(mirror / name / "raw", raw, _MNIST_LIKE_FILES)
            archives_here = all((raw / f).is_file() for f in _MNIST_LIKE_FILES)
            # With the archives present, download=True only verifies and extracts them.
            found = download or archives_here
            return cls(str(base), train=train, transform=transform, download=found)
    except (RuntimeError, OSError) as err:
        raise DataNotFoundError(
            f"{name} is not in {show_path(raw)} and {_why(download, err)}; put its four .gz "
            f"archives there, or set {DATA_ENV} to a folder with {name}/raw/ in it."
        ) from err


def _why(download: bool, err: BaseException) -> str:
    """Why a data set that is not on disk could not be had either."""
    return f"downloading it failed ({_reason(err)})" if download else "downloading is switched off"


def mnist(
    root: str | os.PathLike[str] | None = None,
    train: bool = True,
    transform: Transform = None,
    download: bool = True,
) -> datasets.MNIST:
    """MNIST (60,000 training and 10,000 test digits, 28x28 grey) via ``torchvision.datasets.MNIST``."""
    return _load_mnist_like(datasets.MNIST, root, train, transform, download)


def fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    train: bool = True,
    transform: Transform = None,
    download: bool = True,
) -> datasets.FashionMNIST:
    """FashionMNIST (60,000 + 10,000 clothing images, 28x28 grey), same interface as :func:`mnist`."""
    return _load_mnist_like(datasets.FashionMNIST, root, train, transform, download)


class HeldOutCIFAR10(datasets.CIFAR10):
    """CIFAR-10 read from its five training batches alone: the course's offline split.

    ``train=True`` gives ``data_batch_1`` to ``data_batch_4`` (40,000 images); ``train=False``
    gives the held-out ``data_batch_5`` (10,000 images). torchvision's md5 checks still apply.
    """

    train_list: ClassVar[list[list[str]]] = [
        entry for entry in datasets.CIFAR10.train_list if entry[0] != "data_batch_5"
    ]
    test_list: ClassVar[list[list[str]]] = [
        entry for entry in datasets.CIFAR10.train_list if entry[0] == "data_batch_5"
    ]


def cifar10(
    root: str | os.PathLike[str] | None = None,
    train: bool = True,
    transform: Transform = None,
    download: bool = True,
) -> datasets.CIFAR10:
    """CIFAR-10 (32x32 colour images, 10 classes).

    With the official ``test_batch`` present (or downloadable), this is the official split:
    50,000 training and 10,000 test images. With only the five training batches on disk, it says
    so once and returns the course's offline split of :class:`HeldOutCIFAR10` instead. Either way,
    :func:`split_label` describes what was returned.
    """
    global _HELD_OUT_NOTICE_SHOWN
    base = resolve_root(root)
    folder = base / CIFAR_FOLDER
    mirror = _mirror()
    if mirror is not None:
        names = (*CIFAR_TRAIN_BATCHES, "test_batch", "batches.meta")
        _copy_missing(mirror / CIFAR_FOLDER, folder, names)
    has_train = (
        all((folder / b).is_file() for b in CIFAR_TRAIN_BATCHES)
        and (folder / "batches.meta").is_file()
    )
    if has_train and not (folder / "test_batch").is_file():
        if not _HELD_OUT_NOTICE_SHOWN:
            _HELD_OUT_NOTICE_SHOWN = True
            print(
                f"NOTE: CIFAR-10 in {show_path(folder)} is read as {OFFLINE_SPLIT}; put "
                "CIFAR-10's test_batch there to use the official split instead.",
                file=sys.stderr,
            )
        try:
            return HeldOutCIFAR10(str(base), train=train, transform=transform, download=False)
        except RuntimeError as err:  # torchvision's md5 check failed
            raise DataNotFoundError(
                f"CIFAR-10's batches in {show_path(folder)} failed torchvision's md5 check, so at "
                "least one is damaged; delete the folder so that they are copied or downloaded "
                "again."
            ) from err
    try:
        with _tidy_on_failure(base, folder):
            return datasets.CIFAR10(str(base), train=train, transform=transform, download=download)
    except (RuntimeError, OSError) as err:
        raise DataNotFoundError(
            f"CIFAR-10 is not in {show_path(folder)} and {_why(download, err)}; put its python "
            f"batches there, or set {DATA_ENV} to a folder with {CIFAR_FOLDER}/ in it."
        ) from err


def _base_dataset(dataset: Dataset[Any]) -> Dataset[Any]:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def split_label(dataset: Dataset[Any]) -> str:
    """Name the split a data set (or a subset of one) comes from, for plot titles and tables."""
    base = _base_dataset(dataset)
    name = type(base).__name__
    if isinstance(base, HeldOutCIFAR10):
        return (
            "CIFAR-10 training batches 1-4 (the course's offline split)"
            if base.train
            else "CIFAR-10 evaluation batch 5 (the course's offline split)"
        )
    if isinstance(base, datasets.CIFAR10):
        name = "CIFAR-10"
    train = getattr(base, "train", None)
    if train is None:
        return name
    return f"{name} {'official training set' if train else 'official test set'}"


def _offline_split_note(name: str, folder: Path) -> str:
    """For CIFAR-10 without its official test batch in ``folder``: which split is used instead."""
    if name != "CIFAR-10" or (folder / CIFAR_FOLDER / "test_batch").is_file():
        return ""
    return f" ({OFFLINE_SPLIT})"


_DATA_SETS = (
    ("MNIST", tuple(f"MNIST/raw/{f}" for f in _MNIST_LIKE_FILES)),
    ("FashionMNIST", tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_LIKE_FILES)),
    ("CIFAR-10", tuple(f"{CIFAR_FOLDER}/{b}" for b in CIFAR_TRAIN_BATCHES)),
)


def _where(name: str, files: tuple[str, ...], base: Path, mirror: Path | None) -> str:
    """``"root"``, ``"mirror"`` or ``"missing"``: where one data set's files are now."""
    extracted = name != "CIFAR-10" and all((base / f.removesuffix(".gz")).is_file() for f in files)
    if extracted or all((base / f).is_file() for f in files):
        return "root"
    if mirror is not None and all((mirror / f).is_file() for f in files):
        return "mirror"
    return "missing"


def data_status(root: str | os.PathLike[str] | None = None) -> list[str]:
    """One line per data set saying whether it is on disk, and if not how it will be found."""
    base = resolve_root(root)
    mirror = _mirror()
    lines = []
    for name, files in _DATA_SETS:
        where = _where(name, files, base, mirror)
        if where == "root":
            state = "found" + _offline_split_note(name, base)
        elif where == "mirror" and mirror is not None:
            state = f"will be copied from ${MIRROR_ENV} on first use" + _offline_split_note(
                name, mirror
            )
        else:
            state = (
                f"missing: downloaded on first use if there is a network, else set {DATA_ENV} or "
                f"{MIRROR_ENV} to a folder that has it"
            )
        lines.append(f"{name:<13}{state}")
    return lines


def fill_from_mirror(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Copy every data set that ``$CNNCOURSE_DATA_MIRROR`` holds and the root lacks into the root.

    What a chapter would otherwise copy when it first loads the data set, done at once (and with
    torchvision's checks), so that a setup report run afterwards reads "found" for each. Returns
    the names of the data sets copied; none without a mirror.
    """
    base, mirror = resolve_root(root), _mirror()
    loaders: dict[str, Callable[..., Any]] = {
        "MNIST": mnist,
        "FashionMNIST": fashion_mnist,
        "CIFAR-10": cifar10,
    }
    copied = []
    for name, files in _DATA_SETS:
        if _where(name, files, base, mirror) == "mirror":
            loaders[name](base, train=True)
            if name != "CIFAR-10":  # MNIST-like sets extract their test files separately
                loaders[name](base, train=False)
            copied.append(name)
    return copied


def subset(dataset: Dataset[Any], n: int | None, seed: int = 0) -> Dataset[Any]:
    """A fixed random ``n``-item subset (the whole data set when ``n`` is None or too large)."""
    size = len(dataset)  # type: ignore[arg-type]
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise ValueError(f"n is {n!r}, but it must be a positive integer or None.")
    if n is None or n >= size:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(size, generator=generator)[:n].tolist()
    return Subset(dataset, indices)


def train_val_split(
    dataset: Dataset[Any], val_size: float, seed: int = 0
) -> tuple[Subset[Any], Subset[Any]]:
    """Split a training set into a training part and a validation part, reproducibly.

    ``val_size`` is a count (int) or a fraction in (0, 1) (float).
    """
    size = len(dataset)  # type: ignore[arg-type]
    n_val = 0
    if isinstance(val_size, float) and 0.0 < val_size < 1.0:
        n_val = max(1, round(size * val_size))
    elif isinstance(val_size, int) and not isinstance(val_size, bool):
        n_val = val_size
    if not 0 < n_val < size:  # a fraction close to 1 can round to the whole data set
        raise ValueError(
            f"val_size is {val_size!r}, but it must be a fraction in (0, 1) or a count between "
            f"1 and {size - 1} for a data set of {size} items."
        )
    generator = torch.Generator().manual_seed(seed)
    train_part, val_part = random_split(dataset, [size - n_val, n_val], generator=generator)
    return train_part, val_part


def to_tensors(dataset: Dataset[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a whole MNIST-like or CIFAR-10 data set (or subset) into memory.

    Returns float32 images of shape (N, C, H, W) scaled to [0, 1] and int64 labels of shape (N,).
    Training from these tensors avoids decoding every image through PIL on every epoch, which
    dominates the time of small models on a CPU. Transforms attached to the data set are ignored.
    """
    indices: Any = slice(None)
    base = dataset
    while isinstance(base, Subset):
        idx = torch.as_tensor(base.indices)
        indices = idx if isinstance(indices, slice) else idx[indices]
        base = base.dataset
    if isinstance(base, datasets.MNIST):
        images = base.data[indices].unsqueeze(1)
        labels = torch.as_tensor(base.targets)[indices]
    elif isinstance(base, datasets.CIFAR10):
        images = torch.from_numpy(np.ascontiguousarray(base.data)).permute(0, 3, 1, 2)[indices]
        labels = torch.as_tensor(base.targets)[indices]
    else:
        raise TypeError(
            f"to_tensors got a {type(base).__name__}, but it reads only MNIST-like and CIFAR-10 "
            "data sets (or Subsets of them); iterate over other data sets with a DataLoader."
        )
    return images.float().div_(255.0).contiguous(), labels.long().clone()


def channel_stats(dataset: Dataset[Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of the pixel values in [0, 1].

    Pass the training split only: statistics taken from evaluation data leak it into training, so
    an evaluation split (``train=False``) is refused.
    """
    base = _base_dataset(dataset)
    if getattr(base, "train", True) is False:
        raise ValueError(
            f"channel_stats got {split_label(dataset)}, an evaluation split; compute "
            "normalisation statistics from the training split only and reuse them for evaluation."
        )
    images, _ = to_tensors(dataset)
    pixels = images.double().transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(pixels.mean(dim=1).tolist()), tuple(pixels.std(dim=1).tolist())
