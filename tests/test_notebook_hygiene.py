"""Every committed chapter notebook obeys the hygiene rules of tools/notebook_hygiene.py.

One test per notebook and rule, so a failure reads e.g.
``test_hygiene[01_motivation-execution-order]`` followed by the offending cells. The fix is almost
always ``uv run --frozen python tools/run_notebooks.py --profile full --inplace NN``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.notebook_hygiene import RULES, check_notebook
from tools.run_notebooks import NOTEBOOKS_DIR, chapter_notebooks

NOTEBOOKS = chapter_notebooks()
RULE_NAMES = ["valid", *(name for name in RULES if name != "valid"), "file-size"]
MAX_SHOWN = 8
_results: dict[Path, dict[str, list[str]]] = {}


def results(path: Path) -> dict[str, list[str]]:
    if path not in _results:
        _results[path] = check_notebook(path)
    return _results[path]


def test_there_are_chapter_notebooks() -> None:
    assert NOTEBOOKS, f"no NN_*.ipynb notebook found in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_hygiene(path: Path, rule: str) -> None:
    found = results(path)
    if rule != "valid" and found.get("valid") and rule not in found:
        pytest.fail(f"{path.name} cannot be read, so the {rule!r} rule cannot be checked")
    problems = found[rule]
    shown = problems[:MAX_SHOWN] + [f"... and {len(problems) - MAX_SHOWN} more"] * (
        len(problems) > MAX_SHOWN
    )
    assert not problems, (
        f"{path.name} breaks the {rule!r} rule:\n- " + "\n- ".join(shown) + "\n"
        f"(re-run it with: uv run --frozen python tools/run_notebooks.py --profile full "
        f"--inplace {path.stem})"
    )
