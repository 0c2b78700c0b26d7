"""A changed ``# NBVAL_CHECK_OUTPUT`` value fails the tests; what legitimately varies does not.

A tiny generated notebook (not a chapter) goes through pytest with the project's own configuration
(``-c pyproject.toml``: ``--nbval-lax --nbval-current-env``, and ``tools.nbval_plugin``, which the
root conftest.py loads) in a subprocess, as stored and as a copy with one checked output edited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent


def cell(source: str, count: int, *streams: tuple[str, str]) -> nbformat.NotebookNode:
    new = new_code_cell(source, execution_count=count)
    new.outputs = [new_output("stream", name=name, text=text) for name, text in streams]
    return new


def notebook(five: str) -> nbformat.NotebookNode:
    nb = new_notebook(
        cells=[
            cell("# NBVAL_CHECK_OUTPUT\nprint(2 + 3)", 1, ("stdout", five)),
            # stderr differs between the stored run and this one: not compared
            cell(
                "# NBVAL_CHECK_OUTPUT\nimport sys\nprint(6 * 7)\nprint('smoke run', file=sys.stderr)",
                2,
                ("stdout", "42\n"),
                ("stderr", "a warning of the full run\n"),
            ),
            # memory addresses are sanitised (tools/nbval_sanitize.cfg)
            cell(
                "# NBVAL_CHECK_OUTPUT\nprint(object())",
                3,
                ("stdout", "<object object at 0x7f01aa>\n"),
            ),
            # an unmarked cell's output is not compared under --nbval-lax
            cell("print('timing: 1.23 s')", 4, ("stdout", "timing: 9.87 s\n")),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def run_pytest(*paths: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(paths[0].parent),
        "-p",
        "tools.nbval_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        *map(str, paths),
    ]
    return subprocess.run(
        command,
        check=False,
        cwd=paths[0].parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_stored_outputs_pass_and_a_changed_check_value_fails(tmp_path: Path) -> None:
    """One pytest run (one kernel per notebook) over the notebook as stored and an edited copy."""
    stored, edited = tmp_path / "stored.ipynb", tmp_path / "edited.ipynb"
    nbformat.write(notebook("5\n"), str(stored))
    nbformat.write(notebook("6\n"), str(edited))
    run = run_pytest(stored, edited)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 7 passed" in run.stdout, run.stdout
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED edited.ipynb::Cell 0"), run.stdout
    assert "Cell 0: Cell outputs differ" in run.stdout
    assert r"'6\n' == '5\n'" in run.stdout
