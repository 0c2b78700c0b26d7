"""The autograder: full marks for the solutions, zero for the untouched student copy, exactly the
broken exercise's points lost for a wrong answer, and a hostile suite graded in ONE batch without a
crash, with the right scores and reasons, and with no file outside the grader's temporary area
changed.

Every submission is made in a temporary folder from the committed student copy by filling its
solution cells. The batch runs through the command line, as an instructor would run it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from grading import Chapter, load_scores, not_implemented, run_grader

from cnncourse.grading.submission import solution_cells

CHAPTER = Chapter("01_motivation.ipynb")
SOURCE = CHAPTER.source
edited = CHAPTER.edited
TIMEOUT = 20  # seconds of student code per submission (the worker's imports excluded); the
# guarded conv_matrix solution alone takes about 5 s on 2 busy CPU cores
EX1, EX2, EX3 = "ex1-layer_params", "ex2-conv_matrix", "ex3-equivariance_error"
NAMES = {EX1: "layer_params", EX2: "conv_matrix", EX3: "equivariance_error"}


def submissions(folder: Path, sentinel: Path, keep: Path) -> dict[str, int]:
    """Write every submission; return the expected total of each."""
    solved = CHAPTER.solved_cells()
    s, d, solution = repr(str(sentinel)), repr(str(keep.parent)), repr(str(SOURCE))
    cases: dict[str, tuple[dict[str, str], int]] = {
        "solution": (solved, 7),
        "stub": ({}, 0),
        "wrong_forgot_bias": (
            {
                EX1: edited(EX1, "+ (layer.out_features if has_bias else 0)", "").replace(
                    "return weights + (layer.out_channels if has_bias else 0)", "return weights"
                ),
                EX2: solved[EX2],
                EX3: solved[EX3],
            },
            5,
        ),
        "wrong_off_by_one": (
            {**solved, EX2: edited(EX2, "height - kh + 1, width", "height - kh, width")},
            4,
        ),
        "wrong_sign": ({**solved, EX3: edited(EX3, "shifts=(dy, dx)", "shifts=(-dy, -dx)")}, 5),
        "forbidden_parameters": (  # the route exercise 1 forbids, as a learner might take it
            {
                **solved,
                EX1: "def layer_params(layer):\n    return sum(p.numel() for p in layer.parameters())",
            },
            5,
        ),
        "hostile_errors": (
            {
                EX1: "def layer_params(layer):\n    raise ValueError('no idea')",
                EX2: "# I deleted my function\npass",
                EX3: edited(EX3, ").item()", ")"),
            },
            0,
        ),
        "hostile_loop": (
            {
                **solved,
                EX2: "def conv_matrix(kernel, height, width):\n    while True:\n        pass",
            },
            2,
        ),
        "hostile_memory": (
            {
                **solved,
                EX1: "def layer_params(layer):\n    hoard = []\n    while True:\n"
                "        hoard.append(bytearray(50_000_000))",
            },
            5,
        ),
        "hostile_cheater": (
            {
                EX1: "import cnncourse.checks as checks\nimport cnncourse.checks.ch01 as ch01\n"
                "import cnncourse.checks.core as core\n"
                "print('✓ layer_params: all 50 random cases match the reference.')\n"
                "print('SCORE: 7/7')\n"
                "core.check = lambda *a, **k: print('✓ passed')\n"
                "ch01.check_layer_params = lambda fn, **k: None\n"
                "object.__setattr__(ch01.LAYER_PARAMS, 'compare', lambda *a: None)\n"
                "object.__setattr__(ch01.LAYER_PARAMS, 'reference', lambda *a: 0)\n"
                "checks.CHAPTERS['01'] = ()\n"
                "def layer_params(layer):\n    print('layer_params: 2/2 points')\n    return 0",
                EX2: "def conv_matrix(kernel, height, width):\n"
                "    return torch.zeros(1, 1, dtype=torch.float64)",
                EX3: "def equivariance_error(layer, images, dx, dy):\n    return 0.0",
            },
            0,
        ),
        "hostile_vandal": (
            {
                EX1: "import os, pathlib, shutil\n"
                f"S, D = {s}, {d}\n"
                "for attempt in (lambda: os.remove(S), lambda: pathlib.Path(S).unlink(),\n"
                "                lambda: open(S, 'w').write('pwned'), lambda: shutil.rmtree(D),\n"
                "                lambda: os.rename(S, S + '.moved')):\n"
                "    try:\n        attempt()\n    except OSError:\n        pass\n"
                "def layer_params(layer):\n    os.remove(S)\n    return 0",
                EX2: "import subprocess\ndef conv_matrix(kernel, height, width):\n"
                f"    subprocess.run(['rm', '-rf', {d}])",
                EX3: solved[EX3],
            },
            2,
        ),
        "hostile_escape": (
            {
                EX1: "import socket\ndef layer_params(layer):\n"
                "    return socket.create_connection(('example.org', 80))",
                EX2: "import ctypes\ndef conv_matrix(kernel, height, width):\n"
                "    return ctypes.CDLL('libc.so.6').system(b'touch /tmp/owned')",
                EX3: "def equivariance_error(layer, images, dx, dy):\n"
                f"    return float(len(open({solution}).read()))",
            },
            0,
        ),
        "hostile_sys_exit": ({**solved, EX1: "import sys\nsys.exit('bye')\n" + solved[EX1]}, 5),
        "hostile_os_exit": ({**solved, EX2: "import os\nos._exit(0)"}, 0),
        "hostile_huge": (
            {
                EX1: "def layer_params(layer):\n    return np.int64(7)",
                EX2: "def conv_matrix(kernel, height, width):\n"
                "    return torch.zeros(3000, 3000, dtype=torch.float64)",
                EX3: "def equivariance_error(layer, images, dx, dy):\n    return 'x' * 10**7",
            },
            0,
        ),
        "hostile_peek": (
            {
                EX1: "def layer_params(layer):\n"
                "    job = torch.load('job.pt', weights_only=True)\n"
                "    return job['expected']['layer_params'][0]",
            },
            0,
        ),
    }
    for name, (cells, _) in cases.items():
        CHAPTER.write_submission(folder, name, cells)
    (folder / "hostile_invalid_json.ipynb").write_text('{"cells": [ this is not json')
    return {**{name: total for name, (_, total) in cases.items()}, "hostile_invalid_json": 0}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Grade every submission in one batch; record the sentinel files before and after."""
    area = tmp_path_factory.mktemp("grading")
    folder, out = area / "submitted", area / "scores"
    folder.mkdir()
    sentinel, keep = area / "sentinel.txt", area / "precious" / "keep.txt"
    keep.parent.mkdir()
    sentinel.write_text("do not touch\n")
    keep.write_text("keep me\n")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (sentinel, keep)}
    expected = submissions(folder, sentinel, keep)
    run = run_grader(
        folder, CHAPTER, out, "--timeout", str(TIMEOUT), "--memory-mb", "1024", timeout=600
    )
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (sentinel, keep)}
    with open(out / "scores.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "json": load_scores(out),
        "rows": rows,
        "stdout": run.stdout,
        "expected": expected,
        "files": (before, after, sorted(p.name for p in area.rglob("*") if p.is_file())),
        "folder": folder,
    }


