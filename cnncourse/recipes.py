"""Timed MNIST training recipes: chapter 4's fast recipe and the reference recipe it is compared with.

Chapter 4 and ``benchmarks/fast_mnist.py`` share this module, so the notebook and the benchmark
time exactly the same code, and every recipe trains through the course's one loop,
:func:`cnncourse.training.fit`, on the tensor loader of :mod:`cnncourse.tensor_data`. A :class:`Recipe` names a model, a data pipeline, a batch size, an
optimiser and a learning-rate schedule; :func:`train_recipe` trains it and evaluates at regular
checkpoints, so that the *time to reach* an accuracy can be read off. Given a validation split
(``load_mnist_tensors(val_size=...)``), the checkpoints read the validation split and the official
test set is scored once, at the end; without one they read the test set, as the benchmark does.

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
- :data:`FASTEST`: :data:`FAST`'s network, Adam at peak learning rate 0.02 with betas 0.7 and
  0.9 (short memories suit a short run) in a one-cycle schedule, batch 512, 2 epochs, bf16 autocast
  where the CPU computes it natively, channels-last. The MNIST benchmark's candidate.
- :data:`TRAIN_MNIST_FAST`: the final recipe of the public project tuomaso/train_mnist_fast
  ("99% on MNIST in 0.76 seconds" on a GPU): 5x5 and 3x3 convolutions of 24 and 32 filters,
  each followed by 2x2 max pooling and ReLU, a 256-unit hidden layer, Adam (learning rate 0.01,
  betas 0.7 and 0.9) with a one-cycle schedule, batch 256, one epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import Compose, Normalize, ToTensor

from cnncourse import data
from cnncourse.precision import keep_freed_memory
from cnncourse.tensor_data import ImageTensors, TensorLoader
from cnncourse.training import evaluate, fit

__all__ = [
    "FAST",
    "FASTEST",
    "REFERENCE",
    "TRAIN_MNIST_FAST",
    "Checkpoint",
    "MnistTensors",
    "Recipe",
    "RecipeResult",
    "fast_cnn",
    "load_mnist_tensors",
    "reference_cnn",
    "train_mnist_fast_cnn",
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
    val_x: torch.Tensor | None = None
    """A validation split carved from the training images (None: no validation split)."""
    val_y: torch.Tensor | None = None


def load_mnist_tensors(
    root: str | os.PathLike[str] | None = None,
    *,
    train_size: int | None = None,
    test_size: int | None = None,
    val_size: int | None = None,
    seed: int = 0,
) -> MnistTensors:
    """MNIST's official training and test sets as tensors, optionally a fixed random subset of each.

    ``test_size`` takes the first ``test_size`` test images (the official order). ``val_size``
    carves a seeded random validation split of that many images out of the training images; the
    rest are the training split, and the pixel statistics come from them alone.
    """
    for name, size in (("test_size", test_size), ("val_size", val_size)):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ValueError(f"{name} is {size!r}, but it must be a positive integer or None.")
    train_set = data.subset(data.mnist(root, train=True), train_size, seed=seed)
    train_x, train_y = data.to_tensors(train_set)
    test_x, test_y = data.to_tensors(data.mnist(root, train=False))
    if test_size is not None:
        test_x, test_y = test_x[:test_size], test_y[:test_size]
    indices = (
        torch.as_tensor(train_set.indices)
        if hasattr(train_set, "indices")
        else torch.arange(len(train_y))
    )
    val_x = val_y = None
    if val_size is not None:
        if val_size >= len(train_y):
            raise ValueError(
                f"val_size is {val_size}, but there are only {len(train_y)} training images; "
                "leave some to train on."
            )
        order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(seed + 1))
        val_at, train_at = order[:val_size].sort().values, order[val_size:].sort().values
        val_x, val_y = train_x[val_at], train_y[val_at]
        train_x, train_y, indices = train_x[train_at], train_y[train_at], indices[train_at]
    if val_size is None and not hasattr(train_set, "indices"):
        indices = None  # all of the training set, in order
    return MnistTensors(
        train_x,
        train_y,
        test_x,
        test_y,
        mean=float(train_x.double().mean()),
        std=float(train_x.double().std()),
        root=None if root is None else os.fspath(root),
        train_indices=indices,
        val_x=val_x,
        val_y=val_y,
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


def train_mnist_fast_cnn() -> nn.Module:
    """tuomaso/train_mnist_fast's final network (pooling before ReLU, as it has it); 215,194
    parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 24, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(24, 32, 3),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 5 * 5, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
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
    warmup_fraction: float = 0.25
    """The part of a one-cycle schedule spent warming up."""
    cycle_momentum: bool = True
    """Let the one-cycle schedule cycle the momentum (or Adam's beta1) inversely to the rate."""
    channels_last: bool = False
    precision: str = "fp32"
    """``"fp32"``, or ``"bf16"``/``"auto"`` for autocast (see :mod:`cnncourse.precision`)."""


@dataclass(frozen=True)
class Checkpoint:
    """The accuracy on ``split`` after ``step`` optimiser steps and ``train_seconds`` of training."""

    step: int
    epoch: float
    train_seconds: float
    accuracy: float
    split: str = "MNIST official test set"
    """The split the checkpoint evaluated: the validation split when there is one."""


