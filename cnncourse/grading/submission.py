"""Grade one submitted notebook: its solution cells run in a sandboxed worker, its scores here.

:func:`grade_submission` reads the notebook (a regular file, never through a link), draws fresh
random cases, builds each call's arguments in this process, and runs a worker in the sandbox
(:mod:`cnncourse.grading.runner`), which kills every process the submission started when it is
done. The references are computed and the
outputs compared here, in the grader's process: the sandbox never holds a reference.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnncourse.checks import Exercise, Opaque
from cnncourse.checks.core import error_sentence, fresh_generator, not_implemented_sentence
from cnncourse.grading.protocol import FAILED
from cnncourse.grading.runner import Run, run_worker
from cnncourse.grading.sandbox import Sandbox

__all__ = [
    "ExerciseScore",
    "SubmissionScore",
    "clean",
    "grade_submission",
    "read_notebook",
    "solution_cells",
]

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
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

    def zero(self, specs: Sequence[Exercise], reason: str) -> SubmissionScore:
        """Every exercise at 0 points, for ``reason``."""
        for spec in specs:
            self.exercises[spec.name] = ExerciseScore(0, spec.points, reason)
        return self


def clean(text: str, limit: int = 300) -> str:
    """Untrusted text as one printable line, cut to ``limit`` characters: white space (newlines
    included) becomes one space; control and format characters (an ANSI escape's ESC, a
    right-to-left override) become ``\\xNN`` or ``\\uNNNN``; undecodable bytes (kept by
    ``surrogateescape``) become ``\\xNN``."""

    def shown(c: str) -> str:
        if c.isprintable() or c.isspace():
            return c
        if 0xDC80 <= ord(c) <= 0xDCFF:
            return f"\\x{ord(c) - 0xDC00:02x}"
        return f"\\x{ord(c):02x}" if ord(c) <= 0xFF else f"\\u{ord(c):04x}"

    line = " ".join("".join(shown(c) for c in str(text)).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def read_notebook(path: Path) -> bytes:
    """The bytes of a submitted notebook: a regular file, opened without following a link.

    Raises:
        ValueError: one sentence saying why it cannot be read as a submission.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise ValueError(f"it cannot be opened ({clean(error.strerror or str(error))})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"it is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
        return handle.read(MAX_NOTEBOOK_BYTES + 1)


def solution_cells(notebook: Any) -> list[dict[str, str]]:
    """The code cells nbgrader marks as solutions; without such metadata, those with the marker.

    Raises:
        TypeError: if ``notebook`` does not have the shape of a notebook.
    """
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise TypeError("it has no list of cells")
    code: list[tuple[str, str, bool]] = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = (
            "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else source
        )
        meta = cell.get("metadata")
        meta = meta.get("nbgrader") if isinstance(meta, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        if isinstance(source, str):
            code.append((source, str(meta.get("grade_id", "")), meta.get("solution") is True))
    marked = [(src, gid) for src, gid, solution in code if solution]
    if not marked:
        marked = [(src, gid) for src, gid, _ in code if MARKER in src]
    return [{"source": src, "grade_id": gid} for src, gid in marked]


def _decode(value: Any) -> Any:
    if type(value) is dict:
        return Opaque(clean(value.get("__opaque__", "object"), 80), clean(value.get("detail", "")))
    if type(value) in (list, tuple):
        return type(value)(_decode(item) for item in value)
    return value


def _score(exercise: Exercise, cases: list[Any], result: dict[str, Any]) -> tuple[bool, str]:
    """Compare the worker's raw outputs with the references, computed here."""
    name = exercise.name
    if result.get("status") == "missing":
        error = clean(result.get("cell_error") or "", 200)
        because = f": its solution cell raised {error}" if error else ""
        return False, f"{name} is not defined in the submission{because}."
    if result.get("status") == "not callable":
        return False, f"{name} is a {clean(result.get('type', '?'), 60)}, not a function."
    entries = result["entries"]
    for index, case in enumerate(cases):
        if index >= len(entries) or type(entries[index]) not in (list, tuple):
            return False, f"the grader got no output of {name} for {exercise.describe(case)}."
        entry = entries[index]
        if entry[0] == "not implemented":
            return False, not_implemented_sentence(name)
        if entry[0] == "error" and len(entry) == 3:
            return False, error_sentence(
                name, clean(entry[1], 100), clean(entry[2]), exercise.describe(case)
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


def _stopped(name: str, run: Run, timeout: float) -> str:
    """Why an exercise got no result."""
    before = f"before {name} was graded, so it gets no points."
    if run.timed_out:
        return f"the submission did not finish within {timeout:g} s (an endless loop?) {before}"
    if run.broken is not None:
        return f"{run.broken} {before}"
    if run.status is None:
        return f"the grader's worker could not send its results (the pipe was closed) {before}"
    if run.status == FAILED:
        return (
            "the grader's worker could not send its results (did the submission close or write "
            f"into its pipe?) {before}"
        )
    if run.status < 0:
        number = -run.status
        signame = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        return f"the grading process was killed by {signame} (a resource limit?) {before}"
    return (
        f"the submission ended the grading process (exit status {run.status}, as os._exit does) "
        f"{before}"
    )


def grade_submission(
    path: Path,
    specs: Sequence[Exercise],
    *,
    sandbox: Sandbox,
    student: str | None = None,
    timeout: float = 60.0,
    memory_mb: int = 2048,
    seed: int | None = None,
) -> SubmissionScore:
    """Grade one submitted notebook; never raises for anything the submission contains."""
    started = time.monotonic()
    generator, seed = fresh_generator(seed)
    score = SubmissionScore(student=student or path.stem, seed=seed)
    try:
        cells = solution_cells(json.loads(read_notebook(path)))
    except (ValueError, TypeError, RecursionError) as error:
        score.zero(specs, f"the submission is not a valid notebook ({clean(str(error), 150)}).")
    else:
        if cells:
            _grade_cells(score, cells, specs, generator, sandbox, timeout, memory_mb)
        else:
            score.zero(specs, f"the submission has no solution cells (none marked {MARKER!r}).")
    score.seconds = time.monotonic() - started
    return score


def _grade_cells(
    score: SubmissionScore,
    cells: list[dict[str, str]],
    specs: Sequence[Exercise],
    generator: torch.Generator,
    sandbox: Sandbox,
    timeout: float,
    memory_mb: int,
) -> None:
    cases = {spec.name: spec.make_cases(generator) for spec in specs}
    job = {
        "cells": cells,
        "memory_mb": memory_mb,
        "timeout": timeout,
        "exercises": [
            {
                "name": spec.name,
                "grade_id": spec.grade_id,
                "guard": spec.guard,
                "calls": [spec.build(case) for case in cases[spec.name]],
            }
            for spec in specs
        ],
    }
    buffer = io.BytesIO()
    torch.save(job, buffer)
    run = run_worker(sandbox, buffer.getvalue(), timeout)
    if not run.ready:
        tail = clean(run.log.decode(errors="replace"), 1000)
        raise RuntimeError(f"the grader's worker failed to start: {tail}")
    for spec in specs:
        result = run.results.get(spec.name)
        if result is None:
            passed, reason = False, _stopped(spec.name, run, timeout)
        else:
            try:
                passed, reason = _score(spec, cases[spec.name], result)
            except Exception as error:  # noqa: BLE001 - an output compare cannot handle
                passed = False
                reason = f"{spec.name}'s output could not be checked ({clean(str(error), 150)})."
        score.exercises[spec.name] = ExerciseScore(
            spec.points if passed else 0, spec.points, reason
        )
