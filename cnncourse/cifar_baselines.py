"""Two CIFAR-10 recipes from the course's reference texts, as written, for comparison.

- **Text 004** ("course notes: CNN theory to a CIFAR-10 training pipeline"): a stem convolution
  and three residual blocks (32-64-128-256 channels, strided 3x3 convolutions, 1x1 projection
  shortcuts), global average pooling; per-image PIL transforms (random crop with 4-pixel padding,
  horizontal flip, colour jitter 0.2/0.2/0.2); Adam at learning rate 1e-3 with cosine annealing
  over 30 epochs, batch 128, gradient norm clipped at 1. It claims about 82% after 30 epochs. It
  takes its weight decay from a configuration file it does not show; we use 1e-4.
- **Text 001** ("CNNs for image classification, from convolution to >90% on CIFAR-10"): a
  VGG-style network of three double 3x3 conv-BN-ReLU blocks (64, 128, 256) with max pooling, and
  a 4096-512-10 classifier with dropout 0.5; PIL transforms (flip, crop with padding 4, rotation
  by up to 15 degrees, colour jitter 0.2/0.2/0.2/0.1); SGD at 0.01 with momentum 0.9 and weight
  decay 5e-4, the rate divided by 10 every 20 epochs, 50 epochs, batch 128. It claims 90%+ in
  20-30 epochs.

Both read the images through torchvision's dataset class and a ``DataLoader``, as the texts do
(without worker processes, which only compete with training on a 2-core machine), and train
through :func:`cnncourse.training.fit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from cnncourse import data
from cnncourse.tensor_data import ImageTensors, TensorLoader
from cnncourse.training import History, fit

__all__ = ["BASELINES", "Baseline", "text001_vgg", "text004_resnet", "train_baseline"]


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
            if c_in != c_out or stride != 1
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def text004_resnet(classes: int = 10) -> nn.Module:
    """Text 004's ``SimpleCNN``: a 3x3 stem (32), residual blocks to 64, 128, 256 channels, each
    halving the resolution, global average pooling and a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        _ResidualBlock(32, 64, 2),
        _ResidualBlock(64, 128, 2),
        _ResidualBlock(128, 256, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, classes),
    )


def _double_conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]


def text001_vgg(classes: int = 10) -> nn.Module:
    """Text 001's ``CIFAR10CNN``: three double conv blocks and a dropout classifier."""
    return nn.Sequential(
        *_double_conv(3, 64),
        *_double_conv(64, 128),
        *_double_conv(128, 256),
        nn.Flatten(),
        nn.Linear(256 * 4 * 4, 512),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(512, classes),
    )


@dataclass(frozen=True)
class Baseline:
    """A reference text's recipe: network, PIL transforms, optimiser, schedule, length."""

    name: str
    make_model: Callable[[], nn.Module]
    train_transform: Callable[[], transforms.Compose]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    make_scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]
    epochs: int
    claimed_accuracy: float
    claim: str
    clip_grad_norm: float | None = None
    batch_size: int = 128


_TEXT004_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_TEXT001_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def _pil_pipeline(*augment: Callable[..., object], stats: tuple[tuple[float, ...], ...]):
    return lambda: transforms.Compose(
        [*augment, transforms.ToTensor(), transforms.Normalize(*stats)]
    )


TEXT004 = Baseline(
    name="text 004 (residual CNN, Adam + cosine)",
    make_model=text004_resnet,
    train_transform=_pil_pipeline(
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.2, 0.2, 0.2),
        stats=_TEXT004_STATS,
    ),
    mean=_TEXT004_STATS[0],
    std=_TEXT004_STATS[1],
    make_optimizer=lambda model: torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4),
    make_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30),
    epochs=30,
    claimed_accuracy=0.824,
    claim="~82% test accuracy in 30 epochs (0.8237 'typical', 82.4% in its table)",
    clip_grad_norm=1.0,
)
TEXT001 = Baseline(
    name="text 001 (VGG-style, SGD + step decay)",
    make_model=text001_vgg,
    train_transform=_pil_pipeline(
        transforms.RandomHorizontalFlip(),
        transforms.RandomCrop(32, padding=4),
        transforms.RandomRotation(15),
        transforms.ColorJitter(0.2, 0.2, 0.2, 0.1),
        stats=_TEXT001_STATS,
    ),
    mean=_TEXT001_STATS[0],
    std=_TEXT001_STATS[1],
    make_optimizer=lambda model: torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4
    ),
    make_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.1),
    epochs=50,
    claimed_accuracy=0.90,
    claim="90%+ in 20-30 epochs",
)
BASELINES = {"text004": TEXT004, "text001": TEXT001}


def train_baseline(
    baseline: Baseline,
    train_indices: torch.Tensor,
    val: ImageTensors,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    time_budget: float | None = None,
    evals_per_epoch: int = 1,
    progress: bool = False,
) -> tuple[nn.Module, History]:
    """Train ``baseline`` as its text wrote it on the training images at ``train_indices`` of
    :func:`cnncourse.data.cifar10`'s training split, evaluating the validation split ``val``.

    ``time_budget`` stops it after that many seconds of training (evaluations excluded).
    """
    train_set = Subset(
        data.cifar10(root, train=True, transform=baseline.train_transform()), train_indices.tolist()
    )
    loader = DataLoader(
        train_set,
        batch_size=baseline.batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = TensorLoader(val, 1000, shuffle=False, mean=baseline.mean, std=baseline.std)
    torch.manual_seed(seed)
    model = baseline.make_model()
    optimizer = baseline.make_optimizer(model)
    history = fit(
        model,
        loader,
        optimizer,
        baseline.epochs,
        val_loader=val_loader,
        evals_per_epoch=evals_per_epoch,
        scheduler=baseline.make_scheduler(optimizer),
        device="cpu" if not torch.cuda.is_available() else "cuda",
        clip_grad_norm=baseline.clip_grad_norm,
        time_budget=time_budget,
        progress=progress,
    )
    return model, history
