"""Chapter 7's instant-feedback checks: the solutions pass, each wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and each exercise's forbidden route
(F.pad and the ready-made crops, the course's and torchvision's mixup and cutmix, gathering the
batches with torch.cat or torch.stack) is rejected."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, verdict_tests
from torchvision.transforms.v2 import functional as TF

from cnncourse import mixing
from cnncourse.augment import crop
from cnncourse.checks import ch07
from cnncourse.tensor_data import ImageTensors


def pad_crop(
    images: torch.Tensor, offsets: torch.Tensor, padding: int, *, fill: float = 0.0
) -> torch.Tensor:
    n, c, h, w = images.shape
    canvas = images.new_full((n, c, h + 2 * padding, w + 2 * padding), fill)
    canvas[:, :, padding : padding + h, padding : padding + w] = images
    out = torch.empty_like(images)
    for i, (top, left) in enumerate(offsets.tolist()):
        out[i] = canvas[i, :, top : top + h, left : left + w]
    return out


def mixup_batch(
    images: torch.Tensor, labels: torch.Tensor, classes: int, lam: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    targets = F.one_hot(labels, classes).to(images.dtype)
    w = lam.to(images.dtype)
    mixed = w.view(-1, 1, 1, 1) * images + (1 - w.view(-1, 1, 1, 1)) * images[perm]
    return mixed, w.view(-1, 1) * targets + (1 - w.view(-1, 1)) * targets[perm]


def cutmix_box(
    lam: torch.Tensor, centres: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    cut = torch.sqrt(1 - lam)
    half_h = (height * cut).floor().long() // 2
    half_w = (width * cut).floor().long() // 2
    rows, cols = centres[:, 0], centres[:, 1]
    top, bottom = (rows - half_h).clamp(0, height), (rows + half_h).clamp(0, height)
    left, right = (cols - half_w).clamp(0, width), (cols + half_w).clamp(0, width)
    boxes = torch.stack([top, left, bottom - top, right - left], dim=1)
    return boxes, 1 - (boxes[:, 2] * boxes[:, 3]).double() / (height * width)


def stream_channel_stats(batches: Any, *, correction: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    count, total, squares = 0, None, None
    for batch in batches:
        pixels = batch.double().div(255).transpose(0, 1).reshape(batch.shape[1], -1)
        s, q = pixels.sum(1), (pixels**2).sum(1)
        total = s if total is None else total + s
        squares = q if squares is None else squares + q
        count += pixels.shape[1]
    mean = total / count
    variance = (squares - count * mean**2) / (count - correction)
    return mean, variance.clamp(min=0).sqrt()


def batch_means(batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Averages each batch's own mean and standard deviation (the mistake section 1.3 names)."""
    means, stds = [], []
    for batch in batches:
        pixels = batch.double().div(255).transpose(0, 1).reshape(batch.shape[1], -1)
        means.append(pixels.mean(1))
        stds.append(pixels.std(1, correction=0))
    return sum(means) / len(means), sum(stds) / len(stds)


SOLUTIONS = {
    "pad_crop": (ch07.check_pad_crop, pad_crop),
    "mixup_batch": (ch07.check_mixup_batch, mixup_batch),
    "cutmix_box": (ch07.check_cutmix_box, cutmix_box),
    "stream_channel_stats": (ch07.check_stream_channel_stats, stream_channel_stats),
}

