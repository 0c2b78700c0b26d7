"""One build of the course book per test session, shared by the book and the browser tests.

The book is built from a copy of its sources in a temporary folder, so the tests never touch the
working tree's ``_build/`` and never see a stale page. The copy gets one extra page, a notebook with
saved ipywidgets state and a progress-bar widget output, because such outputs are what make myst-nb
pull require.js and the widget manager from a CDN (``tests/test_book.py`` checks they do not).

``tests/conftest.py`` imports the fixtures :func:`book_root` and :func:`html_dir` from here.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
#: What a copy of the book needs: its configuration, its prose pages and its chapters.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "notebooks")
WIDGET_PAGE = "notebooks/widget_probe"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROGRESS_TEXT = "100%|##########| 3/3 [00:00<00:00, 10.0it/s]"


def _load_build_tool() -> ModuleType:
    path = REPO_ROOT / "tools" / "build_book.py"
    spec = importlib.util.spec_from_file_location("build_book", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_tool = _load_build_tool()


def copy_book_sources(target: Path, names: tuple[str, ...] = BOOK_SOURCES) -> Path:
    """Copy the book's sources (``names``, relative to the repository) into ``target``."""
    for name in names:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
            )
        else:
            shutil.copy2(source, target / name)
    return target


def widget_notebook() -> nbformat.NotebookNode:
    """A notebook like a committed chapter that still has tqdm.auto widget state in it."""
    model_id = "0123456789abcdef0123456789abcdef"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["widgets"] = {
        WIDGET_STATE: {
            "state": {
                model_id: {
                    "model_name": "FloatProgressModel",
                    "model_module": "@jupyter-widgets/controls",
                    "model_module_version": "2.0.0",
                    "state": {"value": 3, "max": 3},
                }
            },
            "version_major": 2,
            "version_minor": 0,
        }
    }
    output = nbformat.v4.new_output(
        "display_data",
        data={
            "text/plain": PROGRESS_TEXT,
            WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": model_id},
        },
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Widget probe\n\nA progress bar saved as a widget."),
        nbformat.v4.new_code_cell("progress()", execution_count=1, outputs=[output]),
    ]
    nbformat.validate(nb)
    return nb


@pytest.fixture(scope="session")
def book_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the book's sources, plus the widget probe page at the end of the chapters."""
    root = copy_book_sources(tmp_path_factory.mktemp("book"))
    nbformat.write(widget_notebook(), root / f"{WIDGET_PAGE}.ipynb")
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    chapters = next(part for part in toc["parts"] if part["caption"] == "Chapters")
    chapters["chapters"].append({"file": WIDGET_PAGE})
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def html_dir(book_root: Path) -> Path:
    """Build the copy with -W; ``build_book`` raises if the build or its offline check fails."""
    return build_tool.build_book(book_root, repo_root=REPO_ROOT, fresh=True)
