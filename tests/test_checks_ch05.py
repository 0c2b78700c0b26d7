"""Chapter 5's instant-feedback checks: the solutions pass, each wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and the receptive-field reference agrees
with the textbook recurrence and with known networks."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from check_helpers import (
    Forbidden,
    Wrong,
    backprop_measurement,
    forbidden_route_test,
    verdict_tests,
)
from torch import nn

from cnncourse.checks import ch05


class LeNet5(nn.Module):
    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        activation: Any = F.relu,
        pool: Any = F.max_pool2d,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=padding)
        self.conv2 = nn.Conv2d(6, 16, 5)
        flat = 16 * 5 * 5 if padding == 0 else 16 * 6 * 6
        self.fc1 = nn.Linear(flat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.activation, self.pool = activation, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.activation(self.conv1(x)), 2)
        x = self.pool(self.activation(self.conv2(x)), 2)
        x = self.activation(self.fc1(x.flatten(1)))
        x = self.activation(self.fc2(x))
        return self.fc3(x)


def lenet5_logits(weights: dict[str, torch.Tensor], images: torch.Tensor, **options: Any) -> Any:
    model = LeNet5(images.shape[1], weights["fc3.bias"].shape[0], **options)
    model.load_state_dict(weights)
    with torch.no_grad():
        return model.eval()(images)


def collect_activations(
    model: nn.Module, images: torch.Tensor, names: list[str], copy: bool = True
) -> list[torch.Tensor]:
    modules = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            store[name] = output.detach().clone() if copy else output.detach()

        return hook

    handles = [modules[name].register_forward_hook(keeper(name)) for name in names]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return [store[name] for name in names]


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def receptive_field(model: nn.Sequential, dilation: bool = True, jumps: bool = True) -> int:
    field, jump = 1, 1
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            d = _first(layer.dilation) if dilation and isinstance(layer, nn.Conv2d) else 1
            field += (_first(layer.kernel_size) - 1) * d * (jump if jumps else 1)
            jump *= _first(layer.stride)
    return field


SOLUTIONS = {
    "lenet5_logits": (ch05.check_lenet5_logits, lenet5_logits),
    "collect_activations": (ch05.check_collect_activations, collect_activations),
    "receptive_field": (ch05.check_receptive_field, receptive_field),
}


WRONG: list[Wrong] = [
    # (checker, wrong function, substrings the one-sentence reason must contain)
    (
        ch05.check_lenet5_logits,
        lambda w, x: lenet5_logits(w, x, padding=2),
        ["lenet5_logits raised RuntimeError", "size mismatch for fc1.weight", "32x32"],
    ),
    (
        ch05.check_lenet5_logits,
        lambda w, x: lenet5_logits(w, x, activation=torch.tanh),
        ["lenet5_logits returned wrong values for", "entries differ"],
    ),
    (
        ch05.check_lenet5_logits,
        lambda w, x: lenet5_logits(w, x, pool=F.avg_pool2d),
        ["lenet5_logits returned wrong values for"],
    ),
    (
        ch05.check_lenet5_logits,
        lambda w, x: lenet5_logits(w, x).softmax(dim=1),
        ["lenet5_logits returned wrong values for"],
    ),
    (
        ch05.check_lenet5_logits,
        lambda w, x: lenet5_logits(w, x).double(),
        ["dtype torch.float64", "expected torch.float32"],
    ),
    (
        ch05.check_collect_activations,
        lambda m, x, n: collect_activations(m, x, n, copy=False),
        ["collect_activations (item ", "returned wrong values", "in-place ReLUs"],
    ),
    (
        ch05.check_collect_activations,
        lambda m, x, n: dict(zip(n, collect_activations(m, x, n), strict=True)),
        ["should return a list of tensors, one per name, got dict"],
    ),
    (
        ch05.check_collect_activations,
        lambda m, x, n: collect_activations(m, x, sorted(n)) + [torch.zeros(1)],
        ["collect_activations returned ", "item(s)", "one per name"],
    ),
    (
        ch05.check_receptive_field,
        lambda m: receptive_field(m, jumps=False),
        ["receptive_field returned", "; expected", "for the model "],
    ),
    (
        ch05.check_receptive_field,
        lambda m: receptive_field(m, dilation=False),
        ["receptive_field returned", "dilation=2"],
    ),
    (
        ch05.check_receptive_field,
        lambda m: torch.tensor(receptive_field(m)),
        ["receptive_field should return an int, got torch.Tensor"],
    ),
]


(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "05",
    SOLUTIONS,
    WRONG,
    [3, 2, 3],
    [
        "ex1-lenet5",
        "ex2-collect_activations",
        "ex3-receptive_field",
    ],
    ending=None,
)


FORBIDDEN = [
    # (exercise, shortcut, the route its one sentence names)
    Forbidden(ch05.LENET5_LOGITS, ch05._lenet_reference, "cnncourse.checks.ch05._lenet_reference"),
    Forbidden(ch05.COLLECT_ACTIVATIONS, ch05._activation_reference,
              "cnncourse.checks.ch05._activation_reference"),
    Forbidden(ch05.RECEPTIVE_FIELD, lambda model: model(torch.ones(1, 2, 64, 64)).shape[-1],
              "Sequential.forward", correct=False),
    Forbidden(ch05.RECEPTIVE_FIELD, backprop_measurement, "aten.convolution"),
    Forbidden(ch05.RECEPTIVE_FIELD, lambda model: backprop_measurement(model, convolve=False),
              "torch.autograd"),
    Forbidden(ch05.RECEPTIVE_FIELD, ch05._rf_reference, "cnncourse.checks.ch05._rf_reference"),
]  # fmt: skip
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_unordered_activations_fail() -> None:
    """Returning the activations in network order instead of the order of `names` is wrong."""
    order = list(dict.fromkeys(ch05.ACTIVATION_NAMES))

    def network_order(m: nn.Module, x: torch.Tensor, n: list[str]) -> list[torch.Tensor]:
        return collect_activations(m, x, sorted(n, key=order.index))

    assert not ch05.check_collect_activations(network_order, seed=3).passed


def test_leftover_hooks_do_not_change_the_answer_for_the_reference() -> None:
    """Each call builds a fresh model, so a student's forgotten hook cannot leak into the reference."""

    def leaky(m: nn.Module, x: torch.Tensor, n: list[str]) -> list[torch.Tensor]:
        got = collect_activations(m, x, n)
        m.register_forward_hook(lambda *a: torch.zeros(1))  # replaces every later output
        return got

    assert ch05.check_collect_activations(leaky).passed


