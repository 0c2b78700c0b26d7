"""Chapter 6's graded exercises: ``basic_block``, ``resnet_param_count`` and
``lesion_accuracies``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch06.check_resnet_param_count(resnet_param_count)``; it prints one sentence and never raises.
The autograder uses :data:`EXERCISES`.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
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
from cnncourse.checks.guard import Route
from cnncourse.resnets import BasicBlock, CifarResNet, count_parameters

__all__ = [
    "BASIC_BLOCK",
    "EXERCISES",
    "LESION_ACCURACIES",
    "RESNET_PARAM_COUNT",
    "check_basic_block",
    "check_lesion_accuracies",
    "check_resnet_param_count",
]

PACKAGE_BLOCKS = Route(
    "a ready-made residual block",
    python=(
        "cnncourse.resnets._Block.forward",
        "cnncourse.resnets.shortcut_a",
        "torchvision.models.resnet.BasicBlock.forward",
    ),
)
"""The course's own blocks and torchvision's: exercise 1 asks for the block's arithmetic."""

BUILDING_THE_NETWORK = Route(
    "a network builder",
    python=(
        "torch.nn.modules.conv.Conv2d.__init__",
        "cnncourse.resnets.CifarResNet.__init__",
        "cnncourse.resnets.count_parameters",
    ),
)
"""Making convolution layers (on any device, ``meta`` included) to count their parameters."""

PACKAGE_LESIONS = Route(
    "the course's lesion switch",
    python=("cnncourse.resnets._Block._set_lesioned", "cnncourse.resnets.lesion_accuracies"),
)
"""``block.lesioned = True`` and :func:`cnncourse.resnets.lesion_accuracies`."""


# --- Exercise 1: basic_block --------------------------------------------------------------------

BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def _bn_weights(generator: torch.Generator, prefix: str, channels: int) -> dict[str, torch.Tensor]:
    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return {
        f"{prefix}.weight": 1 + 0.5 * draw(channels),
        f"{prefix}.bias": 0.5 * draw(channels),
        f"{prefix}.running_mean": 0.5 * draw(channels),
        f"{prefix}.running_var": 0.5 + torch.rand(channels, generator=generator).double(),
    }


def _block_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(12):
        shortcut = "AB"[index % 2]
        reshapes = index % 3 != 0
        c_in = draw_int(generator, 1, 5)
        stride = draw_int(generator, 1, 2) if reshapes else 1
        c_out = c_in + draw_int(generator, 1, 4) if reshapes and stride == 1 else c_in
        if reshapes and stride == 2:
            c_out = c_in * draw_int(generator, 1, 2)
        size = draw_int(generator, 3, 9)
        weights: dict[str, torch.Tensor] = {
            "conv1.weight": torch.randn(c_out, c_in, 3, 3, generator=generator).double()
            / math.sqrt(9 * c_in),
            "conv2.weight": torch.randn(c_out, c_out, 3, 3, generator=generator).double()
            / math.sqrt(9 * c_out),
            **_bn_weights(generator, "bn1", c_out),
            **_bn_weights(generator, "bn2", c_out),
        }
        if shortcut == "B" and (stride != 1 or c_in != c_out):
            weights["proj.weight"] = torch.randn(c_out, c_in, 1, 1, generator=generator).double()
            weights.update(_bn_weights(generator, "proj_bn", c_out))
        images = torch.randn(
            draw_int(generator, 1, 3),
            c_in,
            size,
            size + draw_int(generator, 0, 2),
            generator=generator,
            dtype=torch.float64,
        )
        cases.append({"x": images, "weights": weights, "stride": stride, "shortcut": shortcut})
    return cases


def _block_build(case: Case) -> tuple[Any, ...]:
    weights = {name: tensor.clone() for name, tensor in case["weights"].items()}
    return case["x"].clone(), weights, case["stride"], case["shortcut"]


def _load_bn(norm: nn.BatchNorm2d, weights: dict[str, torch.Tensor], prefix: str) -> None:
    for field in BN_FIELDS:
        getattr(norm, field).copy_(weights[f"{prefix}.{field}"])


