"""cnncourse.cifar_baselines: the reference texts' CIFAR-10 recipes build, and train through fit
on torchvision's dataset with their PIL transforms, under a time budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnncourse import cifar_baselines
from cnncourse.tensor_data import load_tensors, split_indices

pytestmark = pytest.mark.usefixtures("clean_env", "in_tmp", "no_network")


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_networks_map_cifar_images_to_ten_logits() -> None:
    images = torch.randn(2, 3, 32, 32)
    for make in (cifar_baselines.text004_resnet, cifar_baselines.text001_vgg):
        assert make()(images).shape == (2, 10)
    assert count(cifar_baselines.text001_vgg()) == 3_249_994  # 2,102,794 of them in the classifier
    assert count(cifar_baselines.text004_resnet()) == 1_210_410


@pytest.mark.parametrize("key", ["text004", "text001"])
def test_a_baseline_trains_as_written_and_stops_at_its_budget(
    tmp_path: Path, fake_cifar, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    fake = fake_cifar(tmp_path / "root", per_batch=40, n_test=None)
    monkeypatch.setenv("CNNCOURSE_DATA", str(fake.root))
    train = load_tensors("cifar10", True)
    rest, part = split_indices(len(train), 32, seed=0)
    baseline = cifar_baselines.BASELINES[key]
    model, history = cifar_baselines.train_baseline(
        baseline, rest, train.subset(part), time_budget=0.5, evals_per_epoch=2
    )
    assert 1 <= len(history) < baseline.epochs
    assert history.train_seconds >= 0.5
    assert all(0.0 <= a <= 1.0 for a in history.eval_acc)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
