"""environment.yml (conda) lists the same packages as pyproject.toml, with compatible bounds.

Every dependency of ``[project].dependencies`` and ``[dependency-groups].dev`` must appear in
environment.yml under its conda-forge name, with at least the same lower bound and at most the same
upper bound; environment.yml may add nothing but python, pip and the package itself (``-e .``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI ones
CONDA_TO_PYPI = {"pytorch": "torch", "playwright-python": "playwright"}
ALLOWED_EXTRAS = {"python", "pip"}
_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:[<>=!]=?\s*[\w.*+]+\s*,?\s*)*)$")


def pyproject_requirements(path: Path = ROOT / "pyproject.toml") -> dict[str, SpecifierSet]:
    """Name -> specifiers of the package's dependencies and its dev group, plus python."""
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    wanted = {"python": SpecifierSet(config["project"]["requires-python"])}
    lines = config["project"]["dependencies"] + config["dependency-groups"]["dev"]
    for line in lines:
        if not isinstance(line, str):  # an {include-group = ...} table
            pytest.fail(f"pyproject.toml: cannot compare the dependency entry {line!r}")
        requirement = Requirement(line)
        wanted[canonicalize_name(requirement.name)] = requirement.specifier
    return wanted


def conda_requirements(path: Path = ROOT / "environment.yml") -> dict[str, SpecifierSet]:
    """Name (PyPI spelling) -> specifiers of environment.yml's conda and pip dependencies."""
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[str, SpecifierSet] = {}
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.strip() in ("-e .", "."):
                    continue  # the cnncourse package itself
                requirement = Requirement(line)
                found[canonicalize_name(requirement.name)] = requirement.specifier
            continue
        match = _CONDA_SPEC.match(str(entry))
        if not match:
            pytest.fail(f"environment.yml: cannot read the conda spec {entry!r}")
        name = CONDA_TO_PYPI.get(match[1], match[1])
        found[canonicalize_name(name)] = SpecifierSet(match[2].replace(" ", ""))
    return found


def _bounds(specs: SpecifierSet, ops: tuple[str, ...]) -> list[Version]:
    return [Version(s.version) for s in specs if s.operator in ops]


def incompatibility(name: str, wanted: SpecifierSet, given: SpecifierSet) -> str | None:
    """Why ``given`` (environment.yml) does not honour ``wanted`` (pyproject.toml), or None."""
    for spec in wanted:
        assert isinstance(spec, Specifier)
        version = Version(spec.version)
        if spec.operator in (">=", ">"):
            ok = any(v >= version for v in _bounds(given, (">=", ">", "==")))
            what = f"a lower bound of at least {version}"
        elif spec.operator in ("<", "<="):
            ok = any(v <= version for v in _bounds(given, ("<", "<=", "==")))
            what = f"an upper bound of at most {version}"
        else:
            ok = spec in given
            what = f"the same {spec}"
        if not ok:
            return f"{name}: pyproject.toml wants {wanted}, environment.yml has {given or 'no bound'}; needs {what}"
    return None


def compare(wanted: dict[str, SpecifierSet], given: dict[str, SpecifierSet]) -> list[str]:
    """Every disagreement between the two dependency lists, one sentence each."""
    problems = [
        f"{name} ({wanted[name]}) is in pyproject.toml but missing from environment.yml"
        for name in sorted(wanted.keys() - given.keys())
    ]
    problems += [
        f"{name} is in environment.yml but not in pyproject.toml"
        for name in sorted(given.keys() - wanted.keys() - ALLOWED_EXTRAS)
    ]
    for name in sorted(wanted.keys() & given.keys()):
        reason = incompatibility(name, wanted[name], given[name])
        if reason:
            problems.append(reason)
    return problems


def test_environment_yml_matches_pyproject() -> None:
    problems = compare(pyproject_requirements(), conda_requirements())
    assert not problems, "environment.yml disagrees with pyproject.toml:\n- " + "\n- ".join(
        problems
    )


def test_environment_yml_names_the_environment_and_installs_the_package() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["name"] == "cnncourse"
    assert env["channels"][0] == "conda-forge"
    pip = [entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict)]
    assert pip and "-e ." in pip[0]


WANTED = {"torch": SpecifierSet(">=2.4"), "jupyter-book": SpecifierSet(">=1.0.4,<2")}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"torch": ">=2.4"}, "jupyter-book (<2,>=1.0.4) is in pyproject.toml but missing"),
        ({"torch": ">=2.3", "jupyter-book": ">=1.0.4,<2"}, "needs a lower bound of at least 2.4"),
        ({"torch": "", "jupyter-book": ">=1.0.4,<2"}, "environment.yml has no bound"),
        ({"torch": ">=2.4", "jupyter-book": ">=1.0.4"}, "needs an upper bound of at most 2"),
        ({"torch": ">=2.4", "jupyter-book": ">=1.0.4,<2", "scipy": ""}, "scipy is in environment"),
    ],
    ids=["missing", "lower-bound-too-low", "unbounded", "no-upper-bound", "extra-package"],
)
def test_compare_catches_each_disagreement(given: dict[str, str], message: str) -> None:
    problems = compare(WANTED, {name: SpecifierSet(spec) for name, spec in given.items()})
    assert len(problems) == 1 and message in problems[0]


def test_compare_accepts_stricter_bounds_and_the_conda_name(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text(
        "name: x\ndependencies:\n  - python>=3.12\n  - pip\n  - pytorch >=2.5\n"
        "  - jupyter-book>=1.0.4,<1.5\n  - pip:\n      - -e .\n",
        encoding="utf-8",
    )
    assert compare({**WANTED, "python": SpecifierSet(">=3.11")}, conda_requirements(env)) == []
