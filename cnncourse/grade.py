"""Grade a folder of submitted notebooks into a score sheet (``scores.csv`` and ``scores.json``).

Usage (from the repository root)::

    uv run --frozen python -m cnncourse.grade SUBMISSIONS_DIR --chapter 01 --out DIR \
        [--timeout 60] [--memory-mb 2048]

Each ``*.ipynb`` file in ``SUBMISSIONS_DIR`` is one student's submission; the file's stem is the
student's name in the score sheet. Every submission runs in its own worker process
(:mod:`cnncourse.checks.worker`) in a fresh temporary folder, with a wall-time limit (``--timeout``
seconds for the submission's code, counted after the worker's imports), a memory limit
(``--memory-mb`` on top of what Python and PyTorch need), a CPU-time limit, stdin closed and a
minimal environment. The grader draws fresh random cases per submission, sends the worker the
cases (never the expected outputs), reads back the raw outputs, and computes the references and
the scores in its own process. Every exercise gets points, max points and one-sentence reason,
whatever the submission does; the batch always goes on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnncourse.checks import Exercise, Opaque, exercises
from cnncourse.checks.core import error_sentence, fresh_generator, not_implemented_sentence

__all__ = ["ExerciseScore", "SubmissionScore", "grade_folder", "grade_submission", "main"]

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_RESULT_BYTES = 64 * 1024 * 1024  # also the worker's file-size limit
MAX_NODES = 100_000  # items the grader walks in one result file
STARTUP_TIMEOUT = 120.0  # seconds for the worker's own imports, before the submission runs
STARTUP_ADDRESS_SPACE_MB = 8192  # address space for importing torch (about 3.3 GB measured)
MARKER = "### BEGIN SOLUTION"


@dataclass
class ExerciseScore:
    points: int
    max_points: int
    reason: str


@dataclass
class SubmissionScore:
    student: str
    exercises: dict[str, ExerciseScore] = field(default_factory=dict)
    seconds: float = 0.0
    seed: int = 0

    @property
    def total(self) -> int:
        return sum(score.points for score in self.exercises.values())

    @property
    def max_points(self) -> int:
        return sum(score.max_points for score in self.exercises.values())


def _clean(text: str, limit: int = 300) -> str:
    """Untrusted text as one printable line, cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else " " for c in str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def solution_cells(notebook: Any) -> list[dict[str, str]]:
    """The code cells nbgrader marks as solutions; without such metadata, those with the marker.

    Raises:
        TypeError: if ``notebook`` does not have the shape of a notebook.
    """
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise TypeError("it has no list of cells")
    code: list[tuple[str, str, dict[str, Any]]] = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        meta = cell.get("metadata", {})
        meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
        if isinstance(source, str):
            code.append(
                (source, str(meta.get("grade_id", "")), meta if isinstance(meta, dict) else {})
            )
    marked = [(src, gid) for src, gid, meta in code if meta.get("solution") is True]
    if not marked:
        marked = [(src, gid) for src, gid, _ in code if MARKER in src]
    return [{"source": src, "grade_id": gid} for src, gid in marked]


def _limits(memory_mb: int, timeout: float) -> None:  # runs in the child, before exec
    address = (memory_mb + STARTUP_ADDRESS_SPACE_MB) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address, address))
    cpu = int(STARTUP_TIMEOUT + 2 * timeout) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_RESULT_BYTES, MAX_RESULT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _environment(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "MPLBACKEND": "Agg",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _run_worker(workdir: Path, timeout: float, memory_mb: int) -> tuple[int | None, bool, str]:
    """Run the worker; return its exit status, whether it timed out, and its log's tail."""
    log_path = workdir / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "cnncourse.checks.worker", str(workdir)],
            cwd=workdir,
            env=_environment(workdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=lambda: _limits(memory_mb, timeout),  # noqa: PLW1509 - no threads here
        )
    start, ready_at, timed_out = time.monotonic(), None, False
    while proc.poll() is None:
        now = time.monotonic()
        if ready_at is None and (workdir / "ready").exists():
            ready_at = now
        deadline = start + STARTUP_TIMEOUT if ready_at is None else ready_at + timeout
        if now > deadline:
            timed_out = True
            break
        time.sleep(0.02)
    try:  # the worker and anything it started
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    code = proc.wait()
    tail = log_path.read_bytes()[-2000:].decode(errors="replace")
    return (None if timed_out else code), timed_out, tail


