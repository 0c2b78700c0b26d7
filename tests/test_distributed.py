"""Chapter 8's torchrun script, run for real: 2 processes on the gloo backend, a few steps.

The ranks' weights must be identical after the steps (DDP all-reduces the gradients), and a run
stopped early and resumed from rank 0's checkpoint must end exactly where an uninterrupted run
ends. Each launch takes a few seconds, most of it importing torch in both processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cnncourse.distributed import RunSummary, SmallNet, parse_args, weights_checksum

ROOT = Path(__file__).resolve().parent.parent
COMMON = [
    "--steps",
    "6",
    "--batch-size",
    "16",
    "--data",
    "synthetic:256",
    "--checkpoint-every",
    "2",
]


def launch(out: Path, *options: str) -> dict[str, Any]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=2 -m cnncourse.distributed``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "cnncourse.distributed", *COMMON, "--out", str(out), *options]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("ddp")
    checkpoint = str(folder / "ddp.pt")
    return {
        "whole": launch(folder / "whole.json"),
        "stopped": launch(folder / "stopped.json", "--checkpoint", checkpoint, "--stop-after", "3"),
        "resumed": launch(folder / "resumed.json", "--checkpoint", checkpoint, "--resume"),
    }


def test_two_gloo_ranks_keep_identical_weights(runs: dict[str, dict[str, Any]]) -> None:
    whole = runs["whole"]
    assert whole["world_size"] == 2 and whole["backend"] == "gloo"
    assert whole["steps"] == 6 and len(whole["losses"]) == 6
    assert whole["identical"] and whole["max_weight_difference"] == 0.0
    assert whole["checksums"][0] == whole["checksums"][1]
    assert whole["effective_batch"] == 32 and whole["lr"] == pytest.approx(0.05 * 32 / 64)


def test_resuming_from_rank_zeros_checkpoint_is_exact(runs: dict[str, dict[str, Any]]) -> None:
    stopped, resumed, whole = runs["stopped"], runs["resumed"], runs["whole"]
    assert stopped["steps"] == 3 and resumed["start_step"] == 3 and resumed["steps"] == 6
    assert resumed["identical"]
    assert resumed["losses"] == whole["losses"][3:]
    assert resumed["checksums"] == whole["checksums"]


def test_without_torchrun_one_sentence() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    done = subprocess.run([sys.executable, "-m", "cnncourse.distributed"], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode != 0
    assert "runs under torchrun" in done.stderr


def test_bad_options_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--steps", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--resume"])


def test_checksum_sees_order_not_just_the_total() -> None:
    import torch

    model = SmallNet(width=2)
    before = weights_checksum(model)
    with torch.no_grad():
        weight = model.head.weight
        weight[0, 0], weight[0, 1] = weight[0, 1].item(), weight[0, 0].item()
    assert weights_checksum(model) != before
    assert RunSummary.__dataclass_fields__["identical"].default is False
