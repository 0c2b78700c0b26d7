"""Training and evaluation loops for classifiers, with progress bars, history and checkpoints.

Chapter 4 writes the training loop out by hand first; :func:`fit` is the same loop with the
bookkeeping a real run needs: a tqdm progress bar, a per-epoch history (loss, accuracy, seconds),
seeding, and a checkpoint after every epoch that a later call resumes from, with the optimizer,
the scheduler and every random-number generator restored, so an interrupted Colab session loses at
most one epoch and the resumed run ends in the same state as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cnncourse.device import pick_device, seed_everything, synchronize
from cnncourse.errors import CheckpointError, one_line
from cnncourse.precision import Precision, choose_precision

__all__ = ["History", "Metrics", "evaluate", "fit"]

_CHECKPOINT_FORMAT = "cnncourse-checkpoint-2"


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
    """Wall time of each epoch, training and validation together."""
    train_time: list[float] = field(default_factory=list)
    """Training time of each epoch alone (validation excluded)."""
    eval_epoch: list[float] = field(default_factory=list)
    """Where each validation evaluation was made, in (fractional) epochs."""
    eval_train_seconds: list[float] = field(default_factory=list)
    """Training time up to each evaluation: the evaluations themselves are not counted."""
    eval_acc: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)

    def append(
        self,
        epoch: int,
        train: Metrics,
        val: Metrics | None,
        seconds: float,
        train_seconds: float = math.nan,
    ) -> None:
        """Record one finished epoch (``val`` may be None: NaN is stored)."""
        self.epoch.append(epoch)
        self.train_loss.append(train.loss)
        self.train_acc.append(train.accuracy)
        self.val_loss.append(val.loss if val else float("nan"))
        self.val_acc.append(val.accuracy if val else float("nan"))
        self.seconds.append(seconds)
        self.train_time.append(train_seconds)

    def record_eval(self, epoch: float, train_seconds: float, val: Metrics) -> None:
        """Record one validation evaluation made after ``train_seconds`` of training."""
        self.eval_epoch.append(epoch)
        self.eval_train_seconds.append(train_seconds)
        self.eval_acc.append(val.accuracy)
        self.eval_loss.append(val.loss)

    @property
    def train_seconds(self) -> float:
        """Training time of the run so far, evaluations excluded."""
        return float(sum(self.train_time))

    def time_to(self, accuracy: float) -> float | None:
        """Training seconds at the first validation evaluation reaching ``accuracy`` (a fraction),
        or None if none did. It reads the validation split only, as selection must."""
        for seconds, reached in zip(self.eval_train_seconds, self.eval_acc, strict=True):
            if reached >= accuracy:
                return seconds
        return None

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
    if not (isinstance(loader, Iterable) and isinstance(loader, Sized)):
        raise TypeError(
            f"{name} is a {type(loader).__name__}, but it must be an iterable of (inputs, labels) "
            "batches with a length, such as a torch.utils.data.DataLoader or a "
            "cnncourse.tensor_data.TensorLoader."
        )


def _precision(precision: Precision | str | None, device: torch.device) -> Precision:
    if isinstance(precision, Precision):
        return precision
    return choose_precision(device, "fp32" if precision is None else precision)


def _classes(targets: torch.Tensor) -> torch.Tensor:
    """Class indices from targets given as indices (N,) or as class probabilities (N, C)."""
    return targets.argmax(dim=1) if targets.ndim == 2 else targets


def _inputs(inputs: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    inputs = inputs.to(device, non_blocking=True)
    if channels_last and inputs.ndim == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
    *,
    precision: Precision | str | None = None,
    channels_last: bool = False,
) -> Metrics:
    """Mean loss and accuracy of a classifier over ``loader``, in eval mode and without gradients.

    ``loader`` is any iterable of (inputs, labels) batches with a length. The model's previous
    train/eval mode is restored afterwards. ``precision`` (default float32) and ``channels_last``
    are as for :func:`fit`.
    """
    _check_loader("loader", loader)
    if device is not None:
        dev = torch.device(device)
    else:
        dev = next(model.parameters(), torch.empty(0)).device  # a parameterless model: CPU
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    mode = _precision(precision, dev)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for inputs, targets in loader:
            inputs, targets = _inputs(inputs, dev, channels_last), targets.to(dev)
            with mode.autocast():
                logits = model(inputs)
            total_loss += loss_fn(logits.float(), targets).item() * targets.shape[0]
            correct += (logits.argmax(dim=1) == _classes(targets)).sum().item()
            count += targets.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("loader yielded no batches, so there is nothing to evaluate.")
    return Metrics(total_loss / count, correct / count)


def _eval_points(batches: int, per_epoch: int) -> set[int]:
    """The batch counts (1-based) within an epoch after which to evaluate: evenly spaced,
    always including the epoch's last batch."""
    return {max(1, round(batches * k / per_epoch)) for k in range(1, per_epoch + 1)}


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


