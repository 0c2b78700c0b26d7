"""Residual networks for CIFAR-10, after He et al. (2016), section 4.2, and their measurements.

:class:`CifarResNet` builds the paper's CIFAR family: a 3x3 stem convolution with 16 channels,
three stages of ``n`` blocks at 16, 32 and 64 channels on 32x32, 16x16 and 8x8 maps (the first
block of stages two and three halves the resolution with stride 2), global average pooling and a
linear classifier: ``6n + 2`` weighted layers with basic blocks (two 3x3 convolutions each), or
``9n + 2`` with bottleneck blocks (1x1, 3x3, 1x1). The same builder makes the *plain* network of
the same depth (``residual=False``: every block without its addition), the three shortcut options
of the paper (A: subsample and pad with zero channels, no parameters; B: a 1x1 projection only
where the shape changes; C: a projection in every block), the pre-activation blocks of He et al.'s
"Identity mappings in deep residual networks" (2016b) and the zero-initialised last batch-norm
scale of Goyal et al. (2017).

Every block keeps its *residual branch* (``block.branch``) and its *shortcut*
(``block.shortcut``) apart, and can be *lesioned* (``block.lesioned = True``: the block passes its
input through unchanged), which is what the lesion study of Veit et al. (2016) needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.training import evaluate

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "ShortcutA",
    "count_parameters",
    "layer_gradient_norms",
    "lesion_accuracies",
    "shortcut_a",
]

ShortcutOption = Literal["A", "B", "C"]
BlockKind = Literal["basic", "bottleneck"]
_OPTIONS = ("A", "B", "C")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} is {value!r}, but it must be a positive integer.")
    return value


def shortcut_a(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """Option A's parameter-free shortcut: keep every ``stride``-th pixel in each direction and
    append zero channels up to ``out_channels``."""
    if x.ndim != 4:
        raise ValueError(f"x has shape {tuple(x.shape)}, but it must be a batch (N, C, H, W).")
    if out_channels < x.shape[1]:
        raise ValueError(
            f"out_channels is {out_channels}, fewer than the input's {x.shape[1]} channels; "
            "option A can only add channels."
        )
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x


class ShortcutA(nn.Module):
    """:func:`shortcut_a` as a module."""

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shortcut_a(x, self.out_channels, self.stride)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, stride={self.stride}"


def _projection(c_in: int, c_out: int, stride: int, batch_norm: bool) -> nn.Module:
    conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out)) if batch_norm else conv


def _shortcut(
    c_in: int, c_out: int, stride: int, option: ShortcutOption, preact: bool
) -> nn.Module:
    """Option A, B or C for one block (a pre-activation block's projection has no batch norm:
    its input is already normalised)."""
    reshapes = stride != 1 or c_in != c_out
    if option == "C" or (option == "B" and reshapes):
        return _projection(c_in, c_out, stride, batch_norm=not preact)
    if reshapes:
        return ShortcutA(c_out, stride)
    return nn.Identity()


class _Block(nn.Module):
    """What basic and bottleneck blocks share: the branch, the shortcut, the lesion switch."""

    branch: nn.Sequential
    last_bn: nn.BatchNorm2d | None

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        *,
        residual: bool,
        shortcut: ShortcutOption,
        preact: bool,
    ) -> None:
        super().__init__()
        if shortcut not in _OPTIONS:
            raise ValueError(f"shortcut is {shortcut!r}, but it must be 'A', 'B' or 'C'.")
        if stride not in (1, 2):
            raise ValueError(f"stride is {stride!r}, but it must be 1 or 2.")
        self.in_channels, self.out_channels, self.stride = c_in, c_out, stride
        self.residual, self.preact = residual, preact
        self.shortcut: nn.Module | None = (
            _shortcut(c_in, c_out, stride, shortcut, preact) if residual else None
        )
        self._lesioned = False

    def _set_lesioned(self, value: bool) -> None:
        if value and not self.identity_shaped:
            raise ValueError(
                f"this block maps {self.in_channels} to {self.out_channels} channels with stride "
                f"{self.stride}, so it cannot be deleted; only identity-shaped blocks can."
            )
        self._lesioned = bool(value)

    lesioned = property(
        lambda self: self._lesioned,
        _set_lesioned,
        doc="When True the block returns its input unchanged (identity-shaped blocks only).",
    )

    @property
    def identity_shaped(self) -> bool:
        """Whether the block keeps its input's shape, so that it can be deleted."""
        return self.stride == 1 and self.in_channels == self.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._lesioned:
            return x
        if self.preact:  # BN-ReLU-conv-BN-ReLU-conv, then the addition; nothing after it
            out, normalised = x, x
            for position, layer in enumerate(self.branch):
                out = layer(out)
                if position == 1:  # after the first BN-ReLU
                    normalised = out
            if self.shortcut is None:
                return out
            # a projection reads the normalised input, as in He et al. (2016b); A reads x itself
            projects = not isinstance(self.shortcut, nn.Identity | ShortcutA)
            return out + self.shortcut(normalised if projects else x)
        out = self.branch(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)


