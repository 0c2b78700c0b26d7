"""Batched augmentations on image tensors, on whatever device the batch is on.

A per-image pipeline (PIL, or torchvision's transforms on one image at a time) spends most of a
small network's training time in Python. These functions transform a whole batch (N, C, H, W) at
once with a handful of tensor operations. Each comes in two forms:

- a function taking explicit random draws (``crop(images, offsets, padding)``), which is what the
  tests compare with torchvision's per-image transforms;
- a callable class (``RandomCrop(padding)``) taking ``(images, context)``, as
  :class:`cnncourse.tensor_data.TensorLoader` calls it, which draws from the context's CPU
  generator, so a seed gives the same augmentations on every device.

Chapter 7 adds rotation, colour jitter and a wrapper that runs any per-image transform
(torchvision's learned policies) on a batch; the augmentations that also mix labels (mixup,
cutmix) are in :mod:`cnncourse.mixing`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from cnncourse.tensor_data import BatchContext

__all__ = [
    "AlternatingFlip",
    "ColorJitter",
    "Cutout",
    "PerImage",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "color_jitter",
    "crop",
    "cutout",
    "flip",
    "rotate",
]

PadMode = Literal["reflect", "zeros"]


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images has shape {shape}, but it must be a batch (N, C, H, W).")


def crop(
    images: torch.Tensor, offsets: torch.Tensor, padding: int, mode: PadMode = "reflect"
) -> torch.Tensor:
    """Pad every image by ``padding`` pixels and cut out an H x W window at its own offset.

    ``offsets`` is an integer tensor (N, 2) of (top, left) positions in ``[0, 2 * padding]``;
    ``padding`` - offset is the shift of the image content, so this is also a random translation.
    ``mode`` fills the border by reflection or with zeros (zeros: after normalisation, the mean
    pixel). Matches ``torchvision.transforms.v2.functional.crop`` of the padded image.
    """
    _check_images(images)
    if padding == 0:
        return images
    n, channels, height, width = images.shape
    if offsets.shape != (n, 2) or int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding:
        raise ValueError(
            f"offsets must be an (N, 2) tensor of integers in [0, {2 * padding}] for N = {n}."
        )
    padded = F.pad(images, (padding,) * 4, mode="reflect" if mode == "reflect" else "constant")
    offsets = offsets.to(images.device)
    rows = images.new_empty((n, channels, height, width + 2 * padding))
    for top in range(2 * padding + 1):  # one slice per distinct offset, not per image
        chosen = offsets[:, 0] == top
        rows[chosen] = padded[chosen, :, top : top + height, :]
    out = torch.empty_like(images)
    for left in range(2 * padding + 1):
        chosen = offsets[:, 1] == left
        out[chosen] = rows[chosen, :, :, left : left + width]
    return out


def flip(images: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images where the boolean tensor ``chosen`` (N,) is True."""
    _check_images(images)
    mask = chosen.to(images.device).view(-1, 1, 1, 1)
    return torch.where(mask, images.flip(-1), images)