WRONG: list[Wrong] = [
    (
        ch07.check_pad_crop,
        lambda x, o, p: pad_crop(x, o.flip(1), p),  # (left, top) read as (top, left)
        ["pad_crop returned wrong values for", "padding"],
    ),
    (
        ch07.check_pad_crop,
        lambda x, o, p: pad_crop(x, o, p, fill=1.0),
        ["pad_crop returned wrong values for"],
    ),
    (
        ch07.check_pad_crop,
        lambda x, o, p: pad_crop(x, o, p).float(),
        ["dtype torch.float32", "expected torch.float64"],
    ),
    (
        ch07.check_mixup_batch,
        lambda x, y, k, lam, p: mixup_batch(x, y, k, 1 - lam, p),
        ["mixup_batch's mixed images returned wrong values for"],
    ),
    (
        ch07.check_mixup_batch,
        lambda x, y, k, lam, p: (mixup_batch(x, y, k, lam, p)[0], F.one_hot(y, k).double()),
        ["mixup_batch's targets returned wrong values for"],
    ),
    (
        ch07.check_mixup_batch,
        lambda x, y, k, lam, p: mixup_batch(x, y, k, lam, p)[0],
        ["mixup_batch should return a pair (mixed images, targets), got torch.Tensor"],
    ),
    (
        ch07.check_cutmix_box,
        lambda lam, c, h, w: cutmix_box(1 - lam, c, h, w),
        ["cutmix_box's boxes returned wrong values for"],
    ),
    (
        ch07.check_cutmix_box,
        lambda lam, c, h, w: (cutmix_box(lam, c, h, w)[0], 1 - cutmix_box(lam, c, h, w)[1]),
        ["cutmix_box's weights returned wrong values for"],
    ),
    (
        ch07.check_cutmix_box,
        lambda lam, c, h, w: (cutmix_box(lam, c, h, w)[0].double(), cutmix_box(lam, c, h, w)[1]),
        ["cutmix_box's boxes returned a tensor of dtype torch.float64", "expected torch.int64"],
    ),
    (
        ch07.check_stream_channel_stats,
        batch_means,
        ["stream_channel_stats's", "returned wrong values for", "batches of"],
    ),
    (
        ch07.check_stream_channel_stats,
        lambda b: stream_channel_stats(b, correction=1),
        ["stream_channel_stats's std returned wrong values for"],
    ),
]

(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "07",
    SOLUTIONS,
    WRONG,
    [2, 3, 3, 2],
    ["ex1-pad_crop", "ex2-mixup_batch", "ex3-cutmix_box", "ex4-stream_channel_stats"],
)


