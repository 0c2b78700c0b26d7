"""Chapter 8's graded exercises: ``median_time``, ``accumulated_gradients`` and ``allreduce_mean``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch08.check_median_time(median_time)``; it prints one sentence and never raises. The autograder
uses :data:`EXERCISES`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
from cnncourse.checks.fixtures import FakeAsyncDevice, MicroBatchNet
from cnncourse.checks.guard import Route

__all__ = [
    "ACCUMULATED_GRADIENTS",
    "ALLREDUCE_MEAN",
    "EXERCISES",
    "MEDIAN_TIME",
    "check_accumulated_gradients",
    "check_allreduce_mean",
    "check_median_time",
]

COURSE_TIMER = Route(
    "the course's timing helper",
    python=(
        "cnncourse.device.time_it",
        "cnncourse.device.Stopwatch.__enter__",
        "cnncourse.device.Stopwatch.__exit__",
    ),
)
"""``time_it`` and ``Stopwatch``: exercise 1 asks for their logic."""

WHOLE_BATCH = Route(
    "the model on more images than one micro-batch",
    attributes=("whole_batch",),
)
"""Running the model on the whole batch (or on any input larger than a micro-batch)."""

COLLECTIVES = Route(
    "torch.distributed",
    python=tuple(
        f"torch.distributed.distributed_c10d.{name}"
        for name in (
            "init_process_group",
            "all_reduce",
            "all_gather",
            "reduce",
            "reduce_scatter",
            "broadcast",
        )
    ),
)
"""torch.distributed's process groups and collectives: exercise 3 simulates the ranks by hand."""


# --- Exercise 1: median_time --------------------------------------------------------------------

KERNEL_RANGE = (0.02, 0.05)
"""Seconds of one fake kernel: drawn per case."""
FIRST_EXTRA = 0.3
"""What the first call costs on top (allocation, kernel selection): a warm-up absorbs it."""
QUEUED = 0.3
"""Seconds of earlier work still queued when the timing starts: a first synchronize absorbs it."""
SLACK = 0.15
"""How much longer than one kernel a measurement may be (scheduling on a busy computer)."""


def _timing_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for repeat in (1, 2, 3, 1):
        low, high = KERNEL_RANGE
        seconds = low + (high - low) * float(
            torch.rand((), generator=generator, dtype=torch.float64)
        )
        cases.append({"kernel_seconds": seconds, "repeat": repeat})
    return cases


def _timing_build(case: Case) -> tuple[Any, ...]:
    device = FakeAsyncDevice(case["kernel_seconds"], first_extra=FIRST_EXTRA, queued=QUEUED)
    return device, device.synchronize, case["repeat"]


def _timing_reference(fn: FakeAsyncDevice, synchronize: Any, repeat: int) -> float:
    """The fake device's true kernel time (the check does not measure it: it knows it)."""
    return fn.kernel_seconds


def _timing_describe(case: Case) -> str:
    return (
        f"a fake asynchronous device whose kernel takes {case['kernel_seconds'] * 1e3:.0f} ms, "
        f"with repeat={case['repeat']}"
    )


def _timing_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _timing_describe(case)
    if isinstance(got, bool) or not isinstance(got, float) or isinstance(got, Opaque):
        return f"median_time should return a Python float (seconds), got {type_name(got)}, for {where}."
    if math.isnan(got) or got < 0.9 * expected:
        return (
            f"median_time returned {got * 1e3:.1f} ms for {where}: that is only the time to "
            "launch the work; call synchronize() after fn() and before reading the clock."
        )
    if got > expected + SLACK:
        return (
            f"median_time returned {got * 1e3:.0f} ms for {where}: that includes work queued "
            "before the timed run or the first call's extra cost; warm up with one untimed "
            "call, and call synchronize() before starting the clock."
        )
    return None


MEDIAN_TIME = Exercise(
    name="median_time",
    points=4,
    grade_id="ex1-median_time",
    make_cases=_timing_cases,
    build=_timing_build,
    reference=_timing_reference,
    compare=_timing_compare,
    describe=_timing_describe,
    forbidden=(COURSE_TIMER,),
    asks="warm up, synchronise and read the clock yourself",
)


# --- Exercise 2: accumulated_gradients ----------------------------------------------------------


def _accumulation_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for index in range(6):
        rows = draw_int(generator, 7, 23)
        micro = draw_int(generator, 2, rows - 1)
        if index % 3 != 2 and rows % micro == 0:  # most cases end on a smaller micro-batch
            micro = micro - 1 if micro > 2 else micro + 1
        cases.append(
            {
                "rows": rows,
                "micro": micro,
                "channels": draw_int(generator, 1, 3),
                "width": draw_int(generator, 2, 5),
                "size": draw_int(generator, 3, 6),
                "classes": draw_int(generator, 2, 6),
                "seed": draw_int(generator, 0, 2**31 - 1),
            }
        )
    return cases


