"""Reading the course's dependency lists: pyproject.toml's and the conda environment files'.

Shared by tests/test_environment_yml.py (conda learners) and tests/test_new_user_binder.py
(Binder), which compare a conda file with a part of pyproject.toml, and by
tests/test_new_user_colab.py, which compares the package's bounds with Colab's stack.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI ones
CONDA_TO_PYPI = {"pytorch": "torch", "playwright-python": "playwright"}
_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:[<>=!]=?\s*[\w.*+]+\s*,?\s*)*)$")


def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _group(config: dict[str, Any], name: str) -> list[str]:
    """A dependency group's requirement lines, with ``{include-group = ...}`` entries expanded."""
    lines: list[str] = []
    for entry in config["dependency-groups"][name]:
        lines += _group(config, entry["include-group"]) if isinstance(entry, dict) else [entry]
    return lines


def requirements(package: bool = True, groups: tuple[str, ...] = ()) -> dict[str, SpecifierSet]:
    """Name -> specifiers of python, the package's dependencies (if ``package``) and groups."""
    config = pyproject()
    lines = list(config["project"]["dependencies"]) if package else []
    for group in groups:
        lines += _group(config, group)
    wanted = {"python": SpecifierSet(config["project"]["requires-python"])}
    for line in lines:
        requirement = Requirement(line)
        wanted[canonicalize_name(requirement.name)] = requirement.specifier
    return wanted


def conda_env(path: Path) -> dict[str, Any]:
    """A conda environment file, parsed."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def conda_requirements(path: Path) -> dict[str, SpecifierSet]:
    """Name (PyPI spelling) -> specifiers of a conda file's conda and pip dependencies.

    ``python`` is included; ``pip`` and the package itself (``-e .``) are not.

    Raises:
        ValueError: for a line that is not a conda or pip requirement.
    """
    found: dict[str, SpecifierSet] = {}
    for entry in conda_env(path)["dependencies"]:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.strip() not in ("-e .", "."):
                    requirement = Requirement(line)
                    found[canonicalize_name(requirement.name)] = requirement.specifier
            continue
        match = _CONDA_SPEC.match(str(entry))
        if not match:
            raise ValueError(f"{path.name}: cannot read the conda spec {entry!r}")
        name = CONDA_TO_PYPI.get(match[1], match[1])
        spec = re.sub(r"(?<![<>=!])=(?!=)", "==", match[2].replace(" ", ""))  # conda's = is ==
        if name != "pip":
            found[canonicalize_name(name)] = SpecifierSet(spec)
    return found


def _bounds(specs: SpecifierSet, ops: tuple[str, ...]) -> list[Version]:
    return [Version(s.version) for s in specs if s.operator in ops]


def incompatibility(name: str, wanted: SpecifierSet, given: SpecifierSet) -> str | None:
    """Why ``given`` (a conda file) does not honour ``wanted`` (pyproject.toml), or None."""
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
            has = given or "no bound"
            return f"{name}: pyproject.toml wants {wanted}, the conda file has {has}; needs {what}"
    return None


def compare(wanted: dict[str, SpecifierSet], given: dict[str, SpecifierSet]) -> list[str]:
    """Every disagreement between the two dependency lists, one sentence each."""
    problems = [
        f"{name} ({wanted[name]}) is in pyproject.toml but missing from the conda file"
        for name in sorted(wanted.keys() - given.keys())
    ]
    problems += [
        f"{name} is in the conda file but not in the part of pyproject.toml it mirrors"
        for name in sorted(given.keys() - wanted.keys())
    ]
    for name in sorted(wanted.keys() & given.keys()):
        reason = incompatibility(name, wanted[name], given[name])
        if reason:
            problems.append(reason)
    return problems
