"""Chapter 1's instant-feedback checks: the solutions pass, each wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and every call draws fresh inputs."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, seeded_runs, verdict_tests
from torch import nn

from cnncourse.checks import ch01, check
from cnncourse.checks.core import Opaque, compare_tensor


def layer_params(layer: nn.Module) -> int:
    bias = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    bias = bias if layer.bias is not None else 0
    if isinstance(layer, nn.Linear):
        return layer.in_features * layer.out_features + bias
    kh, kw = layer.kernel_size
    return layer.out_channels * (layer.in_channels // layer.groups) * kh * kw + bias


def conv_matrix(kernel: torch.Tensor, height: int, width: int, off: int = 1) -> torch.Tensor:
    kh, kw = kernel.shape
    out_h, out_w = height - kh + off, width - kw + 1
    matrix = torch.zeros(out_h * out_w, height * width, dtype=kernel.dtype)
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    matrix[i * out_w + j, (i + a) * width + (j + b)] = kernel[a, b]
    return matrix


def equivariance_error(
    layer: Any,
    images: torch.Tensor,
    dx: int,
    dy: int,
    sign: int = 1,
    by_shifted_input: bool = False,
) -> float:
    def shift(t: torch.Tensor) -> torch.Tensor:
        return torch.roll(t, shifts=(sign * dy, sign * dx), dims=(-2, -1))

    with torch.no_grad():
        shifted_out, out_of_shifted = shift(layer(images)), layer(shift(images))
        norm = out_of_shifted.norm() if by_shifted_input else shifted_out.norm()
        return ((out_of_shifted - shifted_out).norm() / norm).item()


SOLUTIONS = {
    "layer_params": (ch01.check_layer_params, layer_params),
    "conv_matrix": (ch01.check_conv_matrix, conv_matrix),
    "equivariance_error": (ch01.check_equivariance_error, equivariance_error),
}


def _forgot_bias(layer: nn.Module) -> int:
    return layer_params(layer) - (layer.bias.numel() if layer.bias is not None else 0)


WRONG: list[Wrong] = [
    # (checker, wrong function, substrings the one-sentence reason must contain)
    (ch01.check_layer_params, _forgot_bias, ["layer_params returned", "; expected", "bias=True"]),
    (
        ch01.check_layer_params,
        lambda layer: torch.tensor(layer_params(layer)),
        ["should return an int, got torch.Tensor"],
    ),
    (
        ch01.check_conv_matrix,
        lambda k, h, w: conv_matrix(k, h, w, off=0),
        ["conv_matrix returned shape (", "kernel on an image of size", "; expected ("],
    ),
    (
        ch01.check_conv_matrix,
        lambda k, h, w: conv_matrix(k.float(), h, w),
        ["dtype torch.float32", "expected torch.float64"],
    ),
    (
        ch01.check_conv_matrix,
        lambda k, h, w: conv_matrix(k.flip(0, 1), h, w),
        ["conv_matrix returned wrong values for a", "entry (", "entries differ"],
    ),
    (
        ch01.check_conv_matrix,
        lambda k, h, w: conv_matrix(k, h, w) * float("nan"),
        ["nan (not a number)"],
    ),
    (
        ch01.check_equivariance_error,
        lambda *a: equivariance_error(*a, sign=-1),
        ["equivariance_error returned", "; expected", "dx="],
    ),
    (
        ch01.check_equivariance_error,
        lambda *a: equivariance_error(*a, by_shifted_input=True),
        ["equivariance_error returned", "; expected"],
    ),
    (
        ch01.check_equivariance_error,
        lambda *a: torch.tensor(equivariance_error(*a)),
        ["should return a Python float, got torch.Tensor (use .item())"],
    ),
    (
        ch01.check_conv_matrix,
        lambda k, h, w: 1 / 0,
        ["raised ZeroDivisionError (division by zero) for a"],
    ),
]


(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests("01", SOLUTIONS, WRONG, [2, 3, 2], stub_prints=True)


def _by_basis_images(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    basis = torch.eye(height * width, dtype=kernel.dtype).reshape(-1, 1, height, width)
    return F.conv2d(basis, kernel[None, None]).flatten(1).T.contiguous()


FORBIDDEN = [
    # (exercise, shortcut, the route its one sentence names)
    Forbidden(ch01.LAYER_PARAMS, lambda layer: sum(p.numel() for p in layer.parameters()),
              ".parameters"),
    Forbidden(ch01.LAYER_PARAMS,
              lambda layer: sum(p.numel() for _, p in layer.named_parameters()),
              ".named_parameters"),
    Forbidden(ch01.LAYER_PARAMS, lambda layer: sum(t.numel() for t in layer.state_dict().values()),
              ".state_dict"),
    Forbidden(ch01.LAYER_PARAMS,
              lambda layer: layer.weight.numel() + (layer.bias.numel() if layer.bias is not None
                                                    else 0),
              ".weight"),
    Forbidden(ch01.LAYER_PARAMS, ch01._layer_reference, "cnncourse.checks.ch01._layer_reference"),
    Forbidden(ch01.CONV_MATRIX, _by_basis_images, "aten.convolution"),
    Forbidden(ch01.CONV_MATRIX, ch01._matrix_reference, "cnncourse.checks.ch01._matrix_reference"),
    Forbidden(ch01.EQUIVARIANCE_ERROR, ch01._equivariance_reference,
              "cnncourse.checks.ch01._equivariance_reference"),
]  # fmt: skip
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_fresh_random_cases_on_every_call() -> None:
    def describe(kernel: torch.Tensor, height: int, width: int) -> str:
        return f"{kernel.tolist()} {height} {width}"

    seen = seeded_runs(ch01.check_conv_matrix, conv_matrix, describe, (None, None))
    assert len(seen[0]) == len(seen[1]) == 20
    assert seen[0] != seen[1]
    # ... and a seed reproduces a run exactly
    seen = seeded_runs(ch01.check_conv_matrix, conv_matrix, describe, (7, 7), must_pass=False)
    assert seen[0] == seen[1]


def test_check_never_raises() -> None:
    assert not check(ch01.LAYER_PARAMS, "not a function").passed

    def exits(layer: nn.Module) -> int:
        raise SystemExit(3)

    result = ch01.check_layer_params(exits)
    assert "called sys.exit" in result.message


def test_arguments_are_fresh_for_the_reference() -> None:
    """A function that changes its arguments cannot change the expected answer."""

    def vandal(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
        matrix = conv_matrix(kernel, height, width)
        kernel.zero_()
        return matrix

    assert ch01.check_conv_matrix(vandal).passed


def test_opaque_outputs_are_described() -> None:
    expected = torch.zeros(2, 2, dtype=torch.float64)
    message = compare_tensor("f", expected, Opaque("torch.Tensor", "too large"), "x")
    assert message == "f returned a tensor that cannot be checked (too large) for x."
    message = compare_tensor("f", expected, Opaque("numpy.ndarray"), "x")
    assert message == "f should return a torch.Tensor, got numpy.ndarray, for x."
