"""The Colab setup block and the "open in Colab" link of every chapter, generated from _config.yml.

``_config.yml``'s ``repository`` section is the one place that names the course's repository
(``url``) and the git ref it is published from (``branch``: a release tag such as ``v0.1.0``, or a
commit). From those two values this module writes, into every chapter:

- the **setup block** at the top of the first code cell after the parameters cell: in Colab (and
  nowhere else) it installs ``cnncourse`` from that repository at that ref, checks pip's exit
  status, and on failure raises one sentence saying what failed, the last line pip printed and
  what to try;
- the **Colab link** in the introduction, which opens the chapter at that same ref, so that the
  notebook and the package it installs come from the same commit.

``tools/make_student_copies.py`` applies both to the sources in ``solutions/`` and to the student
copies it writes, and its ``--check`` fails when either is stale.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from nbformat import NotebookNode

from tools.notebook_hygiene import ROOT

CONFIG = ROOT / "_config.yml"
COLAB = "https://colab.research.google.com"
_GUARD = 'if "google.colab" in sys.modules:'
_COLAB_LINK = re.compile(re.escape(COLAB) + r"/github/[^)\s]+?/notebooks/(?P<name>[\w.-]+\.ipynb)")

SETUP_TEMPLATE = '''\
import sys

if "google.colab" in sys.modules:  # Colab starts without the course's helper package
    import subprocess

    PACKAGE = "cnncourse @ git+{url}@{ref}"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", PACKAGE],
        check=False, capture_output=True, text=True,
    )
    if pip.returncode != 0:
        said = [line.strip() for line in (pip.stdout + pip.stderr).splitlines() if line.strip()]
        errors = [line for line in said if line.startswith(("ERROR", "fatal"))] or said or ["-"]
        raise RuntimeError(
            f"pip could not install cnncourse {ref} ({{errors[-1][:120]}}); check that the "
            "runtime is online, then choose Runtime > Restart session and run this cell again."
        )'''


@dataclass(frozen=True)
class Repository:
    """Where the course is published: the repository's URL and the git ref (tag or commit)."""

    url: str
    ref: str

    @property
    def owner_and_name(self) -> str:
        """``owner/name`` of a GitHub URL."""
        return self.url.rstrip("/").removeprefix("https://github.com/")


def repository(config: Path = CONFIG) -> Repository:
    """The repository URL and ref named in ``_config.yml``.

    Raises:
        ValueError: if the file lacks ``repository.url`` or ``repository.branch``, or the URL is
            not a GitHub one (Colab opens notebooks from GitHub only).
    """
    section = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("repository") or {}
    url, ref = str(section.get("url", "")).rstrip("/"), str(section.get("branch", "")).strip()
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url) or not ref:
        raise ValueError(
            f"{config.name} has repository url {url!r} and branch {ref!r}, but it needs a "
            "https://github.com/<owner>/<name> url and a branch (a tag or commit) to pin."
        )
    return Repository(url, ref)


def setup_block(repo: Repository) -> str:
    """The Colab setup block, as it starts every chapter's first code cell after the parameters."""
    return SETUP_TEMPLATE.format(url=repo.url, ref=repo.ref)


def colab_link(repo: Repository, notebook: str) -> str:
    """The URL that opens ``notebooks/<notebook>`` in Colab at the pinned ref."""
    return f"{COLAB}/github/{repo.owner_and_name}/blob/{repo.ref}/notebooks/{notebook}"


def _split_setup(source: str) -> tuple[str, str] | None:
    """A cell's source as (its leading setup block, the rest), or None when it has none."""
    lines = source.split("\n")
    guards = [i for i, line in enumerate(lines) if line.startswith(_GUARD)]
    if not guards:
        return None
    end = guards[0] + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" ")):
        end += 1
    return "\n".join(lines[:end]).rstrip(), "\n".join(lines[end:]).lstrip("\n")


def setup_cell_index(nb: NotebookNode) -> int:
    """The index of the cell holding the setup block: the first code cell after ``parameters``.

    Raises:
        ValueError: if the notebook has no parameters cell followed by a code cell with the block.
    """
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and tagged and i > tagged[0]]
    if not code or _split_setup(nb.cells[code[0]].source) is None:
        raise ValueError(
            "the notebook needs a parameters-tagged cell followed by a code cell that starts "
            f"with the Colab setup block (import sys, then {_GUARD})."
        )
    return code[0]


def with_setup(nb: NotebookNode, notebook: str, repo: Repository) -> NotebookNode:
    """A copy of ``nb`` with its setup block and Colab links regenerated for ``repo``.

    Args:
        nb: a chapter notebook.
        notebook: its file name, e.g. ``01_motivation.ipynb`` (for the Colab link).
        repo: where the course is published.
    """
    result = copy.deepcopy(nb)
    cell = result.cells[setup_cell_index(result)]
    split = _split_setup(cell.source)
    assert split is not None  # setup_cell_index checked it
    cell.source = setup_block(repo) + ("\n\n" + split[1] if split[1] else "")
    for each in result.cells:
        if each.cell_type == "markdown":
            each.source = _COLAB_LINK.sub(lambda m: colab_link(repo, m["name"]), each.source)
    return result


def current_setup(nb: NotebookNode) -> str:
    """The setup block a notebook holds now."""
    split = _split_setup(nb.cells[setup_cell_index(nb)].source)
    assert split is not None
    return split[0]
