"""Chapter 7's graded exercises: ``pad_crop``, ``mixup_batch``, ``cutmix_box`` and
``stream_channel_stats``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch07.check_pad_crop(pad_crop)``; it prints one sentence and never raises. The autograder uses
:data:`EXERCISES`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    Opaque,
    check,
    compare_tensor,
    draw_int,
    type_name,
)
from cnncourse.checks.guard import Route

__all__ = [
    "CUTMIX_BOX",
    "EXERCISES",
    "MIXUP_BATCH",
    "PAD_CROP",
    "STREAM_CHANNEL_STATS",
    "check_cutmix_box",
    "check_mixup_batch",
    "check_pad_crop",
    "check_stream_channel_stats",
]

PADDING = Route(
    "a ready-made pad or crop",
    aten=(
        "constant_pad_nd",
        "pad",
        "_pad_enum",
        "_pad_circular",
        "reflection_pad1d",
        "reflection_pad2d",
        "reflection_pad3d",
        "replication_pad1d",
        "replication_pad2d",
        "replication_pad3d",
    ),
    python=(
        "cnncourse.augment.crop",
        "torchvision.transforms.v2.functional.crop",
        "torchvision.transforms.v2.functional.pad",
        "torchvision.transforms.functional.crop",
        "torchvision.transforms.functional.pad",
    ),
)
"""``F.pad`` (every mode), torchvision's pad and crop functions and the course's batched crop."""

PACKAGE_MIXUP = Route(
    "a ready-made mixup",
    python=(
        "cnncourse.mixing.mixup",
        "torchvision.transforms.v2.MixUp.transform",
        "torchvision.transforms.v2.MixUp.make_params",
        "torchvision.transforms.v2._augment._BaseMixUpCutMix._mixup_label",
    ),
)
"""The course's :func:`cnncourse.mixing.mixup` and torchvision's ``v2.MixUp``."""

PACKAGE_CUTMIX = Route(
    "a ready-made cutmix",
    python=(
        "cnncourse.mixing.cutmix_boxes",
        "cnncourse.mixing.cutmix",
        "torchvision.transforms.v2.CutMix.transform",
        "torchvision.transforms.v2.CutMix.make_params",
    ),
)
"""The course's cutmix functions and torchvision's ``v2.CutMix``."""

GATHERING = Route(
    "torch's concatenation or a whole-data-set statistic",
    aten=("cat", "stack"),
    python=("cnncourse.tensor_data.ImageTensors.channel_stats",),
)
"""``torch.cat``/``torch.stack`` (gathering every batch into one tensor) and the course's own
statistics of a whole split."""


def _images(generator: torch.Generator, n: int, c: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=generator, dtype=torch.float64)


# --- Exercise 1: pad_crop -----------------------------------------------------------------------


def _crop_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(10):
        padding = draw_int(generator, 1, 4)
        n = draw_int(generator, 2, 6)
        images = _images(
            generator,
            n,
            draw_int(generator, 1, 3),
            draw_int(generator, 3, 9),
            draw_int(generator, 3, 9),
        )
        offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
        if index % 3 == 0:  # the extreme offsets: all padding on one side
            offsets[0] = torch.tensor([0, 2 * padding])
            offsets[-1] = torch.tensor([2 * padding, 0])
        cases.append({"images": images, "offsets": offsets, "padding": padding})
    return cases


def _crop_build(case: Case) -> tuple[Any, ...]:
    return case["images"].clone(), case["offsets"].clone(), case["padding"]


def _crop_reference(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    padded = F.pad(images, (padding,) * 4)
    return torch.stack(
        [padded[i, :, t : t + height, l : l + width] for i, (t, l) in enumerate(offsets.tolist())]
    )


def _crop_describe(case: Case) -> str:
    return (
        f"{len(case['images'])} images of shape {tuple(case['images'].shape[1:])} with "
        f"padding {case['padding']}"
    )


def _crop_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("pad_crop", expected, got, _crop_describe(case), rtol=0, atol=0)


PAD_CROP = Exercise(
    name="pad_crop",
    points=2,
    grade_id="ex1-pad_crop",
    make_cases=_crop_cases,
    build=_crop_build,
    reference=_crop_reference,
    compare=_crop_compare,
    describe=_crop_describe,
    forbidden=(PADDING,),
    asks="place the images in a zero canvas and slice the windows yourself",
)


# --- Exercise 2: mixup_batch --------------------------------------------------------------------


def _mixup_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(10):
        n, classes = draw_int(generator, 2, 7), draw_int(generator, 2, 12)
        lam = torch.rand(n, generator=generator, dtype=torch.float64)
        lam[0] = 1.0 if n % 2 else 0.0
        cases.append(
            {
                "images": _images(
                    generator, n, 3, draw_int(generator, 2, 5), draw_int(generator, 2, 5)
                ),
                "labels": torch.randint(0, classes, (n,), generator=generator),
                "classes": classes,
                "lam": lam,
                "perm": torch.randperm(n, generator=generator),
            }
        )
    return cases


def _mixup_build(case: Case) -> tuple[Any, ...]:
    return (
        case["images"].clone(),
        case["labels"].clone(),
        case["classes"],
        case["lam"].clone(),
        case["perm"].clone(),
    )


def _mixup_reference(
    images: torch.Tensor, labels: torch.Tensor, classes: int, lam: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    targets = F.one_hot(labels, classes).double()
    w = lam.view(-1, 1, 1, 1)
    return w * images + (1 - w) * images[perm], lam.view(-1, 1) * targets + (
        1 - lam.view(-1, 1)
    ) * targets[perm]


def _mixup_describe(case: Case) -> str:
    return f"{len(case['images'])} images, {case['classes']} classes"


def _pair_compare(
    name: str, expected: Any, got: Any, where: str, parts: tuple[str, str]
) -> str | None:
    if isinstance(got, Opaque) or type(got) not in (tuple, list) or len(got) != 2:
        return f"{name} should return a pair ({parts[0]}, {parts[1]}), got {type_name(got)}, for {where}."
    for part, want, have in zip(parts, expected, got, strict=True):
        problem = compare_tensor(f"{name}'s {part}", want, have, where, rtol=1e-9, atol=1e-12)
        if problem is not None:
            return problem
    return None


def _mixup_compare(expected: Any, got: Any, case: Case) -> str | None:
    return _pair_compare(
        "mixup_batch", expected, got, _mixup_describe(case), ("mixed images", "targets")
    )


MIXUP_BATCH = Exercise(
    name="mixup_batch",
    points=3,
    grade_id="ex2-mixup_batch",
    make_cases=_mixup_cases,
    build=_mixup_build,
    reference=_mixup_reference,
    compare=_mixup_compare,
    describe=_mixup_describe,
    forbidden=(PACKAGE_MIXUP,),
    asks="mix the images and the one-hot labels yourself",
)


# --- Exercise 3: cutmix_box ---------------------------------------------------------------------


def _cutmix_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(12):
        n = draw_int(generator, 2, 8)
        height, width = draw_int(generator, 4, 33), draw_int(generator, 4, 33)
        lam = torch.rand(n, generator=generator, dtype=torch.float64)
        lam[0] = 0.0  # the largest box, always clipped
        centres = torch.stack(
            [
                torch.randint(0, height, (n,), generator=generator),
                torch.randint(0, width, (n,), generator=generator),
            ],
            1,
        )
        centres[-1] = torch.tensor([0, width - 1])  # on the border: clipped on two sides
        cases.append({"lam": lam, "centres": centres, "height": height, "width": width})
    return cases


def _cutmix_build(case: Case) -> tuple[Any, ...]:
    return case["lam"].clone(), case["centres"].clone(), case["height"], case["width"]


def _cutmix_reference(
    lam: torch.Tensor, centres: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    boxes, weights = [], []
    for value, (row, col) in zip(lam.tolist(), centres.tolist(), strict=True):
        cut = math.sqrt(1 - value)
        half_h, half_w = int(height * cut) // 2, int(width * cut) // 2
        top, bottom = min(max(row - half_h, 0), height), min(max(row + half_h, 0), height)
        left, right = min(max(col - half_w, 0), width), min(max(col + half_w, 0), width)
        boxes.append([top, left, bottom - top, right - left])
        weights.append(1 - (bottom - top) * (right - left) / (height * width))
    return torch.tensor(boxes, dtype=torch.int64), torch.tensor(weights, dtype=torch.float64)


def _cutmix_describe(case: Case) -> str:
    return f"{len(case['lam'])} boxes on {case['height']}x{case['width']} images"


def _cutmix_compare(expected: Any, got: Any, case: Case) -> str | None:
    return _pair_compare("cutmix_box", expected, got, _cutmix_describe(case), ("boxes", "weights"))


CUTMIX_BOX = Exercise(
    name="cutmix_box",
    points=3,
    grade_id="ex3-cutmix_box",
    make_cases=_cutmix_cases,
    build=_cutmix_build,
    reference=_cutmix_reference,
    compare=_cutmix_compare,
    describe=_cutmix_describe,
    forbidden=(PACKAGE_CUTMIX,),
    asks="compute the boxes and their label weights yourself",
)


# --- Exercise 4: stream_channel_stats -----------------------------------------------------------


def _stats_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(8):
        channels = draw_int(generator, 1, 4)
        height, width = draw_int(generator, 2, 6), draw_int(generator, 2, 6)
        sizes = [draw_int(generator, 1, 9) for _ in range(draw_int(generator, 2, 5))]
        batches = []
        for size in sizes:  # per-batch brightness differs, so the batches' own statistics differ
            low = draw_int(generator, 0, 120)
            high = draw_int(generator, low + 20, 255)
            batches.append(
                torch.randint(
                    low, high + 1, (size, channels, height, width), generator=generator
                ).to(torch.uint8)
            )
        cases.append({"batches": batches})
    return cases


def _stats_build(case: Case) -> tuple[Any, ...]:
    return (iter([batch.clone() for batch in case["batches"]]),)


def _stats_reference(batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.cat([b.double().transpose(0, 1).reshape(b.shape[1], -1) for b in batches], 1)
    pixels = pixels / 255
    return pixels.mean(1), pixels.std(1, correction=0)


def _stats_describe(case: Case) -> str:
    sizes = [len(b) for b in case["batches"]]
    return f"{len(sizes)} batches of {sizes} images with {case['batches'][0].shape[1]} channels"


def _stats_compare(expected: Any, got: Any, case: Case) -> str | None:
    return _pair_compare(
        "stream_channel_stats", expected, got, _stats_describe(case), ("mean", "std")
    )


STREAM_CHANNEL_STATS = Exercise(
    name="stream_channel_stats",
    points=2,
    grade_id="ex4-stream_channel_stats",
    make_cases=_stats_cases,
    build=_stats_build,
    reference=_stats_reference,
    compare=_stats_compare,
    describe=_stats_describe,
    forbidden=(GATHERING,),
    asks="keep running sums over the batches instead of gathering them",
)

EXERCISES: tuple[Exercise, ...] = (PAD_CROP, MIXUP_BATCH, CUTMIX_BOX, STREAM_CHANNEL_STATS)
"""Chapter 7's exercises, in notebook order: 2 + 3 + 3 + 2 = 10 points."""


def check_pad_crop(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``pad_crop`` on 10 random float64 batches, paddings and offsets."""
    return check(PAD_CROP, fn, seed=seed)


def check_mixup_batch(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``mixup_batch`` on 10 random batches, weights and pairings."""
    return check(MIXUP_BATCH, fn, seed=seed)


def check_cutmix_box(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``cutmix_box`` on 12 random image sizes, weights and centres."""
    return check(CUTMIX_BOX, fn, seed=seed)


def check_stream_channel_stats(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``stream_channel_stats`` on 8 random data sets served in batches of unequal size."""
    return check(STREAM_CHANNEL_STATS, fn, seed=seed)
