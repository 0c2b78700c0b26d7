"""The hostile suite (tests/hostile_submissions.py) graded in ONE batch, run from a copy of the
repository: no file outside the sandbox changes, no process survives, no connection reaches
127.0.0.1, every row's score is right and the batch keeps to its limits.

Every test here failed against the grader before the bubblewrap sandbox (``python -m
cnncourse.grade`` at commit 5cadf5a, each case graded in its own batch, as root): a FIFO entry
and a FIFO in place of ``worker.log`` hung the batch; a non-UTF-8 name, and a SIGKILL to the
parent, lost the whole sheet; the linked submission and the three ways of reading ``solutions/``
(the hook switched off, a ``dir_fd`` past the path rules, ``torch.from_file``) scored 7/7; the
vandal rewrote the repository, the solutions, another student's notebook and the sheet's folder,
and cffi created a file outside; two detached processes survived; a connection reached
127.0.0.1; deleting ``ready`` stretched a 6 s limit to 12 s for 7/7 (two runs in three); the fork
bomb started all 200 processes and the disk filler wrote 160 MB; a folder and an ``.IPYNB`` got
no row, ``metadata.nbgrader = "oops"`` scored 0 ("the grader failed ... report it"), a closed
pipe was reported as "sys.exit or os._exit?", ANSI escapes and a fake line reached the terminal.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from grading import ROOT, load_scores
from hostile_submissions import CHAPTER, FORKS, TIMEOUT, TMPFS_MB, Targets, write_hostile

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
STARTUP_SECONDS = 60  # the most a worker's start-up may add to a submission's time


def _digest(*roots: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """A checksum of every entry under ``roots`` (files by content, links by target)."""
    found = {}
    for root in roots:
        for path in sorted([root, *root.rglob("*")]):
            if path in skip or "__pycache__" in path.parts:
                continue
            if path.is_symlink():
                found[str(path)] = "link " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "dir" if path.is_dir() else "other"
    return found


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.socket.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Any:
    area = tmp_path_factory.mktemp("hostile")
    repo, submitted, out = area / "repo", area / "submitted", area / "scores"
    shutil.copytree(
        ROOT / "cnncourse", repo / "cnncourse", ignore=shutil.ignore_patterns("__pycache__")
    )
    (repo / "solutions").mkdir()
    shutil.copy(CHAPTER.source, repo / "solutions" / CHAPTER.notebook)
    submitted.mkdir()
    out.mkdir()
    (out / "previous.csv").write_text("an earlier sheet\n")
    sentinel = area / "sentinel.txt"
    sentinel.write_text("do not touch\n")
    listener = Listener()
    targets = Targets(repo, submitted, out, sentinel, f"hostile-{uuid.uuid4().hex}", listener.port)
    expected = write_hostile(targets)
    before = _digest(repo, submitted, out, sentinel)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "cnncourse.grading", str(submitted), "--chapter", "01",
         "--out", str(out), "--timeout", str(TIMEOUT), "--memory-mb", "1024"],
        cwd=repo, capture_output=True, timeout=900, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    survivors = _processes_with(targets.marker)
    for pid in survivors:  # started by this test's submissions: end them by their id
        os.kill(pid, signal.SIGKILL)
    listener.close()
    after = _digest(repo, submitted, out, sentinel, skip=(out / "scores.csv", out / "scores.json"))
    yield {
        "run": run, "wall": wall, "expected": expected, "before": before, "after": after,
        "survivors": survivors, "connections": listener.accepted, "targets": targets,
        "scores": load_scores(out) if run.returncode == 0 else None,
        "rows": list(csv.DictReader((out / "scores.csv").read_text().splitlines()))
        if run.returncode == 0 else [],
    }  # fmt: skip


def _students(batch: Any) -> dict[str, Any]:
    assert batch["run"].returncode == 0, batch["run"].stderr.decode(errors="replace")
    students: dict[str, Any] = batch["scores"]["students"]
    return students


def _reasons(batch: Any, student: str) -> dict[str, str]:
    return {n: e["reason"] for n, e in _students(batch)[student]["exercises"].items()}


def test_every_row_gets_its_expected_total(batch: Any) -> None:
    students = _students(batch)
    assert {name: s["total"] for name, s in students.items()} == batch["expected"]
    assert batch["scores"]["sandbox"] == "bubblewrap"
    assert len(batch["rows"]) == 4 * len(batch["expected"])
    assert {row["sandbox"] for row in batch["rows"]} == {"bubblewrap"}


def test_no_file_outside_the_sandbox_changed(batch: Any) -> None:
    assert batch["after"] == batch["before"]
    assert not Path(f"{batch['targets'].sentinel}.cffi").exists()


def test_no_process_survives_the_batch(batch: Any) -> None:
    assert batch["survivors"] == []


def test_no_connection_reaches_localhost(batch: Any) -> None:
    assert batch["connections"] == 0


def test_the_batch_keeps_to_its_limits(batch: Any) -> None:
    students = _students(batch)
    for name, student in students.items():
        assert student["seconds"] < TIMEOUT + STARTUP_SECONDS, name
    assert batch["wall"] < sum(s["seconds"] for s in students.values()) + 120
    slow = _reasons(batch, "slow_ready")["layer_params"]
    assert f"did not finish within {TIMEOUT} s" in slow, slow


def test_resource_limits_hold(batch: Any) -> None:
    forks = _reasons(batch, "fork_bomb")["layer_params"]
    started = int(forks.split("layer_params returned ")[1].split()[0])
    assert started < FORKS, forks
    written = _reasons(batch, "disk_fill")["layer_params"]
    assert int(written.split("layer_params returned ")[1].split()[0]) <= TMPFS_MB * 2**20, written


def test_entries_that_are_not_notebooks_get_a_reason(batch: Any) -> None:
    for student, words in (
        ("aa_fifo", "named pipe (FIFO)"),
        ("link", "symbolic link, which the grader does not follow"),
        ("notes", "is a folder, not a notebook"),
    ):
        for reason in _reasons(batch, student).values():
            assert words in reason, (student, reason)
    closed = _reasons(batch, "closed_pipe")["layer_params"]
    assert "could not send its results" in closed and "sys.exit" not in closed, closed


def test_nothing_raw_is_echoed(batch: Any) -> None:
    printed = batch["run"].stdout + batch["run"].stderr
    assert b"\x1b" not in printed
    assert not any(line.startswith(b"mallory:") for line in printed.splitlines())
    assert "evil mallory: all points (a fake line): 0/7 points in " in printed.decode()
    assert "caf\\xe9-\\xff: 7/7 points in " in printed.decode()
