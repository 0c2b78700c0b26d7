"""environment.yml (conda) is the learner's environment: the same packages as pyproject.toml's
package dependencies and its ``lab`` group, with compatible bounds, and none of the maintainers'.

Every such dependency must appear in environment.yml under its conda-forge name, with at least the
same lower bound and at most the same upper bound; environment.yml may add nothing but python, pip
and the package itself (``-e .``). Binder's file is checked in tests/test_new_user_binder.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from env_files import ROOT, compare, conda_env, conda_requirements, requirements
from packaging.specifiers import SpecifierSet

ENVIRONMENT = ROOT / "environment.yml"


def test_environment_yml_matches_the_learner_part_of_pyproject() -> None:
    problems = compare(requirements(groups=("lab",)), conda_requirements(ENVIRONMENT))
    assert not problems, "environment.yml disagrees with pyproject.toml:\n- " + "\n- ".join(
        problems
    )


def test_environment_yml_holds_no_maintainer_tool() -> None:
    maintainers = requirements(package=False, groups=("dev",)).keys() - requirements(
        groups=("lab",)
    ).keys()
    assert maintainers, "the dev group should hold the maintainers' tools"
    assert not maintainers & conda_requirements(ENVIRONMENT).keys()


def test_environment_yml_names_the_environment_and_installs_the_package() -> None:
    env = conda_env(ENVIRONMENT)
    assert env["name"] == "cnncourse"
    assert env["channels"][0] == "conda-forge"
    pip = [entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict)]
    assert pip and "-e ." in pip[0]


def test_environment_yml_does_not_claim_to_be_pinned() -> None:
    text = ENVIRONMENT.read_text(encoding="utf-8").lower()
    assert "lower bounds, not pins" in text and "uv.lock is the pinned route" in text


WANTED = {"torch": SpecifierSet(">=2.4"), "jupyter-book": SpecifierSet(">=1.0.4,<2")}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"torch": ">=2.4"}, "jupyter-book (<2,>=1.0.4) is in pyproject.toml but missing"),
        ({"torch": ">=2.3", "jupyter-book": ">=1.0.4,<2"}, "needs a lower bound of at least 2.4"),
        ({"torch": "", "jupyter-book": ">=1.0.4,<2"}, "the conda file has no bound"),
        ({"torch": ">=2.4", "jupyter-book": ">=1.0.4"}, "needs an upper bound of at most 2"),
        ({"torch": ">=2.4", "jupyter-book": ">=1.0.4,<2", "scipy": ""}, "scipy is in the conda"),
    ],
    ids=["missing", "lower-bound-too-low", "unbounded", "no-upper-bound", "extra-package"],
)
def test_compare_catches_each_disagreement(given: dict[str, str], message: str) -> None:
    problems = compare(WANTED, {name: SpecifierSet(spec) for name, spec in given.items()})
    assert len(problems) == 1 and message in problems[0]


def test_compare_accepts_stricter_bounds_and_the_conda_name(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text(
        "name: x\ndependencies:\n  - python=3.12\n  - pip\n  - pytorch >=2.5\n"
        "  - jupyter-book>=1.0.4,<1.5\n  - pip:\n      - -e .\n",
        encoding="utf-8",
    )
    assert compare({**WANTED, "python": SpecifierSet(">=3.11")}, conda_requirements(env)) == []
