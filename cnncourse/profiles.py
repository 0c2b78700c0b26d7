"""Run profiles: one switch that shrinks data and epochs without changing any code path.

``full`` (the default) is what a learner runs and what the committed notebook outputs come from.
``smoke`` makes every chapter run in about a minute on two CPU cores; CI uses it.

The switch is the ``CNNCOURSE_PROFILE`` environment variable, or the ``PROFILE`` parameter of a
notebook's ``parameters`` cell (papermill: ``-p PROFILE smoke``), which takes precedence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["PROFILES", "PROFILE_ENV", "Profile", "get_profile"]

PROFILE_ENV = "CNNCOURSE_PROFILE"
PROFILES = ("full", "smoke")

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """A named run profile.

    Chapters ask the profile for their sizes with :meth:`pick`, so the same cell runs in both
    profiles and only the numbers differ.
    """

    name: str

    @property
    def is_smoke(self) -> bool:
        """True for the quick CI profile."""
        return self.name == "smoke"

    def pick(self, full: T, smoke: T) -> T:
        """Return ``full`` in the full profile and ``smoke`` in the smoke profile."""
        return smoke if self.is_smoke else full

    def __str__(self) -> str:
        return self.name


def get_profile(name: str | None = None) -> Profile:
    """Return the run profile called ``name``, else the one named by ``CNNCOURSE_PROFILE``.

    With neither given, the profile is ``full``.

    Raises:
        ValueError: if the name is not one of :data:`PROFILES`.
    """
    source = "the PROFILE parameter"
    if name is None:
        name = os.environ.get(PROFILE_ENV) or "full"  # unset or empty: the default
        source = f"the {PROFILE_ENV} environment variable"
    if not isinstance(name, str) or name.strip().lower() not in PROFILES:
        raise ValueError(
            f"{source} is {name!r}, but a run profile must be one of {', '.join(PROFILES)}; "
            f"set it to 'full' for a real run or 'smoke' for a quick check."
        )
    return Profile(name.strip().lower())
