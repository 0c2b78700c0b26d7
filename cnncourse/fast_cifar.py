"""The course's fast CIFAR-10 recipe: 90% in minutes on a laptop CPU, 94% in seconds on a GPU.

Our own implementation of the ideas of Keller Jordan's airbench ("94% on CIFAR-10 in 3.29 seconds
on a single GPU", 2024, and its Muon variant), configured through the course's one training loop
(:func:`cnncourse.training.fit`) and its tensor data path. What makes it fast, in order of effect:

1. **Data as tensors on the device**, augmented in batches (:mod:`cnncourse.augment`): a 2-pixel
   reflect-padded random translation and an alternating flip. No per-image Python work.
2. **A short, wide, shallow network**: a frozen 2x2 *whitening* convolution, then three groups of
   (3x3 conv, 2x2 max-pool, batch norm, GELU, 3x3 conv, batch norm, GELU), a 3x3 max-pool and a
   linear classifier without bias. Eight convolutions in all, most of them on small maps.
3. **Whitening**: the first layer's filters are fixed to the eigenvectors of the covariance of
   2x2 patches of training images, scaled by 1/sqrt(eigenvalue), with their negatives: the
   network starts from decorrelated, equal-variance inputs and need not learn that itself.
4. **Muon** (:mod:`cnncourse.muon`) on the convolution filters, Nesterov SGD on the biases and the
   classifier, with a linearly decaying learning rate and no warm-up; the batch norms' scales are
   frozen at 1, and their running statistics use a short memory (momentum 0.4).
5. **Label smoothing 0.2**, and an identity-like (Dirac) initialisation of each convolution.
6. **bf16 autocast and channels-last** where the hardware computes them fast
   (:mod:`cnncourse.precision`), and glibc's allocator told to keep freed memory.
7. **Test-time augmentation**: the mean of the logits of each image and its mirror image.

Hyperparameters follow airbench94_muon, converted from its summed loss to the mean loss that
``fit`` uses: an SGD learning rate per example ``lr`` becomes ``lr * batch_size``, and its weight
decay ``2e-6 / lr`` (Muon's step does not depend on the gradient's scale).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import torch
from torch import nn

from cnncourse.augment import AlternatingFlip, RandomCrop
from cnncourse.muon import Muon
from cnncourse.precision import Precision, choose_precision, keep_freed_memory
from cnncourse.tensor_data import BatchAugmentation, ImageTensors, TensorLoader
from cnncourse.training import History, fit

__all__ = [
    "CIFAR_90",
    "CIFAR_93",
    "CIFAR_94",
    "PRESETS",
    "CifarPreset",
    "FastCifarNet",
    "FastCifarRun",
    "train_fast_cifar",
    "tta_accuracy",
]

TTA = Literal["none", "flip", "flip_translate"]


@dataclass(frozen=True)
class CifarPreset:
    """One configuration of the recipe: network widths, epochs, batch size, optimiser settings."""

    name: str
    widths: tuple[int, int, int]
    epochs: int
    batch_size: int = 2000
    filter_lr: float = 0.24
    """Muon's step size for the convolution filters."""
    filter_momentum: float = 0.6
    bias_lr: float = 0.053
    """Per-example SGD learning rate of the biases (multiplied by the batch size)."""
    head_lr: float = 0.67
    """Per-example SGD learning rate of the classifier (multiplied by the batch size)."""
    sgd_momentum: float = 0.85
    weight_decay: float = 2e-6
    label_smoothing: float = 0.2
    translate: int = 2
    whiten_bias_epochs: int = 3
    """The whitening layer's bias learns for this many epochs, then is frozen."""
    tta: TTA = "flip"


CIFAR_90 = CifarPreset("90%", widths=(64, 128, 128), epochs=5)
"""Aims at 90% held-out accuracy (with flip TTA) in about three minutes on 2 CPU cores."""
CIFAR_93 = CifarPreset("93%", widths=(64, 256, 256), epochs=8)
"""Aims at 93% held-out accuracy in about ten minutes on 2 CPU cores."""
CIFAR_94 = CifarPreset("94%", widths=(64, 256, 256), epochs=8, tta="flip_translate")
"""airbench94_muon's configuration (with its flip-and-translate TTA), for the official split."""
PRESETS = {preset.name: preset for preset in (CIFAR_90, CIFAR_93, CIFAR_94)}


