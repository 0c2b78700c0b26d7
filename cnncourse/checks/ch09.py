"""Chapter 9's graded exercises: ``preprocess``, ``finetune_step`` and ``top_k``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch09.check_top_k(top_k)``; it prints one sentence and never raises. The autograder uses
:data:`EXERCISES`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    Opaque,
    Route,
    check,
    compare_tensor,
    draw_int,
    type_name,
)

__all__ = [
    "EXERCISES",
    "FINETUNE_STEP",
    "PREPROCESS",
    "TOP_K",
    "TORCHVISION_TRANSFORMS",
    "check_finetune_step",
    "check_preprocess",
    "check_top_k",
]

_TF = "torchvision.transforms"
TORCHVISION_TRANSFORMS = Route(
    "torchvision's transforms",
    python=tuple(
        f"{module}.{name}"
        for module in (f"{_TF}.functional", f"{_TF}.v2.functional")
        for name in ("resize", "center_crop", "to_tensor", "pil_to_tensor", "normalize")
        if not (module.endswith("v2.functional") and name == "to_tensor")
    ),
)
"""``transforms.Resize``, ``CenterCrop``, ``ToTensor``, ``Normalize`` (v1 and v2) and their
functional forms: the pieces a pretrained model's ``weights.transforms()`` is made of."""


# --- Exercise 1: preprocess ---------------------------------------------------------------------

_MODES = ("RGB", "RGB", "L", "RGBA")


def _pre_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for k in range(10):
        mode = _MODES[k % len(_MODES)]
        height, width = draw_int(generator, 12, 60), draw_int(generator, 12, 60)
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = torch.randint(0, 256, (height, width, channels), generator=generator)
        size = draw_int(generator, 8, min(height, width, 40))
        mean = (torch.rand(3, generator=generator) * 0.4 + 0.3).tolist()
        std = (torch.rand(3, generator=generator) * 0.2 + 0.15).tolist()
        cases.append(
            {"pixels": pixels.to(torch.uint8), "mode": mode, "size": size, "mean": mean,
             "std": std}
        )
    return cases


def _pre_build(case: Case) -> tuple[Any, ...]:
    array = case["pixels"].numpy()
    image = Image.fromarray(array[..., 0] if case["mode"] == "L" else array)  # L, RGB or RGBA
    return image, case["size"], tuple(case["mean"]), tuple(case["std"])