@dataclass
class RecipeResult:
    """What :func:`train_recipe` measured."""

    recipe: Recipe
    model: nn.Module
    checkpoints: list[Checkpoint] = field(default_factory=list)
    steps: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    """Mean training loss of each completed epoch (per image, so the smaller last batch weighs
    less than in reference text 000's per-batch mean; the two differ in the fourth decimal)."""
    test_accuracy: float = math.nan
    """The official test set's accuracy of the final model, scored once at the end."""

    @property
    def train_seconds(self) -> float:
        """Training time of the whole run (evaluations excluded)."""
        return self.checkpoints[-1].train_seconds if self.checkpoints else 0.0

    @property
    def final_accuracy(self) -> float:
        """The checkpoints' split's accuracy at the end of training (validation, if there is one)."""
        return self.checkpoints[-1].accuracy if self.checkpoints else math.nan

    def time_to(self, accuracy: float) -> float | None:
        """Training seconds at the first checkpoint reaching ``accuracy`` (None: never reached);
        with a validation split, it reads the validation split only, as selection must."""
        for point in self.checkpoints:
            if point.accuracy >= accuracy:
                return point.train_seconds
        return None


def _mnist_split(images: torch.Tensor, labels: torch.Tensor, split: str) -> ImageTensors:
    return ImageTensors(images, labels, tuple(str(i) for i in range(10)), split)


def train_recipe(
    recipe: Recipe,
    mnist: MnistTensors,
    *,
    seed: int = 0,
    evals_per_epoch: int = 4,
    epochs: int | None = None,
) -> RecipeResult:
    """Train ``recipe`` on ``mnist`` with :func:`cnncourse.training.fit`, evaluating
    ``evals_per_epoch`` times per epoch (the timer is paused while it evaluates): the validation
    split if ``mnist`` has one, and then the test images once at the end; else the test images.

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
    keep_freed_memory()
    torch.manual_seed(seed)
    model = recipe.make_model()
    optimizer = recipe.make_optimizer(model.parameters())
    mean, std = ((mnist.mean,), (mnist.std,)) if recipe.standardise else (None, None)
    loader: DataLoader[tuple[torch.Tensor, int]] | TensorLoader
    if recipe.pipeline == "pil":
        # The same images, decoded through PIL on every epoch as torchvision's pipeline does.
        steps: list[Any] = [ToTensor()]
        if mean is not None and std is not None:
            steps.append(Normalize(mean, std))
        pil_set = data.mnist(mnist.root, train=True, transform=Compose(steps))
        if mnist.train_indices is not None:
            pil_set = torch.utils.data.Subset(pil_set, mnist.train_indices.tolist())  # type: ignore[assignment]
        loader = DataLoader(
            pil_set,
            batch_size=recipe.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
    else:
        train = _mnist_split(mnist.train_x, mnist.train_y, "MNIST training images")
        loader = TensorLoader(train, recipe.batch_size, seed=seed, mean=mean, std=std)
    test = _mnist_split(mnist.test_x, mnist.test_y, "MNIST official test set")
    test_loader = TensorLoader(test, 2000, shuffle=False, mean=mean, std=std)
    checked, checked_loader = test.split, test_loader
    if mnist.val_x is not None and mnist.val_y is not None:
        val = _mnist_split(mnist.val_x, mnist.val_y, "MNIST validation split")
        checked, checked_loader = (
            val.split,
            TensorLoader(val, 2000, shuffle=False, mean=mean, std=std),
        )
    batches_per_epoch = len(loader)
    total_steps = batches_per_epoch * recipe.epochs
    scheduler = None
    if recipe.one_cycle:
        if total_steps < 4:
            raise ValueError(
                f"recipe {recipe.name!r} has only {total_steps} steps, but a one-cycle schedule "
                "needs at least 4; use more training images, more epochs or a smaller batch_size."
            )
        peak = [group["lr"] for group in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=peak,
            total_steps=total_steps,
            pct_start=max(recipe.warmup_fraction, 2 / total_steps),
            cycle_momentum=recipe.cycle_momentum,
        )
    history = fit(
        model,
        loader,
        optimizer,
        recipe.epochs,
        val_loader=checked_loader,
        evals_per_epoch=evals_per_epoch,
        scheduler=scheduler,
        scheduler_step="batch",
        device="cpu",
        precision=recipe.precision,
        channels_last=recipe.channels_last,
        progress=False,
    )
    result = RecipeResult(recipe, model, steps=total_steps, epoch_losses=list(history.train_loss))
    result.checkpoints = [
        Checkpoint(round(epoch * batches_per_epoch), epoch, seconds, accuracy, checked)
        for epoch, seconds, accuracy in zip(
            history.eval_epoch, history.eval_train_seconds, history.eval_acc, strict=True
        )
    ]
    if checked_loader is test_loader:
        result.test_accuracy = result.final_accuracy
    else:  # the test set, scored once
        result.test_accuracy = evaluate(model, test_loader, device="cpu").accuracy
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

TRAIN_MNIST_FAST = Recipe(
    name="train_mnist_fast",
    make_model=train_mnist_fast_cnn,
    make_optimizer=lambda params: torch.optim.Adam(params, lr=0.01, betas=(0.7, 0.9)),
    batch_size=256,
    epochs=1,
    one_cycle=True,
    warmup_fraction=0.3,  # OneCycleLR's default, which the project kept
    cycle_momentum=False,
)

FASTEST = Recipe(
    name="fastest (this course)",
    make_model=fast_cnn,
    make_optimizer=lambda params: torch.optim.Adam(params, lr=0.02, betas=(0.7, 0.9)),
    batch_size=512,
    epochs=2,
    one_cycle=True,
    warmup_fraction=0.3,
    cycle_momentum=False,
    channels_last=True,
    precision="auto",
)
