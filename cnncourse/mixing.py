"""Augmentations that mix two images and their labels: mixup and cutmix, batched.

Mixup (Zhang et al., 2018) trains on ``lam * x_i + (1 - lam) * x_j`` with the label
``lam * y_i + (1 - lam) * y_j``; cutmix (Yun et al., 2019) pastes a box of image ``j`` into
image ``i`` and weights the labels by the areas. Both pair each image of a batch with another
image of the same batch (a permutation), so they need the labels as well as the images and work
on a whole batch rather than inside :class:`cnncourse.tensor_data.TensorLoader`'s per-batch
augmentations: :class:`MixedBatches` wraps a loader and serves (mixed images, class
probabilities), which :func:`cnncourse.training.fit` and ``nn.CrossEntropyLoss`` accept.

Each comes as a function taking explicit random draws (tested against torchvision's
``v2.MixUp`` / ``v2.CutMix`` arithmetic) and as part of the seeded :class:`MixedBatches`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["MixedBatches", "cutmix", "cutmix_boxes", "mixup", "soft_targets"]

MixMode = Literal["mixup", "cutmix"]


def soft_targets(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Class indices (N,) as one-hot class probabilities (N, classes), in float32, unless
    ``labels`` is already (N, classes) probabilities (returned unchanged)."""
    if labels.ndim == 2:
        if labels.shape[1] != classes:
            raise ValueError(
                f"labels has {labels.shape[1]} columns, but there are {classes} classes."
            )
        return labels
    return F.one_hot(labels.long(), classes).float()


def _check(images: torch.Tensor, targets: torch.Tensor, perm: torch.Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"images has shape {tuple(images.shape)}, but it must be (N, C, H, W).")
    n = len(images)
    if targets.shape[:1] != (n,) or targets.ndim != 2:
        raise ValueError(
            f"targets has shape {tuple(targets.shape)}, but it must be ({n}, classes)."
        )
    if perm.shape != (n,):
        raise ValueError(f"perm has shape {tuple(perm.shape)}, but it must be ({n},).")


