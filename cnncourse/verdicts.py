"""Several seeds' results summarised, and the course's rule for turning them into a verdict.

COURSE-RULES: a comparison that ends in a verdict uses at least 3 seeds and shows the mean with
the spread (the [min, max] range for a handful of seeds); where the ranges overlap, the verdict
is "no measurable difference at this budget".
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

__all__ = ["NO_DIFFERENCE", "compare", "spread"]

NO_DIFFERENCE = "no measurable difference at this budget"


def _values(values: Iterable[float], what: str) -> list[float]:
    numbers = [float(v) for v in values]
    if not numbers:
        raise ValueError(f"{what} is empty, but a summary needs one result per seed; run a seed.")
    return numbers


def spread(values: Iterable[float], fmt: str = ".3f") -> str:
    """``"mean [min, max]"`` of one result per seed, each number formatted with ``fmt``.

    A single result (the smoke profile's one seed) reads ``"0.512 (one seed)"``: no range to show.
    """
    v = _values(values, "values")
    if len(v) == 1:
        return f"{v[0]:{fmt}} (one seed)"
    return f"{statistics.mean(v):{fmt}} [{min(v):{fmt}}, {max(v):{fmt}}]"


def compare(a: Iterable[float], b: Iterable[float], fmt: str = ".3f") -> str:
    """The verdict on ``a`` against ``b`` (one result per seed each, higher is better).

    ``"no measurable difference at this budget"`` when the [min, max] ranges overlap; otherwise
    ``"higher by G"`` or ``"lower by G"``, where G is the difference of the means.
    """
    x, y = _values(a, "a"), _values(b, "b")
    if len(x) < 3 or len(y) < 3:
        raise ValueError(
            f"a has {len(x)} and b {len(y)} results, but a verdict needs at least 3 seeds each."
        )
    gap = statistics.mean(x) - statistics.mean(y)
    if min(x) <= max(y) and min(y) <= max(x):
        return f"{NO_DIFFERENCE} ({gap:+{fmt}})"
    return f"{'higher' if gap > 0 else 'lower'} by {abs(gap):{fmt}}"
