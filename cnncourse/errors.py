"""Errors that explain themselves in one sentence.

In a notebook, IPython normally prints a long traceback for every exception. Course errors define
``_render_traceback_`` (IPython's hook for custom exception display), so a learner sees only the
sentence that says what was wrong and how to fix it.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "CourseError", "DataNotFoundError", "one_line"]


class CourseError(RuntimeError):
    """Base class for errors whose message is a complete, actionable sentence."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class DataNotFoundError(CourseError, FileNotFoundError):
    """A data set is neither on disk nor downloadable."""


class CheckpointError(CourseError):
    """A checkpoint file cannot be read or does not match the model being trained."""


def one_line(err: BaseException) -> str:
    """An error's message on a single line, for quoting inside a one-sentence message.

    Some underlying errors span several lines (torchvision's download errors, PyTorch's
    ``load_state_dict`` errors); quoted as they are, they would break a course error in pieces.
    """
    return " ".join(str(err).split()) or type(err).__name__
