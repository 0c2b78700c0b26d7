"""Graded-exercise checks: instant feedback in the notebooks and the autograder's test specs.

- :mod:`cnncourse.checks.core`: :class:`Exercise`, :func:`check` and the comparisons.
- :mod:`cnncourse.checks.ch01`: chapter 1's exercises (``ch01.check_layer_params(fn)``, ...).
- :mod:`cnncourse.checks.worker`: the sandboxed process that runs a submission for the grader.

Usage in a notebook's check cell::

    from cnncourse.checks import ch01
    ch01.check_layer_params(layer_params)
"""

from __future__ import annotations

from cnncourse.checks import ch01
from cnncourse.checks.core import Case, CheckResult, Exercise, Opaque, check

__all__ = ["CHAPTERS", "Case", "CheckResult", "Exercise", "Opaque", "ch01", "check", "exercises"]

CHAPTERS: dict[str, tuple[Exercise, ...]] = {"01": ch01.EXERCISES}
"""Every chapter's graded exercises, by two-digit chapter number."""


def exercises(chapter: str) -> tuple[Exercise, ...]:
    """The graded exercises of a chapter (``"01"`` or ``"1"``).

    Raises:
        ValueError: naming the chapters that have graded exercises.
    """
    key = chapter.zfill(2)
    if key not in CHAPTERS:
        raise ValueError(
            f"chapter {chapter!r} has no graded exercises; chapters with some: "
            f"{', '.join(sorted(CHAPTERS))}."
        )
    return CHAPTERS[key]
