"""Plots the chapters share: image grids, learning curves, confusion matrices, filters, feature maps.

Every function draws with matplotlib and returns the ``Figure``, so a notebook can show it, save it
or tweak it. Figures are sized small: committed notebooks embed them as PNGs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnncourse.training import History

__all__ = [
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_history",
    "show_feature_maps",
    "show_filters",
    "show_images",
]


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    cols = ncols or min(n, 8)
    return math.ceil(n / cols), cols


def _as_image(tensor: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (H, W) tensor -> array matplotlib can show, scaled to [0, 1] if needed."""
    array = tensor.detach().cpu().float()
    if array.ndim == 3:
        array = array.squeeze(0) if array.shape[0] == 1 else array.permute(1, 2, 0)
    low, high = array.min(), array.max()
    if low < 0 or high > 1:
        array = (array - low) / (high - low + 1e-12)
    return array.numpy()


def show_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    labels: Sequence[str | int] | None = None,
    *,
    ncols: int | None = None,
    size: float = 1.3,
    title: str | None = None,
) -> Figure:
    """A grid of images (each (C, H, W) or (H, W)) with an optional label under each."""
    items = list(images)
    if not items:
        raise ValueError("images is empty; pass at least one image tensor.")
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"labels has {len(labels)} entries but images has {len(items)}.")
    rows, cols = _grid(len(items), ncols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.15), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(items):
            picture = _as_image(items[k])
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            if labels is not None:
                ax.set_title(str(labels[k]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: History, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, training and (where recorded) validation."""
    if len(history) == 0:
        raise ValueError("history is empty: train for at least one epoch before plotting it.")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax_loss.plot(history.epoch, history.train_loss, "o-", label="train")
    ax_acc.plot(history.epoch, history.train_acc, "o-", label="train")
    if not all(math.isnan(v) for v in history.val_loss):
        ax_loss.plot(history.epoch, history.val_loss, "s--", label="validation")
        ax_acc.plot(history.epoch, history.val_acc, "s--", label="validation")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 1.5" tick
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(
    targets: torch.Tensor, predictions: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts ``C[i, j]`` of items of true class ``i`` predicted as class ``j``."""
    targets, predictions = torch.as_tensor(targets).long(), torch.as_tensor(predictions).long()
    if targets.shape != predictions.shape:
        raise ValueError(
            f"targets has shape {tuple(targets.shape)} but predictions has "
            f"{tuple(predictions.shape)}; they must match."
        )
    if targets.ndim != 1:
        raise ValueError(
            f"targets and predictions have shape {tuple(targets.shape)}, but they must hold one "
            "label per item (1-D); turn logits into labels with logits.argmax(dim=1) first."
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes is {num_classes!r}, but it must be a positive integer.")
    for name, values in (("targets", targets), ("predictions", predictions)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}.")
    flat = targets * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion_matrix(
    matrix: torch.Tensor, class_names: Sequence[str], title: str | None = None
) -> Figure:
    """Draw a confusion matrix with counts in each cell; rows are true classes."""
    counts = torch.as_tensor(matrix).cpu().numpy()
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"matrix has shape {counts.shape} but there are {n} class names.")
    fig, ax = plt.subplots(figsize=(0.55 * n + 2, 0.55 * n + 1.5))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(n):
        for j in range(n):
            colour = "white" if counts[i, j] > threshold else "black"
            ax.text(
                j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7, color=colour
            )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def show_filters(
    weight: torch.Tensor, *, ncols: int | None = None, title: str | None = None
) -> Figure:
    """Show the filters of a conv layer's weight (out, in, kH, kW), one tile per output channel.

    Three-channel filters are drawn in colour; others show their first input channel.
    """
    if weight.ndim != 4:
        raise ValueError(
            f"weight has shape {tuple(weight.shape)}, but a conv weight has 4 dimensions "
            "(out_channels, in_channels, kH, kW)."
        )
    tiles = [w if w.shape[0] == 3 else w[0] for w in weight.detach()]
    return show_images(tiles, ncols=ncols, size=0.9, title=title)


def show_feature_maps(
    activation: torch.Tensor, *, limit: int = 16, ncols: int | None = None, title: str | None = None
) -> Figure:
    """Show up to ``limit`` channels of one image's activation, shape (C, H, W) or (1, C, H, W)."""
    if activation.ndim == 4 and activation.shape[0] == 1:
        activation = activation[0]
    if activation.ndim != 3:
        raise ValueError(
            f"activation has shape {tuple(activation.shape)}, but it must be (C, H, W) or "
            "(1, C, H, W) for a single image."
        )
    maps = list(activation.detach()[:limit])
    return show_images(maps, labels=[f"ch {k}" for k in range(len(maps))], ncols=ncols, title=title)