def mixup(
    images: torch.Tensor, targets: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix image ``i`` with image ``perm[i]``: weight ``lam[i]`` (a tensor (N,)) on its own image
    and label (``targets``: class probabilities (N, C)), ``1 - lam[i]`` on its partner's."""
    _check(images, targets, perm)
    perm = perm.to(images.device)
    weight = lam.to(images.device, images.dtype)
    mixed = weight.view(-1, 1, 1, 1) * images + (1 - weight.view(-1, 1, 1, 1)) * images[perm]
    w = lam.to(targets.device, targets.dtype).view(-1, 1)
    return mixed, w * targets + (1 - w) * targets[perm.to(targets.device)]


def cutmix_boxes(
    lam: torch.Tensor, centres: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix's boxes and label weights, as Yun et al.'s reference code draws them.

    Image ``i`` gets a box of about ``1 - lam[i]`` of its area: sides ``int(H * sqrt(1 - lam))``
    and ``int(W * sqrt(1 - lam))`` centred on ``centres[i] = (row, column)``, the half sides
    (rounded down) taken on either side and the box clipped to the image. Returns the boxes
    (N, 4) as (top, left, height, width), int64, and the weight of each image's own label, one
    minus the fraction of the image the clipped box covers (float64).
    """
    if lam.ndim != 1 or centres.shape != (len(lam), 2):
        raise ValueError(
            f"lam has shape {tuple(lam.shape)} and centres {tuple(centres.shape)}, but they "
            "must be (N,) and (N, 2)."
        )
    cut = torch.sqrt(1 - lam.double().clamp(0, 1))
    half_h = (height * cut).floor().long() // 2
    half_w = (width * cut).floor().long() // 2
    rows, cols = centres[:, 0].long(), centres[:, 1].long()
    top, bottom = (rows - half_h).clamp(0, height), (rows + half_h).clamp(0, height)
    left, right = (cols - half_w).clamp(0, width), (cols + half_w).clamp(0, width)
    boxes = torch.stack([top, left, bottom - top, right - left], 1)
    weights = 1 - (boxes[:, 2] * boxes[:, 3]).double() / (height * width)
    return boxes, weights


def cutmix(
    images: torch.Tensor, targets: torch.Tensor, boxes: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste box ``boxes[i]`` (top, left, height, width) of image ``perm[i]`` into image ``i``
    and weight the labels by the areas (the box's share goes to the partner's label)."""
    _check(images, targets, perm)
    height, width = images.shape[-2:]
    boxes, perm = boxes.to(images.device), perm.to(images.device)
    top, left, box_h, box_w = (boxes[:, k].view(-1, 1, 1) for k in range(4))
    ys = torch.arange(height, device=images.device).view(1, -1, 1)
    xs = torch.arange(width, device=images.device).view(1, 1, -1)
    inside = (ys >= top) & (ys < top + box_h) & (xs >= left) & (xs < left + box_w)
    mixed = torch.where(inside.unsqueeze(1), images[perm], images)
    own = 1 - (boxes[:, 2] * boxes[:, 3]).to(targets.device, targets.dtype) / (height * width)
    own = own.view(-1, 1)
    return mixed, own * targets + (1 - own) * targets[perm.to(targets.device)]


class MixedBatches:
    """A loader's batches with mixup or cutmix applied, labels as class probabilities.

    Each batch draws one ``lam`` from Beta(alpha, alpha) for all its images (as the papers and
    torchvision do) and pairs the batch with a random permutation of itself; with probability
    ``1 - p`` a batch is served unmixed. The draws follow from ``seed``, the epoch and the batch,
    so a seed gives the same run on every device. ``state_dict`` and ``load_state_dict`` pass
    through to the wrapped loader, so :func:`cnncourse.training.fit` can checkpoint and resume.
    """

    def __init__(
        self,
        loader: Any,
        mode: MixMode,
        classes: int,
        *,
        alpha: float = 1.0,
        p: float = 1.0,
        seed: int = 0,
    ) -> None:
        if mode not in ("mixup", "cutmix"):
            raise ValueError(f"mode is {mode!r}, but it must be 'mixup' or 'cutmix'.")
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha > 0:
            raise ValueError(f"alpha is {alpha!r}, but it must be a positive number.")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is {p!r}, but it must be a probability in [0, 1].")
        self.loader, self.mode, self.classes = loader, mode, classes
        self.alpha, self.p, self.seed = float(alpha), float(p), seed
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, int]:
        return {**self.loader.state_dict(), "mix_epoch": self._epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._epoch = int(state.get("mix_epoch", 0))
        self.loader.load_state_dict({k: v for k, v in state.items() if k != "mix_epoch"})

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self._epoch
        start = getattr(self.loader, "state_dict", lambda: {"batch": 0})().get("batch", 0)
        for batch, (images, labels) in enumerate(self.loader, start=start):
            rng = np.random.default_rng([self.seed, epoch, batch])
            targets = soft_targets(labels, self.classes)
            if rng.random() >= self.p:
                yield images, targets
                continue
            n, height, width = len(images), images.shape[-2], images.shape[-1]
            lam = float(rng.beta(self.alpha, self.alpha))
            perm = torch.from_numpy(rng.permutation(n))
            if self.mode == "mixup":
                yield mixup(images, targets, torch.full((n,), lam), perm)
            else:
                centre = (int(rng.integers(height)), int(rng.integers(width)))
                boxes, _ = cutmix_boxes(
                    torch.full((n,), lam), torch.tensor([centre] * n), height, width
                )
                yield cutmix(images, targets, boxes, perm)
        self._epoch = epoch + 1

    def __repr__(self) -> str:
        return f"MixedBatches({self.mode}, alpha={self.alpha:g}, p={self.p:g})"