def reasons(batch: dict[str, Any], student: str) -> dict[str, str]:
    exercises = batch["json"]["students"][student]["exercises"]
    return {name: item["reason"] for name, item in exercises.items()}


def test_every_submission_gets_its_expected_total(batch: dict[str, Any]) -> None:
    students = batch["json"]["students"]
    assert sorted(students) == sorted(batch["expected"])
    got = {name: students[name]["total"] for name in students}
    assert got == batch["expected"]
    assert all(s["max_points"] == 7 for s in students.values())


def test_solution_full_marks_and_stub_zero(batch: dict[str, Any]) -> None:
    for reason in reasons(batch, "solution").values():
        assert reason.startswith("all ") and reason.endswith(" random cases match the reference.")
    for name, reason in reasons(batch, "stub").items():
        assert reason == not_implemented(name)


def test_wrong_answers_lose_exactly_their_exercise(batch: dict[str, Any]) -> None:
    students = batch["json"]["students"]
    for student, broken in (
        ("wrong_forgot_bias", "layer_params"),
        ("wrong_off_by_one", "conv_matrix"),
        ("wrong_sign", "equivariance_error"),
    ):
        for name, item in students[student]["exercises"].items():
            assert item["points"] == (0 if name == broken else item["max_points"]), (student, name)
    assert "; expected" in reasons(batch, "wrong_forgot_bias")["layer_params"]
    assert "returned shape (" in reasons(batch, "wrong_off_by_one")["conv_matrix"]
    assert "; expected" in reasons(batch, "wrong_sign")["equivariance_error"]


