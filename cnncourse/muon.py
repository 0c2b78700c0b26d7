"""Muon, an optimiser that orthogonalises each weight matrix's update, for the fast CIFAR-10 recipe.

For a convolution's filters, reshaped into a matrix W (out_channels x everything else), plain SGD
with momentum steps along the momentum M. Muon (Jordan et al., 2024, "Muon: an optimizer for
hidden layers in neural networks") steps along an approximation of the orthogonal factor of M:
if M = U S V^T, the step is roughly U V^T, so every direction in the update gets a similar size
instead of a few large singular directions dominating. The orthogonal factor is approximated by a
few iterations of a quintic Newton-Schulz polynomial, which needs only matrix products and works in
bfloat16.

:class:`Muon` handles two kinds of parameter groups, so the whole network has one optimiser (and
so one learning-rate scheduler and one checkpoint): groups with ``orthogonalize=True`` (the
convolution filters) get the Muon step, with the filters' norms held fixed; other groups (biases,
the classifier) get Nesterov SGD, with L2 weight decay added to the gradient.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["Muon", "orthogonalize"]

# Coefficients of the quintic p(x) = a x + b x^3 + c x^5, chosen (by Jordan et al.) so that the
# iteration pushes every singular value in (0, 1] quickly towards a band around 1.
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(matrix: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """An approximate orthogonal factor U V^T of ``matrix`` (2-D) by Newton-Schulz iterations.

    The matrix is scaled so its largest singular value is at most 1 (its Frobenius norm bounds
    it), then each iteration maps every singular value s to p(s) without changing U or V. A
    few steps give singular values spread around 1 (roughly 0.5-1.5), which trains as well as
    the exact factor.
    """
    if matrix.ndim != 2:
        raise ValueError(f"matrix has {matrix.ndim} dimensions, but it must be 2-D.")
    a, b, c = _NS_COEFFICIENTS
    x = matrix.bfloat16()
    x = x / (x.norm() + eps)
    tall = x.shape[0] > x.shape[1]
    if tall:  # iterate on the smaller Gram matrix
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for groups marked ``orthogonalize=True``, Nesterov SGD for the others.

    Args:
        params: parameter groups (dicts). Each may set ``lr``, ``momentum``, ``weight_decay``
            (SGD groups only) and ``orthogonalize``.
        lr, momentum: defaults for groups that do not set them.
        ns_steps: Newton-Schulz iterations per orthogonalised update.
    """

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        lr: float = 0.02,
        momentum: float = 0.9,
        ns_steps: int = 3,
    ) -> None:
        if lr < 0 or not 0 <= momentum < 1:
            raise ValueError(
                f"lr is {lr!r} and momentum {momentum!r}; need lr >= 0, 0 <= momentum < 1."
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": 0.0,
            "orthogonalize": False,
            "ns_steps": ns_steps,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["orthogonalize"] and any(p.ndim < 2 for p in group["params"]):
                raise ValueError(
                    "a group with orthogonalize=True holds a parameter with fewer than 2 "
                    "dimensions; orthogonalise only weight matrices and convolution filters."
                )

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        if closure is not None:
            raise ValueError("Muon.step takes no closure.")
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not group["orthogonalize"] and group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buffer = state["momentum_buffer"]
                buffer.mul_(momentum).add_(grad)
                direction = grad.add(buffer, alpha=momentum)  # Nesterov's look-ahead
                if group["orthogonalize"]:
                    # Hold each filter bank's norm at sqrt(out_channels), then take a step of
                    # fixed size along the orthogonalised direction.
                    param.mul_(len(param) ** 0.5 / param.norm())
                    flat = direction.reshape(len(direction), -1)
                    direction = orthogonalize(flat, group["ns_steps"]).view_as(param)
                param.add_(direction, alpha=-lr)
