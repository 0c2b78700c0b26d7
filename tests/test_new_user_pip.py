"""A new learner installs the course with plain pip into a fresh environment, offline, and runs
chapter 1 in the smoke profile there.

How it stays offline, and why this way: a real learner's ``pip install .`` downloads torch and the
rest from PyPI. This test must pass without a network, so it gives the fresh environment the
packages already installed in the project's environment, but only those the package's own
dependencies need (their closure, worked out from the installed metadata): each is symlinked into
a folder that the fresh environment reads through a ``.pth`` file. A dependency missing from
pyproject.toml is then missing there too, and a maintainer tool (pytest, nbformat, PyYAML, ...)
is not importable. pip then installs the package's wheel (built here with hatchling, the build
backend) with ``--no-index`` and no configuration, so it can only succeed if the bounds in
pyproject.toml accept those versions. ``--system-site-packages`` would not do: the project's
environment is itself a virtual environment, and it would expose every maintainer tool.

The chapter runs from the student copy, cell by cell in IPython (which ipywidgets brings), with
the installed package, not the repository's folder, on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from env_files import ROOT, requirements
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CHAPTER = ROOT / "notebooks" / "01_motivation.ipynb"
MAINTAINER_MODULES = ("pytest", "nbformat", "yaml", "papermill", "nbgrader", "jupyter_book")

RUNNER = """\
import json, sys
from IPython.core.interactiveshell import InteractiveShell

import cnncourse
print("cnncourse from", cnncourse.__file__)
shell = InteractiveShell.instance()
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
for number, cell in enumerate(cells, 1):
    result = shell.run_cell("".join(cell["source"]))
    if not result.success:
        print(f"code cell {number} of {len(cells)} failed", file=sys.stderr)
        sys.exit(1)
print(f"all {len(cells)} code cells ran")
"""


def closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions that ``names`` need on this platform, transitively.

    Raises:
        AssertionError: if one of them is not installed in this environment.
    """
    seen: dict[str, metadata.Distribution] = {}
    todo = [(name, frozenset[str]()) for name in names]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen and not extras:
            continue
        try:
            dist = seen.get(key) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is needed by the package but not installed in this environment")
        seen[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return list(seen.values())


def learner_site(target: Path) -> Path:
    """A folder holding (symlinks to) the package's dependency closure, and nothing else."""
    target.mkdir()
    names = [name for name in requirements() if name != "python"]
    for dist in closure(names):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


def clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """This process's environment less pip's, uv's and Python's settings, with ``venv`` first."""
    drop = ("PIP_", "UV_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CNNCOURSE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf: no index, no find-links
    return env | extra


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A new virtual environment with the package installed by plain pip; and pip's output."""
    base = tmp_path_factory.mktemp("new-user-pip")
    dist = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=ROOT, check=True, capture_output=True,
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(purelib) / "learner-site.pth").write_text(f"{learner_site(base / 'site')}\n")
    # Python 3.11's venv seeds an old setuptools that would shadow the one torch needs; a
    # networked pip would upgrade it, here the closure's copy takes its place.
    subprocess.run(
        [str(python), "-m", "pip", "uninstall", "-y", "-q", "setuptools"],
        env=clean_env(venv), capture_output=True, check=False,
    )
    wheel = next(dist.glob("cnncourse-*.whl"))
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-cache-dir", str(wheel)],
        env=clean_env(venv), cwd=base, capture_output=True, text=True, check=False,
    )
    assert pip.returncode == 0, f"plain pip failed to install the package:\n{pip.stdout}{pip.stderr}"
    return venv, pip.stdout


def test_plain_pip_installs_the_package_with_what_is_there(fresh_venv: tuple[Path, str]) -> None:
    _, output = fresh_venv
    assert "Successfully installed cnncourse-" in output
    assert "Requirement already satisfied: torch" in output


def test_the_fresh_environment_has_no_maintainer_tool(fresh_venv: tuple[Path, str]) -> None:
    venv, _ = fresh_venv
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *MAINTAINER_MODULES],
        env=clean_env(venv), capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert found == "[]"


def test_chapter_1_runs_in_the_smoke_profile(
    fresh_venv: tuple[Path, str], tmp_path: Path
) -> None:
    mirror = ROOT.parent / "shared" / "data"
    mirror = Path(os.environ.get("CNNCOURSE_DATA_MIRROR", mirror))
    if not (mirror / "MNIST" / "raw").is_dir():
        pytest.skip("no offline copy of MNIST (CNNCOURSE_DATA_MIRROR) to run chapter 1 on")
    venv, _ = fresh_venv
    runner = tmp_path / "run_chapter.py"
    runner.write_text(RUNNER, encoding="utf-8")
    env = clean_env(
        venv, CNNCOURSE_PROFILE="smoke", CNNCOURSE_DATA="data",
        CNNCOURSE_DATA_MIRROR=str(mirror), MPLBACKEND="Agg",
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(runner), str(CHAPTER)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    print(done.stdout[:1500], "...", done.stdout[-600:], sep="\n")  # what the learner saw (-s)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"cnncourse from {venv}" in done.stdout  # the installed copy, not the repository's
    assert "all " in done.stdout and "profile      smoke" in done.stdout
