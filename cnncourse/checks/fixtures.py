"""The small modules some exercises hand to a learner's function, kept apart from the references.

The autograder builds each case's arguments in its own process and sends them, pickled, to its
sandboxed worker (:mod:`cnncourse.grading`). The sandbox's view of the package leaves out the
chapters' check modules (``chNN.py``, which hold the references), so every class an exercise's
``build`` returns must live here, in :mod:`cnncourse.checks.tiny_nets`, in
:mod:`cnncourse.checks.core` or in PyTorch. ``tests/test_grader.py`` checks this for every
chapter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["READOUTS", "PooledFeatures", "PositionScale"]

READOUTS = ("flattened", "2x2 max-pooled", "global average pooled")
"""The read-outs of :class:`PooledFeatures` (chapter 3's ``invariance_error``)."""


class PositionScale(nn.Module):
    """Multiplies every pixel by its own factor: a map that is not translation equivariant."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.scale


class PooledFeatures(nn.Module):
    """A 3x3 convolution and ReLU, read out flattened, 2x2 max-pooled or globally averaged."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, readout: str) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout is {readout!r}, but it must be one of {READOUTS}.")
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1, dtype=weight.dtype)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            self.conv.bias.copy_(bias)  # type: ignore[union-attr]
        self.readout = readout

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = torch.relu(self.conv(images))
        if self.readout == "global average pooled":
            return maps.mean(dim=(2, 3))
        if self.readout == "2x2 max-pooled":
            maps = F.max_pool2d(maps, 2)
        return maps.flatten(1)
