"""The fast data path: each data set decoded once into uint8 tensors, cached, and served in batches.

Decoding CIFAR-10's pickles or MNIST's archives through PIL on every epoch costs more than training
a small network. Here a data set is decoded once (through torchvision's own classes, see
:mod:`cnncourse.data`) into a uint8 tensor of shape (N, C, H, W) and saved in the data root under
``cnncourse-cache/``. The cache file carries a format version and the md5 checksums of the source
files it was made from; a cache that is stale (other sources, other format) or damaged is rebuilt
with a one-line notice.

:class:`TensorLoader` then serves shuffled batches from those tensors on any device: every image
exactly once per epoch, reproducible from a seed, with batched augmentations (see
:mod:`cnncourse.augment`) applied on the batch's device, and resumable at any batch from its
:meth:`TensorLoader.state_dict`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cnncourse import data
from cnncourse.errors import one_line

__all__ = [
    "CACHE_FOLDER",
    "CACHE_FORMAT",
    "BatchContext",
    "ImageTensors",
    "TensorLoader",
    "load_tensors",
    "split_indices",
    "split_off",
]

CACHE_FOLDER = "cnncourse-cache"
CACHE_FORMAT = 1
"""Bumped whenever the cache's layout changes, so old caches are rebuilt rather than misread."""

DatasetName = Literal["mnist", "fashion_mnist", "cifar10"]
_LOADERS: dict[str, Callable[..., Any]] = {
    "mnist": data.mnist,
    "fashion_mnist": data.fashion_mnist,
    "cifar10": data.cifar10,
}


@dataclass(frozen=True)
class ImageTensors:
    """A whole split in memory: uint8 images (N, C, H, W), int64 labels (N,), and what they are."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    split: str
    """The split's name for tables and titles, from :func:`cnncourse.data.split_label`."""

    def __len__(self) -> int:
        return len(self.labels)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and standard deviation of the pixels, scaled to [0, 1]."""
        pixels = self.images.transpose(0, 1).reshape(self.images.shape[1], -1).double() / 255
        return tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).tolist())

    def subset(self, indices: torch.Tensor, split: str | None = None) -> ImageTensors:
        """The images at ``indices`` (a 1-D index tensor), with the same classes."""
        return ImageTensors(
            self.images[indices], self.labels[indices], self.classes, split or self.split
        )


def split_indices(size: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (rest, part), each sorted, of a seeded random split of ``size`` items with ``n``
    in ``part``: the split :func:`split_off` makes, for a data set read another way (PIL)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n < size:
        raise ValueError(
            f"n is {n!r}, but it must be an integer between 1 and {size - 1} for a split "
            f"of {size} items."
        )
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return order[n:].sort().values, order[:n].sort().values


def split_off(tensors: ImageTensors, n: int, seed: int = 0) -> tuple[ImageTensors, ImageTensors]:
    """Split ``tensors`` into (rest, part) with ``n`` randomly chosen items in ``part``.

    Use it to carve a validation split out of a training split, so that choices (an epoch, a
    time to an accuracy, a hyperparameter) never read the evaluation split.
    """
    rest, part = split_indices(len(tensors), n, seed)
    return (
        tensors.subset(rest, f"{tensors.split}, training part"),
        tensors.subset(part, f"{tensors.split}, validation part ({n:,} images)"),
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_files(dataset: Any) -> list[Path]:
    """The files torchvision read for ``dataset``."""
    if hasattr(dataset, "train_list"):  # CIFAR-10 and its held-out variant
        folder = Path(dataset.root) / dataset.base_folder
        entries = dataset.train_list if dataset.train else dataset.test_list
        return [folder / name for name, _ in entries] + [folder / dataset.meta["filename"]]
    raw = Path(dataset.raw_folder)
    prefix = "train" if dataset.train else "t10k"
    return sorted(raw.glob(f"{prefix}-*-ubyte.gz"))


def _decode(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset.data, np.ndarray):  # CIFAR-10: (N, H, W, C) uint8
        images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2)
    else:  # MNIST-like: (N, H, W) uint8
        images = dataset.data.unsqueeze(1)
    return images.contiguous(), torch.as_tensor(dataset.targets, dtype=torch.int64).clone()


def _read_cache(path: Path, sources: dict[str, str]) -> dict[str, Any] | None:
    """The cached payload, or None (with a notice) when it is damaged or stale."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        valid = isinstance(payload, dict) and isinstance(payload.get("images"), torch.Tensor)
    except Exception as err:  # noqa: BLE001  (torch raises many types for a damaged file)
        print(
            f"NOTE: the tensor cache {data.show_path(path)} could not be read "
            f"({one_line(err)[:80]}), so it is being rebuilt from the original files.",
            file=sys.stderr,
        )
        return None
    if not valid or payload.get("format") != CACHE_FORMAT or payload.get("sources") != sources:
        print(
            f"NOTE: the tensor cache {data.show_path(path)} was made from other files or by "
            "another version of cnncourse, so it is being rebuilt.",
            file=sys.stderr,
        )
        return None
    digest = hashlib.sha256(payload["images"].numpy().tobytes()).hexdigest()
    if digest != payload.get("images_sha256"):
        print(
            f"NOTE: the tensor cache {data.show_path(path)} is damaged (its checksum does not "
            "match), so it is being rebuilt from the original files.",
            file=sys.stderr,
        )
        return None
    return payload


