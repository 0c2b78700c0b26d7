"""The setup page tells learners what is true: the names it uses exist, every shell gets its form
of the environment variables, and the learner's uv environment leaves the maintainers' tools out.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable

import nbformat
import pytest
from env_files import ROOT

from cnncourse import data, profiles
from tools.make_student_copies import NOTEBOOKS_DIR, sources

SETUP = (ROOT / "book" / "setup.md").read_text(encoding="utf-8")
ENV_VARS = {data.DATA_ENV, data.MIRROR_ENV, profiles.PROFILE_ENV}
MAINTAINER_TOOLS = {"nbgrader", "jupyter-book", "playwright", "pytest", "papermill", "nbval"}
LEARNER_UV = "--no-dev --group lab"


def parameter_names() -> set[str]:
    """The variables every chapter's parameters cell defines."""
    names: list[set[str]] = []
    for path in sources(NOTEBOOKS_DIR):
        nb = nbformat.read(str(path), as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        names.append(set(re.findall(r"^([A-Z_]+) =", cell.source, flags=re.MULTILINE)))
    return set.intersection(*names)


def test_the_parameters_the_page_names_are_the_chapters_parameters() -> None:
    named = set(re.findall(r"`([A-Z][A-Z_]+)(?: = [^`]*)?`", SETUP)) - ENV_VARS
    assert named and named <= parameter_names(), named - parameter_names()
    assert "`data_root`" not in SETUP  # the parameter is DATA_ROOT


def test_the_page_names_only_environment_variables_the_package_reads() -> None:
    assert set(re.findall(r"CNNCOURSE_[A-Z_]+", SETUP)) == ENV_VARS


@pytest.mark.parametrize(
    "form",
    [
        "export CNNCOURSE_PROFILE=smoke",
        '$env:CNNCOURSE_PROFILE = "smoke"',
        "set CNNCOURSE_PROFILE=smoke",
    ],
    ids=["bash", "powershell", "cmd"],
)
def test_every_shell_gets_its_form_of_an_environment_variable(form: str) -> None:
    assert f"`{form}`" in SETUP


def _closure(packages: dict[str, dict], names: Iterable[str]) -> set[str]:
    """Every package the lock file reaches from ``names`` (markers ignored: a superset)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [dep["name"] for dep in packages[name].get("dependencies", [])]
    return seen


def test_the_learners_uv_environment_has_no_maintainer_tool() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    packages = {p["name"]: p for p in lock["package"]}
    course = packages["cnncourse"]
    learner = [d["name"] for d in course["dependencies"] + course["dev-dependencies"]["lab"]]
    reached = _closure(packages, learner)
    assert "jupyterlab" in reached and not reached & MAINTAINER_TOOLS
    maintainers = [d["name"] for d in course["dev-dependencies"]["dev"]]
    assert MAINTAINER_TOOLS <= _closure(packages, maintainers)


def test_every_uv_command_for_learners_leaves_the_maintainers_tools_out() -> None:
    learner_part = SETUP[SETUP.index("## In JupyterLab") : SETUP.index("### With conda")]
    commands = re.findall(r"^python3 -m uv (?:sync|run) .*$", learner_part, flags=re.MULTILINE)
    assert commands and all(LEARNER_UV in command for command in commands), commands
