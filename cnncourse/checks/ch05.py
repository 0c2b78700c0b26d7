"""Chapter 5's graded exercises: ``lenet5_logits``, ``collect_activations`` and
``receptive_field``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch05.check_receptive_field(receptive_field)``; it prints one sentence and never raises. The
autograder uses :data:`EXERCISES`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    Opaque,
    check,
    compare_int,
    compare_tensor,
    draw_int,
    type_name,
)
from cnncourse.checks.fields import measured_receptive_field
from cnncourse.checks.guard import AUTOGRAD, CONVOLUTION, MODEL_FORWARD

__all__ = [
    "COLLECT_ACTIVATIONS",
    "EXERCISES",
    "LENET5_LOGITS",
    "RECEPTIVE_FIELD",
    "check_collect_activations",
    "check_lenet5_logits",
    "check_receptive_field",
    "measured_receptive_field",
]


# --- Exercise 1: lenet5_logits ------------------------------------------------------------------

# name -> shape, with C (input channels) and K (classes) filled in per case
LENET_SHAPES: dict[str, tuple[int | str, ...]] = {
    "conv1.weight": (6, "C", 5, 5),
    "conv1.bias": (6,),
    "conv2.weight": (16, 6, 5, 5),
    "conv2.bias": (16,),
    "fc1.weight": (120, 400),
    "fc1.bias": (120,),
    "fc2.weight": (84, 120),
    "fc2.bias": (84,),
    "fc3.weight": ("K", 84),
    "fc3.bias": ("K",),
}


def _lenet_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(10):
        channels, classes = (1, 3)[draw_int(generator, 0, 1)], draw_int(generator, 2, 12)
        batch = draw_int(generator, 1, 4)
        weights: dict[str, torch.Tensor] = {}
        for name, shape in LENET_SHAPES.items():
            size = tuple(channels if d == "C" else classes if d == "K" else int(d) for d in shape)
            fan_in = math.prod(size[1:]) if len(size) > 1 else 1
            weights[name] = torch.randn(size, generator=generator) / math.sqrt(fan_in)
        images = torch.randn(batch, channels, 32, 32, generator=generator)
        cases.append({"weights": weights, "images": images})
    return cases


def _lenet_build(case: Case) -> tuple[Any, ...]:
    weights = {name: tensor.clone() for name, tensor in case["weights"].items()}
    return weights, case["images"].clone()


def _lenet_reference(weights: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """LeNet-5 on 32x32 inputs with ReLU and 2x2 max pooling, computed in float64."""
    w = {name: tensor.double() for name, tensor in weights.items()}
    x = F.max_pool2d(F.relu(F.conv2d(images.double(), w["conv1.weight"], w["conv1.bias"])), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, w["conv2.weight"], w["conv2.bias"])), 2)
    x = F.relu(F.linear(x.flatten(1), w["fc1.weight"], w["fc1.bias"]))
    x = F.relu(F.linear(x, w["fc2.weight"], w["fc2.bias"]))
    return F.linear(x, w["fc3.weight"], w["fc3.bias"]).float()


def _lenet_describe(case: Case) -> str:
    n, c = case["images"].shape[:2]
    classes = case["weights"]["fc3.bias"].shape[0]
    return f"{n} image(s) of shape {c}x32x32 and {classes} classes"


def _lenet_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor(
        "lenet5_logits", expected, got, _lenet_describe(case), rtol=1e-4, atol=1e-5
    )


LENET5_LOGITS = Exercise(
    name="lenet5_logits",
    points=3,
    grade_id="ex1-lenet5",
    make_cases=_lenet_cases,
    build=_lenet_build,
    reference=_lenet_reference,
    compare=_lenet_compare,
    describe=_lenet_describe,
)


# --- Exercise 2: collect_activations ------------------------------------------------------------

ACTIVATION_NAMES = (
    "features.0",
    "features.1",
    "features.2",
    "features.3",
    "features.4",
    "features",
    "classifier.1",
    "classifier",
)
IN_PLACE_VICTIMS = ("features.0", "features.2")  # conv outputs that an in-place ReLU overwrites


def _activation_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(12):
        c, c1, c2 = draw_int(generator, 1, 3), draw_int(generator, 2, 5), draw_int(generator, 2, 5)
        size, classes = 2 * draw_int(generator, 2, 4), draw_int(generator, 2, 6)
        others = [n for n in ACTIVATION_NAMES if n not in IN_PLACE_VICTIMS]
        picked = torch.randperm(len(others), generator=generator)[: draw_int(generator, 0, 3)]
        names = [IN_PLACE_VICTIMS[draw_int(generator, 0, 1)]] + [others[int(i)] for i in picked]
        order = torch.randperm(len(names), generator=generator).tolist()
        cases.append(
            {
                "conv0": torch.randn(c1, c, 3, 3, generator=generator, dtype=torch.float64),
                "conv2": torch.randn(c2, c1, 3, 3, generator=generator, dtype=torch.float64),
                "linear": torch.randn(
                    classes, c2 * (size // 2) ** 2, generator=generator, dtype=torch.float64
                ),
                "images": torch.randn(
                    draw_int(generator, 1, 3),
                    c,
                    size,
                    size,
                    generator=generator,
                    dtype=torch.float64,
                ),
                "names": [names[i] for i in order],
            }
        )
    return cases


def _activation_build(case: Case) -> tuple[Any, ...]:
    """A small VGG-like model with in-place ReLUs, its weights taken from the case."""
    conv0 = nn.Conv2d(case["conv0"].shape[1], case["conv0"].shape[0], 3, padding=1)
    conv2 = nn.Conv2d(case["conv2"].shape[1], case["conv2"].shape[0], 3, padding=1)
    linear = nn.Linear(case["linear"].shape[1], case["linear"].shape[0])
    model = nn.Sequential(
        OrderedDict(
            features=nn.Sequential(
                conv0, nn.ReLU(inplace=True), conv2, nn.ReLU(inplace=True), nn.MaxPool2d(2)
            ),
            classifier=nn.Sequential(nn.Flatten(), linear),
        )
    ).double()
    with torch.no_grad():
        for layer, key in ((conv0, "conv0"), (conv2, "conv2"), (linear, "linear")):
            layer.weight.copy_(case[key])
            layer.bias.fill_(0.1)  # type: ignore[union-attr]
    return model, case["images"].clone(), list(case["names"])


def _activation_reference(
    model: nn.Module, images: torch.Tensor, names: list[str]
) -> list[torch.Tensor]:
    """Run the model part by part, keeping a copy of every part's output."""
    outputs: dict[str, torch.Tensor] = {}
    x = images
    for part_name, part in model.named_children():
        assert isinstance(part, nn.Sequential)
        for index, layer in enumerate(part):
            x = layer(x.clone())
            outputs[f"{part_name}.{index}"] = x.clone()
        outputs[part_name] = x.clone()
    return [outputs[name] for name in names]


