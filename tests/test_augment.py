"""cnncourse.augment: batched crops, flips and cutout against torchvision's per-image transforms
and a plain reference loop, determinism given a generator, and the alternating flip."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from cnncourse.augment import AlternatingFlip, Cutout, RandomCrop, RandomFlip, crop, cutout, flip
from cnncourse.tensor_data import BatchContext


def batch(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 9, 11, generator=torch.Generator().manual_seed(seed))


def context(seed: int = 0, epoch: int = 0, indices: torch.Tensor | None = None) -> BatchContext:
    return BatchContext(
        torch.Generator().manual_seed(seed), epoch, torch.arange(12) if indices is None else indices
    )


@pytest.mark.parametrize(
    ("mode", "torchvision_mode"), [("reflect", "reflect"), ("zeros", "constant")]
)
@pytest.mark.parametrize("padding", [1, 2, 4])
def test_crop_matches_torchvision_pad_then_crop_image_by_image(
    mode: str, torchvision_mode: str, padding: int
) -> None:
    images = batch()
    offsets = torch.randint(0, 2 * padding + 1, (12, 2), generator=torch.Generator().manual_seed(1))
    out = crop(images, offsets, padding, mode)  # type: ignore[arg-type]
    for image, (top, left), got in zip(images, offsets.tolist(), out, strict=True):
        padded = TF.pad(image, [padding], padding_mode=torchvision_mode)
        assert torch.equal(got, TF.crop(padded, top, left, 9, 11))


def test_crop_offsets_shift_the_content_as_a_reference_loop_does() -> None:
    images = batch(6)
    offsets = torch.tensor([[0, 0], [4, 4], [2, 2], [0, 4], [3, 1], [4, 0]])
    out = crop(images, offsets, 2, "zeros")
    for i, (top, left) in enumerate(offsets.tolist()):
        dy, dx = 2 - top, 2 - left  # content moves down by dy and right by dx
        expected = torch.zeros_like(images[i])
        for y in range(9):
            for x in range(11):
                if 0 <= y - dy < 9 and 0 <= x - dx < 11:
                    expected[:, y, x] = images[i, :, y - dy, x - dx]
        assert torch.equal(out[i], expected)
    assert torch.equal(crop(images, torch.full((6, 2), 2), 2), images)  # centred: unchanged


def test_crop_refuses_offsets_outside_the_padding() -> None:
    with pytest.raises(
        ValueError, match=r"offsets must be an \(N, 2\) tensor of integers in \[0, 4\]"
    ):
        crop(batch(2), torch.tensor([[0, 5], [0, 0]]), 2)
    with pytest.raises(ValueError, match="images has shape \\(3, 9, 11\\), but it must be a batch"):
        crop(batch(1)[0], torch.zeros(1, 2, dtype=torch.long), 1)


def test_flip_and_cutout_match_torchvision_image_by_image() -> None:
    images = batch()
    chosen = torch.arange(12) % 3 == 0
    for image, pick, got in zip(images, chosen, flip(images, chosen), strict=True):
        assert torch.equal(got, TF.horizontal_flip(image) if pick else image)
    boxes = torch.tensor([[i % 9, (2 * i) % 11, 1 + i % 4, 1 + i % 5] for i in range(12)])
    erased = cutout(images, boxes, value=0.0)
    for image, (top, left, h, w), got in zip(images, boxes.tolist(), erased, strict=True):
        assert torch.equal(got, TF.erase(image, top, left, h, w, torch.tensor(0.0)))


@pytest.mark.parametrize(
    "make", [lambda: RandomCrop(2), lambda: RandomFlip(0.5), lambda: Cutout(4)]
)
def test_random_augmentations_are_deterministic_given_the_generator(make) -> None:
    augmentation = make()
    images = batch()
    first = augmentation(images, context(5))
    assert torch.equal(first, augmentation(images, context(5)))
    assert not torch.equal(first, augmentation(images, context(6)))
    assert first.shape == images.shape


def test_random_crop_uses_every_offset_and_cutout_stays_in_size() -> None:
    images = torch.ones(400, 1, 8, 8)
    shifted = RandomCrop(1, "zeros")(images, context(0))
    zero_rows = (shifted.sum(dim=(1, 3)) == 0).float()  # a zero row shows a vertical shift
    assert 0 < zero_rows[:, 0].mean() < 1 and 0 < zero_rows[:, -1].mean() < 1
    holes = (Cutout(4)(images, context(0)) == 0).sum(dim=(1, 2, 3))
    assert int(holes.min()) >= 4 and int(holes.max()) == 16  # clipped at the border, never more


def test_alternating_flip_flips_each_image_on_every_other_epoch() -> None:
    augmentation = AlternatingFlip(12, seed=3)
    images = batch()
    epochs = [augmentation(images, context(0, epoch)) for epoch in range(4)]
    flipped = [
        torch.tensor([not torch.equal(a, b) for a, b in zip(out, images, strict=True)])
        for out in epochs
    ]
    assert torch.equal(flipped[0], ~flipped[1]) and torch.equal(flipped[0], flipped[2])
    assert 0 < int(flipped[0].sum()) < 12
    subset = augmentation(images[:4], context(0, 0, torch.tensor([0, 1, 2, 3])))
    assert torch.equal(subset, epochs[0][:4])  # decided per image, not per batch position


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomCrop(-1), "padding is -1, but it must be a non-negative integer"),
        (lambda: RandomCrop(2, "edge"), "mode is 'edge', but it must be 'reflect' or 'zeros'"),
        (lambda: RandomFlip(1.5), "p is 1.5, but it must be a probability"),
        (lambda: Cutout(0), "size is 0, but it must be a positive integer"),
        (lambda: AlternatingFlip(0), "n_images is 0, but it must be a positive integer"),
    ],
)
def test_bad_augmentation_arguments_are_named(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
