"""Chapter 2's graded exercises: ``conv2d_loops``, ``output_size``, ``receptive_field`` and
``conv2d_unfold``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch02.check_output_size(output_size)``; it prints one sentence and never raises. The autograder
uses :data:`EXERCISES`.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    check,
    compare_int,
    compare_tensor,
    draw_int,
)
from cnncourse.checks.fields import measured_receptive_field
from cnncourse.checks.guard import AUTOGRAD, CONVOLUTION, IM2COL, MODEL_FORWARD

__all__ = [
    "CONV2D_LOOPS",
    "CONV2D_UNFOLD",
    "EXERCISES",
    "OUTPUT_SIZE",
    "RECEPTIVE_FIELD",
    "check_conv2d_loops",
    "check_conv2d_unfold",
    "check_output_size",
    "check_receptive_field",
    "measured_receptive_field",
]


# --- Exercises 1 and 4: conv2d_loops and conv2d_unfold ------------------------------------------


def _conv_cases(generator: torch.Generator, count: int, batch: int, channels: int) -> list[Case]:
    """Random convolutions whose output is at least 1x1: sizes, strides, paddings, dilations."""
    cases: list[Case] = []
    for index in range(count):
        n, c_in = draw_int(generator, 1, batch), draw_int(generator, 1, channels)
        c_out = draw_int(generator, 1, channels)
        kh, kw = draw_int(generator, 1, 3), draw_int(generator, 1, 3)
        stride, padding, dilation = (
            draw_int(generator, 1, 3),
            draw_int(generator, 0, 2),
            draw_int(generator, 1, 2),
        )
        # the dilated kernel must fit in the padded input
        low_h = max(1, dilation * (kh - 1) + 1 - 2 * padding)
        low_w = max(1, dilation * (kw - 1) + 1 - 2 * padding)
        h, w = draw_int(generator, low_h, low_h + 6), draw_int(generator, low_w, low_w + 6)
        cases.append(
            {
                "x": torch.randn(n, c_in, h, w, generator=generator, dtype=torch.float64),
                "weight": torch.randn(
                    c_out, c_in, kh, kw, generator=generator, dtype=torch.float64
                ),
                # every third case has no bias (None), as nn.Conv2d(bias=False) would give
                "bias": None
                if index % 3 == 2
                else torch.randn(c_out, generator=generator, dtype=torch.float64),
                "stride": stride,
                "padding": padding,
                "dilation": dilation,
            }
        )
    return cases


def _conv_build(case: Case) -> tuple[Any, ...]:
    bias = None if case["bias"] is None else case["bias"].clone()
    return (
        case["x"].clone(),
        case["weight"].clone(),
        bias,
        case["stride"],
        case["padding"],
        case["dilation"],
    )


def _conv_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int,
    padding: int,
    dilation: int,
) -> torch.Tensor:
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


def _conv_describe(case: Case) -> str:
    bias = "no bias" if case["bias"] is None else "a bias"
    return (
        f"input {tuple(case['x'].shape)}, weight {tuple(case['weight'].shape)}, {bias}, "
        f"stride {case['stride']}, padding {case['padding']}, dilation {case['dilation']}"
    )


CONV2D_LOOPS = Exercise(
    name="conv2d_loops",
    points=4,
    grade_id="ex1-conv2d_loops",
    make_cases=lambda generator: _conv_cases(generator, 12, batch=2, channels=3),
    build=_conv_build,
    reference=_conv_reference,
    compare=lambda expected, got, case: compare_tensor(
        "conv2d_loops", expected, got, _conv_describe(case)
    ),
    describe=_conv_describe,
    forbidden=(CONVOLUTION, IM2COL),
    asks="write the loops yourself",
)

CONV2D_UNFOLD = Exercise(
    name="conv2d_unfold",
    points=3,
    grade_id="ex4-conv2d_unfold",
    make_cases=lambda generator: _conv_cases(generator, 20, batch=4, channels=5),
    build=_conv_build,
    reference=_conv_reference,
    compare=lambda expected, got, case: compare_tensor(
        "conv2d_unfold", expected, got, _conv_describe(case)
    ),
    describe=_conv_describe,
    forbidden=(CONVOLUTION,),
    asks="compute the convolution with F.unfold and one matrix multiplication",
)


# --- Exercise 2: output_size -------------------------------------------------------------------


def _size_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(40):
        kernel, dilation = draw_int(generator, 1, 7), draw_int(generator, 1, 3)
        span = dilation * (kernel - 1) + 1
        if index % 5 == 0:  # the string forms nn.Conv2d accepts ('same' only with stride 1)
            padding: int | str = "same" if index % 10 == 0 else "valid"
            stride = 1 if padding == "same" else draw_int(generator, 1, 4)
            size = draw_int(generator, span, span + 40)
        else:
            padding, stride = draw_int(generator, 0, 3), draw_int(generator, 1, 4)
            size = draw_int(generator, max(1, span - 2 * padding), span + 40)
        cases.append(
            {
                "size": size,
                "kernel": kernel,
                "stride": stride,
                "padding": padding,
                "dilation": dilation,
            }
        )
    return cases


def _size_build(case: Case) -> tuple[Any, ...]:
    return case["size"], case["kernel"], case["stride"], case["padding"], case["dilation"]


def _size_reference(size: int, kernel: int, stride: int, padding: int | str, dilation: int) -> int:
    """Run a 1-D convolution of that geometry and read the length of its output."""
    signal = torch.zeros(1, 1, size, dtype=torch.float64)
    weight = torch.ones(1, 1, kernel, dtype=torch.float64)
    with warnings.catch_warnings():  # 'same' with an even kernel: a harmless performance note
        warnings.simplefilter("ignore", UserWarning)
        out = F.conv1d(signal, weight, stride=stride, padding=padding, dilation=dilation)
    return int(out.shape[-1])


def _size_describe(case: Case) -> str:
    return (
        f"size={case['size']}, kernel={case['kernel']}, stride={case['stride']}, "
        f"padding={case['padding']!r}, dilation={case['dilation']}"
    )


OUTPUT_SIZE = Exercise(
    name="output_size",
    points=2,
    grade_id="ex2-output_size",
    make_cases=_size_cases,
    build=_size_build,
    reference=_size_reference,
    compare=lambda expected, got, case: compare_int(
        "output_size", expected, got, _size_describe(case)
    ),
    describe=_size_describe,
    forbidden=(CONVOLUTION,),
    asks="compute the length from the sizes, without running a layer",
)


# --- Exercise 3: receptive_field ---------------------------------------------------------------


_ELEMENTWISE = ("relu", "batchnorm", "identity")


def _field_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(25):
        specs: list[dict[str, Any]] = []
        channels = 1
        for _ in range(draw_int(generator, 1, 6)):
            kind = ("conv", "conv", "maxpool", "avgpool", "elementwise")[draw_int(generator, 0, 4)]
            if kind == "conv":
                out = draw_int(generator, 1, 3)
                specs.append(
                    {
                        "kind": "conv",
                        "in": channels,
                        "out": out,
                        "kernel": draw_int(generator, 1, 5),
                        "stride": draw_int(generator, 1, 2),
                        "dilation": draw_int(generator, 1, 3),
                        "padding": draw_int(generator, 0, 2),
                    }
                )
                channels = out
            elif kind in ("maxpool", "avgpool"):
                kernel = draw_int(generator, 2, 3)
                specs.append(
                    {
                        "kind": kind,
                        "kernel": kernel,
                        "stride": draw_int(generator, 1, kernel),
                        "as_pair": bool(draw_int(generator, 0, 1)),
                    }
                )
            else:
                specs.append(
                    {"kind": _ELEMENTWISE[draw_int(generator, 0, 2)], "channels": channels}
                )
        cases.append({"layers": specs})
    return cases


def _field_build(case: Case) -> tuple[Any, ...]:
    modules: list[nn.Module] = []
    for spec in case["layers"]:
        kind = spec["kind"]
        if kind == "conv":
            modules.append(
                nn.Conv2d(
                    spec["in"],
                    spec["out"],
                    spec["kernel"],
                    stride=spec["stride"],
                    padding=spec["padding"],
                    dilation=spec["dilation"],
                )
            )
        elif kind in ("maxpool", "avgpool"):
            k, s = spec["kernel"], spec["stride"]
            size, step = ((k, k), (s, s)) if spec["as_pair"] else (k, s)
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(size, stride=step))
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "batchnorm":
            modules.append(nn.BatchNorm2d(spec["channels"]))
        else:
            modules.append(nn.Identity())
    return (nn.Sequential(*modules),)


def _field_describe(case: Case) -> str:
    parts = []
    for spec in case["layers"]:
        if spec["kind"] == "conv":
            parts.append(f"conv k={spec['kernel']} s={spec['stride']} d={spec['dilation']}")
        elif spec["kind"] in ("maxpool", "avgpool"):
            parts.append(f"{spec['kind']} k={spec['kernel']} s={spec['stride']}")
        else:
            parts.append(spec["kind"])
    return "the stack [" + ", ".join(parts) + "]"


RECEPTIVE_FIELD = Exercise(
    name="receptive_field",
    points=3,
    grade_id="ex3-receptive_field",
    make_cases=_field_cases,
    build=_field_build,
    reference=measured_receptive_field,
    compare=lambda expected, got, case: compare_int(
        "receptive_field", expected, got, _field_describe(case)
    ),
    describe=_field_describe,
    forbidden=(MODEL_FORWARD, CONVOLUTION, AUTOGRAD),
    asks="compute the field from the layers' settings, without running the model",
)

EXERCISES: tuple[Exercise, ...] = (CONV2D_LOOPS, OUTPUT_SIZE, RECEPTIVE_FIELD, CONV2D_UNFOLD)
"""Chapter 2's exercises, in notebook order: 4 + 2 + 3 + 3 = 12 points."""


def check_conv2d_loops(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``conv2d_loops`` against ``F.conv2d`` on 12 random float64 convolutions."""
    return check(CONV2D_LOOPS, fn, seed=seed)


def check_output_size(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``output_size`` against the length of a real ``conv1d`` output, 40 random cases."""
    return check(OUTPUT_SIZE, fn, seed=seed)


def check_receptive_field(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``receptive_field`` against a backpropagation measurement, 25 random stacks."""
    return check(RECEPTIVE_FIELD, fn, seed=seed)


def check_conv2d_unfold(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``conv2d_unfold`` against ``F.conv2d`` on 20 random float64 convolutions."""
    return check(CONV2D_UNFOLD, fn, seed=seed)
