"""Chapter 4's graded exercises: ``train_steps``, ``evaluate_model``, ``batch_norm_2d`` and
``cross_entropy``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch04.check_train_steps(train_steps)``; it prints one sentence and never raises. The autograder
uses :data:`EXERCISES`.

Every case runs in float64 on a tiny network (a 3x3 convolution, batch normalisation, ReLU and a
linear layer, with dropout for the evaluation exercise), so a correct answer matches the reference
to about 1e-12 and a forgotten step (``zero_grad``, ``model.train()``, ``model.eval()``, weighting
by batch size, the unbiased running variance, the log-sum-exp trick) changes the result.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    Opaque,
    check,
    compare_tensor,
    draw_int,
    type_name,
)
from cnncourse.checks.guard import LOG_SOFTMAX, NORMALISATION, Route
from cnncourse.checks.tiny_nets import (
    NoGradGuard,
    build_net,
    describe_net,
    net_case,
    randn,
    random_batches,
    tiny_net,
)

__all__ = [
    "BATCH_NORM_2D",
    "CROSS_ENTROPY",
    "EVALUATE_MODEL",
    "EXERCISES",
    "TRAIN_STEPS",
    "NoGradGuard",
    "check_batch_norm_2d",
    "check_cross_entropy",
    "check_evaluate_model",
    "check_train_steps",
    "tiny_net",
]

REL = 1e-7  # relative tolerance for float64 results


def _float_list_problem(name: str, got: Any, length: int, what: str, where: str) -> str | None:
    """None if ``got`` is a list or tuple of ``length`` Python floats, else one sentence."""
    if isinstance(got, Opaque) or not isinstance(got, (list, tuple)):
        return f"{name} should return a list of Python floats, got {type_name(got)}, for {where}."
    if len(got) != length:
        return f"{name} returned {len(got)} values for {where}; expected {length} ({what})."
    for item in got:
        if not isinstance(item, float):
            hint = " (use loss.item())" if isinstance(item, torch.Tensor) else ""
            return (
                f"{name} should return Python floats, got a {type_name(item)}{hint}, for {where}."
            )
    return None


# --- Exercise 1: train_steps ----------------------------------------------------------------


def _train_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for k in range(6):
        case = net_case(generator)
        case["optimizer"] = "adam" if k % 3 == 2 else "sgd"
        case["lr"] = 0.01 if case["optimizer"] == "adam" else 0.1
        case["batches"] = random_batches(generator, case, draw_int(generator, 3, 4), 4, 8)
        cases.append(case)
    return cases


def _train_build(case: Case) -> tuple[Any, ...]:
    net = build_net(case)
    net.eval()  # as after an evaluation: the training step must switch it back
    if case["optimizer"] == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=case["lr"])
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=case["lr"], momentum=0.9)
    batches = [(x.clone(), y.clone()) for x, y in case["batches"]]
    return net, batches, optimizer, nn.CrossEntropyLoss()


def _train_reference(
    model: nn.Module, batches: list[Any], optimizer: torch.optim.Optimizer, loss_fn: nn.Module
) -> list[float]:
    losses = []
    with torch.enable_grad():  # the checker computes references under no_grad
        model.train()
        for images, labels in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def _train_describe(case: Case) -> str:
    sizes = ", ".join(str(len(y)) for _, y in case["batches"])
    optimizer = "Adam" if case["optimizer"] == "adam" else "SGD with momentum"
    return f"{describe_net(case)} trained with {optimizer} on batches of {sizes} images"


def _train_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _train_describe(case)
    problem = _float_list_problem("train_steps", got, len(expected), "one loss per batch", where)
    if problem:
        return problem
    for k, (want, have) in enumerate(zip(expected, got, strict=True)):
        if math.isnan(have) or not math.isclose(have, want, rel_tol=REL, abs_tol=1e-12):
            hint = (
                "is the model in training mode (model.train()) and the loss computed before the step?"
                if k == 0
                else "does every step zero the gradients, call backward() and step the optimiser?"
            )
            return (
                f"train_steps returned loss {have:.6g} for batch {k + 1} of {where}; "
                f"expected {want:.6g}: {hint}"
            )
    return None


TRAIN_STEPS = Exercise(
    name="train_steps",
    points=3,
    grade_id="ex1-train_steps",
    make_cases=_train_cases,
    build=_train_build,
    reference=_train_reference,
    compare=_train_compare,
    describe=_train_describe,
    forbidden=(Route("the course's training loop", python=("cnncourse.training.fit",)),),
    asks="write the training loop yourself",
)


# --- Exercise 2: evaluate_model -------------------------------------------------------------


def _eval_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for _ in range(6):
        case = net_case(generator)
        n = draw_int(generator, 9, 40)
        case["images"] = randn(generator, n, 1, case["size"], case["size"])
        case["labels"] = torch.randint(0, case["classes"], (n,), generator=generator)
        case["batch_size"] = draw_int(generator, 2, 8)
        if n % case["batch_size"] == 0:
            case["batch_size"] += 1  # keep a smaller last batch
        cases.append(case)
    return cases


def _eval_build(case: Case) -> tuple[Any, ...]:
    net = build_net(case, dropout=0.5)
    net.insert(0, NoGradGuard())
    net.train()  # as after training: the evaluation must switch to eval mode
    dataset = TensorDataset(case["images"].clone(), case["labels"].clone())
    return net, DataLoader(dataset, batch_size=case["batch_size"]), nn.CrossEntropyLoss()


def _eval_reference(model: nn.Module, loader: Any, loss_fn: nn.Module) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        images, labels = loader.dataset.tensors
        logits = model(images)
        accuracy = (logits.argmax(1) == labels).double().mean().item()
        loss = F.cross_entropy(logits, labels).item()
    return accuracy, loss


def _eval_describe(case: Case) -> str:
    return (
        f"{describe_net(case)} with dropout, on {len(case['labels'])} images in batches of "
        f"{case['batch_size']}"
    )


def _batch_mean_loss(case: Case) -> float:
    """The common wrong answer: the plain average of the batches' mean losses."""
    model, loader, loss_fn = _eval_build(case)
    model.eval()
    with torch.no_grad():
        means = [loss_fn(model(x), y).item() for x, y in loader]
    return sum(means) / len(means)


