"""tools/run_notebooks.py: choosing notebooks, the kernel environment, and one real headless run.

The run uses two tiny generated notebooks (one good, one failing) in ``tmp_path``, never the
chapters, and executes the script in a subprocess exactly as a person or CI would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.notebook_hygiene import check_notebook
from tools.run_notebooks import configure_environment, fill_data_root, parse_args, select_notebooks

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "run_notebooks.py"


def chapters(folder: Path) -> Path:
    for name in ("02_convolution.ipynb", "01_motivation.ipynb", "notes.ipynb"):
        nbformat.write(new_notebook(), str(folder / name))
    return folder


def test_no_names_selects_every_chapter_in_order(tmp_path: Path) -> None:
    found = select_notebooks([], chapters(tmp_path))
    assert [p.name for p in found] == ["01_motivation.ipynb", "02_convolution.ipynb"]


@pytest.mark.parametrize("name", ["1", "01", "01_motivation", "01_motivation.ipynb"])
def test_a_chapter_by_number_stem_or_file_name(tmp_path: Path, name: str) -> None:
    assert [p.name for p in select_notebooks([name], chapters(tmp_path))] == ["01_motivation.ipynb"]


def test_a_notebook_by_path_and_no_duplicates(tmp_path: Path) -> None:
    folder = chapters(tmp_path)
    path = str(folder / "notes.ipynb")
    assert [p.name for p in select_notebooks([path, path], folder)] == ["notes.ipynb"]


def test_an_unknown_name_lists_the_chapters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'7' names no single notebook.*01_motivation"):
        select_notebooks(["7"], chapters(tmp_path))


def test_environment_for_the_kernels(tmp_path: Path) -> None:
    (tmp_path / "shared" / "data").mkdir(parents=True)
    root = tmp_path / "repo"
    env = {"MPLBACKEND": "Agg"}
    configure_environment("smoke", root, env)
    assert env == {
        "CNNCOURSE_PROFILE": "smoke",
        "CNNCOURSE_DATA": os.path.join("..", "data"),
        "CNNCOURSE_DATA_MIRROR": str(tmp_path / "shared" / "data"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    mine = {"CNNCOURSE_DATA": "/data", "CNNCOURSE_DATA_MIRROR": "/mirror"}
    configure_environment("full", root, mine)
    assert mine["CNNCOURSE_DATA"] == "/data" and mine["CNNCOURSE_DATA_MIRROR"] == "/mirror"
    inside = {"CNNCOURSE_DATA": str(root / "data" / "cifar")}  # absolute, inside the repository
    configure_environment("full", root, inside)
    assert inside["CNNCOURSE_DATA"] == os.path.join("..", "data", "cifar")


def test_inplace_needs_the_full_profile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--profile", "smoke", "--inplace"])
    assert exit_info.value.code == 2
    assert "use --output-dir for a smoke run" in capsys.readouterr().err


def tiny(path: Path, fail: bool = False) -> Path:
    params = new_code_cell("PROFILE = None")
    params.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell("# A tiny chapter"),
        params,
        new_code_cell("import os\nprint(PROFILE, os.environ['CNNCOURSE_PROFILE'])"),
        new_code_cell(
            "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='epoch'):\n    pass"
        ),
        new_code_cell("# NBVAL_CHECK_OUTPUT\n6 * 7"),
    ]
    if fail:
        cells.insert(3, new_code_cell("x = 1\nraise ValueError('boom')"))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def test_inplace_run_writes_a_clean_notebook_and_reports_the_failed_cell(tmp_path: Path) -> None:
    good, bad = tiny(tmp_path / "01_good.ipynb"), tiny(tmp_path / "02_bad.ipynb", fail=True)
    bad_before = bad.read_bytes()
    out = tmp_path / "executed"
    command = [sys.executable, str(SCRIPT), "--profile", "full", "--inplace", "--output-dir"]
    run = subprocess.run(
        [*command, str(out), str(good), str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "raised ValueError: boom" in run.stdout and "raise ValueError('boom')" in run.stdout
    assert "notebooks: 1 passed, 1 failed" in run.stdout.splitlines()

    assert bad.read_bytes() == bad_before, "a failed run must leave the committed notebook alone"
    assert (out / "02_bad.ipynb").is_file(), "the partial run is kept for inspection"

    assert check_notebook(good) == {name: [] for name in check_notebook(good)}
    nb = nbformat.read(str(good), as_version=4)
    assert [c.get("execution_count") for c in nb.cells] == [None, 1, 2, 3, 4]
    assert nb.cells[2].outputs[0].text == "None full\n"
    assert nb.cells[3].outputs[0].data["text/plain"].startswith("epoch: 100%|██████████| 3/3")
    assert nb.metadata.papermill["input_path"] == "01_good.ipynb"

    assert nb.metadata.papermill["parameters"] == {}, "--inplace injects no parameters cell"
    assert nbformat.read(str(out / "01_good.ipynb"), as_version=4) == nb


def test_output_dir_run_injects_the_profile(tmp_path: Path) -> None:
    good = tiny(tmp_path / "01_good.ipynb")
    before = good.read_bytes()
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), "--profile", "smoke", "--output-dir", str(out)]
    run = subprocess.run(
        [*command, str(good)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert good.read_bytes() == before
    nb = nbformat.read(str(out / "01_good.ipynb"), as_version=4)
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    assert nb.cells[3].outputs[0].text == "smoke smoke\n"
    assert check_notebook(out / "01_good.ipynb")["no-widgets"] == []


def test_the_data_root_is_filled_from_the_mirror_before_a_run(
    tmp_path: Path, fake_mnist, fake_cifar, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror, notebooks = tmp_path / "mirror", tmp_path / "repo" / "notebooks"
    notebooks.mkdir(parents=True)
    fake_mnist(mirror)
    fake_mnist(mirror, "FashionMNIST")
    fake_cifar(mirror, n_test=None)
    monkeypatch.setenv("CNNCOURSE_DATA_MIRROR", str(mirror))
    env = {"CNNCOURSE_DATA": os.path.join("..", "data")}
    status = fill_data_root(notebooks, env)
    assert [line.split(maxsplit=1)[1].split(" (")[0] for line in status] == ["found"] * 3
    assert (tmp_path / "repo" / "data" / "FashionMNIST").is_dir()
    assert not any("copied" in line or "MIRROR" in line for line in status)