def _valid(value: Any, budget: list[int], depth: int = 0) -> bool:
    """Whether a loaded result holds only plain data, within a bounded walk."""
    budget[0] -= 1
    if budget[0] < 0 or depth > 8:
        return False
    if value is None or type(value) in (bool, int, float, str, torch.Tensor):
        return True
    if type(value) in (list, tuple):
        return all(_valid(item, budget, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _valid(v, budget, depth + 1) for k, v in value.items())
    return False


def _decode(value: Any) -> Any:
    if type(value) is dict:
        return Opaque(
            _clean(value.get("__opaque__", "object"), 80), _clean(value.get("detail", ""))
        )
    if type(value) in (list, tuple):
        return type(value)(_decode(item) for item in value)
    return value


def _load_result(path: Path) -> dict[str, Any] | None:
    if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
        return None
    try:
        result = torch.load(path, weights_only=True, map_location="cpu")
    except Exception:  # noqa: BLE001 - an unreadable result is no result
        return None
    ok = (
        type(result) is dict and _valid(result, [MAX_NODES]) and type(result.get("entries")) is list
    )
    return result if ok else None


def _score(exercise: Exercise, cases: list[Any], result: dict[str, Any]) -> tuple[bool, str]:
    """Compare the worker's raw outputs with the references, computed here."""
    name = exercise.name
    if result.get("status") == "missing":
        error = _clean(result.get("cell_error") or "", 200)
        because = f": its solution cell raised {error}" if error else ""
        return False, f"{name} is not defined in the submission{because}."
    if result.get("status") == "not callable":
        return False, f"{name} is a {_clean(result.get('type', '?'), 60)}, not a function."
    entries = result["entries"]
    for index, case in enumerate(cases):
        if index >= len(entries) or type(entries[index]) not in (list, tuple):
            return False, f"the grader got no output of {name} for {exercise.describe(case)}."
        entry = entries[index]
        if entry[0] == "not implemented":
            return False, not_implemented_sentence(name)
        if entry[0] == "error" and len(entry) == 3:
            return False, error_sentence(
                name, _clean(entry[1], 100), _clean(entry[2]), exercise.describe(case)
            )
        if entry[0] != "ok" or len(entry) != 2:
            return (
                False,
                f"the grader got a malformed output of {name} for {exercise.describe(case)}.",
            )
        problem = exercise.compare(exercise.expected(case), _decode(entry[1]), case)
        if problem is not None:
            return False, problem
    return True, f"all {len(cases)} random cases match the reference."


def _stopped(name: str, code: int | None, timeout: float) -> str:
    if code is None:
        return (
            f"the submission did not finish within {timeout:g} s (an endless loop?) before "
            f"{name} was graded, so it gets no points."
        )
    if code < 0:
        signame = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"the grading process was killed by {signame} (a resource limit?) before {name} was graded."
    return (
        f"the submission ended the grading process (exit code {code}: sys.exit or os._exit?) "
        f"before {name} was graded."
    )


def grade_submission(
    path: Path,
    specs: Sequence[Exercise],
    chapter: str,
    *,
    timeout: float = 60.0,
    memory_mb: int = 2048,
    seed: int | None = None,
) -> SubmissionScore:
    """Grade one submitted notebook; never raises for anything the submission contains."""
    started = time.monotonic()
    generator, seed = fresh_generator(seed)
    score = SubmissionScore(student=path.stem, seed=seed)

    def every(reason: str) -> SubmissionScore:
        for spec in specs:
            score.exercises[spec.name] = ExerciseScore(0, spec.points, reason)
        score.seconds = time.monotonic() - started
        return score

    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return every(f"the submission is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB.")
        cells = solution_cells(json.loads(path.read_bytes()))
    except (OSError, ValueError, TypeError, RecursionError) as error:
        return every(f"the submission is not a valid notebook ({_clean(str(error), 150)}).")
    if not cells:
        return every(f"the submission has no solution cells (none marked {MARKER!r}).")
    cases = {spec.name: spec.make_cases(generator) for spec in specs}
    with tempfile.TemporaryDirectory(prefix="cnncourse-grade-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp).resolve()
        job = {
            "chapter": chapter,
            "exercises": [spec.name for spec in specs],
            "cells": cells,
            "cases": cases,
            "memory_mb": memory_mb,
            "timeout": timeout,
        }
        torch.save(job, workdir / "job.pt")
        code, timed_out, log = _run_worker(workdir, timeout, memory_mb)
        if not (workdir / "ready").exists() and not timed_out:
            print(f"{path.name}: the worker failed to start:\n{log}", file=sys.stderr)
        for spec in specs:
            result = _load_result(workdir / "results" / f"{spec.name}.pt")
            if result is None:
                passed, reason = False, _stopped(spec.name, code, timeout)
            else:
                try:
                    passed, reason = _score(spec, cases[spec.name], result)
                except Exception as error:  # noqa: BLE001 - an output compare cannot handle
                    passed, reason = (
                        False,
                        f"{spec.name}'s output could not be checked ({_clean(str(error), 150)}).",
                    )
            score.exercises[spec.name] = ExerciseScore(
                spec.points if passed else 0, spec.points, reason
            )
    score.seconds = time.monotonic() - started
    return score


def grade_folder(
    folder: Path, chapter: str, *, timeout: float = 60.0, memory_mb: int = 2048
) -> list[SubmissionScore]:
    """Grade every ``*.ipynb`` in ``folder`` (sorted), printing one line per submission."""
    specs = exercises(chapter)
    scores = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            score = grade_submission(
                path, specs, chapter.zfill(2), timeout=timeout, memory_mb=memory_mb
            )
        except Exception as error:  # noqa: BLE001 - a grader bug must not stop the batch
            reason = (
                f"the grader failed on this submission ({_clean(repr(error), 150)}); report it."
            )
            score = SubmissionScore(student=path.stem)
            for spec in specs:
                score.exercises[spec.name] = ExerciseScore(0, spec.points, reason)
        print(f"{score.student}: {score.total}/{score.max_points} points in {score.seconds:.1f} s")
        scores.append(score)
    return scores


def write_scores(scores: Sequence[SubmissionScore], out: Path, chapter: str) -> None:
    """Write ``scores.csv`` (one row per student and exercise, plus a total row) and
    ``scores.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "exercise", "points", "max_points", "reason"])
        for score in scores:
            for name, item in score.exercises.items():
                writer.writerow([score.student, name, item.points, item.max_points, item.reason])
            writer.writerow([score.student, "total", score.total, score.max_points, ""])
    data = {
        "chapter": chapter.zfill(2),
        "students": {
            score.student: {
                "total": score.total,
                "max_points": score.max_points,
                "seconds": round(score.seconds, 2),
                "seed": score.seed,
                "exercises": {name: asdict(item) for name, item in score.exercises.items()},
            }
            for score in scores
        },
    }
    (out / "scores.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnncourse.grade", description=__doc__.split("\n")[0]
    )
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--chapter", required=True, help="chapter number, e.g. 01")
    parser.add_argument("--out", type=Path, required=True, help="folder for scores.csv/json")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per submission")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory per submission")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder.")
    try:
        exercises(args.chapter)
    except ValueError as error:
        parser.error(str(error))
    scores = grade_folder(
        args.submissions, args.chapter, timeout=args.timeout, memory_mb=args.memory_mb
    )
    write_scores(scores, args.out, args.chapter)
    print(f"graded {len(scores)} submissions into {args.out / 'scores.csv'} and scores.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
