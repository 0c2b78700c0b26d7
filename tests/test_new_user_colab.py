"""A new learner opens a chapter in Colab: simulated offline, with a stub ``google.colab``.

Every chapter (student copy and source) must start with the setup block that
tools/colab_setup.py generates from _config.yml, and must link to Colab at the same pinned ref.
Then a simulated Colab session runs a chapter's first two code cells (parameters, setup) in
IPython, as Colab does, with ``google.colab`` importable and ``python -m pip`` replaced by a stub:

- when pip fails, the learner gets one clear sentence (what failed, pip's telling line, what to
  try), not a raw ModuleNotFoundError and not a silent carry-on with an older copy;
- when pip succeeds, it was asked for the package at the pinned ref, and the chapter's setup
  finishes;
- the package's bounds accept every package Colab preinstalls, so pip upgrades none of them in
  the middle of a session (an upgraded ipywidgets has broken tqdm's bars in Colab before).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from env_files import pyproject, requirements

from tools.colab_setup import colab_link, current_setup, repository, setup_block
from tools.make_student_copies import NOTEBOOKS_DIR, SOLUTIONS_DIR, sources
from tools.notebook_hygiene import ROOT

# Colab's preinstalled versions of the package's dependencies and of Python, from Google's
# published list (github.com/googlecolab/backend-info, pip-freeze.gpu.txt and os-info-gpu.txt at
# commit a72407924822, 2026-08-19). torchinfo is not preinstalled: pip adds it.
COLAB_STACK = {
    "python": "3.13.15",
    "torch": "2.11.0+cu128",
    "torchvision": "0.26.0+cu128",
    "numpy": "2.1.3",
    "matplotlib": "3.10.0",
    "tqdm": "4.67.3",
    "ipywidgets": "7.7.1",
}
NOTEBOOKS = sources(NOTEBOOKS_DIR) + sources(SOLUTIONS_DIR)
CHAPTER = NOTEBOOKS_DIR / "01_motivation.ipynb"
# What pip prints when Colab's runtime cannot reach GitHub (pip 24's output for a git URL).
PIP_OFFLINE = """\
  error: subprocess-exited-with-error

  × git clone --filter=blob:none --quiet https://github.com/cnncourse/cnn-course /tmp/pip-req
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: unable to access 'https://github.com/cnncourse/cnn-course/': Could not resolve host
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error
note: This error originates from a subprocess, and is likely not a problem with pip."""

RUNNER = """\
import json, sys
import google.colab  # the stub: Colab imports its own module before any cell runs
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
for cell in cells[:2]:  # the parameters cell, then the setup cell
    result = shell.run_cell("".join(cell["source"]))
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
print("setup finished")
"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS])
def test_setup_block_and_colab_link_are_generated_from_config(path: Path) -> None:
    repo = repository()
    nb = nbformat.read(str(path), as_version=4)
    assert current_setup(nb) == setup_block(repo), (
        f"{path.relative_to(ROOT)}: stale Colab setup; run tools/make_student_copies.py"
    )
    intro = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert colab_link(repo, path.name) in intro


def test_setup_block_pins_the_configured_ref() -> None:
    repo = repository()
    assert repo.ref not in ("main", "master"), "pin a tag or a commit, not a moving branch"
    assert f'"cnncourse @ git+{repo.url}@{repo.ref}"' in setup_block(repo)


def test_a_release_tag_names_the_package_version() -> None:
    """pip reinstalls a git requirement only when its version differs from the installed one,
    so each release tag must carry its own version, or a runtime keeps an older copy's code."""
    ref = repository().ref
    if re.fullmatch(r"v\d+(\.\d+)*", ref):
        assert ref == f"v{pyproject()['project']['version']}"


def test_a_config_without_a_github_url_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/x\n  branch: v1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="needs a https://github.com/<owner>/<name> url"):
        repository(config)


def colab_session(tmp_path: Path, pip_output: str, pip_status: int) -> tuple[int, str, list[str]]:
    """Run the chapter's parameters and setup cells as Colab would, with a stub pip.

    Returns the exit status, stderr's last line and the arguments pip was called with.
    """
    stubs = tmp_path / "stubs"
    (stubs / "google" / "colab").mkdir(parents=True)
    (stubs / "google" / "__init__.py").write_text("", encoding="utf-8")
    (stubs / "google" / "colab" / "__init__.py").write_text('"""Stub."""\n', encoding="utf-8")
    (stubs / "pip").mkdir()
    (stubs / "pip" / "__init__.py").write_text("", encoding="utf-8")
    calls = tmp_path / "pip-calls.json"
    (stubs / "pip" / "__main__.py").write_text(
        f"import json, sys\nopen({str(calls)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print({pip_output!r}, file=sys.stderr)\nsys.exit({pip_status})\n",
        encoding="utf-8",
    )
    runner = tmp_path / "colab_runner.py"
    runner.write_text(RUNNER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), str(ROOT)])}
    env["CNNCOURSE_DATA"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, str(runner), str(CHAPTER)],
        check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return done.returncode, last, json.loads(calls.read_text()) if calls.exists() else []


def test_colab_with_a_failing_pip_says_one_clear_sentence(tmp_path: Path) -> None:
    status, message, pip_args = colab_session(tmp_path, PIP_OFFLINE, 1)
    print(message)  # what the learner sees, for the record (pytest -s)
    assert status == 1 and pip_args, "the setup cell must run pip and stop when it fails"
    assert message.startswith(f"RuntimeError: pip could not install cnncourse {repository().ref}")
    assert "fatal: unable to access 'https://github.com/cnncourse/cnn-course/'" in message
    assert "Runtime > Restart session" in message
    assert len(message) < 250 and message.count(". ") == 0


def test_colab_with_a_working_pip_installs_the_pinned_package(tmp_path: Path) -> None:
    status, message, pip_args = colab_session(tmp_path, "", 0)
    repo = repository()
    assert status == 0, message
    assert pip_args == ["install", "-q", f"cnncourse @ git+{repo.url}@{repo.ref}"]


def test_the_package_accepts_colabs_preinstalled_stack() -> None:
    wanted = requirements()
    refused = [
        f"{name} {version} (the package wants {wanted[name]})"
        for name, version in COLAB_STACK.items()
        if name in wanted and not wanted[name].contains(version, prereleases=True)
    ]
    assert not refused, "pip would replace Colab's own " + ", ".join(refused)