def load_tensors(
    name: DatasetName,
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> ImageTensors:
    """A whole data set split as uint8 tensors, decoded once and cached in the data root.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        train: the training split, else the evaluation split (for CIFAR-10 without its official
            test batch: the held-out ``data_batch_5``, see :func:`cnncourse.data.cifar10`).
        root: the data root, as for :mod:`cnncourse.data`.
        download: let torchvision download missing files where there is a network.
    """
    if name not in _LOADERS:
        raise ValueError(f"name is {name!r}, but it must be one of {', '.join(_LOADERS)}.")
    dataset = _LOADERS[name](root, train=train, download=download)
    sources = {path.name: _md5(path) for path in _source_files(dataset)}
    split = data.split_label(dataset)
    tag = "train" if train else "eval"
    cache = data.resolve_root(root) / CACHE_FOLDER / f"{name}-{tag}-v{CACHE_FORMAT}.pt"
    payload = _read_cache(cache, sources)
    if payload is None:
        images, labels = _decode(dataset)
        payload = {
            "format": CACHE_FORMAT,
            "sources": sources,
            "images": images,
            "labels": labels,
            "classes": list(dataset.classes),
            "images_sha256": hashlib.sha256(images.numpy().tobytes()).hexdigest(),
        }
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name + ".partial")
        torch.save(payload, partial)
        os.replace(partial, cache)  # atomic: a crash never leaves a half-written cache
    return ImageTensors(payload["images"], payload["labels"], tuple(payload["classes"]), split)


@dataclass(frozen=True)
class BatchContext:
    """What a batched augmentation may use besides the images themselves."""

    generator: torch.Generator
    """A CPU generator, seeded from the loader's seed, the epoch and the batch: draw from it on
    the CPU and move the draws to the batch's device, so results agree across devices."""
    epoch: int
    """The epoch being served, counting from 0."""
    indices: torch.Tensor
    """The positions of the batch's images in the loader's data (on the CPU)."""


BatchAugmentation = Callable[[torch.Tensor, BatchContext], torch.Tensor]


def _derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