def _block_reference(
    x: torch.Tensor, weights: dict[str, torch.Tensor], stride: int, shortcut: str
) -> torch.Tensor:
    """The course's BasicBlock with the given weights, in eval mode and float64."""
    c_out, c_in = weights["conv1.weight"].shape[:2]
    block = BasicBlock(c_in, c_out, stride, shortcut=shortcut).double().eval()  # type: ignore[arg-type]
    conv1, bn1, _, conv2, bn2 = (cast(Any, layer) for layer in block.branch)
    with torch.no_grad():
        conv1.weight.copy_(weights["conv1.weight"])
        _load_bn(bn1, weights, "bn1")
        conv2.weight.copy_(weights["conv2.weight"])
        _load_bn(bn2, weights, "bn2")
        if "proj.weight" in weights:
            projection = cast(Any, block.shortcut)
            projection[0].weight.copy_(weights["proj.weight"])
            _load_bn(projection[1], weights, "proj_bn")
        return block(x)


def _block_describe(case: Case) -> str:
    c_out, c_in = case["weights"]["conv1.weight"].shape[:2]
    return (
        f"a block from {c_in} to {c_out} channels with stride {case['stride']} and option "
        f"{case['shortcut']} on input of shape {tuple(case['x'].shape)}"
    )


def _block_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("basic_block", expected, got, _block_describe(case), rtol=1e-7, atol=1e-9)


BASIC_BLOCK = Exercise(
    name="basic_block",
    points=4,
    grade_id="ex1-basic_block",
    make_cases=_block_cases,
    build=_block_build,
    reference=_block_reference,
    compare=_block_compare,
    describe=_block_describe,
    forbidden=(PACKAGE_BLOCKS,),
    asks="write the block's convolutions, batch norms and shortcut yourself",
)


# --- Exercise 2: resnet_param_count -------------------------------------------------------------


def _count_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = [{"n": 3, "shortcut": "A", "classes": 10, "width": 16}]
    for index in range(19):
        cases.append(
            {
                "n": draw_int(generator, 1, 9),
                "shortcut": "ABC"[index % 3],
                "classes": draw_int(generator, 2, 120),
                "width": draw_int(generator, 2, 24),
            }
        )
    return cases


def _count_build(case: Case) -> tuple[Any, ...]:
    return case["n"], case["shortcut"], case["classes"], case["width"]


def _count_reference(n: int, shortcut: str, classes: int, width: int) -> int:
    with torch.device("meta"):  # shapes only: no memory, no initialisation work
        model = CifarResNet(
            6 * n + 2,
            shortcut=shortcut,  # type: ignore[arg-type]
            classes=classes,
            widths=(width, 2 * width, 4 * width),
        )
    return count_parameters(model)


def _count_describe(case: Case) -> str:
    return (
        f"n = {case['n']} (depth {6 * case['n'] + 2}), option {case['shortcut']}, "
        f"{case['classes']} classes and widths {case['width']}-{2 * case['width']}-"
        f"{4 * case['width']}"
    )


def _count_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_int("resnet_param_count", expected, got, _count_describe(case))


RESNET_PARAM_COUNT = Exercise(
    name="resnet_param_count",
    points=3,
    grade_id="ex2-resnet_param_count",
    make_cases=_count_cases,
    build=_count_build,
    reference=_count_reference,
    compare=_count_compare,
    describe=_count_describe,
    forbidden=(BUILDING_THE_NETWORK,),
    asks="count the parameters from the architecture's description, without building layers",
)


# --- Exercise 3: lesion_accuracies --------------------------------------------------------------


def _lesion_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(6):
        n = 1 + index % 3
        width = draw_int(generator, 2, 4)
        cases.append(
            {
                "n": n,
                "residual": index % 2 == 0,
                "width": width,
                "seed": draw_int(generator, 0, 2**31 - 1),
                "images": torch.randn(
                    draw_int(generator, 20, 40), 3, 8, 8, generator=generator, dtype=torch.float64
                ),
                "flip": draw_int(generator, 0, 2**31 - 1),
            }
        )
    return cases