def _branch(layers: list[tuple[int, int, int, int]], preact: bool) -> tuple[nn.Sequential, Any]:
    """Convolutions ``(c_in, c_out, kernel, stride)`` with their batch norms and ReLUs, in the
    original order (conv-BN-ReLU, no ReLU after the last BN) or the pre-activation order."""
    modules: list[nn.Module] = []
    last = len(layers) - 1
    for index, (c_in, c_out, kernel, stride) in enumerate(layers):
        if preact:
            modules += [nn.BatchNorm2d(c_in), nn.ReLU(), _conv(c_in, c_out, kernel, stride)]
        else:
            modules += [_conv(c_in, c_out, kernel, stride), nn.BatchNorm2d(c_out)]
            if index < last:
                modules.append(nn.ReLU())
    norms = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    # the BN whose scale is zeroed: the last one on the branch (pre-activation: none follows the
    # last convolution, so the scale that multiplies the branch's output does not exist)
    return nn.Sequential(*modules), (None if preact else norms[-1])


class BasicBlock(_Block):
    """Two 3x3 convolutions (the first with ``stride``), each with batch norm, and a shortcut.

    Args:
        c_in, c_out: input and output channels.
        stride: 1, or 2 to halve the resolution.
        residual: add the shortcut (False: a plain block).
        shortcut: ``"A"``, ``"B"`` or ``"C"`` (see :mod:`cnncourse.resnets`).
        preact: the pre-activation order (BN-ReLU-conv twice, then the addition).
        zero_init: start the last batch norm's scale at zero, so the block starts as its shortcut.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int = 1,
        *,
        residual: bool = True,
        shortcut: ShortcutOption = "A",
        preact: bool = False,
        zero_init: bool = False,
    ) -> None:
        super().__init__(c_in, c_out, stride, residual=residual, shortcut=shortcut, preact=preact)
        self.branch, self.last_bn = _branch(
            [(c_in, c_out, 3, stride), (c_out, c_out, 3, 1)], preact
        )
        if zero_init and self.last_bn is not None:
            nn.init.zeros_(self.last_bn.weight)


class Bottleneck(_Block):
    """1x1 down to ``c_out // 4`` channels, 3x3 (with ``stride``), 1x1 up to ``c_out``, and a
    shortcut; arguments as for :class:`BasicBlock`."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int = 1,
        *,
        residual: bool = True,
        shortcut: ShortcutOption = "A",
        preact: bool = False,
        zero_init: bool = False,
    ) -> None:
        if c_out % 4:
            raise ValueError(f"c_out is {c_out}, but a bottleneck block needs a multiple of 4.")
        super().__init__(c_in, c_out, stride, residual=residual, shortcut=shortcut, preact=preact)
        mid = c_out // 4
        self.branch, self.last_bn = _branch(
            [(c_in, mid, 1, 1), (mid, mid, 3, stride), (mid, c_out, 1, 1)], preact
        )
        if zero_init and self.last_bn is not None:
            nn.init.zeros_(self.last_bn.weight)


