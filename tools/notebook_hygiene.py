"""Notebook hygiene: the rules a committed notebook obeys.

Each ``check_*`` rule takes a notebook and returns a list of problems, one plain sentence each; an
empty list means the rule holds. :func:`check_notebook` runs them all on a file. Used by
``tests/test_notebook_hygiene.py`` (on every committed chapter) and by
``tools/run_notebooks.py --inplace`` (on what it just wrote). :func:`clean_notebook`, which makes
an executed notebook obey them, lives in ``tools/notebook_clean.py`` and is re-exported here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from tools.notebook_clean import (
    INJECTED_TAG,
    ROOT,
    WIDGET_VIEW,
    clean_notebook,
    renumber_execution_counts,
)

__all__ = [
    "INJECTED_TAG",
    "MAX_IMAGE_BYTES",
    "MAX_NOTEBOOK_BYTES",
    "ROOT",
    "RULES",
    "WIDGET_VIEW",
    "check_executed",
    "check_execution_order",
    "check_figure_alt_text",
    "check_file_size",
    "check_has_nbval_check",
    "check_image_sizes",
    "check_no_control_characters",
    "check_no_errors",
    "check_no_machine_paths",
    "check_no_papermill_cells",
    "check_no_widgets",
    "check_notebook",
    "check_parameters_cell",
    "check_valid",
    "clean_notebook",
    "renumber_execution_counts",
]

MAX_NOTEBOOK_BYTES = 1_500_000
MAX_IMAGE_BYTES = 300_000
ERROR_MARKER_TAG = "papermill-error-cell-tag"
SKIP_TAG = "skip-execution"  # nbclient's tag for a cell that is deliberately not run
CHECK_MARKER = "NBVAL_CHECK_OUTPUT"
_BINARY_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp")
_LOOKBEHIND = r"(?<![\w.~-])"  # a path starts a token: not the tail of a URL or a longer name
_MACHINE_PATTERNS = (
    _LOOKBEHIND + r"/(?:work|home|root|tmp|Users|content|var/folders|private/var)/",
    r"\b[A-Za-z]:[\\/]+Users[\\/]",
    r"[\\/](?:site|dist)-packages[\\/]",
)

Rule = Callable[[NotebookNode], list[str]]


# --------------------------------------------------------------------------- helpers


def _tags(cell: NotebookNode) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def _label(index: int, cell: NotebookNode) -> str:
    """How a problem names a cell: its position, its prompt number and its first line."""
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    count = cell.get("execution_count")
    prompt = f" (In [{count}])" if count is not None else ""
    return f"cell {index}{prompt} `{first}`"


def _runs(cell: NotebookNode) -> bool:
    """True for a code cell that a top-to-bottom run executes (nbclient skips blank cells)."""
    return cell.cell_type == "code" and bool(cell.source.strip()) and SKIP_TAG not in _tags(cell)


def _outputs(nb: NotebookNode) -> Iterator[tuple[int, NotebookNode, NotebookNode]]:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            yield index, cell, output


def _kb(size: int) -> str:
    return f"{size / 1000:.0f} kB" if size < 1_000_000 else f"{size / 1_000_000:.2f} MB"


# --------------------------------------------------------------------------- rules


def check_valid(nb: NotebookNode) -> list[str]:
    """The notebook validates against the nbformat schema."""
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return [f"the notebook is not valid nbformat: {error.message}"]
    return []


def check_executed(nb: NotebookNode) -> list[str]:
    """Every non-blank code cell has been run (except those tagged ``skip-execution``)."""
    return [
        f"{_label(i, cell)} has not been executed"
        for i, cell in enumerate(nb.cells)
        if _runs(cell) and cell.get("execution_count") is None
    ]


def check_execution_order(nb: NotebookNode) -> list[str]:
    """Execution counts run 1, 2, 3, ... top to bottom, as after one clean run-all."""
    expected = 1
    for i, cell in enumerate(nb.cells):
        count = cell.get("execution_count") if cell.cell_type == "code" else None
        if count is None:
            continue
        if count != expected:
            return [
                (
                    f"{_label(i, cell)} has execution count {count} where {expected} was "
                    "expected: counts must run 1, 2, 3, ... top to bottom (restart and run all)"
                )
            ]
        for output in cell.outputs:
            if output.output_type == "execute_result" and output.execution_count != count:
                return [f"{_label(i, cell)} has an Out[{output.execution_count}] for In [{count}]"]
        expected += 1
    return []


def check_no_errors(nb: NotebookNode) -> list[str]:
    """No cell output is an error (a traceback)."""
    return [
        f"{_label(i, cell)} has an error output: {output.get('ename')}: {output.get('evalue')}"
        for i, cell, output in _outputs(nb)
        if output.output_type == "error"
    ]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_OR_TAB = re.compile(r"[\x00-\x08\x09\x0b-\x1f\x7f]")  # markdown: a tab is a lost "\t"


def check_no_control_characters(nb: NotebookNode) -> list[str]:
    """No cell source holds a control character other than newline (and, in code, tab).

    One usually means a TeX command written into a non-raw Python string: ``"\\approx"`` loses
    its backslash to the bell character and ``"\\times"`` to a tab, and MathJax then fails on
    the page.
    """
    problems = []
    for i, cell in enumerate(nb.cells):
        pattern = _CONTROL_OR_TAB if cell.cell_type == "markdown" else _CONTROL
        for found in pattern.finditer(cell.source):
            start = max(found.start() - 20, 0)
            context = cell.source[start : found.end() + 20].replace("\n", " ")
            problems.append(
                f"{_label(i, cell)} holds the control character {found.group()!r} in "
                f"{context!r}; write the backslash twice or use a raw string where it was made"
            )
    return problems


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _machine_path_regex(extra: tuple[Path, ...]) -> re.Pattern[str]:
    patterns = list(_MACHINE_PATTERNS)
    for path in extra:
        text = str(path)
        if len(text) > 3:  # "/" or "C:\" would match everything
            patterns.append(_LOOKBEHIND + re.escape(text) + r"(?![\w-])")
    return re.compile("|".join(patterns))


def check_no_machine_paths(nb: NotebookNode, extra: tuple[Path, ...] = ()) -> list[str]:
    """No output or metadata names a path on the machine that ran the notebook.

    ``extra`` adds literal paths to look for; :func:`check_notebook` passes the repository root
    and the user's home.
    """
    regex = _machine_path_regex(extra)
    places: list[tuple[str, object]] = [("the notebook metadata", nb.metadata)]
    for i, cell in enumerate(nb.cells):
        places.append((f"the metadata of {_label(i, cell)}", cell.get("metadata", {})))
        for output in cell.get("outputs", []):
            kept = {key: value for key, value in output.items() if key != "data"}
            kept["data"] = {
                mime: value
                for mime, value in output.get("data", {}).items()
                if mime not in _BINARY_MIME
            }
            places.append((f"an output of {_label(i, cell)}", kept))
    problems = []
    for where, value in places:
        for text in _strings(value):
            match = regex.search(text)
            if match:
                start = max(match.start() - 20, 0)
                snippet = text[start : match.end() + 30].replace("\n", " ")
                problems.append(f"{where} names a machine path: ...{snippet}...")
                break
    return problems


def check_no_widgets(nb: NotebookNode) -> list[str]:
    """No widget state in the metadata and no widget-view outputs (tools/run_notebooks.py cleans)."""
    problems = []
    if "widgets" in nb.metadata:
        problems.append("the notebook metadata holds widget state (metadata.widgets)")
    problems += [
        f"{_label(i, cell)} has a widget output; tqdm bars must be stored as text"
        for i, cell, output in _outputs(nb)
        if WIDGET_VIEW in output.get("data", {})
    ]
    return problems


def check_no_papermill_cells(nb: NotebookNode) -> list[str]:
    """No cell that papermill added: its injected parameters or its error banner."""
    return [
        f"{_label(i, cell)} was added by papermill ({tag}); learners must get the notebook's own "
        "parameters cell (tools/run_notebooks.py --inplace removes it)"
        for i, cell in enumerate(nb.cells)
        for tag in _tags(cell)
        if tag in (INJECTED_TAG, ERROR_MARKER_TAG)
    ]


def _python_source(source: str) -> str:
    """Cell source with IPython syntax (magics, shell escapes) turned into plain Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return source
    return str(TransformerManager().transform_cell(source))


