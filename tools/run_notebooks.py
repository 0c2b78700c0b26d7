"""Execute the course notebooks headlessly with papermill, in the full or the smoke profile.

Examples (from the repository root)::

    uv run --frozen python tools/run_notebooks.py --profile smoke          # all, into _build/
    uv run --frozen python tools/run_notebooks.py --profile smoke 01 03    # chapters 1 and 3
    uv run --frozen python tools/run_notebooks.py --profile full --inplace 01_motivation
    uv run --frozen python tools/run_notebooks.py --profile full --inplace --folder solutions 01

A chapter with graded exercises has its source, with the solutions, in ``solutions/``; run that
with ``--folder solutions`` and then regenerate ``notebooks/`` with
``tools/make_student_copies.py``.

The profile reaches the kernel as the ``CNNCOURSE_PROFILE`` environment variable and, except with
``--inplace``, also as the papermill parameter ``PROFILE`` (``-p PROFILE <profile>``). Each
notebook runs with its own folder as the working directory. ``CNNCOURSE_DATA`` defaults to
``../data`` (``<repo>/data`` seen from ``notebooks/`` or ``solutions/``: relative, so that the
data root the chapters print names no path on the machine that ran them; an absolute
``CNNCOURSE_DATA`` inside the repository is rewritten the same way) and
``CNNCOURSE_DATA_MIRROR`` to ``<repo>/../shared/data`` where that folder exists.
Before the first notebook runs, every data set the mirror holds and the data root lacks is copied
into the data root (``fill_data_root``), so that the chapters' setup reports read "found" and
name no mirror.

Every executed notebook is cleaned (``tools.notebook_clean.clean_notebook``): progress-bar
widgets become text, widget state, timestamps and absolute paths go. The result goes to
``--output-dir`` (default ``_build/executed/<profile>/``) and keeps papermill's injected
parameters cell, which records the run.

``--inplace`` (full profile only: committed outputs come from it) also writes the run back into
the committed notebook, only if it succeeded (a failed run leaves it untouched), then checks it
against the hygiene rules. Such a run passes no papermill parameter, so papermill injects no cell:
the notebook's own ``parameters`` cell (``PROFILE = None``, checked before the run) defers to
``CNNCOURSE_PROFILE=full``, and the committed file is exactly what learners open, every output
the one its own source produces, execution counts 1..n. (Injecting ``PROFILE = "full"`` and
deleting the cell afterwards would leave outputs computed with a value the notebook does not hold.)

Exit status: 0 when every notebook ran (and, with ``--inplace``, passes the hygiene rules),
1 otherwise, 2 for bad arguments. Each failure names the notebook and the cell that failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from tools.notebook_clean import ROOT, clean_notebook
from tools.notebook_hygiene import check_notebook, check_parameters_cell

NOTEBOOKS_DIR = ROOT / "notebooks"
PROFILES = ("full", "smoke")
KERNEL = "python3"
SMOKE_CELL_TIMEOUT = 600
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass
class RunResult:
    """The outcome of one notebook's run."""

    notebook: Path
    output: Path
    seconds: float = 0.0
    failure: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.problems


