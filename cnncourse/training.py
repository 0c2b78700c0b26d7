"""Training and evaluation loops for classifiers, with progress bars, history and checkpoints.

Chapter 4 writes the training loop out by hand first; :func:`fit` is the same loop with the
bookkeeping a real run needs: a tqdm progress bar, a per-epoch history (loss, accuracy, seconds),
seeding, and a checkpoint after every epoch that a later call resumes from, with the optimizer,
the scheduler and every random-number generator restored, so an interrupted Colab session loses at
most one epoch and the resumed run ends in the same state as an uninterrupted one.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from cnncourse.device import pick_device, seed_everything
from cnncourse.errors import CheckpointError, one_line

__all__ = ["History", "Metrics", "evaluate", "fit", "train_one_epoch"]

_CHECKPOINT_FORMAT = "cnncourse-checkpoint-1"


class Metrics(NamedTuple):
    """Mean loss and accuracy (a fraction in [0, 1]) over a data set."""

    loss: float
    accuracy: float


@dataclass
class History:
    """Per-epoch record of a training run."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def append(self, epoch: int, train: Metrics, val: Metrics | None, seconds: float) -> None:
        """Record one finished epoch (``val`` may be None: NaN is stored)."""
        self.epoch.append(epoch)
        self.train_loss.append(train.loss)
        self.train_acc.append(train.accuracy)
        self.val_loss.append(val.loss if val else float("nan"))
        self.val_acc.append(val.accuracy if val else float("nan"))
        self.seconds.append(seconds)

    @property
    def total_seconds(self) -> float:
        """Wall time spent in training and validation, summed over epochs."""
        return float(sum(self.seconds))

    def as_dict(self) -> dict[str, list[Any]]:
        """The history as plain lists (for checkpoints, JSON or pandas)."""
        return asdict(self)

    def __len__(self) -> int:
        return len(self.epoch)


def _check_loader(name: str, loader: Any) -> None:
    if not isinstance(loader, DataLoader):
        raise TypeError(
            f"{name} is a {type(loader).__name__}, but it must be a torch.utils.data.DataLoader; "
            "wrap your data set in DataLoader(dataset, batch_size=...)."
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader[Any],
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
) -> Metrics:
    """Mean loss and accuracy of a classifier over ``loader``, in eval mode and without gradients.

    The model's previous train/eval mode is restored afterwards.
    """
    _check_loader("loader", loader)
    if device is not None:
        dev = torch.device(device)
    else:
        dev = next(model.parameters(), torch.empty(0)).device  # a parameterless model: CPU
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for inputs, targets in loader:
            inputs, targets = inputs.to(dev), targets.to(dev)
            logits = model(inputs)
            total_loss += loss_fn(logits, targets).item() * targets.shape[0]
            correct += (logits.argmax(dim=1) == targets).sum().item()
            count += targets.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("loader yielded no batches, so there is nothing to evaluate.")
    return Metrics(total_loss / count, correct / count)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
    scheduler: Any = None,
    progress: bool = False,
    description: str = "train",
) -> Metrics:
    """One pass over ``loader``: forward, loss, backward, step for every batch.

    ``scheduler``, if given, is stepped after every batch (for schedules such as OneCycle).
    """
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    batches = tqdm(loader, desc=description, leave=False, disable=not progress)
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * targets.shape[0]
        correct += (logits.argmax(dim=1) == targets).sum().item()
        count += targets.shape[0]
    if count == 0:
        raise ValueError("train_loader yielded no batches; check the data set and batch_size.")
    return Metrics(total_loss / count, correct / count)


def _rng_state() -> dict[str, Any]:
    name, keys, position, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), position, has_gauss, cached),  # type: ignore[union-attr]
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-save never leaves a half-written checkpoint


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(err).__name__}); it is damaged or not a "
            "cnncourse checkpoint, so move it aside or pass another checkpoint path to start afresh."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a {_CHECKPOINT_FORMAT} file; move it aside or pass "
            "another checkpoint path to start afresh."
        )
    return payload


def fit(
    model: nn.Module,
    train_loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    loss_fn: nn.Module | None = None,
    val_loader: DataLoader[Any] | None = None,
    scheduler: Any = None,
    scheduler_step: Literal["epoch", "batch"] = "epoch",
    device: torch.device | str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> History:
    """Train a classifier for ``epochs`` epochs and return its :class:`History`.

    Args:
        model: the network; it is moved to ``device``.
        train_loader: batches of (inputs, integer class labels).
        optimizer: built on ``model.parameters()``.
        epochs: the total number of epochs, counting any already done in ``checkpoint``.
        loss_fn: defaults to cross-entropy on logits.
        val_loader: evaluated after every epoch, if given.
        scheduler: a learning-rate scheduler, stepped once per epoch or, with
            ``scheduler_step="batch"``, once per batch.
        device: defaults to :func:`cnncourse.device.pick_device`.
        checkpoint: a file written after every epoch. If it exists when ``fit`` starts, training
            resumes after its last completed epoch, with model, optimizer, scheduler, history and
            random-number generators restored.
        seed: seeds every generator before a fresh (not resumed) run.
        progress: show tqdm progress bars.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}, but it must be a positive integer.")
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(
            f"scheduler_step is {scheduler_step!r}, but it must be 'epoch' or 'batch'."
        )
    _check_loader("train_loader", train_loader)
    if val_loader is not None:
        _check_loader("val_loader", val_loader)
    dev = torch.device(device) if device is not None else pick_device()
    model.to(dev)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = History()
    start_epoch = 0
    path = Path(checkpoint) if checkpoint is not None else None

    if path is not None and path.exists():
        state = _load_checkpoint(path)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state["scheduler"] is not None:
                scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(
                f"checkpoint {path} does not fit this model, optimizer or scheduler "
                f"({one_line(err)}); pass another checkpoint path to start afresh."
            ) from err
        history = History(**state["history"])
        start_epoch = int(state["epoch"])
        _set_rng_state(state["rng"])
    elif seed is not None:
        seed_everything(seed)

    epoch_bar = tqdm(
        range(start_epoch + 1, epochs + 1),
        desc="epochs",
        initial=start_epoch,
        total=epochs,
        disable=not progress,
    )
    for epoch in epoch_bar:
        started = time.perf_counter()
        batch_scheduler = scheduler if scheduler_step == "batch" else None
        train = train_one_epoch(
            model,
            train_loader,
            optimizer,
            loss_fn,
            dev,
            batch_scheduler,
            progress,
            f"epoch {epoch}",
        )
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        val = evaluate(model, val_loader, loss_fn, dev) if val_loader is not None else None
        history.append(epoch, train, val, time.perf_counter() - started)
        shown = {"loss": f"{train.loss:.4f}", "acc": f"{train.accuracy:.4f}"}
        if val is not None:
            shown["val_acc"] = f"{val.accuracy:.4f}"
        epoch_bar.set_postfix(shown)
        if path is not None:
            _save_checkpoint(
                path,
                {
                    "format": _CHECKPOINT_FORMAT,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "history": history.as_dict(),
                    "rng": _rng_state(),
                },
            )
    return history