def _crop_with_f_pad(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    padded = F.pad(images, (padding,) * 4)
    h, w = images.shape[-2:]
    return torch.stack(
        [padded[i, :, t : t + h, l : l + w] for i, (t, l) in enumerate(offsets.tolist())]
    )


def _crop_with_torchvision(
    images: torch.Tensor, offsets: torch.Tensor, padding: int
) -> torch.Tensor:
    h, w = images.shape[-2:]
    return torch.stack(
        [
            TF.crop(TF.pad(image, [padding]), t, l, h, w)
            for image, (t, l) in zip(images, offsets.tolist(), strict=True)
        ]
    )


def _crop_with_torchvision_crop_only(
    images: torch.Tensor, offsets: torch.Tensor, padding: int
) -> torch.Tensor:
    """torchvision's crop alone (it pads only past the bottom and right edges, so this is
    also wrong; the guard names it first)."""
    h, w = images.shape[-2:]
    return torch.stack(
        [
            TF.crop(image, t - padding, l - padding, h, w)
            for image, (t, l) in zip(images, offsets.tolist(), strict=True)
        ]
    )


def _crop_with_package(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    return crop(images, offsets, padding, mode="zeros")


def _mixup_with_package(
    images: torch.Tensor, labels: torch.Tensor, classes: int, lam: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return mixing.mixup(images, F.one_hot(labels, classes).double(), lam, perm)


def _mixup_via_torchvision_labels(
    images: torch.Tensor, labels: torch.Tensor, classes: int, lam: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.transforms import v2

    v2.MixUp(num_classes=classes)(images[:1].float(), labels[:1])  # any use of v2.MixUp
    return mixup_batch(images, labels, classes, lam, perm)


def _boxes_with_package(
    lam: torch.Tensor, centres: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return mixing.cutmix_boxes(lam, centres, height, width)


def _boxes_via_torchvision(
    lam: torch.Tensor, centres: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.transforms import v2

    v2.CutMix(num_classes=2)(torch.zeros(2, 3, height, width), torch.tensor([0, 1]))
    return cutmix_box(lam, centres, height, width)


def _stats_by_gathering(batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return stream_channel_stats([torch.cat(list(batches))])


def _stats_by_stacking(batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
    flat = [b.transpose(0, 1).reshape(b.shape[1], -1) for b in batches]
    pixels = torch.stack([p.double() for p in flat]) if len({p.shape for p in flat}) == 1 else None
    if pixels is None:  # unequal batches: stack them one pixel column at a time
        pixels = torch.stack([column for p in flat for column in p.double().T], 1)
    pixels = pixels.reshape(pixels.shape[-2] if pixels.ndim == 3 else pixels.shape[0], -1) / 255
    return pixels.mean(1), pixels.std(1, correction=0)


def _stats_with_package(batches: Any) -> tuple[torch.Tensor, torch.Tensor]:
    items = list(batches)
    ImageTensors(
        items[0], torch.zeros(len(items[0]), dtype=torch.long), ("a",), "x"
    ).channel_stats()
    return stream_channel_stats(items)


FORBIDDEN = [
    Forbidden(ch07.PAD_CROP, ch07._crop_reference, "cnncourse.checks.ch07._crop_reference"),
    Forbidden(ch07.PAD_CROP, _crop_with_f_pad, "aten.constant_pad_nd"),
    Forbidden(ch07.PAD_CROP, _crop_with_torchvision, "torchvision.transforms.v2.functional.pad"),
    Forbidden(
        ch07.PAD_CROP,
        _crop_with_torchvision_crop_only,
        "torchvision.transforms.v2.functional.crop",
        correct=False,
    ),
    Forbidden(ch07.PAD_CROP, _crop_with_package, "cnncourse.augment.crop"),
    Forbidden(ch07.MIXUP_BATCH, _mixup_with_package, "cnncourse.mixing.mixup"),
    Forbidden(
        ch07.MIXUP_BATCH,
        _mixup_via_torchvision_labels,
        "torchvision.transforms.v2.MixUp.make_params",
    ),
    Forbidden(ch07.CUTMIX_BOX, _boxes_with_package, "cnncourse.mixing.cutmix_boxes"),
    Forbidden(
        ch07.CUTMIX_BOX, _boxes_via_torchvision, "torchvision.transforms.v2.CutMix.make_params"
    ),
    Forbidden(ch07.STREAM_CHANNEL_STATS, _stats_by_gathering, "aten.cat"),
    Forbidden(ch07.STREAM_CHANNEL_STATS, _stats_by_stacking, "aten.stack", correct=False),
    Forbidden(
        ch07.STREAM_CHANNEL_STATS,
        _stats_with_package,
        "cnncourse.tensor_data.ImageTensors.channel_stats",
    ),
]
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_crop_reference_is_the_package_crop() -> None:
    generator = torch.Generator().manual_seed(3)
    for case in ch07._crop_cases(generator):
        expected = ch07.PAD_CROP.expected(case)
        assert torch.equal(
            crop(case["images"], case["offsets"], case["padding"], "zeros"), expected
        )


def test_cutmix_reference_is_the_package_boxes() -> None:
    generator = torch.Generator().manual_seed(4)
    for case in ch07._cutmix_cases(generator):
        boxes, weights = ch07.CUTMIX_BOX.expected(case)
        ours = mixing.cutmix_boxes(case["lam"], case["centres"], case["height"], case["width"])
        assert torch.equal(ours[0], boxes) and torch.allclose(ours[1], weights)


def test_stats_batches_are_served_once_and_unequal() -> None:
    generator = torch.Generator().manual_seed(5)
    for case in ch07._stats_cases(generator):
        (batches,) = ch07._stats_build(case)
        sizes = [len(b) for b in batches]
        assert list(batches) == []  # an iterator: a second pass sees nothing
        assert len(sizes) >= 2
