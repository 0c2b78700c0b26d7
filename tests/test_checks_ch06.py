"""Chapter 6's instant-feedback checks: the solutions pass, each wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and each exercise's forbidden route (the
course's own blocks, building the network, the lesion switch) is rejected."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, verdict_tests
from torch import nn

from cnncourse.checks import ch06
from cnncourse.resnets import BasicBlock, CifarResNet, count_parameters, shortcut_a


def basic_block(
    x: torch.Tensor,
    weights: dict[str, torch.Tensor],
    stride: int,
    shortcut: str,
    *,
    last_relu: bool = True,
    project_always: bool = False,
) -> torch.Tensor:
    def norm(t: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(
            t,
            weights[f"{name}.running_mean"],
            weights[f"{name}.running_var"],
            weights[f"{name}.weight"],
            weights[f"{name}.bias"],
            training=False,
        )

    out = F.relu(norm(F.conv2d(x, weights["conv1.weight"], stride=stride, padding=1), "bn1"))
    out = norm(F.conv2d(out, weights["conv2.weight"], padding=1), "bn2")
    c_in, c_out = x.shape[1], weights["conv2.weight"].shape[0]
    if stride == 1 and c_in == c_out and not project_always:
        identity = x
    elif shortcut == "A":
        identity = F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, c_out - c_in))
    else:
        identity = norm(F.conv2d(x, weights["proj.weight"], stride=stride), "proj_bn")
    out = out + identity
    return F.relu(out) if last_relu else out


def resnet_param_count(
    n: int, shortcut: str, classes: int, width: int, *, bn: int = 2, head_bias: bool = True
) -> int:
    total = 27 * width + bn * width
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for index in range(n):
            total += 9 * c_in * c_out + 9 * c_out * c_out + 2 * bn * c_out
            if shortcut == "C" or (shortcut == "B" and stage > 0 and index == 0):
                total += c_in * c_out + bn * c_out
            c_in = c_out
    return total + c_in * classes + (classes if head_bias else 0)


def lesion_accuracies(
    model: CifarResNet, images: torch.Tensor, labels: torch.Tensor
) -> list[tuple[int, float]]:
    result: list[tuple[int, float]] = []
    with torch.no_grad():
        for skipped, block in enumerate(model.blocks):
            if block.stride != 1 or block.in_channels != block.out_channels:
                continue
            x = model.stem(images)
            for index, other in enumerate(model.blocks):
                if index != skipped:
                    x = other(x)
            result.append((skipped, (model.head(x).argmax(1) == labels).double().mean().item()))
    return result


def intact_accuracies(
    model: CifarResNet, images: torch.Tensor, labels: torch.Tensor
) -> list[tuple[int, float]]:
    """Forgets to delete the block: every entry is the intact model's accuracy."""
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == labels).double().mean().item()
    return [(i, accuracy) for i, b in enumerate(model.blocks) if b.identity_shaped]


SOLUTIONS = {
    "basic_block": (ch06.check_basic_block, basic_block),
    "resnet_param_count": (ch06.check_resnet_param_count, resnet_param_count),
    "lesion_accuracies": (ch06.check_lesion_accuracies, lesion_accuracies),
}

WRONG: list[Wrong] = [
    (
        ch06.check_basic_block,
        lambda x, w, s, o: basic_block(x, w, s, o, last_relu=False),
        ["basic_block returned wrong values for a block from"],
    ),
    (
        ch06.check_basic_block,
        lambda x, w, s, o: basic_block(x, w, 1, o),
        ["basic_block", "stride 2"],
    ),
    (
        ch06.check_basic_block,
        lambda x, w, s, o: basic_block(x, w, s, o, project_always=True),
        ["basic_block", "a block from"],
    ),
    (
        ch06.check_basic_block,
        lambda x, w, s, o: basic_block(x, w, s, o).float(),
        ["dtype torch.float32", "expected torch.float64"],
    ),
    (
        ch06.check_resnet_param_count,
        lambda n, o, k, w: resnet_param_count(n, o, k, w, bn=1),
        ["resnet_param_count returned", "; expected", "n = 3 (depth 20), option A"],
    ),
    (
        ch06.check_resnet_param_count,
        lambda n, o, k, w: resnet_param_count(n, o, k, w, head_bias=False),
        ["resnet_param_count returned", "classes"],
    ),
    (
        ch06.check_resnet_param_count,
        lambda n, o, k, w: resnet_param_count(n, "A", k, w),
        ["resnet_param_count returned", "option B"],
    ),
    (
        ch06.check_resnet_param_count,
        lambda n, o, k, w: float(resnet_param_count(n, o, k, w)),
        ["resnet_param_count should return an int, got float"],
    ),
    (
        ch06.check_lesion_accuracies,
        intact_accuracies,
        ["lesion_accuracies returned", "for block", "expected"],
    ),
    (
        ch06.check_lesion_accuracies,
        lambda m, x, y: [*lesion_accuracies(m, x, y), (99, 0.5)],
        ["lesion_accuracies returned the blocks", "every block that keeps its input's shape"],
    ),
    (
        ch06.check_lesion_accuracies,
        lambda m, x, y: dict(lesion_accuracies(m, x, y)),
        ["should return a list of (block index, accuracy) pairs, got dict"],
    ),
    (
        ch06.check_lesion_accuracies,
        lambda m, x, y: [(i, torch.tensor(a)) for i, a in lesion_accuracies(m, x, y)],
        ["gave block", "torch.Tensor", "Python float"],
    ),
]

