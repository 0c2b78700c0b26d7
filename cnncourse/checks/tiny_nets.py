"""The tiny float64 networks chapter 4's exercise checks train and evaluate.

:func:`tiny_net` builds conv 3x3, batch norm, ReLU and a linear layer (with dropout for the
evaluation exercise); :func:`net_case` draws one's configuration and weights as plain data (so the
autograder can send it to its sandboxed worker) and :func:`build_net` rebuilds it from that data.
:class:`NoGradGuard` makes a network refuse to run while gradients are being recorded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnncourse.checks.core import Case, draw_int

__all__ = [
    "NoGradGuard",
    "build_net",
    "describe_net",
    "net_case",
    "randn",
    "random_batches",
    "tiny_net",
]


def randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float64 numbers of ``shape``, drawn from ``generator``."""
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


class NoGradGuard(nn.Module):
    """Passes its input through, but refuses to run while gradients are being recorded.

    The evaluation exercise puts one in its network: evaluation belongs inside
    ``torch.no_grad()`` (or ``torch.inference_mode()``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the model ran with gradient recording on; evaluate inside `with torch.no_grad():`"
            )
        return x


def tiny_net(channels: int, classes: int, size: int, dropout: float = 0.0) -> nn.Sequential:
    """Conv 3x3 -> BatchNorm2d -> ReLU -> Flatten -> (Dropout) -> Linear, in float64."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, channels, 3, padding=1, dtype=torch.float64),
        nn.BatchNorm2d(channels, dtype=torch.float64),
        nn.ReLU(),
        nn.Flatten(),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(channels * size * size, classes, dtype=torch.float64))
    return nn.Sequential(*layers)


def net_case(generator: torch.Generator) -> Case:
    """A tiny network's configuration and state, with non-trivial running statistics."""
    channels, classes, size = (
        draw_int(generator, 2, 4),
        draw_int(generator, 3, 5),
        draw_int(generator, 4, 6),
    )
    net = tiny_net(channels, classes, size)
    state = {
        name: randn(generator, *value.shape) * 0.5
        for name, value in net.state_dict().items()
        if value.is_floating_point()
    }
    state["1.running_var"] = torch.rand(channels, generator=generator, dtype=torch.float64) + 0.5
    return {"channels": channels, "classes": classes, "size": size, "state": state}


def build_net(case: Case, dropout: float = 0.0) -> nn.Sequential:
    """The network a :func:`net_case` describes (its last layer's keys follow the dropout)."""
    net = tiny_net(case["channels"], case["classes"], case["size"], dropout)
    state = {
        key.replace("4.", f"{len(net) - 1}.", 1) if key.startswith("4.") else key: value
        for key, value in case["state"].items()
    }
    net.load_state_dict(state, strict=False)
    return net


def random_batches(
    generator: torch.Generator, case: Case, count: int, low: int, high: int
) -> list[Any]:
    """``count`` random (images, labels) batches of ``low`` to ``high`` images for the network."""
    return [
        (
            randn(generator, n, 1, case["size"], case["size"]),
            torch.randint(0, case["classes"], (n,), generator=generator),
        )
        for n in (draw_int(generator, low, high) for _ in range(count))
    ]


def describe_net(case: Case) -> str:
    """How a check's verdict names the network of a case."""
    return (
        f"a tiny float64 network ({case['channels']} channels, {case['classes']} classes, "
        f"{case['size']}x{case['size']} images)"
    )
