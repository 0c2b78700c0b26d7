"""The fast CIFAR-10 recipe: its network, whitening, optimiser and test-time augmentation on
small inputs, and a short deterministic run on real CIFAR-10 images that must learn.

The run needs the real data: where neither the data root nor ``CNNCOURSE_DATA_MIRROR`` has it,
it is skipped with the reason. It checks that the recipe learns, not how fast it is (speed is
measured by ``benchmarks/fast_cifar.py``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from cnncourse import fast_cifar
from cnncourse.muon import Muon, orthogonalize
from cnncourse.precision import choose_precision, keep_freed_memory
from cnncourse.tensor_data import ImageTensors, TensorLoader, load_tensors, split_off


def test_the_network_maps_cifar_images_to_logits_with_a_frozen_whitening_layer() -> None:
    net = fast_cifar.FastCifarNet((8, 16, 16))
    assert net(torch.randn(5, 3, 32, 32)).shape == (5, 10)
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad
    frozen_scales = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen_scales and not any(w.requires_grad for w in frozen_scales)
    with pytest.raises(ValueError, match=r"widths is \(8, 16\), but it must be three positive"):
        fast_cifar.FastCifarNet((8, 16))  # type: ignore[arg-type]


def test_whitening_decorrelates_two_by_two_patches() -> None:
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(3, 3, generator=generator)
    images = torch.einsum("dc,nchw->ndhw", mixing, torch.randn(200, 3, 12, 12, generator=generator))
    images = images + 0.5 * images.roll(1, dims=-1)  # neighbouring pixels correlate too
    net = fast_cifar.FastCifarNet((8, 8, 8))
    net.init_whitening(images, eps=0.0)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, net.whiten.weight[:12])  # the 12 eigen-filters
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    covariance = flat @ flat.T / flat.shape[1]
    torch.testing.assert_close(covariance, torch.eye(12), atol=0.05, rtol=0)
    torch.testing.assert_close(net.whiten.weight[12:], -net.whiten.weight[:12])


def test_newton_schulz_gives_an_approximately_orthogonal_factor() -> None:
    matrix = torch.randn(16, 40, generator=torch.Generator().manual_seed(1))
    singular = torch.linalg.svdvals(orthogonalize(matrix, steps=5).float())
    assert float(singular.min()) > 0.5 and float(singular.max()) < 1.5
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    alignment = torch.trace((u @ vh).T @ orthogonalize(matrix, steps=5).float()) / 16
    assert float(alignment) > 0.7  # it points where U V^T points
    assert orthogonalize(matrix.T).shape == (40, 16)
    with pytest.raises(ValueError, match="matrix has 1 dimensions, but it must be 2-D"):
        orthogonalize(torch.ones(3))


def test_muon_keeps_filter_norms_and_steps_sgd_groups_as_nesterov_sgd() -> None:
    torch.manual_seed(0)
    filters = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
    bias = torch.nn.Parameter(torch.zeros(4))
    optimizer = Muon(
        [
            {"params": [filters], "lr": 0.1, "momentum": 0.5, "orthogonalize": True},
            {"params": [bias], "lr": 0.1, "momentum": 0.5, "weight_decay": 0.0},
        ]
    )
    filters.grad, bias.grad = torch.randn(4, 3, 3, 3), torch.ones(4)
    optimizer.step()
    torch.testing.assert_close(bias.detach(), torch.full((4,), -0.1 * 1.5))  # g + momentum * g
    assert (
        abs(float(filters.detach().norm()) - 2.0) < 0.3
    )  # held near sqrt(out_channels), then one step
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        Muon([{"params": [bias], "orthogonalize": True}])


def test_tta_views_average_to_the_plain_logits_on_a_symmetric_model() -> None:
    class MeanPixel(torch.nn.Module):  # ignores position, so every view gives the same logits
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    images = torch.rand(4, 3, 8, 8)
    plain = fast_cifar.tta_logits(MeanPixel(), images, "none")
    torch.testing.assert_close(fast_cifar.tta_logits(MeanPixel(), images, "flip"), plain)
    with pytest.raises(ValueError, match="tta is 'all', but it must be"):
        fast_cifar.tta_logits(MeanPixel(), images, "all")  # type: ignore[arg-type]


def test_precision_choice_and_the_allocator_setting() -> None:
    cpu = choose_precision("cpu")
    assert cpu.dtype in (torch.bfloat16, None) and cpu.note
    assert choose_precision("cpu", "fp32").dtype is None
    with pytest.raises(ValueError, match="fp16 training is offered on CUDA only"):
        choose_precision("cpu", "fp16")
    applied = keep_freed_memory()
    assert applied == (os.uname().sysname == "Linux")


def real_cifar(tmp_path: Path) -> tuple[ImageTensors, ImageTensors]:
    mirror = os.environ.get("CNNCOURSE_DATA_MIRROR")
    root = os.environ.get("CNNCOURSE_DATA")
    if not (mirror and (Path(mirror) / "cifar-10-batches-py").is_dir()) and not (
        root and (Path(root) / "cifar-10-batches-py").is_dir()
    ):
        pytest.skip("the real CIFAR-10 is neither in CNNCOURSE_DATA nor in CNNCOURSE_DATA_MIRROR")
    data_root = root if root and (Path(root) / "cifar-10-batches-py").is_dir() else tmp_path
    return load_tensors("cifar10", True, data_root), load_tensors("cifar10", False, data_root)


def test_a_short_run_on_real_images_learns_and_is_deterministic(tmp_path: Path) -> None:
    train_all, evaluation = real_cifar(tmp_path)
    rest, train = split_off(train_all, 4000, seed=0)
    _, val = split_off(rest, 1000, seed=1)
    small = dataclasses.replace(fast_cifar.CIFAR_90, widths=(32, 64, 64), batch_size=500)
    run = fast_cifar.train_fast_cifar(small, train, val, epochs=4, progress=False, seed=3)
    assert len(run.history.eval_acc) == 4 and run.train_seconds > 0
    held_out = TensorLoader(
        evaluation.subset(torch.arange(2000)), 1000, shuffle=False, mean=run.mean, std=run.std
    )
    accuracy = fast_cifar.tta_accuracy(run.model, held_out, "flip", run.precision)
    assert accuracy > 0.55, f"4 epochs on 4,000 images reached only {accuracy:.3f}"
    first, second = (
        fast_cifar.train_fast_cifar(
            small, train.subset(torch.arange(1000)), val, epochs=1, progress=False, seed=5
        )
        for _ in range(2)
    )
    assert first.history.eval_acc == second.history.eval_acc
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key


def test_the_whitening_bias_stops_learning_and_needing_gradients_after_its_epochs() -> None:
    """After ``whiten_bias_epochs`` the bias is frozen (airbench's trick: autograd then skips the
    first convolution's input gradient); resuming the schedule restores the same state."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    data = ImageTensors(images, labels, tuple(str(c) for c in range(10)), "synthetic")
    preset = dataclasses.replace(
        fast_cifar.CIFAR_90, widths=(8, 8, 8), batch_size=16, whiten_bias_epochs=1
    )
    run = fast_cifar.train_fast_cifar(preset, data, epochs=2, progress=False, precision="fp32")
    assert not run.model.whiten.bias.requires_grad
    assert len(run.history.train_loss) == 2

    model = fast_cifar.FastCifarNet((8, 8, 8))
    optimizer = torch.optim.SGD([model.whiten.bias], lr=1.0)
    steps = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    schedule = fast_cifar._WhiteningBiasSchedule(steps, model.whiten.bias, steps=2)
    assert model.whiten.bias.requires_grad
    schedule.step()
    schedule.step()
    assert not model.whiten.bias.requires_grad
    saved = schedule.state_dict()
    fresh = fast_cifar.FastCifarNet((8, 8, 8))
    again = fast_cifar._WhiteningBiasSchedule(
        torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([fresh.whiten.bias]), lambda s: 1.0),
        fresh.whiten.bias,
        steps=2,
    )
    assert fresh.whiten.bias.requires_grad
    again.load_state_dict(saved)
    assert not fresh.whiten.bias.requires_grad