def _eval_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _eval_describe(case)
    problem = _float_list_problem("evaluate_model", got, 2, "accuracy, mean loss", where)
    if problem:
        return problem
    accuracy, loss = got
    want_accuracy, want_loss = expected
    if not math.isclose(accuracy, want_accuracy, rel_tol=REL, abs_tol=1e-12):
        hint = (
            "that looks like a percentage; return a fraction between 0 and 1."
            if accuracy > 1
            else "is the model in eval mode (model.eval())?"
        )
        return (
            f"evaluate_model returned accuracy {accuracy:.6g} for {where}; expected "
            f"{want_accuracy:.6g}: {hint}"
        )
    if math.isnan(loss) or not math.isclose(loss, want_loss, rel_tol=REL, abs_tol=1e-12):
        hint = "is the model in eval mode (model.eval())?"
        if math.isclose(loss, _batch_mean_loss(case), rel_tol=REL):
            hint = "it averages the batches' mean losses; weight each by its batch size instead."
        return (
            f"evaluate_model returned mean loss {loss:.6g} for {where}; expected "
            f"{want_loss:.6g}: {hint}"
        )
    return None


EVALUATE_MODEL = Exercise(
    name="evaluate_model",
    points=2,
    grade_id="ex2-evaluate_model",
    make_cases=_eval_cases,
    build=_eval_build,
    reference=_eval_reference,
    compare=_eval_compare,
    describe=_eval_describe,
    forbidden=(Route("the course's evaluation loop", python=("cnncourse.training.evaluate",)),),
    asks="write the evaluation loop yourself",
)


# --- Exercise 3: batch_norm_2d --------------------------------------------------------------


def _bn_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for k in range(16):
        c = draw_int(generator, 1, 4)
        n, h, w = draw_int(generator, 2, 5), draw_int(generator, 1, 5), draw_int(generator, 1, 5)
        cases.append(
            {
                "x": randn(generator, n, c, h, w) * 2 + 1,
                "weight": randn(generator, c),
                "bias": randn(generator, c),
                "running_mean": randn(generator, c),
                "running_var": torch.rand(c, generator=generator, dtype=torch.float64) + 0.5,
                "training": k % 2 == 0,
                "momentum": (0.1, 0.3, 0.5)[draw_int(generator, 0, 2)],
                "eps": (1e-5, 1e-3, 0.1)[draw_int(generator, 0, 2)],
            }
        )
    return cases


def _bn_build(case: Case) -> tuple[Any, ...]:
    names = ("x", "weight", "bias", "running_mean", "running_var")
    return (*(case[n].clone() for n in names), case["training"], case["momentum"], case["eps"])


def _bn_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    layer = nn.BatchNorm2d(x.shape[1], eps=eps, momentum=momentum, dtype=torch.float64)
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)
    layer.running_mean.copy_(running_mean)  # type: ignore[union-attr]
    layer.running_var.copy_(running_var)  # type: ignore[union-attr]
    layer.train(training)
    y = layer(x)
    return y, layer.running_mean.clone(), layer.running_var.clone()  # type: ignore[union-attr]


