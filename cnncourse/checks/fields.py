"""The receptive field of a stack of layers, measured by backpropagation.

Chapter 5's receptive-field exercise checks against :func:`measured_receptive_field`, which
measures the field rather than applying the recurrence the learners are asked to write.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["measured_receptive_field"]


def _pair_first(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else int(value[0])


def measured_receptive_field(layers: nn.Sequential, max_size: int = 4096) -> int:
    """The receptive field of ``layers`` measured by backpropagation, along the height.

    Builds a 1-D twin of the stack (every convolution and pooling becomes a ``conv1d`` of the
    same kernel, stride and dilation with all-ones weights and no padding), feeds it a signal of
    ones long enough for one output, and counts the input positions that receive a gradient from
    the first output. Element-wise layers (activations, batch norm, dropout, identity) are skipped:
    they do not change which inputs an output depends on.

    Raises:
        TypeError: for a layer that is neither of those.
        ValueError: when the field may not fit in a ``max_size`` x ``max_size`` image.
    """
    geometry: list[tuple[int, int, int]] = []
    for layer in layers:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            dilation = getattr(layer, "dilation", 1)
            geometry.append(
                (
                    _pair_first(layer.kernel_size),
                    _pair_first(layer.stride),
                    _pair_first(dilation),
                )
            )
        elif not isinstance(layer, (nn.ReLU, nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.Tanh)):
            raise TypeError(f"measured_receptive_field does not handle {type(layer).__name__}.")
    length, jump = 1, 1
    for kernel, stride, dilation in geometry:  # an upper bound of the input length needed
        length += (kernel - 1) * dilation * jump + stride * jump
        jump *= stride
    if length > max_size:
        raise ValueError(f"the receptive field does not fit in a {max_size}x{max_size} image.")
    signal = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():  # the checks compute references under torch.no_grad()
        out = signal
        for kernel, stride, dilation in geometry:
            weight = torch.ones(1, 1, kernel, dtype=torch.float64)
            out = F.conv1d(out, weight, stride=stride, dilation=dilation)
        out[0, 0, 0].backward()
    assert signal.grad is not None
    touched = (signal.grad[0, 0] != 0).nonzero().flatten()
    return int(touched.max() - touched.min() + 1)
