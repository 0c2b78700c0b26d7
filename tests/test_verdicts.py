"""The course's verdict rule: overlapping seed ranges are no measurable difference."""

from __future__ import annotations

import pytest

from cnncourse.verdicts import NO_DIFFERENCE, compare, spread


def test_spread_is_mean_min_max() -> None:
    assert spread([0.5, 0.4, 0.6]) == "0.500 [0.400, 0.600]"
    assert spread([1, 2, 3], fmt=".1f") == "2.0 [1.0, 3.0]"


def test_overlapping_ranges_are_no_measurable_difference() -> None:
    verdict = compare([0.50, 0.52, 0.55], [0.54, 0.56, 0.58])
    assert verdict.startswith(NO_DIFFERENCE) and "-0.037" in verdict


def test_touching_ranges_still_overlap() -> None:
    assert compare([0.1, 0.2, 0.3], [0.3, 0.4, 0.5]).startswith(NO_DIFFERENCE)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [([0.6, 0.61, 0.62], [0.5, 0.51, 0.52], "higher by 0.100"),
     ([0.5, 0.51, 0.52], [0.6, 0.61, 0.62], "lower by 0.100")],
)
def test_separated_ranges_give_a_direction_and_the_gap(a, b, expected) -> None:
    assert compare(a, b) == expected


def test_fewer_than_three_seeds_is_refused_with_one_sentence() -> None:
    with pytest.raises(ValueError, match="at least 3 seeds"):
        compare([0.5, 0.6], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="at least 3 seeds"):
        compare([0.5], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="values is empty"):
        spread([])


def test_one_seed_is_shown_as_such_not_as_a_range() -> None:
    assert spread([0.5123]) == "0.512 (one seed)"
    assert spread(iter([0.5, 0.7]), ".2f") == "0.60 [0.50, 0.70]"
