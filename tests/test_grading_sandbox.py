"""The grader's parts on their own: the sandbox's view and user, the refusal without bubblewrap,
the unsafe mode written into the sheet, the pipe protocol, names cleaned for the terminal, and
every chapter's arguments rebuildable inside the sandbox (so no reference needs to be in it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from grading import ROOT, Chapter, load_scores

from cnncourse.checks import CHAPTERS, Exercise, ch01
from cnncourse.grading import protocol, sandbox
from cnncourse.grading.cli import check_view
from cnncourse.grading.sandbox import TMPFS_BYTES, VIEW, bubblewrap, stage_package
from cnncourse.grading.submission import clean

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is missing")

PROBE = """
import json, os, sys
def can(action):
    try:
        action()
        return True
    except OSError:
        return False
print(json.dumps({
    "uid": os.getuid(),
    "status": dict(line.split(":", 1) for line in open("/proc/self/status")),
    "checks": sorted(os.listdir(sys.argv[1] + "/cnncourse/checks")),
    "solutions": os.path.exists(sys.argv[2]),
    "repository": os.path.exists(sys.argv[3]),
    "write_root": can(lambda: open("/usr/owned", "w")),
    "write_tmp": can(lambda: open("/tmp/mine", "w").write("x")),
    "fill_tmp": can(lambda: open("/tmp/big", "wb").write(b"x" * (int(sys.argv[4]) + 1))),
    "network": can(lambda: __import__("socket").create_connection(("127.0.0.1", 22), 1)),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
}))
"""


@needs_bwrap
def test_the_sandbox_sees_no_references_and_writes_only_its_tmpfs(tmp_path: Path) -> None:
    sandbox = bubblewrap(stage_package(tmp_path), [])
    code = f"exec({PROBE!r})"
    if sandbox.drop_to is not None:  # as the worker does, before any submitted code
        uid, gid = sandbox.drop_to
        drop = f"os.setgroups([]); os.setresgid({gid}, {gid}, {gid}); "
        code = f"{drop}os.setresuid({uid}, {uid}, {uid}); {code}"
    paths = (ROOT / "solutions", ROOT / "cnncourse" / "checks")
    argv = sandbox.python(f"import os; {code}", VIEW, *map(str, paths), str(TMPFS_BYTES))
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(run.stdout)
    assert seen["checks"] == ["core.py", "fixtures.py", "guard.py", "tiny_nets.py"]
    assert not seen["solutions"] and not seen["repository"]
    assert not seen["write_root"] and seen["write_tmp"] and not seen["fill_tmp"]
    assert not seen["network"]
    assert len(seen["pids"]) <= 3  # bwrap's init, python (and nothing of the host)
    assert seen["uid"] != 0
    status = {key: value.strip() for key, value in seen["status"].items()}
    assert {status[k] for k in ("CapPrm", "CapEff", "CapAmb")} == {"0000000000000000"}
    assert status["NoNewPrivs"] == "1"  # no set-user-ID program can give privileges back


@needs_bwrap
def test_a_package_inside_a_bound_folder_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed with pip (not editable), the whole package, references included, sits in the
    site-packages the sandbox must see: it is covered there, and only the copy is in view."""
    site = tmp_path / "site-packages"
    shutil.copytree(
        ROOT / "cnncourse", site / "cnncourse", ignore=shutil.ignore_patterns("__pycache__")
    )
    (site / "other.py").write_text("")
    roots = sandbox._python_roots()
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [*roots, site])
    monkeypatch.setattr(sandbox, "_package_dir", lambda: site / "cnncourse")
    box = sandbox.bubblewrap(sandbox.stage_package(tmp_path / "view"), [])
    code = "import os, sys; print([os.path.exists(p) for p in sys.argv[1:]])"
    here = [
        site / "other.py",
        site / "cnncourse" / "checks" / "ch01.py",
        f"{VIEW}/cnncourse/checks",
    ]
    run = subprocess.run(
        box.python(code, *map(str, here)), capture_output=True, text=True, timeout=60, check=False
    )
    assert run.stdout.strip() == "[True, False, True]", run.stderr


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_exercise_can_be_sent_to_the_sandbox(tmp_path: Path, chapter: str) -> None:
    check_view(CHAPTERS[chapter], stage_package(tmp_path))


def test_an_argument_from_a_chapter_module_is_refused(tmp_path: Path) -> None:
    spec = ch01.LAYER_PARAMS  # its cases' generator lives in ch01, beside the reference
    leaky = Exercise(**{**spec.__dict__, "build": lambda case: (spec.make_cases,)})
    with pytest.raises(RuntimeError, match=r"which the sandbox cannot see .*fixtures\.py"):
        check_view([leaky], stage_package(tmp_path))


def _grade(folder: Path, out: Path, *options: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "cnncourse.grading", str(folder), "--chapter", "01",
         "--out", str(out), "--timeout", "30", *options],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


def test_without_bubblewrap_the_grader_refuses_and_writes_nothing(tmp_path: Path) -> None:
    Chapter("01_motivation.ipynb").write_submission(tmp_path, "someone", {})
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    run = _grade(tmp_path, tmp_path / "scores", env=env)
    assert run.returncode == 2
    message = run.stderr.strip()
    assert "\n" not in message and "bubblewrap (the `bwrap` command) is not installed" in message
    assert "apt-get install bubblewrap" in message and "--unsafe-no-sandbox" in message
    assert not (tmp_path / "scores").exists()


def test_unsafe_mode_grades_and_says_so_on_every_row(tmp_path: Path) -> None:
    chapter = Chapter("01_motivation.ipynb")
    folder = tmp_path / "mine"
    folder.mkdir()
    chapter.write_submission(folder, "my_solution", chapter.solved_cells())
    run = _grade(folder, tmp_path / "scores", "--unsafe-no-sandbox")
    assert run.returncode == 0, run.stderr
    scores = load_scores(tmp_path / "scores")
    assert scores["sandbox"] == "none (--unsafe-no-sandbox)"
    assert scores["students"]["my_solution"]["total"] == 7
    sheet = (tmp_path / "scores" / "scores.csv").read_text().splitlines()
    assert all(line.endswith(",none (--unsafe-no-sandbox)") for line in sheet[1:])


def test_frames_are_split_capped_and_malformed_ones_end_the_reading() -> None:
    reader = protocol.FrameReader(limit=100)
    data = b"R\0\0\0\0" + b"X\0\0\0\3abc" + b"D\0\0\0\0"
    assert reader.feed(data[:7]) == [(b"R", b"")]
    assert reader.feed(data[7:]) == [(b"X", b"abc"), (b"D", b"")]
    assert reader.broken is None
    assert reader.feed(b"Z\0\0\0\0") == [] and "malformed" in (reader.broken or "")
    capped = protocol.FrameReader(limit=10)
    assert capped.feed(b"X\0\0\0\x20" + b"y" * 32) == [] and "more than" in (capped.broken or "")


def test_untrusted_text_is_one_escaped_line() -> None:
    assert clean("a\nb\x1b[31m\u202e") == "a b\\x1b[31m\\u202e"
    assert clean(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert len(clean("x" * 1000, 50)) == 50