def _pre_reference(
    image: Image.Image, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """torchvision's own pipeline, as in ``weights.transforms()`` (without its extra resize)."""
    pipeline = transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    return pipeline(image.convert("RGB"))


def _pre_describe(case: Case) -> str:
    height, width = case["pixels"].shape[:2]
    return f"a {width}x{height} {case['mode']} image and size {case['size']}"


def _pre_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("preprocess", expected, got, _pre_describe(case), rtol=1e-5, atol=1e-5)


PREPROCESS = Exercise(
    name="preprocess",
    points=3,
    grade_id="ex1-preprocess",
    make_cases=_pre_cases,
    build=_pre_build,
    reference=_pre_reference,
    compare=_pre_compare,
    describe=_pre_describe,
    forbidden=(TORCHVISION_TRANSFORMS,),
    asks="write the steps with PIL and tensor operations yourself",
)


# --- Exercise 2: finetune_step ------------------------------------------------------------------

_PARTS = ("stem", "block", "head")
_LRS = (0.1, 0.03, 0.01)


def _ft_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for k in range(8):
        channels, width, classes = draw_int(generator, 1, 3), draw_int(generator, 2, 5), 3
        size, batch = draw_int(generator, 5, 8), draw_int(generator, 2, 6)
        roles = [draw_int(generator, 0, 3) for _ in _PARTS]  # 0 frozen, 1-3 a learning rate
        if k % 2 == 0:
            roles[0] = 0  # half the cases freeze the stem
        if all(role == 0 for role in roles):
            roles[-1] = 1
        weights = {
            "stem": torch.randn(width, channels, 3, 3, generator=generator, dtype=torch.float64),
            "block": torch.randn(width, width, 3, 3, generator=generator, dtype=torch.float64),
            "head": torch.randn(classes, width, generator=generator, dtype=torch.float64),
        }
        cases.append(
            {
                "weights": weights,
                "images": torch.randn(batch, channels, size, size, generator=generator,
                                      dtype=torch.float64),
                "labels": torch.randint(0, classes, (batch,), generator=generator),
                "frozen": [part for part, role in zip(_PARTS, roles, strict=True) if role == 0],
                "lrs": [(part, _LRS[role - 1]) for part, role in zip(_PARTS, roles, strict=True)
                        if role],
            }
        )
    return cases


def _ft_build(case: Case) -> tuple[Any, ...]:
    w = case["weights"]
    model = nn.Sequential(
        OrderedDict(
            stem=nn.Conv2d(w["stem"].shape[1], w["stem"].shape[0], 3, padding=1),
            act=nn.ReLU(),
            block=nn.Sequential(nn.Conv2d(w["block"].shape[1], w["block"].shape[0], 3, padding=1),
                                nn.ReLU()),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            head=nn.Linear(w["head"].shape[1], w["head"].shape[0]),
        )
    ).double()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.fill_(0.05)
            else:  # "stem.weight", "block.0.weight", "head.weight"
                parameter.copy_(w[name.split(".")[0]])
    frozen = list(case["frozen"])
    lrs = [tuple(pair) for pair in case["lrs"]]
    return model, case["images"].clone(), case["labels"].clone(), frozen, lrs


def _belongs(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _ft_reference(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    frozen: list[str],
    lrs: list[tuple[str, float]],
) -> tuple[list[bool], list[tuple[float, int]], list[torch.Tensor]]:
    named = list(model.named_parameters())
    for name, parameter in named:
        parameter.requires_grad_(not any(_belongs(name, prefix) for prefix in frozen))
    groups = [
        {"params": [p for n, p in named if p.requires_grad and _belongs(n, prefix)], "lr": lr}
        for prefix, lr in lrs
    ]
    optimizer = torch.optim.SGD(groups)
    with torch.enable_grad():  # the checker computes references under no_grad
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    flags = [p.requires_grad for _, p in named]
    summary = [(float(g["lr"]), len(g["params"])) for g in optimizer.param_groups]
    return flags, summary, [p.detach().clone() for _, p in named]


def _ft_describe(case: Case) -> str:
    lrs = ", ".join(f"{part} at {lr:g}" for part, lr in case["lrs"])
    frozen = ", ".join(case["frozen"]) or "nothing"
    return f"a stem-block-head model with {frozen} frozen and {lrs}"


def _ft_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _ft_describe(case)
    want_flags, want_groups, want_params = expected
    if isinstance(got, Opaque) or type(got) not in (tuple, list) or len(got) != 3:
        return (
            f"finetune_step should return a tuple (requires_grad flags, param-group summary, "
            f"parameters), got {type_name(got)}, for {where}."
        )
    flags, groups, params = got
    names = ["stem.weight", "stem.bias", "block.0.weight", "block.0.bias", "head.weight",
             "head.bias"]
    if type(flags) not in (list, tuple) or [type(f) for f in flags] != [bool] * len(want_flags):
        return f"finetune_step's first item should be a list of {len(want_flags)} bools, for {where}."
    for name, want, have in zip(names, want_flags, flags, strict=True):
        if want != have:
            state = "frozen" if want is False else "trainable"
            return (
                f"finetune_step left {name} with requires_grad={have} for {where}; it should be "
                f"{state}."
            )
    if type(groups) not in (list, tuple) or len(groups) != len(want_groups):
        return (
            f"finetune_step's optimizer should have {len(want_groups)} param group(s), one per "
            f"entry of lrs, for {where}."
        )
    for (want_lr, want_count), have in zip(want_groups, groups, strict=True):
        if type(have) not in (list, tuple) or len(have) != 2:
            return f"each param-group summary should be a pair (lr, count), for {where}."
        if not math.isclose(float(have[0]), want_lr) or have[1] != want_count:
            return (
                f"finetune_step has a param group ({have[0]}, {have[1]} tensors) for {where}; "
                f"expected ({want_lr:g}, {want_count} tensors)."
            )
    if type(params) not in (list, tuple) or len(params) != len(want_params):
        return f"finetune_step should return all {len(want_params)} parameters, for {where}."
    for name, want, have in zip(names, want_params, params, strict=True):
        problem = compare_tensor(f"finetune_step ({name} after the step)", want, have, where,
                                 rtol=1e-9, atol=1e-11)
        if problem is not None:
            return problem
    return None


FINETUNE_STEP = Exercise(
    name="finetune_step",
    points=4,
    grade_id="ex2-finetune_step",
    make_cases=_ft_cases,
    build=_ft_build,
    reference=_ft_reference,
    compare=_ft_compare,
    describe=_ft_describe,
)


# --- Exercise 3: top_k --------------------------------------------------------------------------


def _top_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(10):
        classes = draw_int(generator, 3, 12)
        rows = draw_int(generator, 1, 4)
        scale = (1.0, 5.0, 1000.0)[index % 3]  # 1000: a naive exp overflows
        logits = torch.randn(rows, classes, generator=generator, dtype=torch.float64) * scale
        if scale > 100:
            logits += 1000.0  # softmax ignores a shift; exp(1000) overflows
        if index % 2:  # ties: the lower class index comes first
            logits[:, 1] = logits[:, 0]
            logits[:, 2] = logits[:, 0]
        names = [f"class_{chr(97 + i)}{i}" for i in range(classes)]
        cases.append({"logits": logits, "classes": names, "k": draw_int(generator, 1, classes)})
    return cases


def _top_build(case: Case) -> tuple[Any, ...]:
    return case["logits"].clone(), list(case["classes"]), case["k"]


def _top_reference(
    logits: torch.Tensor, classes: list[str], k: int
) -> list[list[tuple[str, float]]]:
    probabilities = torch.softmax(logits, dim=1)
    order = torch.sort(probabilities, dim=1, descending=True, stable=True).indices[:, :k]
    return [
        [(classes[int(i)], float(row[int(i)])) for i in picks]
        for row, picks in zip(probabilities, order, strict=True)
    ]


def _top_describe(case: Case) -> str:
    rows, classes = case["logits"].shape
    ties = " (with tied logits)" if bool((case["logits"][:, 1] == case["logits"][:, 0]).all()) else ""
    return f"{rows} row(s) of {classes} logits{ties} and k={case['k']}"


def _top_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _top_describe(case)
    if isinstance(got, Opaque) or type(got) is not list or len(got) != len(expected):
        return (
            f"top_k should return a list with one list per row ({len(expected)}), got "
            f"{type_name(got)}, for {where}."
        )
    for row, (want, have) in enumerate(zip(expected, got, strict=True)):
        if type(have) is not list or len(have) != len(want):
            return f"top_k's row {row} should be a list of {len(want)} pairs, for {where}."
        for pair in have:
            if type(pair) is not tuple or len(pair) != 2 or type(pair[1]) is not float:
                what = type_name(pair[1]) if type(pair) is tuple and len(pair) == 2 else type_name(
                    pair
                )
                return (
                    f"top_k's entries should be (class name, probability as a Python float) "
                    f"tuples, got {what} in row {row}, for {where}."
                )
        for pair, (_, p) in zip(have, want, strict=True):
            if math.isnan(pair[1]) or (pair[1] == 0.0 and p > 0.0):
                return (
                    f"top_k returned a probability of {pair[1]} in row {row} for {where}: exp "
                    "overflowed; subtract the row's maximum before exponentiating."
                )
        for rank, ((name, p), pair) in enumerate(zip(want, have, strict=True)):
            if pair[0] != name:
                return (
                    f"top_k put {pair[0]!r} at rank {rank + 1} of row {row} for {where}; expected "
                    f"{name!r} (highest probability first, ties to the lower class index)."
                )
            if not math.isclose(pair[1], p, rel_tol=1e-9, abs_tol=1e-12):
                return (
                    f"top_k gave {name!r} probability {pair[1]:.6g} in row {row} for {where}; "
                    f"expected {p:.6g} (the softmax over the row)."
                )
    return None


TOP_K = Exercise(
    name="top_k",
    points=3,
    grade_id="ex3-top_k",
    make_cases=_top_cases,
    build=_top_build,
    reference=_top_reference,
    compare=_top_compare,
    describe=_top_describe,
)

EXERCISES: tuple[Exercise, ...] = (PREPROCESS, FINETUNE_STEP, TOP_K)
"""Chapter 9's exercises, in notebook order: 3 + 4 + 3 = 10 points."""


def check_preprocess(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``preprocess`` on 10 random RGB, grayscale and RGBA images against torchvision's
    pipeline, with torchvision's transforms forbidden."""
    return check(PREPROCESS, fn, seed=seed)


def check_finetune_step(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``finetune_step`` on 8 random small models, frozen parts and learning rates."""
    return check(FINETUNE_STEP, fn, seed=seed)


def check_top_k(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``top_k`` on 10 random logit batches, with large logits and ties."""
    return check(TOP_K, fn, seed=seed)