(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "06",
    SOLUTIONS,
    WRONG,
    [4, 3, 3],
    ["ex1-basic_block", "ex2-resnet_param_count", "ex3-lesion_accuracies"],
)


def _package_block(
    x: torch.Tensor, weights: dict[str, torch.Tensor], stride: int, shortcut: str
) -> torch.Tensor:
    """The right answer through the course's own BasicBlock (what exercise 1 forbids)."""
    c_out, c_in = weights["conv1.weight"].shape[:2]
    block = BasicBlock(c_in, c_out, stride, shortcut=shortcut).double().eval()  # type: ignore[arg-type]
    layers = {"conv1": block.branch[0], "bn1": block.branch[1]}
    layers.update({"conv2": block.branch[3], "bn2": block.branch[4]})
    if "proj.weight" in weights:
        layers.update({"proj": block.shortcut[0], "proj_bn": block.shortcut[1]})  # type: ignore[index]
    with torch.no_grad():
        for name, layer in layers.items():
            fields = (
                ("weight",)
                if name.startswith(("conv", "proj")) and "bn" not in name
                else ("weight", "bias", "running_mean", "running_var")
            )
            for field in fields:
                getattr(layer, field).copy_(weights[f"{name}.{field}"])
        return block(x)


def _block_via_shortcut_a(
    x: torch.Tensor, weights: dict[str, torch.Tensor], stride: int, shortcut: str
) -> torch.Tensor:
    out = basic_block(x, weights, stride, shortcut)
    if shortcut == "A":
        shortcut_a(x, weights["conv2.weight"].shape[0], stride)  # the package's option A
    return out


def _count_by_building(n: int, shortcut: str, classes: int, width: int) -> int:
    with torch.device("meta"):
        model = CifarResNet(
            6 * n + 2, shortcut=shortcut, classes=classes, widths=(width, 2 * width, 4 * width)
        )
    return sum(p.numel() for p in model.parameters())


def _count_with_conv_layers(n: int, shortcut: str, classes: int, width: int) -> int:
    nn.Conv2d(3, width, 3, bias=False, device="meta")  # any convolution layer is a builder
    return resnet_param_count(n, shortcut, classes, width)


def _count_with_helper(n: int, shortcut: str, classes: int, width: int) -> int:
    count_parameters(nn.Linear(1, 1))
    return resnet_param_count(n, shortcut, classes, width)


def _lesion_switch(
    model: CifarResNet, images: torch.Tensor, labels: torch.Tensor
) -> list[tuple[int, float]]:
    result: list[tuple[int, float]] = []
    with torch.no_grad():
        for index, block in enumerate(model.blocks):
            if block.identity_shaped:
                block.lesioned = True
                result.append((index, (model(images).argmax(1) == labels).double().mean().item()))
                block.lesioned = False
    return result


FORBIDDEN = [
    Forbidden(ch06.BASIC_BLOCK, ch06._block_reference, "cnncourse.checks.ch06._block_reference"),
    Forbidden(ch06.BASIC_BLOCK, _package_block, "cnncourse.resnets._Block.forward"),
    Forbidden(ch06.BASIC_BLOCK, _block_via_shortcut_a, "cnncourse.resnets.shortcut_a"),
    Forbidden(ch06.RESNET_PARAM_COUNT, _count_by_building, "CifarResNet.__init__"),
    Forbidden(ch06.RESNET_PARAM_COUNT, _count_with_conv_layers, "Conv2d.__init__"),
    Forbidden(ch06.RESNET_PARAM_COUNT, _count_with_helper, "cnncourse.resnets.count_parameters"),
    Forbidden(ch06.LESION_ACCURACIES, _lesion_switch, "_Block._set_lesioned"),
]
test_forbidden_route_is_caught = forbidden_route_test(FORBIDDEN)


def test_block_reference_is_the_package_block() -> None:
    """The reference is the course's BasicBlock: option A pads zero channels, B projects."""
    generator = torch.Generator().manual_seed(3)
    for case in ch06._block_cases(generator):
        expected = ch06.BASIC_BLOCK.expected(case)
        assert torch.allclose(basic_block(*ch06._block_build(case)), expected, atol=1e-9)


def test_resnet20_count_matches_the_paper() -> None:
    assert resnet_param_count(3, "A", 10, 16) == count_parameters(CifarResNet(20)) == 269_722