def _activation_describe(case: Case) -> str:
    return (
        f"names {case['names']} on images of shape {tuple(case['images'].shape)} "
        "(a model with in-place ReLUs)"
    )


def _activation_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _activation_describe(case)
    if isinstance(got, Opaque) or type(got) not in (list, tuple):
        return (
            f"collect_activations should return a list of tensors, one per name, got "
            f"{type_name(got)}, for {where}."
        )
    if len(got) != len(expected):
        return (
            f"collect_activations returned {len(got)} item(s) for {where}; expected "
            f"{len(expected)}, one per name, in the order of the names."
        )
    for index, (name, want, have) in enumerate(zip(case["names"], expected, got, strict=True)):
        problem = compare_tensor(f"collect_activations (item {index}, '{name}')", want, have, where)
        if problem is not None:
            return problem
    return None


COLLECT_ACTIVATIONS = Exercise(
    name="collect_activations",
    points=2,
    grade_id="ex2-collect_activations",
    make_cases=_activation_cases,
    build=_activation_build,
    reference=_activation_reference,
    compare=_activation_compare,
    describe=_activation_describe,
)


# --- Exercise 3: receptive_field ----------------------------------------------------------------


def _rf_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(30):
        layers: list[dict[str, Any]] = []
        strided = 0
        for _ in range(draw_int(generator, 1, 6)):
            kind = ("conv", "conv", "conv", "max", "avg", "relu", "bn")[draw_int(generator, 0, 6)]
            if kind in ("relu", "bn"):
                layers.append({"kind": kind})
                continue
            stride = draw_int(generator, 1, 2) if strided < 3 else 1
            strided += stride == 2
            if kind == "conv":
                k = (1, 3, 3, 5, 7)[draw_int(generator, 0, 4)]
                layers.append(
                    {
                        "kind": "conv",
                        "k": k,
                        "stride": stride,
                        "dilation": draw_int(generator, 1, 2),
                        "padding": draw_int(generator, 0, k // 2),
                    }
                )
            else:
                k = draw_int(generator, 2, 3)
                layers.append(
                    {
                        "kind": kind,
                        "k": k,
                        "stride": stride,
                        "tuple": bool(draw_int(generator, 0, 1)),
                    }
                )
        cases.append({"layers": layers, "channels": 2})
    return cases


def _rf_build(case: Case) -> tuple[Any, ...]:
    modules: list[nn.Module] = []
    channels = case["channels"]
    for spec in case["layers"]:
        if spec["kind"] == "conv":
            modules.append(
                nn.Conv2d(
                    channels,
                    channels,
                    spec["k"],
                    stride=spec["stride"],
                    padding=spec["padding"],
                    dilation=spec["dilation"],
                )
            )
        elif spec["kind"] in ("max", "avg"):
            k = (spec["k"], spec["k"]) if spec["tuple"] else spec["k"]
            pool = nn.MaxPool2d if spec["kind"] == "max" else nn.AvgPool2d
            modules.append(pool(k, stride=spec["stride"]))
        elif spec["kind"] == "relu":
            modules.append(nn.ReLU())
        else:
            modules.append(nn.BatchNorm2d(channels))
    return (nn.Sequential(*modules),)


def _rf_reference(model: nn.Sequential) -> int:
    return measured_receptive_field(model)


def _rf_describe(case: Case) -> str:
    parts = []
    for spec in case["layers"]:
        if spec["kind"] == "conv":
            parts.append(
                f"Conv2d(k={spec['k']}, stride={spec['stride']}, dilation={spec['dilation']})"
            )
        elif spec["kind"] in ("max", "avg"):
            name = "MaxPool2d" if spec["kind"] == "max" else "AvgPool2d"
            parts.append(f"{name}(k={spec['k']}, stride={spec['stride']})")
        else:
            parts.append("ReLU" if spec["kind"] == "relu" else "BatchNorm2d")
    return "the model " + " -> ".join(parts)


def _rf_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_int("receptive_field", expected, got, _rf_describe(case))


RECEPTIVE_FIELD = Exercise(
    name="receptive_field",
    points=3,
    grade_id="ex3-receptive_field",
    make_cases=_rf_cases,
    build=_rf_build,
    reference=_rf_reference,
    compare=_rf_compare,
    describe=_rf_describe,
    forbidden=(MODEL_FORWARD, CONVOLUTION, AUTOGRAD),
    asks="compute the field with the recurrence of section 4.1, without running the model",
)

EXERCISES: tuple[Exercise, ...] = (LENET5_LOGITS, COLLECT_ACTIVATIONS, RECEPTIVE_FIELD)
"""Chapter 5's exercises, in notebook order: 3 + 2 + 3 = 8 points."""


def check_lenet5_logits(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``lenet5_logits`` on 10 random sets of LeNet-5 weights and 32x32 images."""
    return check(LENET5_LOGITS, fn, seed=seed)


def check_collect_activations(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``collect_activations`` on 12 random small models, images and lists of names."""
    return check(COLLECT_ACTIVATIONS, fn, seed=seed)


def check_receptive_field(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``receptive_field`` on 30 random stacks of convolutions and pooling layers."""
    return check(RECEPTIVE_FIELD, fn, seed=seed)
