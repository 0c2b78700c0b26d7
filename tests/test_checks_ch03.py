"""Chapter 3's instant-feedback checks: the solutions pass, each typical wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and every call draws fresh inputs."""

from __future__ import annotations

from typing import Any

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


def adaptive_avg_pool2d(
    x: torch.Tensor, output_size: tuple[int, int], *, floor_end: bool = False
) -> torch.Tensor:
    """Section 2's rule: output i of m pools rows [floor(i H / m), ceil((i + 1) H / m))."""
    (h, w), (out_h, out_w) = x.shape[-2:], output_size

    def windows(size: int, out: int) -> list[tuple[int, int]]:
        if floor_end:  # the slip: the end rounded down, so uneven windows lose a row
            return [
                (i * size // out, max(i * size // out + 1, (i + 1) * size // out))
                for i in range(out)
            ]
        return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]

    rows = [
        torch.stack([x[:, :, r0:r1, c0:c1].mean(dim=(-2, -1)) for c0, c1 in windows(w, out_w)], -1)
        for r0, r1 in windows(h, out_h)
    ]
    return torch.stack(rows, dim=-2)


SOLUTIONS = {
    "max_pool2d": (ch03.check_max_pool2d, max_pool2d),
    "max_pool2d_backward": (ch03.check_max_pool2d_backward, max_pool2d_backward),
    "global_avg_pool": (ch03.check_global_avg_pool, global_avg_pool),
    "adaptive_avg_pool2d": (ch03.check_adaptive_avg_pool2d, adaptive_avg_pool2d),
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
        ch03.check_adaptive_avg_pool2d,
        lambda x, size: adaptive_avg_pool2d(x, size, floor_end=True),
        ["adaptive_avg_pool2d returned wrong values for an input of shape", "output_size=("],
    ),
    (
        ch03.check_adaptive_avg_pool2d,
        lambda x, size: adaptive_avg_pool2d(x, size[::-1]),  # height and width swapped
        ["adaptive_avg_pool2d returned ", "expected"],
    ),
    (
        ch03.check_adaptive_avg_pool2d,
        lambda x, size: adaptive_avg_pool2d(x, size).float(),
        ["dtype torch.float32", "expected torch.float64"],
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
        "ex4-adaptive_avg_pool2d",
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
    Forbidden(ch03.ADAPTIVE_AVG_POOL2D, F.adaptive_avg_pool2d,
              "torch.nn.functional.adaptive_avg_pool2d"),
    Forbidden(ch03.ADAPTIVE_AVG_POOL2D, lambda x, size: nn.AdaptiveAvgPool2d(size)(x),
              "torch.nn.functional.adaptive_avg_pool2d"),
    Forbidden(ch03.ADAPTIVE_AVG_POOL2D, lambda x, size: F.interpolate(x, size=size, mode="area"),
              "torch.nn.functional.adaptive_avg_pool2d"),
    Forbidden(ch03.ADAPTIVE_AVG_POOL2D, ch03._adaptive_reference,
              "cnncourse.checks.ch03._adaptive_reference"),
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


def test_adaptive_cases_hold_uneven_and_growing_windows() -> None:
    """Uneven (overlapping) windows and outputs at least as large as the input are always drawn:
    they are where the floor/ceil rule matters."""
    for seed in range(10):
        cases = ch03.ADAPTIVE_AVG_POOL2D.make_cases(torch.Generator().manual_seed(seed))
        sizes = [(case["x"].shape[-2:], case["output_size"]) for case in cases]
        assert any(h % oh or w % ow for (h, w), (oh, ow) in sizes)
        assert any(oh >= h and ow >= w for (h, w), (oh, ow) in sizes)
