"""Chapter 2's graded exercises: ``conv2d_loops``, ``output_size``, ``count_macs`` and
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
from torch.utils.flop_counter import FlopCounterMode

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    check,
    compare_int,
    compare_tensor,
    draw_int,
)
from cnncourse.checks.guard import (
    AVERAGE_POOLING,
    CONVOLUTION,
    IM2COL,
    MAX_POOLING,
    MODEL_FORWARD,
    Route,
)

__all__ = [
    "CONV2D_LOOPS",
    "CONV2D_UNFOLD",
    "COUNT_MACS",
    "EXERCISES",
    "FLOP_COUNTER",
    "OUTPUT_SIZE",
    "check_conv2d_loops",
    "check_conv2d_unfold",
    "check_count_macs",
    "check_output_size",
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
    forbidden=(CONVOLUTION, IM2COL, MAX_POOLING, AVERAGE_POOLING),
    asks="compute the length from the sizes, without running a layer",
)


# --- Exercise 3: count_macs --------------------------------------------------------------------


FLOP_COUNTER = Route(
    "torch's FLOP counter", python=("torch.utils.flop_counter.FlopCounterMode.__init__",)
)
"""``torch.utils.flop_counter.FlopCounterMode``, which counts by running the layers."""

_ELEMENTWISE = ("relu", "batchnorm", "identity")


def _conv_spec(generator: torch.Generator, c: int, h: int, w: int) -> dict[str, Any]:
    """A random ``nn.Conv2d`` for a (c, h, w) input whose output is at least 1x1."""
    divisors = [g for g in (1, 2, 3) if c % g == 0]
    groups = divisors[draw_int(generator, 0, len(divisors) - 1)]
    kernel = [draw_int(generator, 1, 5), draw_int(generator, 1, 4)]
    stride, dilation = draw_int(generator, 1, 3), draw_int(generator, 1, 2)
    choice = draw_int(generator, 0, 5)
    padding: int | str = "same" if choice == 0 else "valid" if choice == 1 else choice - 2
    if padding == "same":
        stride = 1  # PyTorch refuses 'same' with a stride
    pad = 0 if padding in ("same", "valid") else int(padding)
    for axis, size in enumerate((h, w)):  # shrink a kernel that does not fit
        if padding != "same" and size + 2 * pad < dilation * (kernel[axis] - 1) + 1:
            kernel[axis] = 1
    return {
        "kind": "conv",
        "in": c,
        "out": groups * draw_int(generator, 1, 4),
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": bool(draw_int(generator, 0, 1)),
    }


def _conv_out(spec: dict[str, Any], size: int, axis: int) -> int:
    if spec["padding"] == "same":
        return size
    pad = 0 if spec["padding"] == "valid" else spec["padding"]
    span = spec["dilation"] * (spec["kernel"][axis] - 1) + 1
    return (size + 2 * pad - span) // spec["stride"] + 1


def _macs_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(30):
        c = draw_int(generator, 1, 4)
        h, w = draw_int(generator, 6, 24), draw_int(generator, 6, 24)
        image = (c, h, w)
        specs: list[dict[str, Any]] = []
        # The first stack is always conv, pool, conv, so that a pool's effect on a later layer's
        # size is tested in every draw; the others are random.
        for position in range(3 if index == 0 else draw_int(generator, 1, 5)):
            if index == 0:
                kind = ("conv", "pool", "conv")[position]
            elif position == 0:
                kind = "conv"
            else:
                kind = ("conv", "conv", "pool", "elementwise")[draw_int(generator, 0, 3)]
            if kind == "conv":
                spec = _conv_spec(generator, c, h, w)
                c, h, w = spec["out"], _conv_out(spec, h, 0), _conv_out(spec, w, 1)
                specs.append(spec)
            elif kind == "pool" and min(h, w) >= 2:
                k = draw_int(generator, 2, 3) if min(h, w) >= 3 else 2
                s, p = draw_int(generator, 1, k), draw_int(generator, 0, k // 2)
                if index == 0:  # a pool that always changes the size
                    s, p = 2, 0
                specs.append(
                    {
                        "kind": ("maxpool", "avgpool")[draw_int(generator, 0, 1)],
                        "kernel": k,
                        "stride": s,
                        "padding": p,
                    }
                )
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif kind == "elementwise":
                specs.append({"kind": _ELEMENTWISE[draw_int(generator, 0, 2)], "channels": c})
        if index % 2:  # half the stacks end in a classifier head
            specs.append({"kind": "flatten"})
            specs.append({"kind": "linear", "in": c * h * w, "out": draw_int(generator, 1, 10)})
        cases.append({"layers": specs, "image": image})
    return cases


def _macs_build(case: Case) -> tuple[Any, ...]:
    modules: list[nn.Module] = []
    for spec in case["layers"]:
        kind = spec["kind"]
        if kind == "conv":
            with warnings.catch_warnings():  # 'same' with an even kernel: a performance note
                warnings.simplefilter("ignore", UserWarning)
                modules.append(
                    nn.Conv2d(
                        spec["in"],
                        spec["out"],
                        tuple(spec["kernel"]),
                        stride=spec["stride"],
                        padding=spec["padding"],
                        dilation=spec["dilation"],
                        groups=spec["groups"],
                        bias=spec["bias"],
                    )
                )
        elif kind in ("maxpool", "avgpool"):
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(spec["kernel"], stride=spec["stride"], padding=spec["padding"]))
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "batchnorm":
            modules.append(nn.BatchNorm2d(spec["channels"]))
        elif kind == "identity":
            modules.append(nn.Identity())
        elif kind == "flatten":
            modules.append(nn.Flatten())
        else:
            modules.append(nn.Linear(spec["in"], spec["out"]))
    _, h, w = case["image"]
    return nn.Sequential(*modules), h, w


def _macs_reference(layers: nn.Sequential, height: int, width: int) -> int:
    """Run one zero image through ``layers`` under torch's FLOP counter (2 FLOPs per
    multiply-add; it counts the products of convolutions and linear layers, not biases)."""
    first = next(m for m in layers if isinstance(m, nn.Conv2d))
    with FlopCounterMode(display=False) as counter, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layers.eval()(torch.zeros(1, first.in_channels, height, width))
    return int(counter.get_total_flops()) // 2


def _macs_describe(case: Case) -> str:
    parts = []
    for spec in case["layers"]:
        kind = spec["kind"]
        if kind == "conv":
            parts.append(
                f"conv {spec['in']}->{spec['out']} k={tuple(spec['kernel'])} s={spec['stride']} "
                f"p={spec['padding']!r} d={spec['dilation']} groups={spec['groups']}"
            )
        elif kind in ("maxpool", "avgpool"):
            parts.append(f"{kind} k={spec['kernel']} s={spec['stride']} p={spec['padding']}")
        elif kind == "linear":
            parts.append(f"linear {spec['in']}->{spec['out']}")
        else:
            parts.append(kind)
    c, h, w = case["image"]
    return f"the stack [{', '.join(parts)}] on a {c}x{h}x{w} image"


COUNT_MACS = Exercise(
    name="count_macs",
    points=3,
    grade_id="ex3-count_macs",
    make_cases=_macs_cases,
    build=_macs_build,
    reference=_macs_reference,
    compare=lambda expected, got, case: compare_int(
        "count_macs", expected, got, _macs_describe(case)
    ),
    describe=_macs_describe,
    forbidden=(MODEL_FORWARD, CONVOLUTION, MAX_POOLING, AVERAGE_POOLING, IM2COL, FLOP_COUNTER),
    asks="compute every layer's output size and multiply-adds from its settings, without "
    "running a layer",
)

EXERCISES: tuple[Exercise, ...] = (CONV2D_LOOPS, OUTPUT_SIZE, COUNT_MACS, CONV2D_UNFOLD)
"""Chapter 2's exercises, in notebook order: 4 + 2 + 3 + 3 = 12 points."""


def check_conv2d_loops(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``conv2d_loops`` against ``F.conv2d`` on 12 random float64 convolutions."""
    return check(CONV2D_LOOPS, fn, seed=seed)


def check_output_size(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``output_size`` against the length of a real ``conv1d`` output, 40 random cases."""
    return check(OUTPUT_SIZE, fn, seed=seed)


def check_count_macs(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``count_macs`` against torch's FLOP counter on 30 random stacks of layers."""
    return check(COUNT_MACS, fn, seed=seed)


def check_conv2d_unfold(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``conv2d_unfold`` against ``F.conv2d`` on 20 random float64 convolutions."""
    return check(CONV2D_UNFOLD, fn, seed=seed)
