"""Each hygiene rule fails on a notebook that breaks it and holds on a clean one; the cleaner works.

The notebooks are built with ``nbformat.v4`` in memory or in ``tmp_path``; nothing here runs a
kernel.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from tools.notebook_hygiene import (
    INJECTED_TAG,
    RULES,
    WIDGET_VIEW,
    check_executed,
    check_execution_order,
    check_figure_alt_text,
    check_file_size,
    check_has_nbval_check,
    check_image_sizes,
    check_no_control_characters,
    check_no_errors,
    check_no_machine_paths,
    check_no_papermill_cells,
    check_no_widgets,
    check_notebook,
    check_parameters_cell,
    check_valid,
    clean_notebook,
)


def executed(source: str, count: int | None, *outputs: NotebookNode) -> NotebookNode:
    cell = new_code_cell(source, execution_count=count)
    cell.outputs = list(outputs)
    return cell


def stdout(text: str) -> NotebookNode:
    return new_output("stream", name="stdout", text=text)


def clean() -> NotebookNode:
    """A notebook that obeys every rule."""
    params = executed('PROFILE = None  # "full" or "smoke"', 1)
    params.metadata["tags"] = ["parameters"]
    result = new_output("execute_result", data={"text/plain": "42"}, execution_count=3)
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A chapter\nData lives in /home/someone/data in the prose: fine."),
            params,
            executed("print(URL)", 2, stdout("https://example.org/home/page and data/root/x\n")),
            executed("", None),
            executed("6 * 7", 3, result),
            executed("# NBVAL_CHECK_OUTPUT\nprint(2 + 3)", 4, stdout("5\n")),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_holds_on_a_clean_notebook(name: str) -> None:
    assert RULES[name](clean()) == []


def test_check_notebook_on_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "01_clean.ipynb"
    nbformat.write(clean(), str(path))
    assert check_notebook(path) == {name: [] for name in [*RULES, "file-size"]}


def test_unreadable_file_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json", encoding="utf-8")
    (problem,) = check_notebook(path)["valid"]
    assert "broken.ipynb cannot be read as a notebook" in problem


def test_invalid_nbformat() -> None:
    nb = clean()
    nb.cells[1].outputs.append({"output_type": "stream", "text": "no name"})
    assert "not valid nbformat" in check_valid(nb)[0]


def test_unexecuted_cell() -> None:
    nb = clean()
    nb.cells.insert(3, executed("x = 1", None))
    (problem,) = check_executed(nb)
    assert "cell 3" in problem and "`x = 1`" in problem and "not been executed" in problem


def test_skip_execution_tag_allows_an_unexecuted_cell() -> None:
    nb = clean()
    nb.cells.insert(3, executed("!torchrun train.py", None))
    nb.cells[3].metadata["tags"] = ["skip-execution"]
    assert check_executed(nb) == []


@pytest.mark.parametrize(
    "counts",
    [(1, 3, 2, 4), (2, 3, 4, 5), (1, 2, 2, 3), (1, 2, 3, 7)],
    ids=["swapped", "not-from-1", "repeated", "gap"],
)
def test_out_of_order_execution_counts(counts: tuple[int, ...]) -> None:
    nb = clean()
    code = [cell for cell in nb.cells if cell.get("execution_count") is not None]
    for cell, count in zip(code, counts, strict=True):
        cell.execution_count = count
    (problem,) = check_execution_order(nb)
    assert "expected" in problem and "1, 2, 3" in problem


def test_execute_result_count_must_match_its_cell() -> None:
    nb = clean()
    nb.cells[4].outputs[0].execution_count = 9
    assert "Out[9] for In [3]" in check_execution_order(nb)[0]


def test_error_output() -> None:
    nb = clean()
    error = new_output("error", ename="ValueError", evalue="boom", traceback=["..."])
    nb.cells[2].outputs.append(error)
    (problem,) = check_no_errors(nb)
    assert "ValueError: boom" in problem and "cell 2" in problem


@pytest.mark.parametrize("where", [0, 2])
def test_control_character_in_a_source(where: int) -> None:
    nb = clean()
    nb.cells[where].source += " so $e / 9 \x07pprox 0.23$"
    (problem,) = check_no_control_characters(nb)
    assert "'\\x07'" in problem and f"cell {where}" in problem and "pprox 0.23" in problem


def test_tab_is_a_lost_backslash_in_markdown_but_allowed_in_code() -> None:
    nb = clean()
    nb.cells[0].source += " where $a \times b$"
    nb.cells[2].source += "\t# a tab in code"
    (problem,) = check_no_control_characters(nb)
    assert "cell 0" in problem and "'\\t'" in problem


@pytest.mark.parametrize(
    "text",
    [
        "/work/main/data/MNIST",
        "saved to /tmp/ckpt.pt",
        "'/home/ana/course/x.png'",
        "/root/.cache/torch",
        "/Users/ana/course",
        r"C:\Users\ana\course",
        "/usr/lib/python3/dist-packages/torch/nn.py:12: UserWarning",
        "/opt/venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning",
        "file:///home/ana/report.html",
    ],
)
def test_machine_path_in_an_output(text: str) -> None:
    nb = clean()
    nb.cells[2].outputs.append(new_output("stream", name="stderr", text=text))
    (problem,) = check_no_machine_paths(nb)
    assert "an output of cell 2" in problem


def test_machine_path_in_metadata_and_in_html() -> None:
    nb = clean()
    nb.metadata["papermill"] = {"input_path": "/work/main/notebooks/01_x.ipynb"}
    nb.cells[4].outputs[0].data["text/html"] = "<img src='/tmp/a.png'>"
    problems = check_no_machine_paths(nb)
    assert len(problems) == 2 and "notebook metadata" in problems[0]


def test_extra_literal_paths(tmp_path: Path) -> None:
    nb = clean()
    repo = Path("/srv/course-repo")
    nb.cells[2].outputs.append(stdout("reading /srv/course-repo/data\n"))
    assert check_no_machine_paths(nb) == []
    assert check_no_machine_paths(nb, (repo,))


def test_widget_output_and_widget_state() -> None:
    nb = clean()
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb.cells[2].outputs.append(
        new_output("display_data", data={WIDGET_VIEW: view, "text/plain": "  0%|  | 0/3"})
    )
    assert len(check_no_widgets(nb)) == 1
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    assert len(check_no_widgets(nb)) == 2


def test_papermill_injected_cell() -> None:
    nb = clean()
    injected = executed('# Parameters\nPROFILE = "full"\n', 2)
    injected.metadata["tags"] = [INJECTED_TAG]
    nb.cells.insert(2, injected)
    assert "injected-parameters" in check_no_papermill_cells(nb)[0]


def test_missing_parameters_tag() -> None:
    nb = clean()
    nb.cells[1].metadata["tags"] = []
    assert "not tagged `parameters`" in check_parameters_cell(nb)[0]


def test_parameters_cell_must_set_profile() -> None:
    nb = clean()
    nb.cells[1].source = "SEED = 0"
    assert "does not set PROFILE" in check_parameters_cell(nb)[0]


def test_parameters_cell_must_not_hard_code_profile() -> None:
    nb = clean()
    nb.cells[1].source = 'PROFILE = "full"\nEPOCHS = 10'
    assert "hard-codes PROFILE" in check_parameters_cell(nb)[0]


def test_parameters_cell_may_read_the_environment_and_use_magics() -> None:
    nb = clean()
    nb.cells[1].source = '%matplotlib inline\nimport os\nPROFILE = os.environ.get("X", "full")'
    assert check_parameters_cell(nb) == []


def test_parameters_cell_must_be_the_first_code_cell() -> None:
    nb = clean()
    nb.cells.insert(1, executed("import os", 1))
    assert "is not tagged `parameters`" in check_parameters_cell(nb)[0]
    assert "no code cell" in check_parameters_cell(new_notebook())[0]


def test_no_nbval_check_cell() -> None:
    nb = clean()
    nb.cells[-1].source = "print(2 + 3)"
    assert "NBVAL_CHECK_OUTPUT" in check_has_nbval_check(nb)[0]
    nb.cells[-1].metadata["tags"] = ["nbval-check-output"]
    assert check_has_nbval_check(nb) == []


def test_oversized_image() -> None:
    nb = clean()
    image = new_output("display_data", data={"image/png": "A" * 400_000, "text/plain": "<Fig>"})
    nb.cells[2].outputs.append(image)
    (problem,) = check_image_sizes(nb)
    assert "image/png output of 400 kB, over the 300 kB limit" in problem
    assert check_image_sizes(nb, limit=500_000) == []


def test_figure_without_alt_text() -> None:
    nb = clean()
    figure = new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"})
    nb.cells[2].outputs.append(figure)
    (problem,) = check_figure_alt_text(nb)
    assert problem.startswith("cell 2 (In [2])") and "without alt text" in problem
    assert '{"mystnb": {"image": {"alt":' in problem
    nb.cells[2].metadata["mystnb"] = {"image": {"alt": "   "}}
    assert len(check_figure_alt_text(nb)) == 1
    nb.cells[2].metadata["mystnb"] = {"image": {"alt": "a digit"}}
    assert check_figure_alt_text(nb) == []


def test_oversized_notebook_file(tmp_path: Path) -> None:
    nb = clean()
    nb.cells[2].outputs.append(stdout("x" * 1_600_000))
    path = tmp_path / "02_big.ipynb"
    nbformat.write(nb, str(path))
    (problem,) = check_file_size(path)
    assert problem.startswith("02_big.ipynb is 1.60 MB, over the 1.50 MB budget")
    assert check_notebook(path)["file-size"] == [problem]


# --------------------------------------------------------------------------- clean_notebook


def widget_state(style: str, left: str = "epoch:\u2007100%") -> dict[str, object]:
    def model(name: str, **state: object) -> dict[str, object]:
        return {"model_name": name, "state": {"_model_name": name, **state}}

    return {
        "bar": model("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
        "l": model("HTMLModel", value=left),
        "p": model("FloatProgressModel", value=1.0, max=3.0, bar_style=style),
        "r": model("HTMLModel", value="\u20071/3\u2007[00:01&lt;00:02,\u20071.0it/s]"),
    }


def papermill_run(style: str) -> NotebookNode:
    """A notebook as papermill leaves it: injected cell, timestamps, widget, absolute paths."""
    nb = clean()
    injected = executed('# Parameters\nPROFILE = "full"\n', 2)
    injected.metadata["tags"] = [INJECTED_TAG]
    nb.cells.insert(2, injected)
    number = 0
    for cell in nb.cells:
        cell.metadata["papermill"] = {"start_time": "2024-01-01T00:00:00", "status": "completed"}
        cell.metadata.setdefault("tags", [])
        if cell.get("execution_count") is not None:
            number += 1
            cell.execution_count = number
            cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = number
    view = {"model_id": "bar", "version_major": 2, "version_minor": 0}
    nb.cells[3].outputs.append(
        new_output("display_data", data={WIDGET_VIEW: view, "text/plain": "epoch:   0%|"})
    )
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": widget_state(style)}
    }
    nb.metadata["papermill"] = {
        "input_path": "/work/main/notebooks/01_x.ipynb",
        "output_path": "/elsewhere/_build/01_x.ipynb",
        "parameters": {"PROFILE": "full"},
        "start_time": "2024-01-01T00:00:00",
        "duration": 12.5,
    }
    return nb


def test_papermill_output_breaks_the_rules() -> None:
    nb = papermill_run("success")
    broken = {name for name, rule in RULES.items() if rule(nb)}
    assert broken == {"no-machine-paths", "no-widgets", "no-papermill-cells"}


def test_clean_notebook_for_committing() -> None:
    raw = papermill_run("success")
    nb = clean_notebook(raw, root=Path("/work/main"), remove_injected=True)
    assert {name: rule(nb) for name, rule in RULES.items()} == {name: [] for name in RULES}
    assert nb.metadata.papermill == {
        "input_path": "notebooks/01_x.ipynb",
        "output_path": "01_x.ipynb",
        "parameters": {"PROFILE": "full"},
        "duration": 12.5,
    }
    assert [c.get("execution_count") for c in nb.cells] == [None, 1, 2, None, 3, 4]
    assert nb.cells[4].outputs[0].execution_count == 3
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)
    (bar,) = [o for o in nb.cells[2].outputs if o.output_type == "display_data"]
    assert bar.data == {"text/plain": "epoch: 100%|███▎      | 1/3 [00:01<00:02, 1.0it/s]"}
    assert "widgets" in raw.metadata and len(raw.cells) == 7, "the input must not change"


def test_clean_notebook_keeps_the_injected_cell_by_default() -> None:
    nb = clean_notebook(papermill_run("danger"), root=Path("/work/main"))
    assert [c.get("execution_count") for c in nb.cells] == [None, 1, 2, 3, None, 4, 5]
    assert check_no_papermill_cells(nb) and not check_no_widgets(nb)
    assert "1/3" in nb.cells[3].outputs[-1].data["text/plain"]


def test_clean_notebook_drops_a_closed_leave_false_bar() -> None:
    nb = clean_notebook(papermill_run(""), root=Path("/work/main"))
    assert [o.output_type for o in nb.cells[3].outputs] == ["stream"]


def test_clean_notebook_falls_back_to_text_plain_for_other_widgets() -> None:
    nb = papermill_run("success")
    nb.metadata.pop("widgets")
    cleaned = clean_notebook(nb)
    assert cleaned.cells[3].outputs[-1].data == {"text/plain": "epoch:   0%|"}


def test_clean_notebook_rejects_a_non_notebook() -> None:
    with pytest.raises(TypeError, match="nbformat NotebookNode"):
        clean_notebook({"cells": []})  # type: ignore[arg-type]