def _accumulation_build(case: Case) -> tuple[Any, ...]:
    generator = torch.Generator().manual_seed(case["seed"])
    c, k, s = case["channels"], case["width"], case["size"]
    body = nn.Sequential(
        nn.Conv2d(c, k, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(k * s * s, case["classes"]),
    ).double()
    with torch.no_grad():
        for parameter in body.parameters():
            parameter.copy_(
                torch.randn(parameter.shape, generator=generator, dtype=torch.float64) / 2
            )
    images = torch.randn(case["rows"], c, s, s, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, case["classes"], (case["rows"],), generator=generator)
    return MicroBatchNet(body, case["micro"]), images, labels, case["micro"]


def _accumulation_reference(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, micro_batch: int
) -> list[torch.Tensor]:
    with torch.enable_grad():
        loss = F.cross_entropy(model(images), labels)
        return list(torch.autograd.grad(loss, list(model.parameters())))


def _accumulation_describe(case: Case) -> str:
    return f"{case['rows']} images in micro-batches of {case['micro']}"


def _accumulation_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _accumulation_describe(case)
    if isinstance(got, Opaque) or type(got) not in (list, tuple):
        return (
            f"accumulated_gradients should return a list of tensors, one per parameter, got "
            f"{type_name(got)}, for {where}."
        )
    if len(got) != len(expected):
        return (
            f"accumulated_gradients returned {len(got)} tensors for {where}; expected "
            f"{len(expected)}, one per parameter of model.parameters(), in order."
        )
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        problem = compare_tensor(
            "accumulated_gradients",
            want,
            have,
            f"parameter {index} with {where}",
            rtol=1e-7,
            atol=1e-10,
        )
        if problem is not None:
            if type(have) is torch.Tensor and have.shape == want.shape and have.dtype == want.dtype:
                ratio = float(have.norm() / want.norm()) if float(want.norm()) > 0 else math.nan
                if abs(ratio - 1) > 1e-3:
                    problem = problem[:-1] + (
                        f"; its size is {ratio:.3g} times the whole batch's gradient (weight each "
                        "micro-batch's mean loss by its share of the images)."
                    )
            return problem
    return None


ACCUMULATED_GRADIENTS = Exercise(
    name="accumulated_gradients",
    points=3,
    grade_id="ex2-accumulated_gradients",
    make_cases=_accumulation_cases,
    build=_accumulation_build,
    reference=_accumulation_reference,
    compare=_accumulation_compare,
    describe=_accumulation_describe,
    forbidden=(WHOLE_BATCH,),
    asks="run the micro-batches one after another and add up their gradients",
)


# --- Exercise 3: allreduce_mean -----------------------------------------------------------------


def _allreduce_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for index in range(8):
        ranks = draw_int(generator, 2, 5)
        shapes = [
            tuple(draw_int(generator, 1, 4) for _ in range(draw_int(generator, 1, 3)))
            for _ in range(draw_int(generator, 1, 4))
        ]
        equal = index % 4 == 0
        base = draw_int(generator, 3, 12)
        counts = [base if equal else draw_int(generator, 1, 12) for _ in range(ranks)]
        grads = [
            [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
            for _ in range(ranks)
        ]
        cases.append({"grads": grads, "counts": counts})
    return cases


def _allreduce_build(case: Case) -> tuple[Any, ...]:
    return [[g.clone() for g in rank] for rank in case["grads"]], list(case["counts"])


def _allreduce_reference(
    rank_grads: list[list[torch.Tensor]], counts: list[int]
) -> list[list[torch.Tensor]]:
    total = sum(counts)
    mean: list[torch.Tensor] = [
        torch.stack([c * rank[p] for c, rank in zip(counts, rank_grads, strict=True)]).sum(0)
        / total
        for p in range(len(rank_grads[0]))
    ]
    return [[g.clone() for g in mean] for _ in rank_grads]


def _allreduce_describe(case: Case) -> str:
    return (
        f"{len(case['counts'])} ranks with {case['counts']} examples and "
        f"{len(case['grads'][0])} parameters"
    )


def _allreduce_compare(expected: Any, got: Any, case: Case) -> str | None:
    where = _allreduce_describe(case)
    if isinstance(got, Opaque) or type(got) not in (list, tuple) or len(got) != len(expected):
        return (
            f"allreduce_mean should return one list of gradients per rank ({len(expected)} "
            f"lists), got {type_name(got)}, for {where}."
        )
    for rank, (want, have) in enumerate(zip(expected, got, strict=True)):
        if isinstance(have, Opaque) or type(have) not in (list, tuple) or len(have) != len(want):
            return (
                f"allreduce_mean gave rank {rank} {type_name(have)} for {where}; expected a list "
                f"of {len(want)} tensors, one per parameter."
            )
        for index, (w, h) in enumerate(zip(want, have, strict=True)):
            problem = compare_tensor(
                "allreduce_mean", w, h, f"rank {rank}'s parameter {index} with {where}", rtol=1e-9
            )
            if problem is not None:
                return problem
    return None


ALLREDUCE_MEAN = Exercise(
    name="allreduce_mean",
    points=3,
    grade_id="ex3-allreduce_mean",
    make_cases=_allreduce_cases,
    build=_allreduce_build,
    reference=_allreduce_reference,
    compare=_allreduce_compare,
    describe=_allreduce_describe,
    forbidden=(COLLECTIVES,),
    asks="combine the simulated ranks' gradients yourself",
)

EXERCISES: tuple[Exercise, ...] = (MEDIAN_TIME, ACCUMULATED_GRADIENTS, ALLREDUCE_MEAN)
"""Chapter 8's exercises, in notebook order: 4 + 3 + 3 = 10 points."""


def check_median_time(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``median_time`` on 4 fake asynchronous devices with random kernel times (about
    3 seconds: the fake kernels really take their time)."""
    return check(MEDIAN_TIME, fn, seed=seed)


def check_accumulated_gradients(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``accumulated_gradients`` on 6 small random float64 networks and batches."""
    return check(ACCUMULATED_GRADIENTS, fn, seed=seed)


def check_allreduce_mean(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``allreduce_mean`` on 8 random sets of ranks, gradients and example counts."""
    return check(ALLREDUCE_MEAN, fn, seed=seed)