def chapter_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The chapters, ``NN_*.ipynb`` in ``folder``, sorted."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def select_notebooks(names: Sequence[str], folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Resolve command-line names to notebooks; none given means every chapter.

    A name is a path to a notebook, a chapter's file name or stem (``01_motivation``), or its
    number (``1`` or ``01``).

    Raises:
        ValueError: naming the first name that matches no notebook, and the chapters there are.
    """
    chapters = chapter_notebooks(folder)
    if not names:
        if not chapters:
            raise ValueError(f"there is no NN_*.ipynb notebook in {folder}.")
        return chapters
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            matches = [path.resolve()]
        else:
            number = name.zfill(2) if name.isdigit() else None
            matches = [p for p in chapters if name in (p.name, p.stem) or p.name[:2] == number]
        if len(matches) != 1:
            known = ", ".join(p.stem for p in chapters) or "none"
            raise ValueError(
                f"{name!r} names no single notebook; give a path, a chapter number or one of: "
                f"{known}."
            )
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def configure_environment(
    profile: str, root: Path = ROOT, environ: MutableMapping[str, str] | None = None
) -> None:
    """Set the variables the kernels inherit: profile, data root, data mirror, inline plots."""
    env = os.environ if environ is None else environ
    env["CNNCOURSE_PROFILE"] = profile
    data = env.get("CNNCOURSE_DATA")
    if data is None:
        env["CNNCOURSE_DATA"] = os.path.join("..", "data")  # from each notebook's folder
    elif os.path.isabs(data) and Path(data).resolve().is_relative_to(root.resolve()):
        # a data root inside the repository, named absolutely, would put this machine's path into
        # the outputs: name it from the notebooks' folders (one level below the root) instead
        env["CNNCOURSE_DATA"] = os.path.join("..", os.path.relpath(Path(data).resolve(), root.resolve()))
    mirror = root.parent / "shared" / "data"
    if "CNNCOURSE_DATA_MIRROR" not in env and mirror.is_dir():
        env["CNNCOURSE_DATA_MIRROR"] = str(mirror)
    # Figures must be stored as images: a non-inline backend (MPLBACKEND=Agg from a test shell)
    # would leave the committed notebooks without their plots.
    env["MPLBACKEND"] = INLINE_BACKEND


def _running_cell(output: Path) -> str | None:
    """The cell a timeout or a dead kernel interrupted, from the notebook papermill saved."""
    with contextlib.suppress(Exception):  # the partial notebook is only a hint
        nb = nbformat.read(str(output), as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
                first = cell.source.splitlines()[0] if cell.source else ""
                return f"cell {index} of the executed notebook: {first}"
    return None


def _describe_failure(error: BaseException, output: Path) -> str:
    """One paragraph naming the failed cell, its first lines and where the partial run is."""
    if isinstance(error, PapermillExecutionError):
        source = "\n".join("    " + line for line in error.source.splitlines()[:4])
        what = (
            f"cell In [{error.exec_count}] (cell {error.cell_index} of the executed notebook) "
            f"raised {error.ename}: {error.evalue}\n{source}"
        )
    else:
        what = f"{type(error).__name__}: {error}".strip()
        running = _running_cell(output)
        if running:
            what += f"\n    while running {running}"
    return f"{what}\n    partial notebook: {output}"


def run_notebook(
    notebook: Path,
    output: Path,
    *,
    profile: str,
    inplace: bool = False,
    kernel: str = KERNEL,
    cell_timeout: float | None = None,
    log_output: bool = False,
) -> RunResult:
    """Execute ``notebook`` into ``output`` (and, with ``inplace``, back into ``notebook``)."""
    result = RunResult(notebook, output)
    if inplace:
        source = nbformat.read(str(notebook), as_version=4)
        problems = check_parameters_cell(source)
        if problems:
            result.failure = "not run: " + "; ".join(problems)
            return result
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        executed = papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=None if inplace else {"PROFILE": profile},
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=log_output,
            execution_timeout=cell_timeout,
        )
    except Exception as error:  # noqa: BLE001 - every failure is reported, then the next runs
        result.seconds = time.perf_counter() - start
        result.failure = _describe_failure(error, output)
        return result
    result.seconds = time.perf_counter() - start
    nbformat.write(clean_notebook(executed), str(output))
    if inplace:
        # remove_injected only matters for a stale injected cell committed by mistake
        committed = clean_notebook(executed, remove_injected=True)
        if "papermill" in committed.metadata:  # the committed file is the run's output
            committed.metadata.papermill["output_path"] = committed.metadata.papermill.get(
                "input_path"
            )
        nbformat.write(committed, str(notebook))
        checks = check_notebook(notebook)
        result.problems = [f"{rule}: {p}" for rule, found in checks.items() for p in found]
    return result


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Execute course notebooks with papermill in the full or the smoke profile.",
        epilog="Exit status: 0 if every notebook ran cleanly, 1 if any failed, 2 on bad usage.",
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        help="notebook paths, chapter names (01_motivation) or numbers (1); default: all chapters",
    )
    parser.add_argument("--profile", choices=PROFILES, required=True, help="run profile")
    parser.add_argument(
        "--inplace",
        action="store_true",
        help="also write the executed notebook back over the committed one (full profile only; "
        "no papermill parameter is injected; a failed run leaves the committed notebook alone)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="folder for the executed notebooks (default: _build/executed/<profile>/)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        help=f"seconds one cell may run; 0 means no limit (default: {SMOKE_CELL_TIMEOUT} in the "
        "smoke profile, no limit in full)",
    )
    parser.add_argument(
        "--folder",
        type=Path,
        default=NOTEBOOKS_DIR,
        help="where chapter names and numbers are looked up (default: notebooks/; "
        "solutions/ runs the exercise sources, which hold the solutions)",
    )
    parser.add_argument("--kernel", default=KERNEL, help=f"Jupyter kernel (default: {KERNEL})")
    parser.add_argument("--log-output", action="store_true", help="stream cell output to stderr")
    parser.add_argument(
        "--fail-fast", action="store_true", help="stop at the first notebook that fails"
    )
    args = parser.parse_args(argv)
    if args.inplace and args.profile != "full":
        parser.error(
            "--inplace writes the committed notebooks, whose outputs come from the full profile; "
            "use --output-dir for a smoke run."
        )
    if args.cell_timeout is not None and args.cell_timeout < 0:
        parser.error(f"--cell-timeout is {args.cell_timeout}, but it must be 0 or more seconds.")
    return args


def fill_data_root(notebooks_dir: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """Copy every data set the mirror holds, and the data root lacks, into the data root.

    Run before a chapter executes, so that its setup report reads "found" for every data set and
    never names the mirror (a data set is otherwise copied only when a chapter first loads it).
    The data root is ``CNNCOURSE_DATA`` seen from ``notebooks_dir``, as the kernels will see it.
    Returns ``cnncourse.data.data_status`` afterwards.
    """
    from cnncourse import data

    env = os.environ if environ is None else environ
    root = (notebooks_dir / env.get("CNNCOURSE_DATA", os.path.join("..", "data"))).resolve()
    with contextlib.redirect_stderr(io.StringIO()):  # the offline-split NOTE is for the chapters
        data.fill_from_mirror(root)
    return data.data_status(root)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected notebooks and print one line per notebook and a summary."""
    args = parse_args(argv)
    try:
        notebooks = select_notebooks(args.notebooks, args.folder.resolve())
    except ValueError as error:
        print(f"run_notebooks: {error}", file=sys.stderr)
        return 2
    if args.cell_timeout is None:
        timeout = SMOKE_CELL_TIMEOUT if args.profile == "smoke" else None
    else:
        timeout = args.cell_timeout or None
    output_dir = (args.output_dir or ROOT / "_build" / "executed" / args.profile).resolve()
    configure_environment(args.profile)
    fill_data_root(args.folder.resolve())
    if args.log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    results: list[RunResult] = []
    for number, notebook in enumerate(notebooks, 1):
        print(f"[{number}/{len(notebooks)}] {_display(notebook)} ({args.profile})", flush=True)
        result = run_notebook(
            notebook,
            output_dir / notebook.name,
            profile=args.profile,
            inplace=args.inplace,
            kernel=args.kernel,
            cell_timeout=timeout,
            log_output=args.log_output,
        )
        results.append(result)
        if result.failure:
            print(f"    FAILED after {result.seconds:.1f} s: {result.failure}", flush=True)
        elif result.problems:
            print(f"    ran in {result.seconds:.1f} s but breaks the hygiene rules:", flush=True)
            for problem in result.problems:
                print(f"      - {problem}", flush=True)
        else:
            target = notebook if args.inplace else result.output
            print(f"    ok in {result.seconds:.1f} s -> {_display(target)}", flush=True)
        if args.fail_fast and not result.ok:
            break

    failed = [r for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    print(f"\n{'notebook':<40} {'seconds':>8}  result")
    for r in results:
        print(f"{r.notebook.name:<40} {r.seconds:>8.1f}  {'ok' if r.ok else 'FAILED'}")
    print(f"total {total:.1f} s")
    print(f"notebooks: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or len(results) < len(notebooks) else 0


if __name__ == "__main__":
    sys.exit(main())
