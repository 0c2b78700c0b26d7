"""The pytest plugin that tunes nbval for the course notebooks (loaded by the root conftest.py).

* ``--nbval-sanitize-with`` defaults to ``tools/nbval_sanitize.cfg`` (memory addresses, tqdm
  lines), by absolute path, so pytest works from any directory.
* stderr is left out of the output comparison of ``# NBVAL_CHECK_OUTPUT`` cells. nbval 0.11 has
  no option for it; stderr carries warnings, progress bars and the CPU notice, which differ between
  the smoke run in CI and the full run that produced the committed outputs, while the numbers a
  check cell guards are printed to stdout or returned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SANITIZE_FILE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"
IGNORED_KEYS = ("stderr",)


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    if getattr(option, "nbval_sanitize_with", "unset") is None:
        option.nbval_sanitize_with = str(SANITIZE_FILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    try:
        from nbval.plugin import IPyNbFile
    except ImportError:  # pragma: no cover - nbval is a dev dependency
        return
    for item in items:
        parent = item.parent
        if isinstance(parent, IPyNbFile):
            missing = tuple(key for key in IGNORED_KEYS if key not in parent.skip_compare)
            parent.skip_compare = tuple(parent.skip_compare) + missing
