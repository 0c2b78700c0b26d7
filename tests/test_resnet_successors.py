"""The ResNet successors of chapter 6: the papers' parameter counts, CIFAR shapes, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnncourse.resnet_successors import CifarResNeXt, densenet_bc, wide_resnet
from cnncourse.resnets import count_parameters


@pytest.mark.parametrize(
    ("build", "paper_millions"),
    [
        (lambda: wide_resnet(16, 4), 2.7),  # Zagoruyko and Komodakis, Table 4
        (lambda: wide_resnet(28, 10), 36.5),
        (lambda: wide_resnet(40, 4), 8.9),
        (lambda: CifarResNeXt(29, cardinality=8, group_width=64, out_width=256, stem_width=64), 34.4),
        (lambda: densenet_bc(100, 12), 0.8),  # Huang et al., Table 2
    ],
    ids=["WRN-16-4", "WRN-28-10", "WRN-40-4", "ResNeXt-29-8x64d", "DenseNet-BC-100-12"],
)
def test_parameter_counts_round_to_the_papers(build, paper_millions: float) -> None:
    with torch.device("meta"):
        model = build()
    assert round(count_parameters(model) / 1e6, 1) == paper_millions


@pytest.mark.parametrize("build", [lambda: wide_resnet(16, 2), CifarResNeXt, densenet_bc],
                         ids=["WRN-16-2", "ResNeXt-20", "DenseNet-BC-40"])
def test_cifar_images_give_ten_logits_and_gradients_everywhere(build) -> None:
    torch.manual_seed(0)
    model = build()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_resnext_splits_its_3x3_convolutions_into_cardinality_groups() -> None:
    model = CifarResNeXt(20, cardinality=8, group_width=4)
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)][1:]
    assert len(grouped) == 6 and {m.groups for m in grouped} == {8}
    assert [m.in_channels for m in grouped] == [32, 32, 64, 64, 128, 128]


def test_densenet_keeps_the_full_resolution_in_its_first_block() -> None:
    model = densenet_bc(40, 12)
    stem = model.features(torch.zeros(1, 3, 32, 32))
    assert stem.shape[-2:] == (8, 8)  # 32 -> 16 -> 8 through the two transitions only
    assert isinstance(model.features.pool0, nn.Identity)
    assert model.features.conv0.kernel_size == (3, 3) and model.features.conv0.stride == (1, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wide_resnet(17, 2), "depth is 17, but a wide ResNet has depth 6n \\+ 4"),
        (lambda: wide_resnet(16, 0), "k is 0, but it must be a positive integer"),
        (lambda: CifarResNeXt(21), "depth is 21, but a CIFAR ResNeXt has depth 9n \\+ 2"),
        (lambda: CifarResNeXt(cardinality=0), "cardinality is 0"),
        (lambda: densenet_bc(41), "depth is 41, but a DenseNet-BC has depth 6n \\+ 4"),
        (lambda: densenet_bc(growth=-1), "growth is -1"),
    ],
)
def test_bad_arguments_get_one_sentence(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
