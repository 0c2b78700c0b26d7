"""Timed MNIST training recipes: chapter 4's fast recipe and the reference recipe it is compared with.

Chapter 4 and ``benchmarks/fast_mnist.py`` share this module, so the notebook and the benchmark
time exactly the same code. A :class:`Recipe` names a model, a data pipeline, a batch size, an
optimiser and a learning-rate schedule; :func:`train_recipe` trains it and evaluates the official
test set at regular checkpoints, so that the *time to reach* an accuracy can be read off.

Timing is honest about what it counts: ``train_seconds`` is the wall time of the training loop
only (drawing batches, forward, backward, optimiser and scheduler steps); the checkpoint
evaluations are excluded, and so is the one-off decoding of the data into memory.

- :data:`REFERENCE`: the recipe of reference text 000, as it wrote it: a two-convolution
  ``SimpleCNN`` (16 and 32 filters of 3x3, a 128-unit hidden layer), pixels in [0, 1] from
  torchvision's PIL pipeline (``ToTensor``), batch 64, SGD with learning rate 0.01 and momentum 0.9,
  3 epochs.
- :data:`FAST`: in-memory standardised tensors, a small strided CNN with batch normalisation,
  batch 256, SGD with Nesterov momentum and a OneCycle schedule peaking at learning rate 0.2,
  3 epochs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

from cnncourse import data

__all__ = [
    "FAST",
    "REFERENCE",
    "Checkpoint",
    "MnistTensors",
    "Recipe",
    "RecipeResult",
    "fast_cnn",
    "load_mnist_tensors",
    "reference_cnn",
    "train_recipe",
]


@dataclass(frozen=True)
class MnistTensors:
    """MNIST decoded into memory: images in [0, 1], shape (N, 1, 28, 28), and int64 labels.

    ``mean`` and ``std`` are the pixel statistics of the *training* images used here.
    ``root`` is where the data sets were read, for recipes that read them again through PIL.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: float
    std: float
    root: str | None
    train_indices: torch.Tensor | None = None
    """Positions of ``train_x`` in the full training set (None: all of it, in order)."""


