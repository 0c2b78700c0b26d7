"""Three successors of the residual network, at CIFAR-10 scale, for chapter 6's comparison.

- :func:`wide_resnet`: Zagoruyko and Komodakis's WRN-``depth``-``k`` (2016): pre-activation basic
  blocks, ``(depth - 4) / 6`` per stage, ``k`` times the widths 16, 32 and 64, projection
  shortcuts where the shape changes. Built with :class:`cnncourse.resnets.CifarResNet`.
- :class:`CifarResNeXt`: Xie et al.'s aggregated residual transformations (2017): bottleneck
  blocks whose 3x3 convolution is split into ``cardinality`` groups of ``group_width`` channels
  (both widths double per stage; the class gives the details). ``9n + 2`` layers.
- :func:`densenet_bc`: Huang et al.'s DenseNet-BC (2017) for CIFAR: three dense blocks of
  ``(depth - 4) / 6`` bottleneck layers that each add ``growth`` channels to everything before
  them, halving transitions between blocks. Built with torchvision's ``DenseNet`` class, its
  ImageNet stem (7x7 stride 2 and a max pool) replaced by one 3x3 convolution, as the paper does
  for CIFAR.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import DenseNet

from cnncourse.resnets import CifarResNet, _Block, _positive_int

__all__ = ["CifarResNeXt", "ResNeXtBlock", "densenet_bc", "wide_resnet"]


def wide_resnet(depth: int = 16, k: int = 2, classes: int = 10) -> CifarResNet:
    """WRN-``depth``-``k``: ``depth`` is ``6n + 4`` (16, 22, 28, 40), ``k`` the widening factor.

    The paper counts the two projection shortcuts among the layers; :class:`CifarResNet` does
    not, so it gets ``depth - 2``.
    """
    _positive_int("k", k)
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"depth is {depth!r}, but a wide ResNet has depth 6n + 4 (10, 16, 22, 28, ...).")
    return CifarResNet(
        depth - 2, widths=(16 * k, 32 * k, 64 * k), stem_width=16, preact=True, shortcut="B",
        classes=classes,
    )


class ResNeXtBlock(_Block):
    """1x1 to ``mid`` channels, a 3x3 convolution in ``groups`` groups (with ``stride``), 1x1 to
    ``c_out``, each with batch norm, and a projection shortcut where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, *, mid: int, groups: int) -> None:
        super().__init__(c_in, c_out, stride, residual=True, shortcut="B", preact=False)
        if mid % groups:
            raise ValueError(f"mid is {mid}, but it must be a multiple of groups ({groups}).")
        last_bn = nn.BatchNorm2d(c_out)
        self.branch = nn.Sequential(
            nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=groups, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, c_out, 1, bias=False), last_bn,
        )
        self.last_bn = last_bn


class CifarResNeXt(nn.Module):
    """A CIFAR ResNeXt of ``depth = 9n + 2`` layers (29 in the paper, with cardinality 8 or 16 and
    a group width of 64, which is far too costly for a CPU; the defaults are a small one).

    Stage ``s`` (0, 1, 2) has ``cardinality`` groups of ``group_width * 2**s`` channels in its 3x3
    convolutions and ``out_width * 2**s`` output channels; a 3x3 stem of ``stem_width`` channels
    reads the image, and global average pooling and a linear layer finish.
    """

    def __init__(
        self,
        depth: int = 20,
        cardinality: int = 8,
        group_width: int = 4,
        out_width: int = 64,
        stem_width: int = 32,
        classes: int = 10,
    ) -> None:
        super().__init__()
        for name, value in (("cardinality", cardinality), ("group_width", group_width),
                            ("out_width", out_width), ("stem_width", stem_width),
                            ("classes", classes)):
            _positive_int(name, value)
        if (depth - 2) % 9 or depth < 11:
            raise ValueError(f"depth is {depth!r}, but a CIFAR ResNeXt has depth 9n + 2 (11, 20, 29, ...).")
        n = (depth - 2) // 9
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_width, 3, padding=1, bias=False), nn.BatchNorm2d(stem_width), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        c_in = stem_width
        for stage in range(3):
            c_out, mid = out_width * 2**stage, cardinality * group_width * 2**stage
            for index in range(n):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(ResNeXtBlock(c_in, c_out, stride, mid=mid, groups=cardinality))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(images)))


def densenet_bc(depth: int = 40, growth: int = 12, classes: int = 10) -> DenseNet:
    """DenseNet-BC-``depth`` with growth rate ``growth`` for 32x32 images.

    ``depth = 6n + 4``: three dense blocks of ``n`` bottleneck layers (1x1 to ``4 * growth``
    channels, then 3x3 to ``growth``), a 3x3 stem of ``2 * growth`` channels, transitions that
    halve the channels (compression 0.5) and the resolution. Huang et al.'s DenseNet-BC-100 with
    growth 12 has 0.8M parameters.
    """
    _positive_int("growth", growth)
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"depth is {depth!r}, but a DenseNet-BC has depth 6n + 4 (10, 16, 40, 100, ...).")
    n = (depth - 4) // 6
    model = DenseNet(
        growth_rate=growth, block_config=(n, n, n), num_init_features=2 * growth, bn_size=4,
        num_classes=classes,
    )
    model.features.conv0 = nn.Conv2d(3, 2 * growth, 3, padding=1, bias=False)
    model.features.pool0 = nn.Identity()
    nn.init.kaiming_normal_(model.features.conv0.weight)
    return model
