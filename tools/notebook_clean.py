"""Clean an executed notebook for keeping: what papermill wrote becomes what learners open.

:func:`clean_notebook` turns progress-bar widgets into plain text (a tqdm bar into its final line;
a bar closed with ``leave=False`` vanishes, as it does in a live notebook), drops the widget state
and the per-cell execution timestamps, makes papermill's recorded paths repository-relative and,
on request, removes papermill's injected parameters cell and renumbers the execution counts 1..n.
Used by ``tools/run_notebooks.py``; the rules a kept notebook obeys are in
``tools/notebook_hygiene.py``.
"""

from __future__ import annotations

import copy
import html
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

__all__ = ["INJECTED_TAG", "ROOT", "WIDGET_VIEW", "clean_notebook", "renumber_execution_counts"]

ROOT = Path(__file__).resolve().parent.parent
INJECTED_TAG = "injected-parameters"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_KEPT_PAPERMILL_KEYS = (
    "default_parameters",
    "duration",
    "exception",
    "input_path",
    "output_path",
    "parameters",
    "version",
)
_BAR_PARTS = " ▏▎▍▌▋▊▉"


def _tags(cell: NotebookNode) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def _text_bar(fraction: float, width: int = 10) -> str:
    """A text progress bar like tqdm's: ``███▎      `` for a third."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled, rest = divmod(fraction * width, 1)
    bar = "█" * int(filled)
    if int(filled) < width:
        bar += _BAR_PARTS[int(rest * len(_BAR_PARTS))]
    return bar.ljust(width)


def _tqdm_bar(state: dict[str, Any], model_id: str) -> tuple[bool, str] | None:
    """``(closed, text)`` for a tqdm.notebook bar in the widget state, or None if it is not one.

    tqdm.notebook draws an HBox of (HTML, progress, HTML). At close it styles the progress bar
    ``success`` (finished) or ``danger`` (interrupted), except with ``leave=False``, where it
    closes the widget instead and the style stays unset: such a bar vanishes in a live notebook,
    so it is reported as closed.
    """

    def model(ref: object) -> dict[str, Any]:
        key = ref.removeprefix("IPY_MODEL_") if isinstance(ref, str) else ""
        found = state.get(key, {})
        return found if isinstance(found, dict) else {}

    box = model(model_id)
    children = box.get("state", {}).get("children", [])
    if box.get("model_name") != "HBoxModel" or len(children) != 3:
        return None
    left, progress, right = (model(child) for child in children)
    names = (left.get("model_name"), progress.get("model_name"), right.get("model_name"))
    if names[0] != "HTMLModel" or names[2] != "HTMLModel" or "Progress" not in str(names[1]):
        return None

    def text(widget: dict[str, Any]) -> str:
        return html.unescape(str(widget["state"].get("value", ""))).replace("\u2007", " ")

    bar_state = progress["state"]
    maximum, value = bar_state.get("max") or 0, bar_state.get("value") or 0
    line = text(right)
    if text(left):
        fraction = value / maximum if maximum else 0.0
        line = f"{text(left)}|{_text_bar(fraction)}|{line}"
    return bar_state.get("bar_style", "") in ("", "info"), line


def _clean_outputs(outputs: list[NotebookNode], state: dict[str, Any]) -> list[NotebookNode]:
    """Replace widget views by text: a tqdm bar by its final line, another widget by its fallback."""
    cleaned = []
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_VIEW not in data:
            cleaned.append(output)
            continue
        new = copy.deepcopy(output)
        view = new.data.pop(WIDGET_VIEW)
        bar = _tqdm_bar(state, view.get("model_id", "")) if isinstance(view, dict) else None
        if bar is not None:
            closed, line = bar
            if closed:
                continue
            new.data["text/plain"] = line
        if new.data:
            new.metadata = {}
            cleaned.append(new)
    return cleaned


def _portable_path(value: object, root: Path) -> object:
    """An absolute path as a repository-relative POSIX path, or its bare name outside the repo."""
    if not isinstance(value, str) or not Path(value).is_absolute():
        return value
    path = Path(value)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def renumber_execution_counts(nb: NotebookNode) -> None:
    """Number the executed code cells 1..n top to bottom, their ``execute_result`` outputs too."""
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = count


def clean_notebook(
    nb: NotebookNode, *, root: Path = ROOT, remove_injected: bool = False
) -> NotebookNode:
    """Return a copy of an executed notebook fit to keep: no widgets, timestamps or machine paths.

    Args:
        nb: the notebook papermill wrote.
        root: the repository root; recorded paths become relative to it.
        remove_injected: drop any papermill ``injected-parameters`` cell and renumber the
            execution counts 1..n. ``run_notebooks.py --inplace`` injects none (it passes the
            profile through ``CNNCOURSE_PROFILE`` only); this removes a stale one that a source
            notebook carried, which committed notebooks must not (learners get their own
            ``parameters`` cell).
    """
    if not isinstance(nb, NotebookNode):
        raise TypeError(f"nb is {type(nb).__name__}, but it must be an nbformat NotebookNode.")
    nb = copy.deepcopy(nb)
    widgets = nb.metadata.pop("widgets", {})
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.outputs = _clean_outputs(cell.outputs, state)
    papermill = nb.metadata.get("papermill")
    if isinstance(papermill, dict):
        nb.metadata.papermill = {
            key: _portable_path(papermill[key], root) if key.endswith("_path") else papermill[key]
            for key in _KEPT_PAPERMILL_KEYS
            if key in papermill
        }
    if remove_injected:
        nb.cells = [cell for cell in nb.cells if INJECTED_TAG not in _tags(cell)]
        renumber_execution_counts(nb)
    return nb