def load_mnist_tensors(
    root: str | os.PathLike[str] | None = None,
    *,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> MnistTensors:
    """MNIST's official training and test sets as tensors, optionally a fixed random subset of each.

    ``test_size`` takes the first ``test_size`` test images (the official order).
    """
    if test_size is not None and (
        isinstance(test_size, bool) or not isinstance(test_size, int) or test_size <= 0
    ):
        raise ValueError(f"test_size is {test_size!r}, but it must be a positive integer or None.")
    train_set = data.subset(data.mnist(root, train=True), train_size, seed=seed)
    train_x, train_y = data.to_tensors(train_set)
    test_x, test_y = data.to_tensors(data.mnist(root, train=False))
    if test_size is not None:
        test_x, test_y = test_x[:test_size], test_y[:test_size]
    indices = torch.as_tensor(train_set.indices) if hasattr(train_set, "indices") else None
    return MnistTensors(
        train_x,
        train_y,
        test_x,
        test_y,
        mean=float(train_x.double().mean()),
        std=float(train_x.double().std()),
        root=None if root is None else os.fspath(root),
        train_indices=indices,
    )


def reference_cnn(activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Module:
    """Reference text 000's ``SimpleCNN``: two 3x3 convolutions (16, 32 filters) with ReLU and 2x2
    max pooling, then 1,568 -> 128 -> 10 dense layers; 206,922 parameters.

    ``activation`` builds the non-linearity (``nn.ReLU`` in the text), for comparing others.
    """
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        activation(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        activation(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 128),
        activation(),
        nn.Linear(128, 10),
    )


def _conv_bn_relu(
    c_in: int, c_out: int, kernel: int, stride: int, batch_norm: bool
) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not batch_norm)
    return [conv, nn.BatchNorm2d(c_out) if batch_norm else nn.Identity(), nn.ReLU(inplace=True)]


def fast_cnn(width: int = 32, batch_norm: bool = True) -> nn.Module:
    """The fast recipe's network: two strided conv-BN-ReLU blocks (28 -> 14 -> 7, 5x5 then 3x3
    filters) and a 128-unit hidden layer. Strides instead of pooling: each convolution computes
    only the outputs it keeps.

    ``width`` is the channel count of both blocks;
    ``batch_norm=False`` replaces batch normalisation by nothing (and gives the convolutions biases).
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width is {width!r}, but it must be a positive integer.")
    return nn.Sequential(
        *_conv_bn_relu(1, width, 5, 2, batch_norm),
        *_conv_bn_relu(width, width, 3, 2, batch_norm),
        nn.Flatten(),
        nn.Linear(width * 7 * 7, 128),
        nn.ReLU(inplace=True),
        nn.Linear(128, 10),
    )


OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the data and the seed."""

    name: str
    make_model: Callable[[], nn.Module]
    make_optimizer: OptimizerFactory
    batch_size: int
    epochs: int
    pipeline: Literal["tensors", "pil"] = "tensors"
    """``"tensors"``: batches drawn from in-memory tensors; ``"pil"``: torchvision's MNIST with
    ``ToTensor`` in a ``DataLoader``, decoding every image through PIL on every epoch."""
    standardise: bool = True
    """Subtract the training mean and divide by the training standard deviation."""
    one_cycle: bool = False
    """Step a OneCycle schedule (peak: the optimiser's learning rate) after every batch."""
    channels_last: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """The official-test accuracy after ``step`` optimiser steps and ``train_seconds`` of training."""

    step: int
    epoch: float
    train_seconds: float
    test_accuracy: float


@dataclass
class RecipeResult:
    """What :func:`train_recipe` measured."""

    recipe: Recipe
    model: nn.Module
    checkpoints: list[Checkpoint] = field(default_factory=list)
    steps: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    """Mean training loss of each completed epoch (over its batches, as reference text 000 prints)."""

    @property
    def train_seconds(self) -> float:
        """Training time of the whole run (evaluations excluded)."""
        return self.checkpoints[-1].train_seconds if self.checkpoints else 0.0

    @property
    def final_accuracy(self) -> float:
        """Test accuracy at the end of training."""
        return self.checkpoints[-1].test_accuracy if self.checkpoints else math.nan

    def time_to(self, accuracy: float) -> float | None:
        """Training seconds at the first checkpoint reaching ``accuracy`` (None: never reached)."""
        for point in self.checkpoints:
            if point.test_accuracy >= accuracy:
                return point.train_seconds
        return None


def _tensor_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled epoch of batches (the last one may be smaller), like a shuffling DataLoader."""
    order = torch.randperm(len(labels), generator=generator)
    for start in range(0, len(labels), batch_size):
        index = order[start : start + batch_size]
        yield images[index], labels[index]


@torch.no_grad()
def _accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, fmt: torch.memory_format
) -> float:
    model.eval()
    correct = 0
    for batch, target in zip(images.split(2000), labels.split(2000), strict=True):
        correct += int((model(batch.contiguous(memory_format=fmt)).argmax(1) == target).sum())
    model.train()
    return correct / len(labels)


def train_recipe(
    recipe: Recipe,
    mnist: MnistTensors,
    *,
    seed: int = 0,
    evals_per_epoch: int = 4,
    epochs: int | None = None,
) -> RecipeResult:
    """Train ``recipe`` on ``mnist`` and evaluate its test accuracy ``evals_per_epoch`` times per
    epoch (the timer is paused while it evaluates).

    ``epochs`` overrides the recipe's (the smoke profile trains less).
    """
    if (
        isinstance(evals_per_epoch, bool)
        or not isinstance(evals_per_epoch, int)
        or evals_per_epoch < 1
    ):
        raise ValueError(
            f"evals_per_epoch is {evals_per_epoch!r}, but it must be a positive integer."
        )
    if recipe.pipeline not in ("tensors", "pil"):
        raise ValueError(
            f"recipe.pipeline is {recipe.pipeline!r}, but it must be 'tensors' or 'pil'."
        )
    if epochs is not None:
        recipe = replace(recipe, epochs=epochs)
    if recipe.epochs < 1 or recipe.batch_size < 1:
        raise ValueError(
            f"recipe {recipe.name!r} has epochs={recipe.epochs} and batch_size={recipe.batch_size}; "
            "both must be positive."
        )
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    fmt = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = recipe.make_model().to(memory_format=fmt)
    optimizer = recipe.make_optimizer(model.parameters())

    shift, scale = (mnist.mean, mnist.std) if recipe.standardise else (0.0, 1.0)
    train_x = (mnist.train_x - shift) / scale
    test_x = (mnist.test_x - shift) / scale
    loader: DataLoader[tuple[torch.Tensor, int]] | None = None
    if recipe.pipeline == "pil":
        # The same images, decoded through PIL on every epoch as torchvision's pipeline does.
        pil_set = data.mnist(mnist.root, train=True, transform=ToTensor())
        if mnist.train_indices is not None:
            pil_set = torch.utils.data.Subset(pil_set, mnist.train_indices.tolist())  # type: ignore[assignment]
        loader = DataLoader(
            pil_set, batch_size=recipe.batch_size, shuffle=True, generator=generator
        )
    batches_per_epoch = math.ceil(len(mnist.train_y) / recipe.batch_size)
    total_steps = batches_per_epoch * recipe.epochs
    scheduler = None
    if recipe.one_cycle:
        if total_steps < 4:
            raise ValueError(
                f"recipe {recipe.name!r} has only {total_steps} steps, but a one-cycle schedule "
                "needs at least 4; use more training images, more epochs or a smaller batch_size."
            )
        peak = [group["lr"] for group in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.OneCycleLR(  # warm up for a quarter of the run
            optimizer, max_lr=peak, total_steps=total_steps, pct_start=max(0.25, 2 / total_steps)
        )
    eval_every = max(1, batches_per_epoch // evals_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    result = RecipeResult(recipe, model)
    seconds = 0.0
    model.train()
    for _ in range(recipe.epochs):
        started = time.perf_counter()
        loss_sum, batch_count = 0.0, 0
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
        if loader is not None:
            batches = ((x.sub(shift).div(scale), y) for x, y in loader)
        else:
            batches = _tensor_batches(train_x, mnist.train_y, recipe.batch_size, generator)
        for images, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images.contiguous(memory_format=fmt)), labels)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.item()
            batch_count += 1
            result.steps += 1
            if result.steps % eval_every == 0 or result.steps == total_steps:
                seconds += time.perf_counter() - started
                accuracy = _accuracy(model, test_x, mnist.test_y, fmt)
                result.checkpoints.append(
                    Checkpoint(result.steps, result.steps / batches_per_epoch, seconds, accuracy)
                )
                started = time.perf_counter()
        seconds += time.perf_counter() - started
        result.epoch_losses.append(loss_sum / batch_count)
    return result


REFERENCE = Recipe(
    name="reference (text 000)",
    make_model=reference_cnn,
    make_optimizer=lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9),
    batch_size=64,
    epochs=3,
    pipeline="pil",
    standardise=False,
)

FAST = Recipe(
    name="fast (this chapter)",
    make_model=fast_cnn,
    make_optimizer=lambda params: torch.optim.SGD(
        params, lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4
    ),
    batch_size=256,
    epochs=3,
    one_cycle=True,
)