def _check_positive(name: str, value: object, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} is {value!r}, but it must be a positive number.")


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    loss_fn: nn.Module | None = None,
    val_loader: Iterable[Any] | None = None,
    evals_per_epoch: int = 1,
    scheduler: Any = None,
    scheduler_step: Literal["epoch", "batch"] = "epoch",
    device: torch.device | str | None = None,
    precision: Precision | str | None = None,
    channels_last: bool = False,
    clip_grad_norm: float | None = None,
    time_budget: float | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> History:
    """Train a classifier for ``epochs`` epochs and return its :class:`History`.

    Args:
        model: the network; it is moved to ``device``.
        train_loader: batches of (inputs, targets): a ``DataLoader``, a
            :class:`cnncourse.tensor_data.TensorLoader`, or any iterable with a length. Targets
            are class indices (N,) or, as mixup and cutmix make them, class probabilities (N, C)
            (accuracy then counts the most probable class). A loader with
            ``state_dict``/``load_state_dict`` is saved in and restored from ``checkpoint``.
        optimizer: built on ``model.parameters()``.
        epochs: the total number of epochs, counting any already done in ``checkpoint``.
        loss_fn: defaults to cross-entropy on logits.
        val_loader: the *validation* split, evaluated ``evals_per_epoch`` times per epoch, evenly
            spaced and always at the epoch's end. :meth:`History.time_to` reads these points.
        evals_per_epoch: validation evaluations per epoch (the training clock pauses for them).
        scheduler: a learning-rate scheduler, stepped once per epoch or, with
            ``scheduler_step="batch"``, once per batch.
        device: defaults to :func:`cnncourse.device.pick_device`.
        precision: ``None`` or ``"fp32"`` (float32), ``"auto"`` (see
            :func:`cnncourse.precision.choose_precision`), ``"bf16"``, ``"fp16"`` (CUDA, with a
            gradient scaler), or a :class:`~cnncourse.precision.Precision`.
        channels_last: train in the channels-last memory format (faster convolutions on CPUs
            with oneDNN and on GPUs with tensor cores).
        clip_grad_norm: clip the gradients' global norm to this value before each step.
        time_budget: stop after this many seconds of training (evaluations excluded), at the
            first batch past it, with a last validation evaluation there.
        checkpoint: a file written after every epoch. If it exists when ``fit`` starts, training
            resumes after its last completed epoch, with model, optimizer, scheduler, gradient
            scaler, loader position, history and random-number generators restored.
        seed: seeds every generator before a fresh (not resumed) run.
        progress: show tqdm progress bars.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}, but it must be a positive integer.")
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(
            f"scheduler_step is {scheduler_step!r}, but it must be 'epoch' or 'batch'."
        )
    if (
        isinstance(evals_per_epoch, bool)
        or not isinstance(evals_per_epoch, int)
        or evals_per_epoch < 1
    ):
        raise ValueError(
            f"evals_per_epoch is {evals_per_epoch!r}, but it must be a positive integer."
        )
    _check_positive("clip_grad_norm", clip_grad_norm, allow_none=True)
    _check_positive("time_budget", time_budget, allow_none=True)
    _check_loader("train_loader", train_loader)
    if val_loader is not None:
        _check_loader("val_loader", val_loader)
    dev = torch.device(device) if device is not None else pick_device()
    mode = _precision(precision, dev)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(dev.type) if mode.needs_scaler else None
    stateful_loader = hasattr(train_loader, "state_dict") and hasattr(
        train_loader, "load_state_dict"
    )
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
            if scaler is not None and state["scaler"] is not None:
                scaler.load_state_dict(state["scaler"])
            if stateful_loader and state["loader"] is not None:
                train_loader.load_state_dict(state["loader"])  # type: ignore[attr-defined]
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(
                f"checkpoint {path} does not fit this model, optimizer, scheduler or loader "
                f"({one_line(err)}); pass another checkpoint path to start afresh."
            ) from err
        history = History(**state["history"])
        start_epoch = int(state["epoch"])
        _set_rng_state(state["rng"])
        if state.get("stopped"):  # a time-budgeted run that ended: nothing more to do
            return history
    elif seed is not None:
        seed_everything(seed)

    train_clock = sum(history.train_time)
    epoch_bar = tqdm(
        range(start_epoch + 1, epochs + 1),
        desc="epochs",
        initial=start_epoch,
        total=epochs,
        disable=not progress,
    )
    stopped = False
    for epoch in epoch_bar:
        wall_start = time.perf_counter()
        model.train()
        n_batches = len(train_loader)  # type: ignore[arg-type]
        points = _eval_points(n_batches, evals_per_epoch) if val_loader is not None else set()
        total_loss = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        count, epoch_train, val = 0, 0.0, None
        ticking = time.perf_counter()
        batches = tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
        for index, (inputs, targets) in enumerate(batches, start=1):
            inputs, targets = _inputs(inputs, dev, channels_last), targets.to(dev)
            optimizer.zero_grad(set_to_none=True)
            with mode.autocast():
                logits = model(inputs)
            loss = loss_fn(logits.float(), targets)
            if scaler is not None:
                scaler.scale(loss).backward()
                if clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            total_loss += loss.detach() * targets.shape[0]  # no .item(): no sync every step
            correct += (logits.detach().argmax(dim=1) == _classes(targets)).sum()
            count += targets.shape[0]
            over_budget = False
            if time_budget is not None:
                synchronize(dev)
                over_budget = (
                    train_clock + epoch_train + time.perf_counter() - ticking >= time_budget
                )
            if index in points or over_budget:
                synchronize(dev)
                epoch_train += time.perf_counter() - ticking
                if val_loader is not None:
                    val = evaluate(
                        model, val_loader, loss_fn, dev, precision=mode, channels_last=channels_last
                    )
                    history.record_eval(
                        epoch - 1 + index / n_batches, train_clock + epoch_train, val
                    )
                ticking = time.perf_counter()
            if over_budget:
                stopped = True
                break
        synchronize(dev)
        epoch_train += time.perf_counter() - ticking  # about 0 after a last evaluation
        if count == 0:
            raise ValueError("train_loader yielded no batches; check the data set and batch_size.")
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        train = Metrics(total_loss.item() / count, correct.item() / count)
        train_clock += epoch_train
        history.append(epoch, train, val, time.perf_counter() - wall_start, epoch_train)
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
                    "stopped": stopped,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "loader": train_loader.state_dict() if stateful_loader else None,  # type: ignore[attr-defined]
                    "history": history.as_dict(),
                    "rng": _rng_state(),
                },
            )
        if stopped:
            break
    epoch_bar.close()
    return history