class _BatchNorm(nn.BatchNorm2d):
    """Batch norm with its scale frozen at 1 and a short memory for its running statistics."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding="same", bias=False)
    with torch.no_grad():  # start close to the identity on the first min(c_in, c_out) channels
        nn.init.dirac_(conv.weight[: min(c_in, c_out)])
    return conv


class _ConvGroup(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            _conv(c_in, c_out),
            nn.MaxPool2d(2),
            _BatchNorm(c_out),
            nn.GELU(),
            _conv(c_out, c_out),
            _BatchNorm(c_out),
            nn.GELU(),
        )


class FastCifarNet(nn.Module):
    """Whitening, three conv groups, max-pool and a bias-free linear classifier (see module)."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), classes: int = 10) -> None:
        super().__init__()
        if len(widths) != 3 or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths
        ):
            raise ValueError(f"widths is {widths!r}, but it must be three positive integers.")
        self.whiten = nn.Conv2d(3, 24, kernel_size=2, bias=True)  # 12 eigenvectors and negatives
        self.whiten.weight.requires_grad_(False)
        self.body = nn.Sequential(
            nn.GELU(),
            _ConvGroup(24, widths[0]),
            _ConvGroup(widths[0], widths[1]),
            _ConvGroup(widths[1], widths[2]),
            nn.MaxPool2d(3),
            nn.Flatten(),
        )
        self.head = nn.Linear(widths[2], classes, bias=False)
        with torch.no_grad():
            self.head.weight.div_(self.head.weight.std())
        self.output_scale = 1.0 / widths[2]

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised training images (N, 3, H, W)."""
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H', W', 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = eigenvectors.T.reshape(12, 3, 2, 2) / torch.sqrt(eigenvalues + eps).view(
            -1, 1, 1, 1
        )
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.whiten(images))) * self.output_scale


@torch.no_grad()
def tta_logits(model: nn.Module, images: torch.Tensor, tta: TTA = "flip") -> torch.Tensor:
    """Logits averaged over views of each image: itself (``"none"``), and its mirror image
    (``"flip"``), and those of the image shifted one pixel up-left and down-right
    (``"flip_translate"``, weighted as airbench weights them)."""
    if tta not in ("none", "flip", "flip_translate"):
        raise ValueError(f"tta is {tta!r}, but it must be 'none', 'flip' or 'flip_translate'.")

    def mirrored(x: torch.Tensor) -> torch.Tensor:
        return model(x) if tta == "none" else 0.5 * (model(x) + model(x.flip(-1)))

    logits = mirrored(images)
    if tta == "flip_translate":
        padded = nn.functional.pad(images, (1, 1, 1, 1), mode="reflect")
        h, w = images.shape[-2:]
        shifted = [padded[..., :h, :w], padded[..., 2 : h + 2, 2 : w + 2]]
        logits = 0.5 * logits + 0.25 * (mirrored(shifted[0]) + mirrored(shifted[1]))
    return logits


@torch.no_grad()
def tta_accuracy(
    model: nn.Module, loader: TensorLoader, tta: TTA, precision: Precision | None = None
) -> float:
    """Accuracy over every image of ``loader`` with test-time augmentation ``tta``."""
    was_training = model.training
    model.eval()
    mode = precision or choose_precision(loader.device, "fp32")
    correct = 0
    images, labels = loader.all_images(), loader.tensors.labels.to(loader.device)
    try:
        for batch, target in zip(images.split(1000), labels.split(1000), strict=True):
            with mode.autocast():
                correct += int((tta_logits(model, batch, tta).argmax(1) == target).sum())
    finally:
        model.train(was_training)
    return correct / len(labels)


@dataclass
class FastCifarRun:
    """What :func:`train_fast_cifar` produced and measured."""

    preset: CifarPreset
    model: FastCifarNet
    history: History
    precision: Precision
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    setup_seconds: float
    """Time to initialise the whitening layer (counted as training time, as airbench does)."""

    @property
    def train_seconds(self) -> float:
        """Training time: set-up plus the training loop, evaluations excluded."""
        return self.setup_seconds + self.history.train_seconds

    def time_to(self, accuracy: float) -> float | None:
        """Training seconds until the validation split first reached ``accuracy`` (or None)."""
        reached = self.history.time_to(accuracy)
        return None if reached is None else self.setup_seconds + reached


def _optimizer(model: FastCifarNet, preset: CifarPreset) -> Muon:
    norm_biases = [p for m in model.modules() if isinstance(m, _BatchNorm) for p in [m.bias]]
    filters = [p for p in model.body.parameters() if p.ndim == 4]
    batch = preset.batch_size

    def sgd(params: Sequence[torch.Tensor], lr: float) -> dict[str, object]:
        return {
            "params": params,
            "lr": lr * batch,
            "momentum": preset.sgd_momentum,
            "weight_decay": preset.weight_decay / lr if lr > 0 else 0.0,
        }

    return Muon(
        [
            sgd([cast(torch.Tensor, model.whiten.bias)], preset.bias_lr),
            sgd(norm_biases, preset.bias_lr),
            sgd([model.head.weight], preset.head_lr),
            {
                "params": filters,
                "lr": preset.filter_lr,
                "momentum": preset.filter_momentum,
                "orthogonalize": True,
            },
        ]
    )


class _WhiteningBiasSchedule:
    """The learning-rate schedule, plus freezing the whitening bias once its steps are done.

    Once no parameter before the first convolution group needs a gradient, autograd skips that
    convolution's input gradient (the largest map in the network) and the first GELU's: about 5%
    of an epoch's time on 2 CPU cores. airbench freezes it the same way.
    """

    def __init__(
        self, schedule: torch.optim.lr_scheduler.LambdaLR, bias: torch.Tensor, steps: int
    ) -> None:
        self.schedule, self.bias, self.steps = schedule, bias, steps
        self._apply()

    def _apply(self) -> None:
        self.bias.requires_grad_(self.schedule.last_epoch < self.steps)

    def step(self) -> None:
        self.schedule.step()
        self._apply()

    def state_dict(self) -> dict[str, object]:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.schedule.load_state_dict(state)
        self._apply()


def train_fast_cifar(
    preset: CifarPreset,
    train: ImageTensors,
    val: ImageTensors | None = None,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: Precision | str = "auto",
    epochs: int | None = None,
    evals_per_epoch: int = 1,
    time_budget: float | None = None,
    progress: bool = True,
    augment: Sequence[BatchAugmentation] | None = None,
    wrap: Callable[[TensorLoader], Iterable[Any]] | None = None,
    loss_fn: nn.Module | None = None,
    stats: tuple[Sequence[float], Sequence[float]] | Literal["train", "none"] = "train",
) -> FastCifarRun:
    """Train ``preset`` on ``train``, evaluating the *validation* split ``val`` as it goes.

    ``epochs`` overrides the preset's (the smoke profile trains less). Score the evaluation split
    once, at the end, with :func:`tta_accuracy`. Chapter 7 varies the data pipeline:
    ``augment`` replaces the preset's batched augmentations (translation and alternating flip;
    ``[]`` for none), ``wrap`` wraps the training loader (e.g. ``lambda loader:
    MixedBatches(loader, "cutmix", 10)``, or a loader with a weighted sampler), ``loss_fn``
    replaces the preset's label-smoothed cross-entropy, and ``stats`` gives the normalisation:
    ``"train"`` (the training split's own statistics), ``"none"`` (pixels in [0, 1]) or a
    (mean, std) pair.
    """
    if epochs is not None:
        preset = replace(preset, epochs=epochs)
    keep_freed_memory()
    dev = torch.device(device)
    mode = precision if isinstance(precision, Precision) else choose_precision(dev, precision)
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    if stats == "train":
        mean, std = train.channel_stats()
    elif stats == "none":
        mean = std = None
    else:
        mean, std = tuple(stats[0]), tuple(stats[1])
    batch_size = min(preset.batch_size, len(train))
    loader = TensorLoader(
        train,
        batch_size,
        drop_last=True,
        seed=seed,
        device=dev,
        mean=mean,
        std=std,
        augment=(
            [RandomCrop(preset.translate), AlternatingFlip(len(train), seed)]
            if augment is None
            else augment
        ),
        channels_last=True,
    )
    val_loader = (
        TensorLoader(val, 2000, shuffle=False, device=dev, mean=mean, std=std, channels_last=True)
        if val is not None
        else None
    )
    torch.manual_seed(seed)
    model = FastCifarNet(preset.widths, len(train.classes)).to(dev)
    started = time.perf_counter()
    model.init_whitening(loader.prepare(train.images[:5000].to(dev)))
    setup = time.perf_counter() - started

    optimizer = _optimizer(model, preset)
    total = preset.epochs * len(loader)
    whiten_steps = max(1, min(preset.whiten_bias_epochs, preset.epochs) * len(loader))

    def decay(steps: int):  # linear to zero over `steps`, then zero
        return lambda step: max(0.0, 1.0 - step / steps)

    schedule = _WhiteningBiasSchedule(
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, [decay(whiten_steps), decay(total), decay(total), decay(total)]
        ),
        cast(torch.Tensor, model.whiten.bias),
        whiten_steps,
    )
    history = fit(
        model,
        loader if wrap is None else wrap(loader),
        optimizer,
        preset.epochs,
        loss_fn=loss_fn or nn.CrossEntropyLoss(label_smoothing=preset.label_smoothing),
        val_loader=val_loader,
        evals_per_epoch=evals_per_epoch,
        scheduler=schedule,
        scheduler_step="batch",
        device=dev,
        precision=mode,
        channels_last=True,
        time_budget=time_budget,
        progress=progress,
    )
    return FastCifarRun(preset, model, history, mode, mean, std, setup)
