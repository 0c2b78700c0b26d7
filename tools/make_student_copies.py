"""Make the student copies of the chapters with graded exercises, with nbgrader's preprocessors.

Each ``solutions/NN_*.ipynb`` is a chapter's source: it holds the solutions between nbgrader's
``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers (in cells whose nbgrader metadata marks them
as solution cells) and, in the check cells, optional ``### BEGIN HIDDEN TESTS`` /
``### END HIDDEN TESTS`` blocks. Its student copy, ``notebooks/NN_*.ipynb``, is what the book
renders and Colab opens. It is the source with

- every solution region replaced by a stub that raises ``NotImplementedError`` (ClearSolutions),
- every hidden-test region removed (ClearHiddenTests),
- the outputs of solution and check cells cleared (execution counts kept),

and nothing else changed: the other cells keep the outputs of the source's full-profile run.
Only nbgrader's preprocessors are used, as a library: no course directory, no database.

Before copying, each source's Colab setup block and Colab link are regenerated from _config.yml
(see tools/colab_setup.py), in the source and so in its copy.

Usage (from the repository root)::

    uv run --frozen python tools/make_student_copies.py           # write the student copies
    uv run --frozen python tools/make_student_copies.py --check   # exit 1 if any is stale
    uv run --frozen python tools/make_student_copies.py 07        # only chapter 7 (number or name)

Exit status: 0 when every copy is (or, without ``--check``, now is) up to date, 1 when ``--check``
found a stale or missing copy, 2 when a source cannot be converted.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from tools.colab_setup import repository, with_setup
from tools.notebook_hygiene import ROOT

SOLUTIONS_DIR = ROOT / "solutions"
NOTEBOOKS_DIR = ROOT / "notebooks"
CODE_STUB = '# YOUR CODE HERE\nraise NotImplementedError("replace this line with your solution")'


def sources(folder: Path = SOLUTIONS_DIR, chapters: Sequence[str] = ()) -> list[Path]:
    """The chapter sources, ``NN_*.ipynb`` in ``folder``, sorted.

    ``chapters`` (numbers such as ``7`` or ``07``, or names such as ``07_augmentation``) keeps only
    those chapters; empty keeps all.
    """
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())
    if not chapters:
        return found
    wanted = {c.zfill(2) if c.isdigit() else c.removesuffix(".ipynb") for c in chapters}
    return [p for p in found if p.stem in wanted or p.stem[:2] in wanted]


def _graded(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def student_copy(source: NotebookNode) -> NotebookNode:
    """The student copy of a source notebook (the source itself is not modified).

    Raises:
        RuntimeError: from nbgrader, for unbalanced markers or markers outside solution/grade cells.
    """
    nb = copy.deepcopy(source)
    resources: dict[str, object] = {}
    nb, resources = ClearSolutions(code_stub={"python": CODE_STUB}).preprocess(nb, resources)
    nb, resources = ClearHiddenTests().preprocess(nb, resources)
    for cell in nb.cells:
        if _graded(cell):
            cell.source = cell.source.rstrip()
            if cell.cell_type == "code":
                cell.outputs = []
    return nb


def render(nb: NotebookNode) -> str:
    """A notebook as the text written to disk."""
    return nbformat.writes(nb) + "\n"


def target_for(source: Path, notebooks: Path = NOTEBOOKS_DIR) -> Path:
    return notebooks / source.name


def _refreshed_source(source: Path) -> tuple[str, NotebookNode]:
    """A source's text on disk and the source with its Colab setup regenerated."""
    text = source.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    return text, with_setup(nb, source.name, repository())


def stale_copies(
    solutions: Path = SOLUTIONS_DIR, notebooks: Path = NOTEBOOKS_DIR, chapters: Sequence[str] = ()
) -> list[Path]:
    """The sources whose Colab setup is stale and the copies that are missing or stale."""
    stale = []
    for source in sources(solutions, chapters):
        text, refreshed = _refreshed_source(source)
        if render(refreshed) != text:
            stale.append(source)
        target = target_for(source, notebooks)
        expected = render(student_copy(refreshed))
        if not target.is_file() or target.read_text(encoding="utf-8") != expected:
            stale.append(target)
    return stale


def write_copies(
    solutions: Path = SOLUTIONS_DIR, notebooks: Path = NOTEBOOKS_DIR, chapters: Sequence[str] = ()
) -> list[Path]:
    """Write every source whose Colab setup changed and every copy that changed; return those."""
    written = []
    for source in sources(solutions, chapters):
        _, refreshed = _refreshed_source(source)
        for path, content in (
            (source, render(refreshed)),
            (target_for(source, notebooks), render(student_copy(refreshed))),
        ):
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
                written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a student copy is stale"
    )
    parser.add_argument(
        "chapters", nargs="*", help="chapter numbers or names to copy (default: every chapter)"
    )
    args = parser.parse_args(argv)
    chosen = sources(chapters=args.chapters)
    if not chosen:
        wanted = " ".join(args.chapters) or "NN_*.ipynb"
        print(f"make_student_copies: no source {wanted} in {SOLUTIONS_DIR}", file=sys.stderr)
        return 2
    try:
        if args.check:
            stale = stale_copies(chapters=args.chapters)
            for path in stale:
                print(
                    f"stale: {path.relative_to(ROOT)} (regenerate it with "
                    "`uv run --frozen python tools/make_student_copies.py`)"
                )
            if not stale:
                print(f"all {len(chosen)} student copies are up to date")
            return 1 if stale else 0
        written = write_copies(chapters=args.chapters)
    except (RuntimeError, ValueError) as error:
        print(f"make_student_copies: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"{len(chosen)} student copies up to date ({len(written)} written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
