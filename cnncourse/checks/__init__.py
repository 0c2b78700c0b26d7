"""Graded-exercise checks: instant feedback in the notebooks and the autograder's test specs.

- :mod:`cnncourse.checks.core`: :class:`Exercise`, :func:`check` and the comparisons.
- :mod:`cnncourse.checks.guard`: the shared guard that rejects each exercise's forbidden routes
  while the learner's function runs, in the notebook check and in the autograder alike.
- :mod:`cnncourse.checks.ch01`, ``ch02``, ...: each chapter's exercises
  (``ch01.check_layer_params(fn)``, ...), found by their ``chNN`` module names.
- :mod:`cnncourse.checks.fixtures`: the modules exercises hand to a learner's function, apart from
  the references (the autograder, :mod:`cnncourse.grading`, sends them into its sandbox).
- :mod:`cnncourse.checks.tiny_nets`: the tiny float64 networks chapter 4's checks train.
- :mod:`cnncourse.checks.fields`: the measured receptive field chapter 5 checks against.

Usage in a notebook's check cell::

    from cnncourse.checks import ch01
    ch01.check_layer_params(layer_params)
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from cnncourse.checks import ch01
from cnncourse.checks.core import Case, CheckResult, Exercise, Opaque, check

__all__ = ["CHAPTERS", "Case", "CheckResult", "Exercise", "Opaque", "ch01", "check", "exercises"]


def _discover() -> dict[str, tuple[Exercise, ...]]:
    """Every ``chNN`` module in this package, by its two-digit chapter number."""
    found: dict[str, tuple[Exercise, ...]] = {}
    for info in pkgutil.iter_modules(__path__):
        match = re.fullmatch(r"ch(\d\d)", info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found[match.group(1)] = tuple(module.EXERCISES)
    return dict(sorted(found.items()))


CHAPTERS: dict[str, tuple[Exercise, ...]] = _discover()
"""Every chapter's graded exercises, by two-digit chapter number (each ``chNN`` module's
``EXERCISES``)."""


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