def check_parameters_cell(nb: NotebookNode) -> list[str]:
    """The first code cell is tagged ``parameters`` and sets PROFILE without hard-coding it.

    A literal such as ``PROFILE = "full"`` would override ``CNNCOURSE_PROFILE``, so nbval, which
    sets that variable to ``smoke``, would run the full profile. ``PROFILE = None`` defers to it.
    """
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    if not code:
        return ["the notebook has no code cell, so no `parameters` cell defining PROFILE"]
    index, cell = code[0]
    problems = []
    if "parameters" not in _tags(cell):
        problems.append(f"the first code cell, {_label(index, cell)}, is not tagged `parameters`")
    try:
        tree = ast.parse(_python_source(cell.source))
    except SyntaxError as error:
        return [*problems, f"the parameters cell is not valid Python: {error.msg}"]
    values = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id == "PROFILE"
    ]
    if not values:
        problems.append("the parameters cell does not set PROFILE (e.g. `PROFILE = None`)")
    elif any(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in values):
        problems.append(
            "the parameters cell hard-codes PROFILE to a string, which overrides "
            "CNNCOURSE_PROFILE (nbval's smoke runs); write `PROFILE = None` so the variable decides"
        )
    return problems


def check_has_nbval_check(nb: NotebookNode) -> list[str]:
    """At least one code cell carries ``# NBVAL_CHECK_OUTPUT``, so CI compares a number."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        comments = (line.strip() for line in cell.source.splitlines())
        markers = {c.lstrip("#").strip() for c in comments if c.startswith("#")}
        if CHECK_MARKER in markers or "nbval-check-output" in _tags(cell):
            return []
    return [f"no cell is marked `# {CHECK_MARKER}`, so nbval compares no output of this notebook"]


def check_image_sizes(nb: NotebookNode, limit: int = MAX_IMAGE_BYTES) -> list[str]:
    """No output image is larger than ``limit`` bytes as stored in the notebook (base64 text)."""
    problems = []
    for i, cell, output in _outputs(nb):
        for mime, value in output.get("data", {}).items():
            size = len(value if isinstance(value, str) else json.dumps(value))
            if mime.startswith("image/") and size > limit:
                problems.append(
                    f"{_label(i, cell)} has a {mime} output of {_kb(size)}, over the "
                    f"{_kb(limit)} limit; plot smaller (figsize, dpi) or fewer panels"
                )
    return problems


def check_figure_alt_text(nb: NotebookNode) -> list[str]:
    """Every code cell with an image output describes it in ``metadata.mystnb.image.alt``.

    MyST-NB gives a notebook figure that alt text in the book; without it the image's alt is
    only its file name, which a screen reader reads out as noise.
    """
    problems = []
    for index, cell in enumerate(nb.cells):
        images = [
            o
            for o in cell.get("outputs", [])
            if any(m.startswith("image/") for m in o.get("data", {}))
        ]
        if not images:
            continue
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
        if not (isinstance(alt, str) and alt.strip()):
            problems.append(
                f"{_label(index, cell)} shows a figure without alt text; describe it in the cell's "
                'metadata as {"mystnb": {"image": {"alt": "what the figure shows"}}}'
            )
    return problems


def check_file_size(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> list[str]:
    """The notebook file is at most ``limit`` bytes."""
    size = Path(path).stat().st_size
    if size > limit:
        return [
            (
                f"{Path(path).name} is {_kb(size)}, over the {_kb(limit)} budget for a notebook; "
                "shrink its images or printed output"
            )
        ]
    return []


RULES: dict[str, Rule] = {
    "valid": check_valid,
    "executed": check_executed,
    "execution-order": check_execution_order,
    "no-errors": check_no_errors,
    "no-control-characters": check_no_control_characters,
    "no-machine-paths": lambda nb: check_no_machine_paths(nb, (ROOT, Path.home())),
    "no-widgets": check_no_widgets,
    "no-papermill-cells": check_no_papermill_cells,
    "parameters-cell": check_parameters_cell,
    "nbval-check": check_has_nbval_check,
    "image-sizes": check_image_sizes,
    "figure-alt-text": check_figure_alt_text,
}


def check_notebook(path: Path) -> dict[str, list[str]]:
    """Every rule on the notebook file at ``path``: rule name -> problems (empty when it holds)."""
    try:
        nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except Exception as error:  # noqa: BLE001 - any reading failure is one clear problem
        return {"valid": [f"{Path(path).name} cannot be read as a notebook: {error}"]}
    results = {name: rule(nb) for name, rule in RULES.items()}
    results["file-size"] = check_file_size(path)
    return results
