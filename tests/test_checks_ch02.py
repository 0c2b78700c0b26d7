"""Chapter 2's instant-feedback checks: the solutions pass, each typical wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", each forbidden route is rejected by name,
and the receptive-field reference that chapter 5 checks against (a backpropagation measurement)
agrees with the textbook recurrence."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, seeded_runs, verdict_tests
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnncourse.checks import ch02, ch05
from cnncourse.checks.core import fresh_generator
from cnncourse.checks.fields import measured_receptive_field


def conv2d_loops(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    use_dilation: bool = True,
    use_bias: bool = True,
    flip: bool = False,
) -> torch.Tensor:
    d = dilation if use_dilation else 1
    if flip:
        weight = weight.flip(-2, -1)
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    padded = F.pad(x, (padding,) * 4)
    out_h = (h + 2 * padding - d * (kh - 1) - 1) // stride + 1
    out_w = (w + 2 * padding - d * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n, c_out, out_h, out_w, dtype=x.dtype)
    for b in range(n):
        for o in range(c_out):
            for i in range(out_h):
                for j in range(out_w):
                    top, left = i * stride, j * stride
                    patch = padded[
                        b, :, top : top + d * (kh - 1) + 1 : d, left : left + d * (kw - 1) + 1 : d
                    ]
                    value = (patch * weight[o]).sum()
                    if bias is not None and use_bias:
                        value = value + bias[o]
                    out[b, o, i, j] = value
    return out


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    *,
    use_dilation: bool = True,
    ceil: bool = False,
) -> int:
    if padding == "same":
        return size
    if padding == "valid":
        padding = 0
    assert isinstance(padding, int)
    span = (dilation if use_dilation else 1) * (kernel - 1) + 1
    free = size + 2 * padding - span
    return (free + stride - 1) // stride + 1 if ceil else free // stride + 1


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def count_macs(
    layers: nn.Sequential,
    height: int,
    width: int,
    *,
    use_groups: bool = True,
    bias: bool = False,
    pools: bool = True,
    same: bool = True,
) -> int:
    h, w, total = height, width, 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
            if layer.padding == "same" and same:
                out_h, out_w = h, w
            else:
                ph, pw = (0, 0) if isinstance(layer.padding, str) else layer.padding
                out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
                out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
            groups = layer.groups if use_groups else 1
            per_output = (layer.in_channels // groups) * kh * kw + (1 if bias else 0)
            total += out_h * out_w * layer.out_channels * per_output
            h, w = out_h, out_w
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)) and pools:
            (k, _), (s, _), (p, _) = (
                _pair(layer.kernel_size),
                _pair(layer.stride),
                _pair(layer.padding),
            )
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif isinstance(layer, nn.Linear):
            total += layer.in_features * layer.out_features
    return total


def conv2d_unfold(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    use_bias: bool = True,
    swap: bool = False,
) -> torch.Tensor:
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = weight.reshape(c_out, -1) @ columns
    if bias is not None and use_bias:
        out = out + bias[:, None]
    out_h = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    if swap:  # a plausible mistake: height and width read in the wrong order
        return out.reshape(n, c_out, out_w, out_h).transpose(-2, -1).contiguous()
    return out.reshape(n, c_out, out_h, out_w)


SOLUTIONS = {
    "conv2d_loops": (ch02.check_conv2d_loops, conv2d_loops),
    "output_size": (ch02.check_output_size, output_size),
    "count_macs": (ch02.check_count_macs, count_macs),
    "conv2d_unfold": (ch02.check_conv2d_unfold, conv2d_unfold),
}


WRONG: list[Wrong] = [
    # (checker, wrong function, substrings the one-sentence reason must contain)
    (
        ch02.check_conv2d_loops,
        lambda *a: conv2d_loops(*a, use_bias=False),
        ["conv2d_loops returned wrong values for input (", "a bias", "entries differ"],
    ),
    (
        ch02.check_conv2d_loops,
        lambda *a: conv2d_loops(*a, use_dilation=False),
        ["conv2d_loops returned", "dilation 2"],
    ),
    (
        ch02.check_conv2d_loops,
        lambda *a: conv2d_loops(*a, flip=True),
        ["conv2d_loops returned wrong values for input ("],
    ),
    (
        ch02.check_conv2d_loops,
        lambda *a: conv2d_loops(*a).float(),
        ["dtype torch.float32", "expected torch.float64"],
    ),
    (
        ch02.check_output_size,
        lambda *a: output_size(*a, use_dilation=False),
        ["output_size returned", "; expected", "dilation="],
    ),
    (ch02.check_output_size, lambda *a: output_size(*a, ceil=True), ["; expected"]),
    (
        ch02.check_output_size,
        lambda *a: float(output_size(*a)),
        ["output_size should return an int, got float"],
    ),
    (
        ch02.check_output_size,
        lambda size, kernel, stride, padding, dilation: output_size(
            size, kernel, stride, 0 if isinstance(padding, str) else padding, dilation
        ),
        ["padding='same'", "; expected"],
    ),
    (
        ch02.check_count_macs,
        lambda *a: count_macs(*a, use_groups=False),
        ["count_macs returned", "for the stack [conv ", "groups=", "; expected"],
    ),
    (
        ch02.check_count_macs,
        lambda *a: count_macs(*a, bias=True),
        ["count_macs returned", "; expected"],
    ),
    (
        ch02.check_count_macs,
        lambda *a: count_macs(*a, pools=False),
        ["count_macs returned", "pool k=", "; expected"],
    ),
    (
        ch02.check_count_macs,
        lambda *a: count_macs(*a, same=False),
        ["count_macs returned", "p='same'", "; expected"],
    ),
    (
        ch02.check_count_macs,
        lambda *a: torch.tensor(count_macs(*a)),
        ["should return an int, got torch.Tensor (use int(...) or .item())"],
    ),
    (
        ch02.check_conv2d_unfold,
        lambda *a: conv2d_unfold(*a, use_bias=False),
        ["conv2d_unfold returned wrong values", "a bias"],
    ),
    (ch02.check_conv2d_unfold, lambda *a: conv2d_unfold(*a, swap=True), ["conv2d_unfold returned"]),
    (
        ch02.check_conv2d_unfold,
        lambda x, w, b, s, p, d: conv2d_unfold(x, w, b, 1, p, d),
        ["conv2d_unfold returned shape (", "stride"],
    ),
]


(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "02",
    SOLUTIONS,
    WRONG,
    [4, 2, 3, 3],
    [
        "ex1-conv2d_loops",
        "ex2-output_size",
        "ex3-count_macs",
        "ex4-conv2d_unfold",
    ],
)


def _by_torch(x: torch.Tensor, weight: torch.Tensor, bias: Any, s: int, p: int, d: int) -> Any:
    return F.conv2d(x, weight, bias, stride=s, padding=p, dilation=d)


def _length_by_running(size: int, kernel: int, stride: int, padding: Any, dilation: int) -> int:
    signal, weight = torch.zeros(1, 1, size), torch.ones(1, 1, kernel)
    return F.conv1d(signal, weight, stride=stride, padding=padding, dilation=dilation).shape[-1]


def _length_by_pooling(size: int, kernel: int, stride: int, padding: Any, dilation: int) -> int:
    pad = 0 if isinstance(padding, str) else padding
    signal = torch.zeros(1, 1, size)
    return F.max_pool1d(signal, kernel, stride, min(pad, kernel // 2), dilation).shape[-1]


def _length_by_unfold(size: int, kernel: int, stride: int, padding: Any, dilation: int) -> int:
    pad = 0 if isinstance(padding, str) else padding
    columns = F.unfold(
        torch.zeros(1, 1, 1, size), (1, kernel), dilation=dilation, padding=(0, pad), stride=stride
    )
    return columns.shape[-1]


def _macs_by_running_the_model(layers: nn.Sequential, height: int, width: int) -> int:
    with FlopCounterMode(display=False) as counter:
        layers(torch.zeros(1, layers[0].in_channels, height, width))
    return counter.get_total_flops() // 2


def _macs_by_a_copy(layers: nn.Sequential, height: int, width: int) -> int:
    twin = copy.deepcopy(layers)  # the copy's forward is the guard's tripwire too
    return twin(torch.zeros(1, layers[0].in_channels, height, width)).numel()


def _macs_by_fresh_layers(layers: nn.Sequential, height: int, width: int) -> int:
    """Rebuild each convolution on the meta device and read its output's shape."""
    x, total = torch.zeros(1, layers[0].in_channels, height, width, device="meta"), 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            fresh = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.dilation,
                layer.groups,
                device="meta",
            )
            x = fresh(x)
            total += x.numel() * (layer.in_channels // layer.groups) * fresh.weight[0, 0].numel()
    return total


FORBIDDEN = [
    # (exercise, shortcut, the route its one sentence names)
    Forbidden(ch02.CONV2D_LOOPS, _by_torch, "aten.convolution"),
    Forbidden(ch02.CONV2D_LOOPS, conv2d_unfold, "aten.im2col"),
    Forbidden(ch02.CONV2D_LOOPS, ch02._conv_reference, "cnncourse.checks.ch02._conv_reference"),
    Forbidden(ch02.CONV2D_UNFOLD, _by_torch, "aten.convolution"),
    Forbidden(ch02.CONV2D_UNFOLD, ch02._conv_reference, "cnncourse.checks.ch02._conv_reference"),
    Forbidden(ch02.OUTPUT_SIZE, _length_by_running, "aten.convolution"),
    Forbidden(ch02.OUTPUT_SIZE, ch02._size_reference, "cnncourse.checks.ch02._size_reference"),
    Forbidden(ch02.OUTPUT_SIZE, _length_by_pooling, "aten.max_pool2d_with_indices",
              correct=False),
    Forbidden(ch02.OUTPUT_SIZE, _length_by_unfold, "aten.im2col", correct=False),
    Forbidden(ch02.COUNT_MACS, _macs_by_running_the_model, "FlopCounterMode.__init__"),
    Forbidden(ch02.COUNT_MACS, _macs_by_a_copy, "Sequential.forward", correct=False),
    Forbidden(ch02.COUNT_MACS, _macs_by_fresh_layers, "aten.convolution", correct=False),
    Forbidden(ch02.COUNT_MACS, ch02._macs_reference, "cnncourse.checks.ch02._macs_reference"),
]  # fmt: skip
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_seed_reproduces_cases_and_calls_differ() -> None:
    def describe(size: int, kernel: int, stride: int, padding: int | str, dilation: int) -> str:
        return f"{size} {kernel} {stride} {padding} {dilation}"

    seen = seeded_runs(ch02.check_output_size, output_size, describe)
    assert seen[0] != seen[1]
    assert seen[2] == seen[3]
    assert any("'same'" in str(line) or "same" in str(line) for line in seen[0])


def _recurrence(layers: nn.Sequential) -> int:
    field, jump = 1, 1
    for layer in layers:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, d = (
                _pair(getattr(layer, name, 1))[0] for name in ("kernel_size", "stride", "dilation")
            )
            field += (k - 1) * d * jump
            jump *= s
    return field


def test_measured_receptive_field_matches_the_recurrence() -> None:
    """The reference of chapter 5's receptive-field exercise (the one the course keeps) measures
    what the recurrence computes."""
    generator, _ = fresh_generator(11)
    for case in ch05.RECEPTIVE_FIELD.make_cases(generator):
        (layers,) = ch05.RECEPTIVE_FIELD.build(case)
        assert measured_receptive_field(layers) == _recurrence(layers)
    known = {
        3: nn.Sequential(nn.Conv2d(1, 1, 3)),
        7: nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)),
        22: nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(1, 1, 3), nn.MaxPool2d(2))]),
        15: nn.Sequential(*[nn.Conv2d(1, 1, 3, dilation=d) for d in (1, 2, 4)]),
    }
    for field, layers in known.items():
        assert measured_receptive_field(layers) == field


