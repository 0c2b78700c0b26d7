"""Chapter 7's additions to the fast core's augmentations: batched rotation and colour jitter
against torchvision's per-image functions, the per-image wrapper for torchvision's policies,
mixup and cutmix (cnncourse.mixing) against their definitions, and fit on class probabilities."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from cnncourse.augment import ColorJitter, PerImage, RandomRotation, color_jitter, rotate
from cnncourse.mixing import MixedBatches, cutmix, cutmix_boxes, mixup, soft_targets
from cnncourse.tensor_data import BatchContext, ImageTensors, TensorLoader
from cnncourse.training import fit


def pixels(n: int = 6, height: int = 10, width: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, height, width, generator=torch.Generator().manual_seed(seed))


def context(seed: int = 0, n: int = 6) -> BatchContext:
    return BatchContext(torch.Generator().manual_seed(seed), 0, torch.arange(n))


def test_rotate_matches_torchvision_image_by_image() -> None:
    images = pixels()
    angles = torch.tensor([0.0, 90.0, -17.0, 33.0, 180.0, -5.5])
    out = rotate(images, angles)
    for image, angle, got in zip(images, angles.tolist(), out, strict=True):
        expected = TF.rotate(image, angle, interpolation=InterpolationMode.BILINEAR)
        assert torch.allclose(got, expected, atol=1e-5)
    square = pixels(2, 7, 7)
    assert torch.allclose(
        rotate(square, torch.tensor([90.0, 90.0])), square.rot90(1, (2, 3)), atol=1e-5
    )
    assert torch.allclose(rotate(square, torch.zeros(2)), square, atol=1e-6)


def test_color_jitter_matches_torchvision_in_order() -> None:
    images = pixels()
    generator = torch.Generator().manual_seed(3)
    b, c, s = (0.6 + 0.8 * torch.rand(6, generator=generator) for _ in range(3))
    out = color_jitter(images, b, c, s)
    for i, got in enumerate(out):
        expected = TF.adjust_brightness(images[i], float(b[i]))
        expected = TF.adjust_contrast(expected, float(c[i]))
        expected = TF.adjust_saturation(expected, float(s[i]))
        assert torch.allclose(got, expected, atol=1e-6)
    ones = torch.ones(6)
    assert torch.allclose(color_jitter(images, ones, ones, ones), images)


def test_color_jitter_undoes_and_redoes_the_normalisation() -> None:
    images = pixels()
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    normalised = ColorJitter(0.3, 0.3, 0.3, mean=mean, std=std)((images - m) / s, context(5))
    plain = ColorJitter(0.3, 0.3, 0.3)(images, context(5))
    assert torch.allclose(normalised * s + m, plain, atol=1e-5)


def test_random_rotation_stays_in_range_and_is_deterministic() -> None:
    images = pixels()
    first = RandomRotation(15)(images, context(1))
    assert torch.equal(first, RandomRotation(15)(images, context(1)))
    assert not torch.equal(first, RandomRotation(15)(images, context(2)))
    assert torch.equal(RandomRotation(0)(images, context(1)), rotate(images, torch.zeros(6)))


def test_per_image_round_trips_uint8_pixels_through_the_normalisation() -> None:
    raw = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.25)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    normalised = (raw.float() / 255 - m) / s
    seen: list[torch.Tensor] = []

    def record(image: torch.Tensor) -> torch.Tensor:
        seen.append(image)
        return image.flip(-1)

    out = PerImage(record, mean, std)(normalised, context(0, 4))
    assert torch.equal(torch.stack(seen), raw)  # the transform saw the original pixels
    assert torch.allclose(out, normalised.flip(-1), atol=1e-5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomRotation(-1), "degrees is -1"),
        (lambda: ColorJitter(1.5), "brightness is 1.5"),
        (lambda: ColorJitter(mean=(0.5,)), "mean and std must be given together"),
        (lambda: MixedBatches([], "blend", 10), "mode is 'blend'"),  # type: ignore[arg-type]
        (lambda: MixedBatches([], "mixup", 10, alpha=0), "alpha is 0"),
    ],
)
def test_bad_arguments_are_named(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_per_image_refuses_a_transform_that_is_not_callable() -> None:
    with pytest.raises(TypeError, match="transform is a int, but it must be callable"):
        PerImage(3, (0.5,), (0.2,))  # type: ignore[arg-type]


def test_mixup_mixes_images_and_labels_with_the_same_weights() -> None:
    images = pixels()
    targets = soft_targets(torch.tensor([0, 1, 2, 0, 1, 2]), 3)
    lam = torch.tensor([1.0, 0.0, 0.5, 0.25, 0.9, 0.3])
    perm = torch.tensor([1, 2, 0, 4, 5, 3])
    mixed, mixed_targets = mixup(images, targets, lam, perm)
    for i in range(6):
        j = int(perm[i])
        assert torch.allclose(mixed[i], lam[i] * images[i] + (1 - lam[i]) * images[j])
        assert torch.allclose(mixed_targets[i], lam[i] * targets[i] + (1 - lam[i]) * targets[j])
    assert torch.allclose(mixed_targets.sum(1), torch.ones(6))


def test_cutmix_boxes_follow_the_reference_arithmetic_and_clip() -> None:
    lam = torch.tensor([0.75, 0.75, 0.0, 1.0])
    centres = torch.tensor([[5, 4], [0, 0], [5, 5], [3, 3]])
    boxes, weights = cutmix_boxes(lam, centres, 10, 8)
    # sqrt(0.25) = 0.5: sides int(5) and int(4), half sides 2 and 2
    assert boxes[0].tolist() == [3, 2, 4, 4]
    assert boxes[1].tolist() == [0, 0, 2, 2]  # clipped at the top-left corner
    assert boxes[2].tolist() == [0, 1, 10, 7]  # lam 0: half sides 5 and 4, clipped at the right
    assert boxes[3].tolist()[2:] == [0, 0]  # lam 1: no box
    expected = 1 - (boxes[:, 2] * boxes[:, 3]).double() / 80
    assert torch.allclose(weights, expected)


def test_cutmix_pastes_the_box_and_weights_labels_by_area() -> None:
    images = pixels(4)
    targets = soft_targets(torch.tensor([0, 1, 2, 3]), 4)
    boxes = torch.tensor([[1, 2, 3, 4], [0, 0, 10, 8], [0, 0, 0, 0], [9, 7, 1, 1]])
    perm = torch.tensor([1, 0, 3, 2])
    mixed, mixed_targets = cutmix(images, targets, boxes, perm)
    expected = images.clone()
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        expected[i, :, top : top + h, left : left + w] = images[
            perm[i], :, top : top + h, left : left + w
        ]
    assert torch.equal(mixed, expected)
    own = 1 - torch.tensor([12, 80, 0, 1]) / 80
    assert torch.allclose(mixed_targets[torch.arange(4), torch.arange(4)], own)
    assert torch.allclose(mixed_targets.sum(1), torch.ones(4))


def tiny_data(n: int = 40) -> ImageTensors:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=generator)
    return ImageTensors(images, torch.arange(n) % 4, ("a", "b", "c", "d"), "test")


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mixed_batches_are_seeded_and_fit_trains_on_them(mode: str) -> None:
    def served(seed: int) -> list[torch.Tensor]:
        loader = TensorLoader(tiny_data(), 10, seed=1)
        return [t for batch in MixedBatches(loader, mode, 4, seed=seed) for t in batch]  # type: ignore[arg-type]

    first = served(0)
    assert all(torch.equal(a, b) for a, b in zip(first, served(0), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, served(1), strict=True))
    targets = first[1]
    assert targets.shape == (10, 4) and torch.allclose(targets.sum(1), torch.ones(10))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 4))
    loader = MixedBatches(TensorLoader(tiny_data(), 10, seed=1), mode, 4)  # type: ignore[arg-type]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    history = fit(model, loader, optimizer, 2, device="cpu", progress=False)
    assert len(history) == 2 and 0 <= history.train_acc[-1] <= 1


def test_mixed_batches_p_zero_serves_one_hot_labels() -> None:
    loader = TensorLoader(tiny_data(), 10, seed=1, shuffle=False)
    (_images, targets), *_ = list(MixedBatches(loader, "mixup", 4, p=0.0))
    assert torch.equal(targets, soft_targets(torch.arange(10) % 4, 4))


def test_train_fast_cifar_takes_the_chapter_7_pipeline_options() -> None:
    from dataclasses import replace

    from cnncourse.fast_cifar import CIFAR_90, train_fast_cifar

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=generator)
    tensors = ImageTensors(images, torch.arange(40) % 4, ("a", "b", "c", "d"), "test")
    preset = replace(CIFAR_90, widths=(4, 4, 4), batch_size=20)
    plain = train_fast_cifar(
        preset, tensors, tensors, epochs=1, augment=[], stats="none", progress=False
    )
    assert plain.mean is None and len(plain.history) == 1
    mixed = train_fast_cifar(
        preset,
        tensors,
        epochs=1,
        wrap=lambda loader: MixedBatches(loader, "cutmix", 4),
        loss_fn=nn.CrossEntropyLoss(),
        stats=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        progress=False,
    )
    assert mixed.mean == (0.5, 0.5, 0.5) and len(mixed.history) == 1