class CifarResNet(nn.Module):
    """He et al.'s CIFAR-10 network of ``depth`` weighted layers, residual or plain.

    Args:
        depth: ``6n + 2`` for basic blocks (20, 32, 44, 56, 110), ``9n + 2`` for bottlenecks.
        residual: False builds the plain network of the same depth and widths.
        shortcut: ``"A"`` (the paper's CIFAR choice), ``"B"`` or ``"C"``.
        block: ``"basic"`` or ``"bottleneck"`` (a bottleneck stage is 4 times wider at its output,
            so its 1x1-3x3-1x1 middle has the basic network's widths).
        preact: pre-activation blocks (He et al. 2016b), with a final BN-ReLU before the pooling.
        zero_init_last_bn: zero the scale of each block's last batch norm (Goyal et al. 2017).
        widths: the three stages' channels (the paper's 16, 32, 64).
        stem_width: the stem convolution's channels, if not ``widths[0]`` (a wide ResNet keeps
            16 while its stages are wider; its first block then changes the width).
        classes: outputs of the classifier.
    """

    def __init__(
        self,
        depth: int,
        *,
        residual: bool = True,
        shortcut: ShortcutOption = "A",
        block: BlockKind = "basic",
        preact: bool = False,
        zero_init_last_bn: bool = False,
        widths: tuple[int, int, int] = (16, 32, 64),
        stem_width: int | None = None,
        classes: int = 10,
    ) -> None:
        super().__init__()
        _positive_int("depth", depth)
        _positive_int("classes", classes)
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block is {block!r}, but it must be 'basic' or 'bottleneck'.")
        if shortcut not in _OPTIONS:
            raise ValueError(f"shortcut is {shortcut!r}, but it must be 'A', 'B' or 'C'.")
        if len(widths) != 3:
            raise ValueError(f"widths is {widths!r}, but it must be three positive integers.")
        for width in widths:
            _positive_int("each of widths", width)
        stem = widths[0] if stem_width is None else _positive_int("stem_width", stem_width)
        per_block = 2 if block == "basic" else 3
        if (depth - 2) % (3 * per_block) or depth < 2 + 3 * per_block:
            form = "6n + 2 (8, 14, 20, ...)" if block == "basic" else "9n + 2 (11, 20, 29, ...)"
            raise ValueError(
                f"depth is {depth!r}, but a CIFAR ResNet with {block} blocks has depth {form}."
            )
        self.depth, self.n = depth, (depth - 2) // (3 * per_block)
        self.residual, self.preact = residual, preact
        expansion = 1 if block == "basic" else 4
        kind = BasicBlock if block == "basic" else Bottleneck
        self.stem = (
            _conv(3, stem, 3)
            if preact
            else nn.Sequential(_conv(3, stem, 3), nn.BatchNorm2d(stem), nn.ReLU())
        )
        blocks: list[nn.Module] = []
        c_in = stem
        for stage, width in enumerate(widths):
            for index in range(self.n):
                stride = 2 if stage > 0 and index == 0 else 1
                c_out = width * expansion
                blocks.append(
                    kind(
                        c_in,
                        c_out,
                        stride,
                        residual=residual,
                        shortcut=shortcut,
                        preact=preact,
                        zero_init=zero_init_last_bn,
                    )
                )
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        final: list[nn.Module] = [nn.BatchNorm2d(c_in), nn.ReLU()] if preact else []
        self.head = nn.Sequential(
            *final, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)
        )
        for module in self.modules():  # He initialisation of every convolution
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(images)))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameter values in ``model`` (optionally only those that train)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model is a {type(model).__name__}, but it must be a torch nn.Module.")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def layer_gradient_norms(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> list[tuple[str, float]]:
    """The L2 norm of the cross-entropy loss's gradient for each convolution's weight, in the
    order the model holds them, on one batch (in train mode, as training sees it).

    The model's gradients are cleared before and after; its parameters are not changed, though
    its batch norms' running statistics are updated once, as in any training step.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model is a {type(model).__name__}, but it must be a torch nn.Module.")
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("model has no nn.Conv2d layers, so there is no gradient to measure.")
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(model(images), labels).backward()
        norms = [(name, float(m.weight.grad.norm())) for name, m in convs]  # type: ignore[union-attr]
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return norms


def lesion_accuracies(
    model: CifarResNet,
    loader: Iterable[Any],
    *,
    device: torch.device | str | None = None,
    precision: Any = None,
    channels_last: bool = False,
) -> list[tuple[int, float]]:
    """Accuracy over ``loader`` with each identity-shaped block deleted in turn (Veit et al.):
    ``(block index, accuracy)`` pairs; the model is left as it was."""
    if not isinstance(model, CifarResNet):
        raise TypeError(f"model is a {type(model).__name__}, but it must be a CifarResNet.")
    results: list[tuple[int, float]] = []
    for index, block in enumerate(model.blocks):
        assert isinstance(block, _Block)
        if not block.identity_shaped:
            continue
        block.lesioned = True
        try:
            metrics = evaluate(
                model, loader, device=device, precision=precision, channels_last=channels_last
            )
        finally:
            block.lesioned = False
        results.append((index, metrics.accuracy))
    return results