def test_the_forbidden_route_gets_the_guards_sentence(batch: dict[str, Any]) -> None:
    """Inside the sandbox, as in the notebook's check: the layer handed to layer_params has a
    tripwire for .parameters(), and the reason is the guard's one sentence naming it."""
    reason = reasons(batch, "forbidden_parameters")["layer_params"]
    assert "layer_params called the layer's parameters" in reason, reason
    assert "this exercise asks you to" in reason


HOSTILE_REASONS = {
    "hostile_errors": {
        "layer_params": "layer_params raised ValueError (no idea) for ",
        "conv_matrix": "conv_matrix is not defined in the submission.",
        "equivariance_error": "should return a Python float, got torch.Tensor",
    },
    "hostile_loop": {
        "conv_matrix": f"did not finish within {TIMEOUT} s (an endless loop?) before conv_matrix",
        "equivariance_error": "before equivariance_error was graded, so it gets no points.",
    },
    "hostile_memory": {"layer_params": "layer_params ran out of memory"},
    "hostile_cheater": {  # the chapters' check modules are not in the sandbox's view
        "layer_params": "its solution cell raised ModuleNotFoundError: No module named "
        "'cnncourse.checks.ch01'",
        "conv_matrix": "conv_matrix returned shape (1, 1) for ",
    },
    "hostile_vandal": {  # the sentinel is not in the sandbox's view
        "layer_params": "layer_params raised FileNotFoundError",
        "conv_matrix": "does not allow subprocess.Popen",
    },
    "hostile_escape": {
        "layer_params": "the grader's sandbox does not allow socket.",
        "conv_matrix": "the grader's sandbox does not allow ctypes.dlopen",
        "equivariance_error": "does not allow reading files outside its temporary folder",
    },
    "hostile_sys_exit": {
        "layer_params": "layer_params is not defined in the submission: its solution cell raised "
        "SystemExit: bye."
    },
    "hostile_os_exit": {
        name: f"ended the grading process (exit status 0, as os._exit does) before {name}"
        for name in NAMES.values()
    },
    "hostile_invalid_json": {
        name: "the submission is not a valid notebook" for name in NAMES.values()
    },
    "hostile_huge": {
        "layer_params": "layer_params should return an int, got numpy.int64",
        "conv_matrix": "cannot be checked (too large to check: shape (3000, 3000))",
        "equivariance_error": "should return a Python float, got str (10000000 characters)",
    },
    "hostile_peek": {"layer_params": "layer_params raised FileNotFoundError"},  # no job file
}


@pytest.mark.parametrize("student", sorted(HOSTILE_REASONS))
def test_hostile_submission_reasons(batch: dict[str, Any], student: str) -> None:
    got = reasons(batch, student)
    for name, part in HOSTILE_REASONS[student].items():
        assert part in got[name], f"{student}/{name}: {got[name]}"
    for reason in got.values():
        assert reason and "\n" not in reason and reason.endswith(".")


def test_no_file_outside_the_grader_temp_area_changed(batch: dict[str, Any]) -> None:
    before, after, names = batch["files"]
    assert before == after
    assert "sentinel.txt.moved" not in names
    assert not Path("/tmp/owned").exists()


def test_score_sheet_and_timing(batch: dict[str, Any]) -> None:
    rows = batch["rows"]
    students = batch["json"]["students"]
    assert len(rows) == 4 * len(students)  # three exercises and a total per student
    assert {row["sandbox"] for row in rows} == {"bubblewrap"}
    totals = {r["student"]: int(r["points"]) for r in rows if r["exercise"] == "total"}
    assert totals == {name: s["total"] for name, s in students.items()}
    for name, student in students.items():
        assert f"{name}: {student['total']}/7 points in " in batch["stdout"]
        assert 0 <= student["seconds"] < 120
    assert students["hostile_loop"]["seconds"] >= TIMEOUT


def test_solution_cells_by_metadata_or_marker() -> None:
    marked = {
        "cell_type": "code",
        "source": ["x = 1"],
        "metadata": {"nbgrader": {"solution": True, "grade_id": "a"}},
    }
    plain = {
        "cell_type": "code",
        "source": "def f():\n    ### BEGIN SOLUTION\n    return 1\n",
        "metadata": {},
    }
    assert solution_cells({"cells": [marked, plain]}) == [{"source": "x = 1", "grade_id": "a"}]
    assert solution_cells({"cells": [plain]})[0]["source"].startswith("def f():")
    with pytest.raises(TypeError):
        solution_cells(["not", "a", "notebook"])