def test_measured_receptive_field_refuses_unknown_layers() -> None:
    with pytest.raises(TypeError, match="does not handle Linear"):
        measured_receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Linear(2, 2)))


def test_macs_cases_cover_every_setting() -> None:
    """The random stacks hold what the wrong answers above get wrong: groups, pooling, 'same'
    padding, pairs of kernel sizes, biases and classifier heads."""
    generator, _ = fresh_generator(0)
    specs = [spec for case in ch02.COUNT_MACS.make_cases(generator) for spec in case["layers"]]
    convs = [spec for spec in specs if spec["kind"] == "conv"]
    assert any(spec["groups"] > 1 for spec in convs)
    assert any(spec["padding"] == "same" for spec in convs)
    assert any(spec["kernel"][0] != spec["kernel"][1] for spec in convs)
    assert {spec["kind"] for spec in specs} >= {"maxpool", "avgpool", "linear", "relu"}


def test_conv_cases_cover_every_setting() -> None:
    """The random cases exercise what the wrong answers above get wrong."""
    generator, _ = fresh_generator(0)
    cases = ch02.CONV2D_LOOPS.make_cases(generator)
    assert any(c["bias"] is None for c in cases) and any(c["bias"] is not None for c in cases)
    for case in cases:
        out = ch02.CONV2D_LOOPS.expected(case)
        assert out.dtype == torch.float64 and min(out.shape) >= 1
