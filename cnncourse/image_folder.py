"""Your own images: an ImageFolder written from a data set, read back robustly, split cleanly.

A folder of photos arrives as ``root/<class>/<file>``, torchvision's ``ImageFolder`` layout. Real
folders hold surprises: a file cut short in a download, a ``notes.txt`` or ``.DS_Store``, a
grayscale scan among colour photos, the same photo saved twice. This module

- writes such a folder from a tensor data set (:func:`export_image_folder`), as a learner's own
  photos would arrive;
- reads it back (:func:`load_image_folder`): each unreadable or non-image file gets one clear
  message and is skipped, every image is converted to RGB;
- splits it into training and validation without leakage (:func:`leakage_free_split`): stratified
  by class, and byte-identical files always land on the same side;
- decodes it once into uint8 tensors at one size (:func:`folder_to_tensors`), for fast training.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderProblems",
    "RobustImageFolder",
    "export_image_folder",
    "folder_to_tensors",
    "leakage_free_split",
    "load_image_folder",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def export_image_folder(
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    root: str | os.PathLike[str],
    *,
    image_format: str = "png",
    prefix: str = "img",
) -> list[Path]:
    """Write uint8 images (N, C, H, W) as ``root/<class>/<prefix>_<index>.<format>`` files.

    Returns the paths written, in the order of ``images``. ``image_format`` is ``"png"``
    (lossless) or ``"jpeg"`` (quality 95, as a camera would save).
    """
    if image_format not in ("png", "jpeg"):
        raise ValueError(f"image_format is {image_format!r}, but it must be 'png' or 'jpeg'.")
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images is a {images.dtype} tensor of shape {tuple(images.shape)}, but it must be "
            "uint8 of shape (N, 1 or 3, H, W)."
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}, but it must be ({len(images)},), one per image."
        )
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(classes):
        raise ValueError(f"labels must lie in [0, {len(classes)}), one index into classes.")
    root = Path(root)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
    suffix = "png" if image_format == "png" else "jpg"
    pixels = images.permute(0, 2, 3, 1).numpy()
    paths = []
    for index, (array, label) in enumerate(zip(pixels, labels.tolist(), strict=True)):
        path = root / classes[label] / f"{prefix}_{index:05d}.{suffix}"
        picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        if image_format == "jpeg":
            picture.save(path, quality=95)
        else:
            picture.save(path)
        paths.append(path)
    return paths


@dataclass
class FolderProblems:
    """What :class:`RobustImageFolder` skipped or changed while reading a folder."""

    skipped: list[str] = field(default_factory=list)
    """One sentence per file that was not used."""
    converted: dict[str, int] = field(default_factory=dict)
    """Images converted to RGB, counted by their original PIL mode ("L", "RGBA", ...)."""


def _inspect(path: str) -> str | None:
    """None if ``path`` is a readable image, else why it is not (a clause)."""
    extension = Path(path).suffix.lower()
    if extension not in IMAGE_EXTENSIONS:
        return f"not an image file (extension {extension or 'none'!r})"
    try:
        with Image.open(path) as picture:
            picture.verify()  # reads the whole file: a truncated or garbled one fails here
        with Image.open(path) as picture:
            picture.load()  # verify() misses some truncations that decoding finds
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = " ".join(str(error).split())[:80]
        return f"not a readable image ({type(error).__name__}: {reason})"
    return None


class RobustImageFolder(ImageFolder):
    """``torchvision.datasets.ImageFolder`` that skips bad files and makes every image RGB.

    Each file that is not an image, or not a readable one, is reported once, by one sentence
    printed while the folder is read, and left out; the rest load as RGB PIL images (a
    grayscale or RGBA file is converted, and counted in :attr:`problems`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Image.Image], Any] | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"root is {str(root)!r}, but there is no folder there.")
        self.problems = FolderProblems()
        self._quiet = quiet
        super().__init__(str(root), transform=transform, loader=self._rgb, is_valid_file=self._ok)
        for path, _ in self.samples:  # count conversions once, up front
            with Image.open(path) as picture:
                if picture.mode != "RGB":
                    self.problems.converted[picture.mode] = (
                        self.problems.converted.get(picture.mode, 0) + 1
                    )

    def _ok(self, path: str) -> bool:
        reason = _inspect(path)
        if reason is None:
            return True
        message = f"skipped {Path(path).parent.name}/{Path(path).name}: {reason}."
        self.problems.skipped.append(message)
        if not self._quiet:
            print(message)
        return False

    @staticmethod
    def _rgb(path: str) -> Image.Image:
        with Image.open(path) as picture:
            return picture.convert("RGB")


def load_image_folder(
    root: str | os.PathLike[str],
    transform: Callable[[Image.Image], Any] | None = None,
    *,
    quiet: bool = False,
) -> RobustImageFolder:
    """Read ``root/<class>/<file>`` robustly (see :class:`RobustImageFolder`)."""
    return RobustImageFolder(root, transform, quiet=quiet)


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leakage_free_split(
    samples: Sequence[tuple[str, int]], val_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Indices of a training and a validation split of an ImageFolder's ``samples``.

    Stratified: each class gives ``round(val_fraction * its size)`` files to validation, chosen
    at random with ``seed``. Byte-identical files (the same photo saved twice) are grouped and
    always land on the same side, so validation never scores an image the model trained on.
    Both lists are sorted.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction is {val_fraction!r}, but it must be in (0, 1).")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, (path, _) in enumerate(samples):
        groups[_digest(path)].append(index)
    by_class: dict[int, list[list[int]]] = defaultdict(list)
    for members in groups.values():
        by_class[samples[members[0]][1]].append(members)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(by_class):
        class_groups = by_class[label]
        want = round(val_fraction * sum(len(g) for g in class_groups))
        taken = 0
        for position in rng.permutation(len(class_groups)):
            members = class_groups[int(position)]
            if taken < want:
                val += members
                taken += len(members)
            else:
                train += members
    return sorted(train), sorted(val)


def folder_to_tensors(
    folder: ImageFolder, indices: Sequence[int] | None = None, size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a folder's images once into uint8 (N, 3, size, size) and int64 labels.

    ``size`` None keeps the images' own size (they must then all have the same one); otherwise
    each is resized to ``size`` x ``size`` with PIL's bilinear filter.
    """
    picked = range(len(folder)) if indices is None else indices
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    for index in picked:
        path, label = folder.samples[index]
        picture = folder.loader(path)
        if size is not None:
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(picture, dtype=np.uint8)
        if arrays and array.shape != arrays[0].shape:
            raise ValueError(
                f"{path} is {array.shape[1]}x{array.shape[0]}, unlike the first image "
                f"({arrays[0].shape[1]}x{arrays[0].shape[0]}): pass size= to resize them all."
            )
        arrays.append(array)
        labels.append(label)
    if not arrays:
        return torch.empty(0, 3, size or 0, size or 0, dtype=torch.uint8), torch.empty(
            0, dtype=torch.int64
        )
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels, dtype=torch.int64)