def _bn_describe(case: Case) -> str:
    mode = "training" if case["training"] else "eval"
    return (
        f"{mode} mode on x of shape {tuple(case['x'].shape)} "
        f"(momentum {case['momentum']}, eps {case['eps']})"
    )


def _bn_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _bn_describe(case)
    if isinstance(got, Opaque) or not isinstance(got, (tuple, list)) or len(got) != 3:
        return (
            f"batch_norm_2d should return a tuple (y, new_running_mean, new_running_var), got "
            f"{type_name(got)}, for {where}."
        )
    for label, want, have in zip(
        ("y", "new_running_mean", "new_running_var"), expected, got, strict=True
    ):
        problem = compare_tensor(
            f"batch_norm_2d's {label}", want, have, where, rtol=REL, atol=1e-10
        )
        if problem is None:
            continue
        x = case["x"]
        count = x.numel() // x.shape[1]
        if label == "new_running_var" and case["training"] and isinstance(have, torch.Tensor):
            biased = x.var(dim=(0, 2, 3), unbiased=False)
            wrong = (1 - case["momentum"]) * case["running_var"] + case["momentum"] * biased
            if have.shape == wrong.shape and torch.allclose(have.double(), wrong, rtol=1e-6):
                return problem[:-1] + (
                    f": the running variance is updated with the unbiased batch variance "
                    f"(divide by n - 1 = {count - 1}, not n = {count})."
                )
        if label == "y" and not case["training"]:
            return problem[:-1] + ": in eval mode, normalise with the running statistics."
        return problem
    return None


BATCH_NORM_2D = Exercise(
    name="batch_norm_2d",
    points=3,
    grade_id="ex3-batch_norm_2d",
    make_cases=_bn_cases,
    build=_bn_build,
    reference=_bn_reference,
    compare=_bn_compare,
    describe=_bn_describe,
    forbidden=(NORMALISATION,),
    asks="compute the normalisation and the running averages yourself",
)


# --- Exercise 4: cross_entropy --------------------------------------------------------------


def _ce_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for index, scale in enumerate((1.0, 1.0, 5.0, 30.0, 1000.0, 1000.0)):
        n, k = draw_int(generator, 1, 12), draw_int(generator, 2, 10)
        logits = randn(generator, n, k) * scale
        if index == 4:  # every row's largest logit above 800: exp() overflows even in float64
            logits += (800.0 - logits.amax(dim=1, keepdim=True)).clamp(min=0.0)
        cases.append(
            {"logits": logits, "targets": torch.randint(0, k, (n,), generator=generator)}
        )
    return cases


def _ce_build(case: Case) -> tuple[Any, ...]:
    return case["logits"].clone(), case["targets"].clone()


def _ce_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


def _ce_describe(case: Case) -> str:
    n, k = case["logits"].shape
    biggest = case["logits"].abs().max().item()
    return f"{n} examples of {k} classes (largest |logit| {biggest:.3g})"


def _ce_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _ce_describe(case)
    problem = compare_tensor("cross_entropy", expected, got, where, rtol=REL, atol=1e-10)
    if problem and isinstance(got, torch.Tensor) and not bool(torch.isfinite(got).all()):
        return problem[:-1] + (
            ": exp() overflowed; subtract each row's largest logit first (log-sum-exp)."
        )
    return problem


CROSS_ENTROPY = Exercise(
    name="cross_entropy",
    points=2,
    grade_id="ex4-cross_entropy",
    make_cases=_ce_cases,
    build=_ce_build,
    reference=_ce_reference,
    compare=_ce_compare,
    describe=_ce_describe,
    forbidden=(LOG_SOFTMAX,),
    asks="compute it from the logits yourself, with the log-sum-exp trick written out",
)

EXERCISES: tuple[Exercise, ...] = (TRAIN_STEPS, EVALUATE_MODEL, BATCH_NORM_2D, CROSS_ENTROPY)
"""Chapter 4's exercises, in notebook order: 3 + 2 + 3 + 2 = 10 points."""


def check_train_steps(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``train_steps`` on 6 random tiny networks, optimisers and batch sequences."""
    return check(TRAIN_STEPS, fn, seed=seed)


def check_evaluate_model(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``evaluate_model`` on 6 random tiny networks and data sets."""
    return check(EVALUATE_MODEL, fn, seed=seed)


def check_batch_norm_2d(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``batch_norm_2d`` against ``nn.BatchNorm2d`` on 16 random inputs, both modes."""
    return check(BATCH_NORM_2D, fn, seed=seed)


def check_cross_entropy(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``cross_entropy`` against ``F.cross_entropy`` on 6 random cases, some with huge logits."""
    return check(CROSS_ENTROPY, fn, seed=seed)
