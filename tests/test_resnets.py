"""cnncourse.resnets: the CIFAR ResNets' shapes and parameter counts (against He et al.'s Table 6
and hand counts), the plain twin, shortcut options A/B/C, pre-activation and zero-initialised
blocks, the lesion switch, the gradient-norm and lesion measurements, and the argument checks."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnncourse.resnets import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    ShortcutA,
    count_parameters,
    layer_gradient_norms,
    lesion_accuracies,
    shortcut_a,
)


def _count(depth: int, **options: object) -> int:
    with torch.device("meta"):
        return count_parameters(CifarResNet(depth, **options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "depth, millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)]
)
def test_option_a_counts_match_the_paper(depth: int, millions: float) -> None:
    assert round(_count(depth) / 1e6, 2 if millions < 1 else 1) == millions


def test_counts_by_hand() -> None:
    # ResNet-20, option A: stem 432 + 32; stage 1: 3 x (2 x 2304 + 64); stage 2: first block
    # 4608 + 9216 + 128, then 2 x (2 x 9216 + 128); stage 3 likewise at 64; head 650
    stage1 = 3 * (2 * 9 * 16 * 16 + 4 * 16)
    stage2 = 9 * 16 * 32 + 9 * 32 * 32 + 4 * 32 + 2 * (2 * 9 * 32 * 32 + 4 * 32)
    stage3 = 9 * 32 * 64 + 9 * 64 * 64 + 4 * 64 + 2 * (2 * 9 * 64 * 64 + 4 * 64)
    total = 27 * 16 + 32 + stage1 + stage2 + stage3 + 64 * 10 + 10
    assert _count(20) == total == 269_722
    assert _count(20, shortcut="B") == total + (16 * 32 + 64) + (32 * 64 + 128)
    c_projections = 3 * (16 * 16 + 32) + (16 * 32 + 64) + 2 * (32 * 32 + 64)
    c_projections += (32 * 64 + 128) + 2 * (64 * 64 + 128)
    assert _count(20, shortcut="C") == total + c_projections


def test_plain_twin_has_the_same_parameters_and_no_shortcuts() -> None:
    plain, residual = CifarResNet(20, residual=False), CifarResNet(20)
    assert count_parameters(plain) == count_parameters(residual)
    assert all(block.shortcut is None for block in plain.blocks)  # type: ignore[union-attr]
    layers = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in residual.modules())
    assert layers == 20


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"residual": False},
        {"shortcut": "B"},
        {"shortcut": "C"},
        {"preact": True},
        {"preact": True, "shortcut": "B"},
        {"zero_init_last_bn": True},
        {"block": "bottleneck"},
    ],
)
def test_shapes(options: dict[str, object]) -> None:
    depth = 20 if options.get("block") != "bottleneck" else 29
    model = CifarResNet(depth, classes=7, **options).eval()  # type: ignore[arg-type]
    stages = {}
    x = model.stem(torch.randn(2, 3, 32, 32))
    for block in model.blocks:
        x = block(x)
        stages[x.shape[1]] = x.shape[-1]
    expansion = 4 if options.get("block") == "bottleneck" else 1
    assert stages == {16 * expansion: 32, 32 * expansion: 16, 64 * expansion: 8}
    assert model.head(x).shape == (2, 7)


def test_bottleneck_depth_and_preact_164_count() -> None:
    model = CifarResNet(164, block="bottleneck", preact=True, shortcut="B")
    assert model.n == 18
    assert isinstance(model.blocks[0], Bottleneck)
    assert round(count_parameters(model) / 1e6, 1) == 1.7  # He et al. 2016b, Table 2


def test_shortcut_a_subsamples_and_pads_zero_channels() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    y = shortcut_a(x, 7, 2)
    assert y.shape == (2, 7, 3, 3)
    assert torch.equal(y[:, :3], x[:, :, ::2, ::2])
    assert not y[:, 3:].any()
    assert torch.equal(ShortcutA(3, 1)(x), x)
    with pytest.raises(ValueError, match="out_channels is 2"):
        shortcut_a(x, 2, 1)


def test_residual_block_adds_its_input() -> None:
    block = BasicBlock(4, 4, zero_init=True).eval()
    x = torch.randn(3, 4, 6, 6)
    # with the last BN's scale at zero the branch contributes only its (zero) shift
    assert torch.allclose(block(x), torch.relu(x))
    plain = BasicBlock(4, 4, residual=False, zero_init=True).eval()
    assert torch.allclose(plain(x), torch.zeros_like(x))


def test_zero_init_sets_every_last_scale_to_zero() -> None:
    model = CifarResNet(20, zero_init_last_bn=True)
    for block in model.blocks:
        assert not block.last_bn.weight.any()  # type: ignore[union-attr]
    assert CifarResNet(20).blocks[0].last_bn.weight.eq(1).all()  # type: ignore[union-attr]


def test_preact_block_is_identity_plus_branch() -> None:
    block = BasicBlock(4, 4, preact=True).eval()
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(block(x), x + block.branch(x))


def test_lesion_switch_passes_the_input_through() -> None:
    model = CifarResNet(8).eval()
    block = model.blocks[0]
    x = torch.randn(2, 16, 8, 8)
    block.lesioned = True  # type: ignore[union-attr]
    assert torch.equal(block(x), x)
    block.lesioned = False  # type: ignore[union-attr]
    assert not torch.equal(block(x), x)
    with pytest.raises(ValueError, match="cannot be deleted"):
        model.blocks[1].lesioned = True  # type: ignore[union-attr]


def test_lesion_accuracies_deletes_each_identity_block_and_restores() -> None:
    torch.manual_seed(0)
    model = CifarResNet(14).eval()
    images = torch.randn(40, 3, 16, 16)
    with torch.no_grad():
        labels = model(images).argmax(1)
    loader = DataLoader(TensorDataset(images, labels), batch_size=16)
    results = lesion_accuracies(model, loader)
    assert [index for index, _ in results] == [0, 1, 3, 5]
    for index, accuracy in results:
        x = model.stem(images)
        with torch.no_grad():
            for k, block in enumerate(model.blocks):
                x = x if k == index else block(x)
            expected = (model.head(x).argmax(1) == labels).float().mean().item()
        assert accuracy == pytest.approx(expected)
    assert not any(block.lesioned for block in model.blocks)  # type: ignore[union-attr]
    with torch.no_grad():
        assert torch.equal(model(images).argmax(1), labels)


def test_layer_gradient_norms_match_autograd_and_leave_no_gradient() -> None:
    torch.manual_seed(1)
    model = CifarResNet(8)
    images, labels = torch.randn(6, 3, 8, 8), torch.randint(0, 10, (6,))
    reference = CifarResNet(8)
    reference.load_state_dict(model.state_dict())
    nn.functional.cross_entropy(reference(images), labels).backward()
    expected = [
        m.weight.grad.norm().item() for m in reference.modules() if isinstance(m, nn.Conv2d)
    ]
    norms = layer_gradient_norms(model.eval(), images, labels)
    assert [value for _, value in norms] == pytest.approx(expected)
    assert norms[0][0] == "stem.0"
    assert all(p.grad is None for p in model.parameters())
    assert not model.training  # the mode is restored


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 21}, "depth is 21, but a CIFAR ResNet with basic blocks has depth 6n + 2"),
        ({"depth": 23, "block": "bottleneck"}, "bottleneck blocks has depth 9n + 2"),
        ({"depth": 20, "shortcut": "D"}, "shortcut is 'D'"),
        ({"depth": 20, "block": "wide"}, "block is 'wide'"),
        ({"depth": 20, "widths": (16, 32)}, "widths is (16, 32)"),
        ({"depth": 20, "widths": (16, 0, 64)}, "each of widths is 0"),
        ({"depth": 20, "classes": 0}, "classes is 0"),
        ({"depth": True}, "depth is True"),
    ],
)
def test_bad_arguments_get_one_sentence(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CifarResNet(**kwargs)  # type: ignore[arg-type]


def test_other_bad_arguments() -> None:
    with pytest.raises(ValueError, match="stride is 3"):
        BasicBlock(4, 4, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        Bottleneck(4, 6)
    with pytest.raises(TypeError, match="model is a str"):
        count_parameters("resnet")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a CifarResNet"):
        lesion_accuracies(nn.Linear(2, 2), [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no nn.Conv2d layers"):
        layer_gradient_norms(nn.Linear(2, 2), torch.zeros(1, 2), torch.zeros(1).long())