def _lesion_build(case: Case) -> tuple[Any, ...]:
    """A small CIFAR ResNet (or plain net) with random weights and batch-norm statistics, in
    eval mode; labels are its own predictions with about a fifth of them changed."""
    generator = torch.Generator().manual_seed(case["seed"])
    width = case["width"]
    model = CifarResNet(
        6 * case["n"] + 2, residual=case["residual"], widths=(width, 2 * width, 4 * width)
    ).double()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fan_in = module.weight[0].numel()
                module.weight.copy_(
                    torch.randn(module.weight.shape, generator=generator).double()
                    * math.sqrt(2 / fan_in)
                )
                if isinstance(module, nn.Linear):
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
            elif isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(1 + 0.3 * torch.randn(c, generator=generator).double())
                module.bias.copy_(0.3 * torch.randn(c, generator=generator).double())
                cast(torch.Tensor, module.running_mean).copy_(
                    0.3 * torch.randn(c, generator=generator).double()
                )
                cast(torch.Tensor, module.running_var).copy_(
                    0.5 + torch.rand(c, generator=generator).double()
                )
        model.eval()
        images = case["images"].clone()
        labels = model(images).argmax(1)
    flips = torch.Generator().manual_seed(case["flip"])
    changed = torch.rand(len(labels), generator=flips) < 0.2
    labels[changed] = torch.randint(0, 10, (int(changed.sum()),), generator=flips)
    return model, images, labels


def _lesion_reference(
    model: CifarResNet, images: torch.Tensor, labels: torch.Tensor
) -> list[tuple[int, float]]:
    accuracies: list[tuple[int, float]] = []
    for index, block in enumerate(cast(list[BasicBlock], list(model.blocks))):
        if block.identity_shaped:
            block.lesioned = True
            predictions = model(images).argmax(1)
            block.lesioned = False
            accuracies.append((index, float((predictions == labels).double().mean())))
    return accuracies


def _lesion_describe(case: Case) -> str:
    kind = "ResNet" if case["residual"] else "plain net"
    return (
        f"a {kind} of depth {6 * case['n'] + 2} (widths {case['width']}-{2 * case['width']}-"
        f"{4 * case['width']}) and {len(case['images'])} images"
    )


def _lesion_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _lesion_describe(case)
    if isinstance(got, Opaque) or type(got) not in (list, tuple):
        return (
            f"lesion_accuracies should return a list of (block index, accuracy) pairs, got "
            f"{type_name(got)}, for {where}."
        )
    pairs = [item for item in got if type(item) in (list, tuple) and len(item) == 2]
    if len(pairs) != len(got):
        return (
            f"lesion_accuracies should return a list of (block index, accuracy) pairs for "
            f"{where}; some items are not pairs."
        )
    blocks = [index for index, _ in pairs]
    wanted = [index for index, _ in expected]
    if blocks != wanted:
        return (
            f"lesion_accuracies returned the blocks {blocks} for {where}; expected {wanted}, "
            "every block that keeps its input's shape, in order."
        )
    for (index, want), (_, have) in zip(expected, pairs, strict=True):
        if isinstance(have, bool) or not isinstance(have, float) or isinstance(have, Opaque):
            return (
                f"lesion_accuracies gave block {index} a {type_name(have)} for {where}; each "
                "accuracy should be a Python float (a fraction between 0 and 1)."
            )
        if not math.isclose(have, want, abs_tol=1e-9):
            return (
                f"lesion_accuracies returned {have:.4f} for block {index} of {where}; "
                f"expected {want:.4f}."
            )
    return None


LESION_ACCURACIES = Exercise(
    name="lesion_accuracies",
    points=3,
    grade_id="ex3-lesion_accuracies",
    make_cases=_lesion_cases,
    build=_lesion_build,
    reference=_lesion_reference,
    compare=_lesion_compare,
    describe=_lesion_describe,
    forbidden=(PACKAGE_LESIONS,),
    asks="run the stem, the blocks you keep and the head yourself",
)

EXERCISES: tuple[Exercise, ...] = (BASIC_BLOCK, RESNET_PARAM_COUNT, LESION_ACCURACIES)
"""Chapter 6's exercises, in notebook order: 4 + 3 + 3 = 10 points."""


def check_basic_block(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``basic_block`` on 12 random blocks (options A and B, with and without a change of
    shape) with random weights and batch-norm statistics, in float64."""
    return check(BASIC_BLOCK, fn, seed=seed)


def check_resnet_param_count(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``resnet_param_count`` on ResNet-20 and 19 random depths, widths, class counts and
    shortcut options."""
    return check(RESNET_PARAM_COUNT, fn, seed=seed)


def check_lesion_accuracies(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``lesion_accuracies`` on 6 small random ResNets and plain nets."""
    return check(LESION_ACCURACIES, fn, seed=seed)