class TensorLoader:
    """Seeded, shuffled batches of in-memory images on a device, normalised and augmented.

    Each ``iter(loader)`` serves one epoch. The order of an epoch, and every random draw of the
    augmentations in it, follow from ``(seed, epoch, batch)`` alone, so a loader restored with
    :meth:`load_state_dict` continues exactly where the saved one stopped, even mid-epoch.

    Args:
        tensors: the images (uint8 or float in [0, 1]) and labels to serve.
        batch_size: images per batch.
        shuffle: a new random order every epoch (else the stored order).
        drop_last: drop the last, smaller batch of an epoch.
        seed: seeds the order and the augmentations.
        device: where batches are made; the whole data set is moved there once.
        mean, std: per-channel statistics to normalise with (from the training split only);
            ``None`` leaves pixels in [0, 1].
        augment: batched augmentations, applied in order to normalised float batches.
        dtype: the floating-point type of the batches.
        channels_last: serve batches in the channels-last memory format.
    """

    def __init__(
        self,
        tensors: ImageTensors,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augment: Sequence[BatchAugmentation] = (),
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size is {batch_size!r}, but it must be a positive integer.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed is {seed!r}, but it must be a non-negative integer.")
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together, or both left out.")
        if drop_last and batch_size > len(tensors):
            raise ValueError(
                f"batch_size is {batch_size}, more than the {len(tensors)} images, so with "
                "drop_last=True no batch would be served; use a smaller batch_size."
            )
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.device = torch.device(device)
        self.augment = tuple(augment)
        self.dtype = dtype
        self.channels_last = channels_last
        images = tensors.images.to(self.device)
        self._images = images
        self._scale = 255.0 if images.dtype == torch.uint8 else 1.0
        self._labels = tensors.labels.to(self.device)
        channels = images.shape[1]
        self._mean: torch.Tensor | None
        self._std: torch.Tensor | None
        if mean is not None and std is not None:
            if len(mean) != channels or len(std) != channels:
                raise ValueError(
                    f"mean and std have {len(mean)} and {len(std)} values, but the images have "
                    f"{channels} channels; give one value per channel."
                )
            shape = (1, channels, 1, 1)
            self._mean = torch.tensor(mean, device=self.device, dtype=dtype).view(shape)
            self._std = torch.tensor(std, device=self.device, dtype=dtype).view(shape)
        else:
            self._mean = self._std = None
        self.epoch = 0
        """The epoch the next ``iter(loader)`` serves (or is serving)."""
        self._next_batch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.tensors)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict[str, int]:
        """Where the loader stands: the epoch and the next batch within it."""
        return {"epoch": self.epoch, "batch": self._next_batch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state_dict`; the next ``iter`` resumes at its batch."""
        if state.get("seed") != self.seed:
            raise ValueError(
                f"the saved loader state has seed {state.get('seed')!r}, but this loader has "
                f"seed {self.seed}; build the loader with the seed it was saved with."
            )
        if not 0 <= int(state["batch"]) <= len(self):
            raise ValueError(
                f"the saved loader state is at batch {state['batch']}, but an epoch has only "
                f"{len(self)} batches; was it saved from a loader with another batch size?"
            )
        self.epoch, self._next_batch = int(state["epoch"]), int(state["batch"])

    def order(self, epoch: int) -> torch.Tensor:
        """The order in which epoch ``epoch`` serves the images (CPU indices)."""
        n = len(self.tensors)
        if not self.shuffle:
            return torch.arange(n)
        generator = torch.Generator().manual_seed(_derive_seed(self.seed, epoch))
        return torch.randperm(n, generator=generator)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Stored images as a float batch: scaled to [0, 1] and normalised (a new tensor)."""
        batch = images.to(self.dtype) / self._scale
        if self._mean is not None and self._std is not None:
            batch = batch.sub_(self._mean).div_(self._std)
        return batch

    def _layout(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def all_images(self) -> torch.Tensor:
        """Every image, prepared but not augmented, in the stored order (for evaluation)."""
        return self._layout(self.prepare(self._images))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, start = self.epoch, self._next_batch
        order = self.order(epoch)
        for batch in range(start, len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            on_device = index.to(self.device)
            images = self.prepare(self._images[on_device])
            if self.augment:
                generator = torch.Generator().manual_seed(_derive_seed(self.seed, epoch, batch, 1))
                context = BatchContext(generator, epoch, index)
                for augmentation in self.augment:
                    images = augmentation(images, context)
            self._next_batch = batch + 1
            yield self._layout(images), self._labels[on_device]
        self.epoch, self._next_batch = epoch + 1, 0
