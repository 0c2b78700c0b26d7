"""A learner on Windows: every module a chapter can import works without POSIX-only modules.

Windows has no ``resource``, ``fcntl``, ``termios``, ``pwd`` or ``grp``. Only the instructor's
grader (``cnncourse.grading``) may need them: it sandboxes submissions with Linux namespaces, and
setup.md says that grading needs Linux. This test imports the rest of the package in a fresh
interpreter in which those modules cannot be imported (after the third-party libraries, which
choose their own platform code by ``sys.platform``), so a POSIX-only import that reaches the
chapters' code fails here before it fails on a learner's Windows machine.
"""

from __future__ import annotations

import subprocess
import sys

from env_files import ROOT

POSIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")
PROBE = """\
import importlib, pkgutil, sys
import IPython, matplotlib.pyplot, numpy, torch, torchvision, tqdm.auto  # their own platform code
for name in {posix!r}:
    sys.modules[name] = None  # what Windows has: importing it raises ImportError
import cnncourse
failed = []
for module in pkgutil.walk_packages(cnncourse.__path__, "cnncourse."):
    if module.name.endswith(".__main__") or module.name.startswith({skip!r}):
        continue  # a command's entry point; the instructor's grader is Linux only (setup.md)
    try:
        importlib.import_module(module.name)
    except ImportError as err:
        failed.append(f"{{module.name}}: {{err}}")
print("\\n".join(failed) or "all modules imported")
"""


def windows_imports(skip: tuple[str, ...] = ("cnncourse.grading",)) -> str:
    """What importing every module not under ``skip`` says with the POSIX-only modules gone."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(posix=POSIX_ONLY, skip=skip)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout.strip()


def test_every_learner_module_imports_without_posix_only_modules() -> None:
    assert windows_imports() == "all modules imported"


def test_the_probe_catches_a_posix_only_import() -> None:
    """The grader's sandbox needs Linux: probed the same way, it is reported."""
    assert "cnncourse.grading.sandbox: import of" in windows_imports(skip=())


def test_the_grader_refuses_windows_in_one_sentence() -> None:
    """``python -m cnncourse.grading`` on Windows: one sentence and exit status 2, no traceback."""
    probe = (
        "import runpy, sys\n"
        "import cnncourse  # torch and the learner modules load as they would on Windows\n"
        f"for name in {POSIX_ONLY!r}:\n"
        "    sys.modules[name] = None\n"
        "sys.platform = 'win32'\n"
        "sys.argv = ['cnncourse.grading', 'submissions', '--chapter', '01', '--out', 'out']\n"
        "runpy.run_module('cnncourse.grading', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("cnncourse.grading needs Linux with bubblewrap (bwrap)")
    assert done.stderr.strip().count("\n") == 0
