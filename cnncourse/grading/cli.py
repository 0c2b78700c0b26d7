"""Grade a folder of submitted notebooks into a score sheet (``scores.csv`` and ``scores.json``).

Usage (from the repository root)::

    uv run --frozen python -m cnncourse.grading SUBMISSIONS_DIR --chapter 01 --out DIR \\
        [--timeout 60] [--memory-mb 2048] [--unsafe-no-sandbox]

Every entry of ``SUBMISSIONS_DIR`` gets rows in the sheet: each regular ``*.ipynb`` file (any
case) is one student's submission, named by its stem, graded in the bubblewrap sandbox
(:mod:`cnncourse.grading.sandbox`); anything else (a folder, a link, a named pipe, another kind
of file) gets 0 points and one sentence saying why. Names are shown with control characters and
undecodable bytes escaped, and made unique. Where no sandbox can be started the grader refuses,
in one sentence naming the fix; ``--unsafe-no-sandbox`` grades without one (for an instructor's
own trusted files), and the sheet says so on every row.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from cnncourse.checks import Exercise, exercises
from cnncourse.checks.core import fresh_generator
from cnncourse.grading.sandbox import (
    Sandbox,
    SandboxUnavailable,
    bubblewrap,
    stage_package,
    unsafe,
)
from cnncourse.grading.submission import SubmissionScore, clean, grade_submission

__all__ = ["check_view", "grade_folder", "main", "write_scores"]

PROG = "python -m cnncourse.grading"


def _refusal(mode: int) -> str:
    """Why an entry that is not a regular ``.ipynb`` file is not graded."""
    if stat.S_ISLNK(mode):
        return (
            "it is a symbolic link, which the grader does not follow; put the notebook itself "
            "in the folder."
        )
    if stat.S_ISDIR(mode):
        return (
            "it is a folder, not a notebook; put each notebook directly in the submissions folder."
        )
    if stat.S_ISFIFO(mode):
        return "it is a named pipe (FIFO), not a notebook file."
    if stat.S_ISREG(mode):
        return (
            "its name does not end in .ipynb, so it is not graded; rename it if it is a notebook."
        )
    return "it is not a regular file (a socket or a device), so it is not graded."


def _entries(folder: Path) -> list[tuple[str, Path, str | None]]:
    """Each entry of ``folder`` (sorted by its bytes): a unique printable name, its path, and
    why it is not graded (None for a submission)."""
    found: list[tuple[str, Path, str | None]] = []
    taken: set[str] = set()
    for raw in sorted(os.listdir(os.fsencode(folder))):
        name = os.fsdecode(raw)
        path = folder / name
        refusal: str | None
        try:
            mode = os.lstat(path).st_mode
        except OSError as error:
            refusal = f"it cannot be read ({clean(error.strerror or str(error))})."
        else:
            notebook = stat.S_ISREG(mode) and name.lower().endswith(".ipynb")
            refusal = None if notebook else _refusal(mode)
        shown = clean(name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name, 120)
        unique, n = shown or "(no name)", 1
        while unique in taken:
            n += 1
            unique = f"{shown} ({n})"
        taken.add(unique)
        found.append((unique, path, refusal))
    return found


def check_view(specs: Sequence[Exercise], staged: Path) -> None:
    """Check that the arguments and the guard of every exercise in ``specs`` can be
    rebuilt in the sandbox, whose copy of the package is ``staged``: every ``cnncourse`` module
    their pickle names must be in it.

    Raises:
        RuntimeError: naming the exercise and the class the sandbox cannot see (a grader bug).
    """
    named: set[tuple[str, str]] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            named.add((module, name))
            return super().find_class(module, name)

    for spec in specs:
        named.clear()
        cases = spec.make_cases(fresh_generator(0)[0])
        sent = ([spec.build(case) for case in cases[:3]], spec.guard)
        Recorder(io.BytesIO(pickle.dumps(sent))).load()
        for module, name in sorted(named):
            parts = module.split(".")
            if parts[0] == "cnncourse" and not (
                staged.parent.joinpath(*parts).with_suffix(".py").is_file()
                or staged.parent.joinpath(*parts, "__init__.py").is_file()
            ):
                raise RuntimeError(
                    f"{spec.name}'s arguments include {module}.{name}, which the sandbox cannot "
                    "see (its module holds references); move it to cnncourse/checks/fixtures.py."
                )


def grade_folder(
    folder: Path, chapter: str, *, sandbox: Sandbox, timeout: float = 60.0, memory_mb: int = 2048
) -> list[SubmissionScore]:
    """Grade every entry of ``folder``, printing one line per entry; never stops early."""
    specs = exercises(chapter)
    scores = []
    for student, path, refusal in _entries(folder):
        score = SubmissionScore(student=student)
        if refusal is not None:
            score.zero(specs, refusal)
        else:
            try:
                score = grade_submission(
                    path, specs, sandbox=sandbox, student=student, timeout=timeout,
                    memory_mb=memory_mb,
                )  # fmt: skip
            except Exception as error:  # noqa: BLE001 - a grader bug must not stop the batch
                score.zero(
                    specs,
                    f"the grader failed on this submission ({clean(str(error), 400)}); report it.",
                )
        line = f"{student}: {score.total}/{score.max_points} points in {score.seconds:.1f} s"
        print(line if refusal is None else f"{line} ({refusal})", flush=True)
        scores.append(score)
    return scores


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_scores(scores: Sequence[SubmissionScore], out: Path, chapter: str, sandbox: str) -> None:
    """Write ``scores.csv`` (one row per student and exercise, plus a total row; the last column
    names the sandbox) and ``scores.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "exercise", "points", "max_points", "reason", "sandbox"])
        for score in scores:
            for name, item in score.exercises.items():
                writer.writerow(
                    [
                        _cell(score.student),
                        name,
                        item.points,
                        item.max_points,
                        _cell(item.reason),
                        sandbox,
                    ]
                )
            writer.writerow(
                [_cell(score.student), "total", score.total, score.max_points, "", sandbox]
            )
    data = {
        "chapter": chapter.zfill(2),
        "sandbox": sandbox,
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
    (out / "scores.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _hidden(*paths: Path) -> list[Path]:
    """Folders the sandbox must not see, besides everything it is not given: the submissions,
    the score sheet, and the course's solutions and tests."""
    root = Path(__file__).resolve().parent.parent.parent
    return [p.resolve() for p in (*paths, root / "solutions", root / "tests")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--chapter", required=True, help="chapter number, e.g. 01")
    parser.add_argument("--out", type=Path, required=True, help="folder for scores.csv/json")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per submission")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory per submission")
    parser.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade without the bubblewrap sandbox: only for files you trust (noted in the sheet)",
    )
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder; give the folder of submitted notebooks.")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file; give a folder for the score sheet.")
    if not 0 < args.timeout <= 3600 or not 0 < args.memory_mb <= 1 << 20:
        parser.error("--timeout must be in (0, 3600] seconds and --memory-mb positive.")
    try:
        specs = exercises(args.chapter)
    except ValueError as error:
        parser.error(str(error))
    with tempfile.TemporaryDirectory(prefix="cnncourse-view-") as view:
        if args.unsafe_no_sandbox:
            sandbox = unsafe()
        else:
            staged = stage_package(Path(view))
            check_view(specs, staged)
            try:
                sandbox = bubblewrap(staged, _hidden(args.submissions, args.out))
            except SandboxUnavailable as error:
                print(f"{PROG}: refusing to grade untrusted work: {error}", file=sys.stderr)
                return 2
        scores = grade_folder(
            args.submissions, args.chapter, sandbox=sandbox, timeout=args.timeout,
            memory_mb=args.memory_mb,
        )  # fmt: skip
    write_scores(scores, args.out, args.chapter, sandbox.description)
    print(f"graded {len(scores)} entries into {args.out / 'scores.csv'} and scores.json")
    return 0
