"""A small training job shared by the checkpoint-resume test and the process it kills.

Imported by tests/test_training.py; run as a script it trains with a checkpoint and blocks
(forever, until killed) in the middle of epoch ``BLOCK_EPOCH``:

    python tests/resume_job.py CHECKPOINT MARKER

The job uses shuffled batches, dropout, Adam and a StepLR schedule, so a resumed run matches an
uninterrupted one only if the model, optimizer, scheduler and every random-number generator are
restored from the checkpoint.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnncourse.training import History, fit

EPOCHS = 4
BLOCK_EPOCH = 3  # the killed run stops in this epoch, after the previous one was checkpointed
BATCHES_DONE_IN_BLOCK_EPOCH = 2
SAMPLES, BATCH_SIZE = 48, 8
BATCHES_PER_EPOCH = SAMPLES // BATCH_SIZE
SEED = 11


def build() -> tuple[nn.Module, torch.optim.Optimizer, Any, DataLoader, DataLoader]:
    """The same model, optimizer, scheduler and loaders in every process."""
    generator = torch.Generator().manual_seed(1234)
    inputs = torch.randn(SAMPLES, 6, generator=generator)
    targets = (inputs[:, 0] + inputs[:, 1] > 0).long() + (inputs[:, 2] > 1).long()
    torch.manual_seed(7)  # the initial weights
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.8)
    train_loader = DataLoader(TensorDataset(inputs, targets), batch_size=BATCH_SIZE, shuffle=True)
    val_loader = DataLoader(TensorDataset(inputs[:16], targets[:16]), batch_size=8)
    return model, optimizer, scheduler, train_loader, val_loader


def run(checkpoint: Path | None, model_etc: tuple | None = None) -> History:
    model, optimizer, scheduler, train_loader, val_loader = model_etc or build()
    return fit(
        model,
        train_loader,
        optimizer,
        EPOCHS,
        val_loader=val_loader,
        scheduler=scheduler,
        device="cpu",
        checkpoint=checkpoint,
        seed=SEED,
        progress=False,
    )


def block_mid_epoch(model: nn.Module, marker: Path) -> None:
    """Make the model's training forward pass block partway through epoch BLOCK_EPOCH."""
    limit = (BLOCK_EPOCH - 1) * BATCHES_PER_EPOCH + BATCHES_DONE_IN_BLOCK_EPOCH
    calls = 0

    def hook(module: nn.Module, args: object) -> None:
        nonlocal calls
        if not module.training:  # validation batches do not count
            return
        calls += 1
        if calls > limit:
            marker.write_text(str(calls))
            time.sleep(3600)  # the test kills this process here

    model.register_forward_pre_hook(hook)


if __name__ == "__main__":
    checkpoint_path, marker_path = Path(sys.argv[1]), Path(sys.argv[2])
    parts = build()
    block_mid_epoch(parts[0], marker_path)
    run(checkpoint_path, parts)
    sys.exit("the job was meant to block in epoch 3, but it finished")
