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
from torch import nn

__all__ = ["PositionScale"]


class PositionScale(nn.Module):
    """Multiplies every pixel by its own factor: a map that is not translation equivariant."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.scale
