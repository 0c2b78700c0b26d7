"""Chapter 3's instant-feedback checks: the solutions pass, each typical wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and every call draws fresh inputs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, seeded_runs, verdict_tests
from torch import nn

from cnncourse.checks import ch03


def max_pool2d(x: torch.Tensor, kernel_size: int, stride: int, reduce: str = "max") -> torch.Tensor:
    windows = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    return windows.amax(dim=(-2, -1)) if reduce == "max" else windows.mean(dim=(-2, -1))


def max_pool2d_backward(
    x: torch.Tensor,
    grad_output: torch.Tensor,
    kernel_size: int,
    stride: int,
    accumulate: bool = True,
) -> torch.Tensor:
    n, c, h, w = x.shape
    windows = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    out_h, out_w = windows.shape[2], windows.shape[3]
    switch = windows.reshape(n, c, out_h, out_w, -1).argmax(dim=-1)
    rows = torch.arange(out_h).view(-1, 1) * stride + switch // kernel_size
    cols = torch.arange(out_w).view(1, -1) * stride + switch % kernel_size
    grad = torch.zeros(n, c, h * w, dtype=x.dtype)
    index, values = (rows * w + cols).reshape(n, c, -1), grad_output.reshape(n, c, -1)
    if accumulate:
        grad.scatter_add_(2, index, values)
    else:  # the classic slip: a later window overwrites an earlier one's gradient
        grad.scatter_(2, index, values)
    return grad.reshape(n, c, h, w)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def invariance_error(
    features: Any,
    images: torch.Tensor,
    dx: int,
    dy: int,
    circular: bool = False,
    pooled_norm: bool = False,
) -> float:
    with torch.no_grad():
        if circular:
            moved_images = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
        else:
            moved_images = F.pad(images, (dx, -dx, dy, -dy))
        base, moved = features(images).flatten(1), features(moved_images).flatten(1)
        if pooled_norm:  # one ratio for the whole batch instead of the mean of per-image ratios
            return ((moved - base).norm() / base.norm()).item()
        return ((moved - base).norm(dim=1) / base.norm(dim=1)).mean().item()


SOLUTIONS = {
    "max_pool2d": (ch03.check_max_pool2d, max_pool2d),
    "max_pool2d_backward": (ch03.check_max_pool2d_backward, max_pool2d_backward),
    "global_avg_pool": (ch03.check_global_avg_pool, global_avg_pool),
    "invariance_error": (ch03.check_invariance_error, invariance_error),
}


WRONG: list[Wrong] = [
    # (checker, wrong function, substrings the one-sentence reason must contain)
    (
        ch03.check_max_pool2d,
        lambda x, k, s: max_pool2d(x, k, s, reduce="mean"),
        [
            "max_pool2d returned wrong values for an input of shape",
            "kernel_size=",
            "entries differ",
        ],
    ),
    (
        ch03.check_max_pool2d,
        lambda x, k, s: max_pool2d(x, k, k),  # ignores the stride: a wrong shape or wrong values
        ["max_pool2d returned ", "expected"],
    ),
    (
        ch03.check_max_pool2d,
        lambda x, k, s: max_pool2d(x.float(), k, s),
        ["dtype torch.float32", "expected torch.float64"],
    ),
    (
        ch03.check_max_pool2d_backward,
        lambda x, g, k, s: max_pool2d_backward(x, g, k, s, accumulate=False),
        ["max_pool2d_backward returned wrong values for an input of shape", "entries differ"],
    ),
    (
        ch03.check_max_pool2d_backward,
        lambda x, g, k, s: max_pool2d_backward(x, torch.ones_like(g), k, s),  # ignores grad_output
        ["max_pool2d_backward returned wrong values"],
    ),
    (
        ch03.check_max_pool2d_backward,
        lambda x, g, k, s: g,  # returns the output's gradient, not the input's
        ["max_pool2d_backward returned shape (", "; expected ("],
    ),
    (
        ch03.check_global_avg_pool,
        lambda x: x.mean(dim=(2, 3), keepdim=True),
        ["global_avg_pool returned shape (", ", 1, 1) for an input of shape", "; expected ("],
    ),
    (
        ch03.check_global_avg_pool,
        lambda x: x.sum(dim=(2, 3)),
        ["global_avg_pool returned wrong values"],
    ),
    (
        ch03.check_invariance_error,
        lambda *a: invariance_error(*a, circular=True),
        ["invariance_error returned", "; expected", "dx="],
    ),
    (
        ch03.check_invariance_error,
        lambda *a: invariance_error(*a, pooled_norm=True),
        ["invariance_error returned", "; expected"],
    ),
    (
        ch03.check_invariance_error,
        lambda f, x, dx, dy: invariance_error(f, x, -dx, -dy),
        ["invariance_error returned", "; expected"],
    ),
    (
        ch03.check_invariance_error,
        lambda *a: torch.tensor(invariance_error(*a)),
        ["should return a Python float, got torch.Tensor (use .item())"],
    ),
]


(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "03",
    SOLUTIONS,
    WRONG,
    [2, 3, 1, 2],
    [
        "ex1-max_pool2d",
        "ex2-max_pool2d_backward",
        "ex3-global_avg_pool",
        "ex4-invariance_error",
    ],
    tries=3,
)


def _gradient_by_autograd(x: torch.Tensor, grad_output: torch.Tensor, k: int, s: int) -> Any:
    leaf = x.clone().requires_grad_(True)
    max_pool2d(leaf, k, s).backward(grad_output)
    return leaf.grad


def _gradient_by_torch_switches(x: torch.Tensor, grad_output: torch.Tensor, k: int, s: int) -> Any:
    _, switches = F.max_pool2d(x, k, s, return_indices=True)
    grad = torch.zeros_like(x).flatten(2)
    grad.scatter_add_(2, switches.flatten(2), grad_output.flatten(2))
    return grad.reshape(x.shape)


FORBIDDEN = [
    # (exercise, shortcut, the route its one sentence names)
    Forbidden(ch03.MAX_POOL2D, F.max_pool2d, "aten.max_pool2d_with_indices"),
    Forbidden(ch03.MAX_POOL2D, ch03._max_pool_reference,
              "cnncourse.checks.ch03._max_pool_reference"),
    Forbidden(ch03.MAX_POOL2D_BACKWARD, _gradient_by_autograd, "torch.autograd"),
    Forbidden(ch03.MAX_POOL2D_BACKWARD, _gradient_by_torch_switches,
              "aten.max_pool2d_with_indices"),
    Forbidden(ch03.MAX_POOL2D_BACKWARD, ch03._backward_reference,
              "cnncourse.checks.ch03._backward_reference"),
    Forbidden(ch03.GLOBAL_AVG_POOL, lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1),
              "torch.nn.functional.adaptive_avg_pool2d"),
    Forbidden(ch03.GLOBAL_AVG_POOL, lambda x: F.adaptive_avg_pool1d(x.flatten(2), 1).flatten(1),
              "torch.nn.functional.adaptive_avg_pool1d"),
    Forbidden(ch03.GLOBAL_AVG_POOL, lambda x: F.avg_pool2d(x, x.shape[2:]).flatten(1),
              "aten.avg_pool2d"),
    Forbidden(ch03.GLOBAL_AVG_POOL, ch03._gap_reference, "cnncourse.checks.ch03._gap_reference"),
    Forbidden(ch03.INVARIANCE_ERROR, ch03._invariance_reference,
              "cnncourse.checks.ch03._invariance_reference"),
]  # fmt: skip
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_overlapping_windows_are_always_drawn() -> None:
    """The backward check must contain overlapping windows, or `scatter_` would pass."""
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        cases = ch03.MAX_POOL2D_BACKWARD.make_cases(generator)
        assert sum(case["stride"] < case["kernel_size"] for case in cases) >= 10


def test_fresh_random_cases_and_seed_reproduces() -> None:
    def describe(x: torch.Tensor, kernel_size: int, stride: int) -> tuple[float, ...]:
        return (*x.shape, kernel_size, stride, float(x.sum()))

    seen = seeded_runs(ch03.check_max_pool2d, max_pool2d, describe)
    assert len(seen[0]) == 30 and seen[0] != seen[1]
    assert seen[2] == seen[3]


def test_arguments_are_fresh_for_the_reference() -> None:
    def vandal(x: torch.Tensor, grad_output: torch.Tensor, kernel_size: int, stride: int) -> Any:
        grad = max_pool2d_backward(x, grad_output, kernel_size, stride)
        x.zero_()
        grad_output.zero_()
        return grad

    assert ch03.check_max_pool2d_backward(vandal).passed


def test_reference_of_backward_is_autograd_even_without_grad_mode() -> None:
    case = ch03.MAX_POOL2D_BACKWARD.make_cases(torch.Generator().manual_seed(0))[0]
    with torch.no_grad():
        expected = ch03.MAX_POOL2D_BACKWARD.expected(case)
    assert expected.shape == case["x"].shape
    assert torch.allclose(expected.sum(), case["grad_output"].sum())  # every gradient lands once


def test_pooled_features_and_shift() -> None:
    images = torch.arange(16.0).reshape(1, 1, 4, 4)
    moved = ch03.zero_fill_shift(images, 1, -1)
    assert torch.equal(moved[0, 0, :3, 1:], images[0, 0, 1:, :3])
    assert moved[0, 0, :, 0].eq(0).all() and moved[0, 0, 3].eq(0).all()
    weight, bias = torch.randn(2, 1, 3, 3, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    gap = ch03.PooledFeatures(weight, bias, "global average pooled")
    assert gap(images.double()).shape == (1, 2)
    with pytest.raises(ValueError, match="readout is 'median'"):
        ch03.PooledFeatures(weight, bias, "median")


def test_invariance_reference_is_zero_for_no_shift() -> None:
    case = ch03.INVARIANCE_ERROR.make_cases(torch.Generator().manual_seed(1))[0]
    features, images, _, _ = ch03.INVARIANCE_ERROR.build(case)
    assert ch03.INVARIANCE_ERROR.reference(features, images, 0, 0) == 0.0


def test_features_argument_is_a_module() -> None:
    """The exercise's features argument is an nn.Module the student can call."""
    case = ch03.INVARIANCE_ERROR.make_cases(torch.Generator().manual_seed(2))[0]
    assert isinstance(ch03.INVARIANCE_ERROR.build(case)[0], nn.Module)
