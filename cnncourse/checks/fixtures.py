"""The small modules some exercises hand to a learner's function, kept apart from the references.

The autograder builds each case's arguments in its own process and sends them, pickled, to its
sandboxed worker (:mod:`cnncourse.grading`). The sandbox's view of the package leaves out the
chapters' check modules (``chNN.py``, which hold the references), so every class an exercise's
``build`` returns must live here, in :mod:`cnncourse.checks.tiny_nets`, in
:mod:`cnncourse.checks.core` or in PyTorch. ``tests/test_grader.py`` checks this for every
chapter.
"""

from __future__ import annotations

import time

import torch
from torch import nn

__all__ = ["FakeAsyncDevice", "MicroBatchNet", "PositionScale"]


class PositionScale(nn.Module):
    """Multiplies every pixel by its own factor: a map that is not translation equivariant."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.scale


class FakeAsyncDevice:
    """A device whose "kernels" run asynchronously, like a GPU's, without a GPU (chapter 8).

    Calling it launches one kernel and returns at once; the kernel finishes ``kernel_seconds``
    later, after every kernel queued before it (one stream, in order). :meth:`synchronize` waits
    until the queue is empty. The first kernel costs ``first_extra`` seconds more (what a first
    call pays for allocation and kernel selection), and ``queued`` seconds of earlier work are
    already waiting when the device is first used. Plain numbers only, so it can be pickled.
    """

    def __init__(
        self, kernel_seconds: float, first_extra: float = 0.0, queued: float = 0.0
    ) -> None:
        self.kernel_seconds = float(kernel_seconds)
        self.first_extra = float(first_extra)
        self.queued = float(queued)
        self._busy_until: float | None = None
        self.launches = 0

    def _queue_end(self) -> float:
        now = time.perf_counter()
        if self._busy_until is None:  # first use: the earlier work is still running
            self._busy_until = now + self.queued
        return max(now, self._busy_until)

    def __call__(self) -> None:
        """Launch one kernel and return at once."""
        cost = self.kernel_seconds + (self.first_extra if self.launches == 0 else 0.0)
        self._busy_until = self._queue_end() + cost
        self.launches += 1

    def synchronize(self) -> None:
        """Wait until every launched kernel has finished."""
        wait = self._queue_end() - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


class MicroBatchNet(nn.Module):
    """A small network that notes (through :meth:`whole_batch`) any input of more than
    ``max_batch`` images: chapter 8's gradient-accumulation exercise forbids it."""

    def __init__(self, body: nn.Module, max_batch: int) -> None:
        super().__init__()
        self.body = body
        self.max_batch = max_batch

    def whole_batch(self, rows: int) -> None:
        """Called for an input larger than a micro-batch (the guard watches this call)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[0] > self.max_batch:
            self.whole_batch(images.shape[0])
        return self.body(images)