@pytest.mark.parametrize(
    "layers, expected",
    [
        ([nn.Conv2d(1, 1, 3)], 3),
        ([nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)], 5),
        ([nn.Conv2d(1, 1, 3, dilation=2)], 5),
        ([nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)], 8),
        ([nn.Conv2d(1, 1, 11, stride=4), nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 5, padding=2)], 51),
        ([nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)], 10),
    ],
)
def test_measured_receptive_field_of_known_stacks(layers: list[nn.Module], expected: int) -> None:
    assert ch05.measured_receptive_field(nn.Sequential(*layers)) == expected


def test_measured_receptive_field_of_vgg16_is_212() -> None:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    for item in cfg:
        layers.append(nn.MaxPool2d(2) if item == "M" else nn.Conv2d(1, 1, 3, padding=1))
    assert ch05.measured_receptive_field(nn.Sequential(*layers)) == 212
    assert ch05.measured_receptive_field(nn.Sequential(*layers[:-1])) == 196


@pytest.mark.parametrize("seed", range(8))
def test_measured_receptive_field_matches_the_recurrence_on_random_stacks(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for case in ch05.RECEPTIVE_FIELD.make_cases(generator):
        (model,) = ch05.RECEPTIVE_FIELD.build(case)
        assert ch05.measured_receptive_field(model) == receptive_field(model), case


def test_measured_receptive_field_is_not_clipped_near_the_edge() -> None:
    """A strided stack whose field nearly fills a 64-pixel image (a case that once failed)."""
    model = nn.Sequential(
        nn.MaxPool2d(3, 2),
        nn.Conv2d(1, 1, 3, padding=1),
        nn.Conv2d(1, 1, 3, stride=2, padding=1),
        nn.BatchNorm2d(1),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(1, 1, 7, padding=2),
    )  # measured 59 when any field clear of the border was accepted
    assert ch05.measured_receptive_field(model) == receptive_field(model) == 63


def test_measured_receptive_field_refuses_a_field_too_large() -> None:
    model = nn.Sequential(*[nn.Conv2d(1, 1, 7, dilation=4) for _ in range(3)])
    with pytest.raises(ValueError, match="does not fit in a 64x64 image"):
        ch05.measured_receptive_field(model, max_size=64)


def test_lenet_solution_has_61706_parameters() -> None:
    assert sum(p.numel() for p in LeNet5().parameters()) == 61_706
    shapes = {name: tuple(t.shape) for name, t in LeNet5(3, 7).state_dict().items()}
    cases = ch05.LENET5_LOGITS.make_cases(torch.Generator().manual_seed(0))
    assert {n: tuple(t.shape) for n, t in cases[0]["weights"].items()}.keys() == shapes.keys()
