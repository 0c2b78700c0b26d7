"""Small data sets written in the real on-disk formats torchvision reads.

- MNIST / FashionMNIST: gzip-compressed idx files (``idx3-ubyte`` images with magic 2051,
  ``idx1-ubyte`` labels with magic 2049, big-endian headers) in ``<root>/<Name>/raw/``.
- CIFAR-10: the "python version" batches, protocol-2 pickles written as Python 2 wrote them (keys
  are Python 2 ``str`` objects, so ``pickle.load(f, encoding="bytes")`` gives ``b"data"`` and
  torchvision's ``encoding="latin1"`` gives ``"data"``), in ``<root>/cifar-10-batches-py/``.

The fixtures in conftest.py register the md5 sums of the generated files with torchvision.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

ENV_VARS = ("CNNCOURSE_DATA", "CNNCOURSE_DATA_MIRROR", "CNNCOURSE_PROFILE")
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_LABEL_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def tree_snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder`` with its size and md5, to prove a folder was left unchanged."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, md5(p))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- MNIST-like idx files --------------------------------------------------------------------


def idx_images(images: np.ndarray) -> bytes:
    """Images (N, H, W) uint8 as an idx3-ubyte file: magic 2051, then N, H, W, big-endian."""
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    """Labels (N,) uint8 as an idx1-ubyte file: magic 2049, then N, big-endian."""
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


@dataclass
class FakeMNIST:
    root: Path
    raw: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    md5s: dict[str, str]


def write_mnist_like(
    root: Path,
    name: str = "MNIST",
    n_train: int = 20,
    n_test: int = 10,
    seed: int = 0,
    compressed: bool = True,
) -> FakeMNIST:
    """Write a small MNIST-like data set under ``root/name/raw`` (gzip archives or raw files)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for stem, array in arrays.items():
        payload = idx_images(array) if array.ndim == 3 else idx_labels(array)
        if compressed:
            path = raw / f"{stem}.gz"
            path.write_bytes(gzip.compress(payload, mtime=0))
        else:
            path = raw / stem
            path.write_bytes(payload)
        md5s[path.name] = md5(path)
    return FakeMNIST(
        root,
        raw,
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"].astype(np.int64),
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
        md5s,
    )


# --- CIFAR-10 python batches -----------------------------------------------------------------


class Py2Str(bytes):
    """A Python 2 ``str``: pickled with (SHORT_)BINSTRING, as in the real CIFAR-10 files."""


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """The pure-Python pickler, taught to write Python 2 strings."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2str(self, obj: Py2Str) -> None:
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[Py2Str] = save_py2str


def py2_pickle(path: Path, obj: object) -> None:
    with path.open("wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


@dataclass
class FakeCIFAR:
    root: Path
    folder: Path
    batches: dict[str, tuple[np.ndarray, list[int]]]  # name -> (data (N, 3072) uint8, labels)
    md5s: dict[str, str]


def write_cifar(root: Path, per_batch: int = 8, n_test: int | None = 6, seed: int = 0) -> FakeCIFAR:
    """Write data_batch_1..5, batches.meta and (unless ``n_test`` is None) test_batch."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + (["test_batch"] if n_test else [])
    batches, md5s = {}, {}
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        array = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        py2_pickle(
            folder / name,
            {
                Py2Str(b"batch_label"): Py2Str(name.encode()),
                Py2Str(b"labels"): labels,
                Py2Str(b"data"): array,
                Py2Str(b"filenames"): [Py2Str(f"img_{k}.png".encode()) for k in range(n)],
            },
        )
        batches[name] = (array, labels)
        md5s[name] = md5(folder / name)
    py2_pickle(
        folder / "batches.meta",
        {
            Py2Str(b"num_cases_per_batch"): per_batch,
            Py2Str(b"label_names"): [Py2Str(s.encode()) for s in CIFAR_LABEL_NAMES],
            Py2Str(b"num_vis"): 3072,
        },
    )
    md5s["batches.meta"] = md5(folder / "batches.meta")
    return FakeCIFAR(root, folder, batches, md5s)