def cutout(images: torch.Tensor, boxes: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Set a rectangle of each image to ``value``: ``boxes`` is (N, 4) of (top, left, h, w).

    Matches ``torchvision.transforms.v2.functional.erase`` image by image.
    """
    _check_images(images)
    height, width = images.shape[-2:]
    boxes = boxes.to(images.device)
    top, left, box_h, box_w = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    ys = torch.arange(height, device=images.device).view(1, -1, 1)
    xs = torch.arange(width, device=images.device).view(1, 1, -1)
    inside = (ys >= top) & (ys < top + box_h) & (xs >= left) & (xs < left + box_w)
    return images.masked_fill(inside.unsqueeze(1), value)


class RandomCrop:
    """Random crop after padding (a random translation by up to ``padding`` pixels)."""

    def __init__(self, padding: int, mode: PadMode = "reflect") -> None:
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding is {padding!r}, but it must be a non-negative integer.")
        if mode not in ("reflect", "zeros"):
            raise ValueError(f"mode is {mode!r}, but it must be 'reflect' or 'zeros'.")
        self.padding, self.mode = padding, mode

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        offsets = torch.randint(
            0, 2 * self.padding + 1, (len(images), 2), generator=context.generator
        )
        return crop(images, offsets, self.padding, self.mode)

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding}, mode={self.mode!r})"


class RandomFlip:
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is {p!r}, but it must be a probability in [0, 1].")
        self.p = p

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        return flip(images, torch.rand(len(images), generator=context.generator) < self.p)

    def __repr__(self) -> str:
        return f"RandomFlip(p={self.p})"


class AlternatingFlip:
    """Mirror each image on every other epoch, starting on a random one of the first two.

    Random flipping shows an image the same way in two epochs running about half the time;
    alternating guarantees that consecutive epochs see both orientations (Jordan, 2024,
    "94% on CIFAR-10 in 3.29 seconds on a single GPU"). ``n_images`` is the size of the data set
    the loader serves, ``seed`` fixes which images start flipped.
    """

    def __init__(self, n_images: int, seed: int = 0) -> None:
        if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
            raise ValueError(f"n_images is {n_images!r}, but it must be a positive integer.")
        generator = torch.Generator().manual_seed(seed)
        self.starts_flipped = torch.randint(0, 2, (n_images,), generator=generator).bool()

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        return flip(images, self.starts_flipped[context.indices] ^ bool(context.epoch % 2))

    def __repr__(self) -> str:
        return f"AlternatingFlip(n_images={len(self.starts_flipped)})"


class Cutout:
    """Zero a ``size`` x ``size`` square at a uniformly random centre, clipped at the border
    (DeVries and Taylor, 2017). After normalisation, zero is the mean pixel."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size is {size!r}, but it must be a positive integer.")
        self.size = size

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        n, height, width = len(images), images.shape[-2], images.shape[-1]
        centre_y = torch.randint(0, height, (n,), generator=context.generator)
        centre_x = torch.randint(0, width, (n,), generator=context.generator)
        top = (centre_y - self.size // 2).clamp(min=0)
        left = (centre_x - self.size // 2).clamp(min=0)
        bottom = (centre_y - self.size // 2 + self.size).clamp(max=height)
        right = (centre_x - self.size // 2 + self.size).clamp(max=width)
        return cutout(images, torch.stack([top, left, bottom - top, right - left], dim=1))

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"


def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image anticlockwise by its own angle (a tensor (N,) of degrees) about its
    centre, bilinearly; pixels from outside the image are 0 (after normalisation, the mean).

    One ``affine_grid`` / ``grid_sample`` for the whole batch; it agrees with
    ``torchvision.transforms.v2.functional.rotate(..., InterpolationMode.BILINEAR)`` image by
    image up to interpolation at the corners.
    """
    _check_images(images)
    n, _, height, width = images.shape
    if degrees.shape != (n,):
        raise ValueError(f"degrees has shape {tuple(degrees.shape)}, but it must be ({n},).")
    theta = torch.deg2rad(degrees.to(images.device, torch.float64))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # output pixel -> input pixel, in grid_sample's [-1, 1] coordinates (x right, y down)
    aspect = height / width
    zero = torch.zeros_like(cos)
    matrix = torch.stack(
        [
            torch.stack([cos, -sin * aspect, zero], 1),
            torch.stack([sin / aspect, cos, zero], 1),
        ],
        1,
    ).to(images.dtype)
    grid = F.affine_grid(matrix, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def color_jitter(
    images: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
) -> torch.Tensor:
    """Scale brightness, contrast and saturation of RGB images with pixels in [0, 1], in that
    order, each image by its own factors (tensors (N,)); 1 leaves an image unchanged.

    Matches ``adjust_brightness``, ``adjust_contrast`` and ``adjust_saturation`` of
    ``torchvision.transforms.v2.functional`` applied one after another (each clamps to [0, 1]).
    """
    _check_images(images)
    if images.shape[1] != 3:
        raise ValueError(f"images has {images.shape[1]} channels, but colour jitter needs RGB (3).")
    weights = torch.tensor(_GREY, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)

    def factor(values: torch.Tensor) -> torch.Tensor:
        return values.to(images.device, images.dtype).view(-1, 1, 1, 1)

    def grey(x: torch.Tensor) -> torch.Tensor:
        return (x * weights).sum(1, keepdim=True)

    out = (images * factor(brightness)).clamp(0, 1)
    mean_grey = grey(out).mean((2, 3), keepdim=True)
    out = (factor(contrast) * out + (1 - factor(contrast)) * mean_grey).clamp(0, 1)
    return (factor(saturation) * out + (1 - factor(saturation)) * grey(out)).clamp(0, 1)


def _stats(mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    if len(mean) != len(std):
        raise ValueError(
            f"mean and std have {len(mean)} and {len(std)} values; give one per channel."
        )
    shape = (1, len(mean), 1, 1)
    return torch.tensor(mean).view(shape), torch.tensor(std).view(shape)


class RandomRotation:
    """Rotate each image by an angle drawn uniformly from [-degrees, degrees]."""

    def __init__(self, degrees: float) -> None:
        if isinstance(degrees, bool) or not isinstance(degrees, int | float) or degrees < 0:
            raise ValueError(f"degrees is {degrees!r}, but it must be a non-negative number.")
        self.degrees = float(degrees)

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        angles = (torch.rand(len(images), generator=context.generator) * 2 - 1) * self.degrees
        return rotate(images, angles)

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={self.degrees:g})"


class ColorJitter:
    """Brightness, contrast and saturation factors drawn per image from [1 - s, 1 + s].

    The loader hands augmentations normalised batches, so ``mean`` and ``std`` (the loader's)
    undo the normalisation first and redo it after; without them the pixels must be in [0, 1].
    """

    def __init__(
        self,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        for name, value in (
            ("brightness", brightness),
            ("contrast", contrast),
            ("saturation", saturation),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} is {value!r}, but it must be a number in [0, 1].")
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together, or both left out.")
        self.strengths = (float(brightness), float(contrast), float(saturation))
        self.stats = _stats(mean, std) if mean is not None and std is not None else None

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        factors = [
            1 + (torch.rand(len(images), generator=context.generator) * 2 - 1) * strength
            for strength in self.strengths
        ]
        if self.stats is None:
            return color_jitter(images, *factors)
        mean, std = (t.to(images.device, images.dtype) for t in self.stats)
        return (color_jitter(images * std + mean, *factors) - mean) / std

    def __repr__(self) -> str:
        b, c, s = self.strengths
        return f"ColorJitter(brightness={b:g}, contrast={c:g}, saturation={s:g})"


class PerImage:
    """Run a per-image transform (any callable on one uint8 image (C, H, W), such as
    torchvision's ``v2.TrivialAugmentWide()``) on every image of a normalised batch.

    The batch is turned back into uint8 pixels with ``mean`` and ``std``, transformed one image
    at a time (torchvision draws the transform's randomness from torch's global generator, so
    the result depends on ``torch.manual_seed``, not on the batch's generator), and normalised
    again. This is the slow path the batched augmentations avoid; it exists for transforms
    that have no batched form here.
    """

    def __init__(
        self,
        transform: Callable[[torch.Tensor], torch.Tensor],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if not callable(transform):
            raise TypeError(f"transform is a {type(transform).__name__}, but it must be callable.")
        self.transform = transform
        self.stats = _stats(mean, std)

    def __call__(self, images: torch.Tensor, context: BatchContext) -> torch.Tensor:
        mean, std = (t.to(images.device, images.dtype) for t in self.stats)
        pixels = ((images * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
        out = torch.stack([self.transform(image) for image in pixels])
        return (out.to(images.dtype) / 255 - mean) / std

    def __repr__(self) -> str:
        return f"PerImage({self.transform!r})"
