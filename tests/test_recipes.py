"""cnncourse.recipes on a small generated MNIST: the data it loads, the networks it builds, the
checkpoints and timings it records, both data pipelines, and its refusals of bad arguments."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from cnncourse import recipes

pytestmark = pytest.mark.usefixtures("clean_env", "in_tmp", "no_network")


@pytest.fixture
def tiny(tmp_path: Path, fake_mnist) -> recipes.MnistTensors:
    fake = fake_mnist(tmp_path / "root", n_train=40, n_test=12)
    loaded = recipes.load_mnist_tensors(fake.root, train_size=30, test_size=10, seed=1)
    assert isinstance(loaded, recipes.MnistTensors)
    return loaded


def test_load_mnist_tensors_subsets_and_statistics(tiny: recipes.MnistTensors) -> None:
    assert tiny.train_x.shape == (30, 1, 28, 28) and tiny.train_y.shape == (30,)
    assert tiny.test_x.shape == (10, 1, 28, 28) and tiny.test_y.dtype == torch.int64
    assert tiny.train_indices is not None and len(set(tiny.train_indices.tolist())) == 30
    assert 0.0 <= float(tiny.train_x.min()) and float(tiny.train_x.max()) <= 1.0
    assert tiny.mean == pytest.approx(float(tiny.train_x.double().mean()))
    assert tiny.std == pytest.approx(float(tiny.train_x.double().std()))


def test_load_mnist_tensors_rejects_a_bad_test_size(tmp_path: Path, fake_mnist) -> None:
    fake = fake_mnist(tmp_path / "root")
    with pytest.raises(ValueError, match="test_size is 0, but it must be a positive integer"):
        recipes.load_mnist_tensors(fake.root, test_size=0)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_networks_output_logits_for_mnist_images() -> None:
    images = torch.zeros(3, 1, 28, 28)
    assert count(recipes.reference_cnn()) == 206_922  # reference text 000's figure: "around 206k"
    assert recipes.reference_cnn(nn.Tanh)(images).shape == (3, 10)
    fast = recipes.fast_cnn()
    assert fast(images).shape == (3, 10)
    assert any(isinstance(m, nn.BatchNorm2d) for m in fast)
    plain = recipes.fast_cnn(8, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain)
    assert plain(images).shape == (3, 10)
    with pytest.raises(ValueError, match="width is 0, but it must be a positive integer"):
        recipes.fast_cnn(0)


@pytest.mark.parametrize("pipeline", ["tensors", "pil"])
def test_train_recipe_records_checkpoints_and_learns(
    tiny: recipes.MnistTensors, pipeline: str
) -> None:
    recipe = dataclasses.replace(recipes.FAST, batch_size=8, pipeline=pipeline)
    before = recipes.train_recipe(recipe, tiny, epochs=1, evals_per_epoch=2)
    assert before.steps == 4  # ceil(30 / 8) batches, the last one smaller
    result = recipes.train_recipe(recipe, tiny, epochs=2, evals_per_epoch=2)
    assert result.steps == 8
    assert [c.step for c in result.checkpoints] == [2, 4, 6, 8]
    assert [c.epoch for c in result.checkpoints] == [0.5, 1.0, 1.5, 2.0]
    seconds = [c.train_seconds for c in result.checkpoints]
    assert all(b >= a > 0 for a, b in itertools.pairwise(seconds))
    assert result.train_seconds == seconds[-1]
    assert result.final_accuracy == result.checkpoints[-1].accuracy
    assert result.test_accuracy == result.final_accuracy  # no validation split: the test set
    assert len(result.epoch_losses) == 2
    assert all(0.0 <= c.accuracy <= 1.0 for c in result.checkpoints)
    assert {c.split for c in result.checkpoints} == {"MNIST official test set"}
    # random labels, but 30 images are easy to memorise: the training loss falls
    assert result.epoch_losses[1] < result.epoch_losses[0]


def test_a_validation_split_is_carved_from_training_and_read_by_the_checkpoints(
    tmp_path: Path, fake_mnist
) -> None:
    fake = fake_mnist(tmp_path / "root", n_train=40, n_test=12)
    split = recipes.load_mnist_tensors(fake.root, train_size=30, test_size=10, val_size=6, seed=1)
    assert split.val_x is not None and split.val_y is not None
    assert split.train_x.shape[0] == 24 and split.val_x.shape == (6, 1, 28, 28)
    assert split.train_indices is not None and len(split.train_indices) == 24
    assert split.mean == pytest.approx(float(split.train_x.double().mean()))  # training part only
    whole = recipes.load_mnist_tensors(fake.root, train_size=30, test_size=10, seed=1)
    assert whole.train_indices is not None
    train_part = set(split.train_indices.tolist())
    assert train_part < set(whole.train_indices.tolist())
    recipe = dataclasses.replace(recipes.FAST, batch_size=4)
    result = recipes.train_recipe(recipe, split, epochs=1, evals_per_epoch=2)
    assert {c.split for c in result.checkpoints} == {"MNIST validation split"}
    assert 0.0 <= result.test_accuracy <= 1.0
    with pytest.raises(ValueError, match="val_size is 30, but there are only 30 training images"):
        recipes.load_mnist_tensors(fake.root, train_size=30, val_size=30)
    with pytest.raises(ValueError, match="val_size is 0, but it must be a positive integer"):
        recipes.load_mnist_tensors(fake.root, val_size=0)


def test_the_same_seed_gives_the_same_run(tiny: recipes.MnistTensors) -> None:
    recipe = dataclasses.replace(recipes.REFERENCE, pipeline="tensors", batch_size=16)
    first = recipes.train_recipe(recipe, tiny, epochs=1, seed=3)
    second = recipes.train_recipe(recipe, tiny, epochs=1, seed=3)
    assert first.epoch_losses == second.epoch_losses
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_time_to_reads_the_first_checkpoint_reaching_the_target() -> None:
    result = recipes.RecipeResult(recipes.FAST, nn.Identity())
    result.checkpoints = [
        recipes.Checkpoint(1, 0.25, 1.0, 0.95),
        recipes.Checkpoint(2, 0.5, 2.0, 0.991),
        recipes.Checkpoint(3, 0.75, 3.0, 0.989),
    ]
    assert result.time_to(0.99) == 2.0
    assert result.time_to(0.999) is None
    assert result.time_to(0.9) == 1.0
    assert recipes.RecipeResult(recipes.FAST, nn.Identity()).time_to(0.5) is None


def test_train_recipe_rejects_bad_arguments(tiny: recipes.MnistTensors) -> None:
    with pytest.raises(ValueError, match="evals_per_epoch is 0, but it must be a positive integer"):
        recipes.train_recipe(recipes.FAST, tiny, evals_per_epoch=0)
    bad = dataclasses.replace(recipes.FAST, pipeline="lmdb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recipe.pipeline is 'lmdb', but it must be"):
        recipes.train_recipe(bad, tiny)
    with pytest.raises(ValueError, match="has epochs=0 and batch_size=256; both must be positive"):
        recipes.train_recipe(recipes.FAST, tiny, epochs=0)
    with pytest.raises(
        ValueError, match="has only 1 steps, but a one-cycle schedule needs at least 4"
    ):
        recipes.train_recipe(recipes.FAST, tiny, epochs=1)  # 30 images in one batch of 256


@pytest.mark.parametrize("name", ["FASTEST", "TRAIN_MNIST_FAST"])
def test_the_benchmarked_recipes_train_through_fit_and_learn(
    tiny: recipes.MnistTensors, name: str
) -> None:
    recipe = dataclasses.replace(getattr(recipes, name), batch_size=8)
    result = recipes.train_recipe(recipe, tiny, epochs=3, evals_per_epoch=1, seed=1)
    assert [c.epoch for c in result.checkpoints] == [1.0, 2.0, 3.0]
    assert result.epoch_losses[-1] < result.epoch_losses[0]  # 30 images can be memorised


def test_train_mnist_fast_has_the_published_shape() -> None:
    model = recipes.train_mnist_fast_cnn()
    assert count(model) == 215_194
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
