"""A new learner opens a chapter on Binder: what repo2docker would build, simulated offline.

mybinder.org builds the repository with repo2docker, which looks in ``binder/`` first and then
ignores the files at the root; reads the Python version only from an exact ``python=X.Y`` line of
its environment.yml (repo2docker's conda buildpack matches a pattern, used the same way below;
anything else falls back to its default Python); runs ``postBuild`` from the repository's root;
and starts every session through ``start``. These tests read the files as repo2docker would, then
run ``postBuild`` and ``start`` with stand-ins for pip and for the server.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from env_files import ROOT, compare, conda_env, conda_requirements, requirements

BINDER = ROOT / "binder"
ENVIRONMENT = BINDER / "environment.yml"
REPO2DOCKER_PYTHON = re.compile(r"python\s*=+\s*([\d\.]*)")  # repo2docker's own pattern


def repo2docker_python(path: Path) -> str | None:
    """The Python version repo2docker would install for a conda file, or None for its default."""
    for dep in conda_env(path)["dependencies"]:
        if isinstance(dep, str) and (match := REPO2DOCKER_PYTHON.match(dep)):
            return match[1] or None
    return None


def test_binder_has_its_own_configuration_folder() -> None:
    assert ENVIRONMENT.is_file(), "without binder/, Binder would build the root environment.yml"


def test_binder_gets_an_exact_python_the_package_supports() -> None:
    version = repo2docker_python(ENVIRONMENT)
    assert version is not None and re.fullmatch(r"3\.\d+", version), (
        "binder/environment.yml needs an exact `python=3.X` line, or Binder picks its default"
    )
    assert version + ".0" in requirements()["python"]


def test_repo2docker_would_ignore_a_python_range(tmp_path: Path) -> None:
    ranged = tmp_path / "environment.yml"
    ranged.write_text("dependencies:\n  - python>=3.11\n  - pip\n", encoding="utf-8")
    assert repo2docker_python(ranged) is None


def test_binder_environment_is_the_learner_environment_only() -> None:
    problems = compare(requirements(), conda_requirements(ENVIRONMENT))
    assert not problems, "binder/environment.yml disagrees with pyproject.toml:\n- " + "\n- ".join(
        problems
    )


def _stand_ins(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``python`` logs its arguments instead of running, and the log."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {log}\n', encoding="utf-8")
    python.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, log


def test_postbuild_installs_the_package_without_touching_condas_packages(tmp_path: Path) -> None:
    env, log = _stand_ins(tmp_path)
    subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env, check=True)
    assert log.read_text(encoding="utf-8").split() == [
        "-m", "pip", "install", "--no-deps", "--no-cache-dir", ".",
    ]


def test_a_binder_session_starts_in_the_smoke_profile_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    def session(**extra: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "CNNCOURSE_PROFILE"} | extra
        done = subprocess.run(
            ["bash", str(BINDER / "start"), "sh", "-c", 'echo "$CNNCOURSE_PROFILE"'],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )
        return done.stdout.strip()

    assert session() == "smoke"
    assert session(CNNCOURSE_PROFILE="full") == "full"

