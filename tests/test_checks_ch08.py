"""Chapter 8's instant-feedback checks: the solutions pass, each wrong answer gets the right
one-sentence reason, a stub says "not implemented yet", and each exercise's forbidden route (the
course's timing helper, the whole batch at once, torch.distributed's collectives) is rejected."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from check_helpers import Forbidden, Wrong, forbidden_route_test, verdict_tests
from torch import nn

from cnncourse.checks import ch08
from cnncourse.checks.fixtures import FakeAsyncDevice
from cnncourse.device import Stopwatch, time_it


def median_time(
    fn: Callable[[], object],
    synchronize: Callable[[], None],
    repeat: int,
    *,
    warmup: bool = True,
    sync_before: bool = True,
    sync_after: bool = True,
) -> float:
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        if sync_before:
            synchronize()
        start = time.perf_counter()
        fn()
        if sync_after:
            synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accumulated_gradients(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    micro_batch: int,
    *,
    weighting: str = "share",
) -> list[torch.Tensor]:
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    starts = range(0, len(images), micro_batch)
    for start in starts:
        x, y = images[start : start + micro_batch], labels[start : start + micro_batch]
        loss = F.cross_entropy(model(x), y)
        if weighting == "share":
            loss = loss * len(x) / len(images)
        elif weighting == "equal":
            loss = loss / len(starts)
        for acc, grad in zip(total, torch.autograd.grad(loss, params), strict=True):
            acc += grad
    return total


def allreduce_mean(
    rank_grads: list[list[torch.Tensor]], counts: list[int], *, weighted: bool = True
) -> list[list[torch.Tensor]]:
    weights = counts if weighted else [1] * len(counts)
    mean = [
        sum(w * rank[p] for w, rank in zip(weights, rank_grads, strict=True)) / sum(weights)
        for p in range(len(rank_grads[0]))
    ]
    return [[g.clone() for g in mean] for _ in rank_grads]


SOLUTIONS = {
    "median_time": (ch08.check_median_time, median_time),
    "accumulated_gradients": (ch08.check_accumulated_gradients, accumulated_gradients),
    "allreduce_mean": (ch08.check_allreduce_mean, allreduce_mean),
}

WRONG: list[Wrong] = [
    (
        ch08.check_median_time,
        lambda f, s, r: median_time(f, s, r, sync_after=False),
        ["median_time returned", "only the time to launch the work", "synchronize() after fn()"],
    ),
    (
        ch08.check_median_time,
        lambda f, s, r: median_time(f, s, r, warmup=False),
        ["median_time returned", "the first call's extra cost", "warm up"],
    ),
    (
        ch08.check_median_time,
        lambda f, s, r: median_time(f, s, r, sync_before=False),
        ["median_time returned", "work queued before the timed run"],
    ),
    (
        ch08.check_median_time,
        lambda f, s, r: torch.tensor(median_time(f, s, r)),
        ["median_time should return a Python float (seconds), got torch.Tensor"],
    ),
    (
        ch08.check_accumulated_gradients,
        lambda m, x, y, k: accumulated_gradients(m, x, y, k, weighting="equal"),
        ["accumulated_gradients returned wrong values", "micro-batches of", "its share"],
    ),
    (
        ch08.check_accumulated_gradients,
        lambda m, x, y, k: accumulated_gradients(m, x, y, k, weighting="sum"),
        ["accumulated_gradients returned wrong values", "times the whole batch's gradient"],
    ),
    (
        ch08.check_accumulated_gradients,
        lambda m, x, y, k: accumulated_gradients(m, x, y, k)[:-1],
        ["accumulated_gradients returned", "one per parameter of model.parameters()"],
    ),
    (
        ch08.check_accumulated_gradients,
        lambda m, x, y, k: [g.float() for g in accumulated_gradients(m, x, y, k)],
        ["dtype torch.float32", "expected torch.float64"],
    ),
    (
        ch08.check_allreduce_mean,
        lambda g, c: allreduce_mean(g, c, weighted=False),
        ["allreduce_mean returned wrong values for rank 0's parameter"],
    ),
    (
        ch08.check_allreduce_mean,
        lambda g, c: [allreduce_mean(g, c)[0][0]] * len(g),
        ["allreduce_mean gave rank 0 torch.Tensor", "one per parameter"],
    ),
    (
        ch08.check_allreduce_mean,
        lambda g, c: allreduce_mean(g, c)[:1],
        ["allreduce_mean should return one list of gradients per rank"],
    ),
]

(
    test_chapter_registry,
    test_solution_passes,
    test_stub_says_not_implemented,
    test_wrong_answers_get_one_sentence,
) = verdict_tests(
    "08",
    SOLUTIONS,
    WRONG,
    [4, 3, 3],
    ["ex1-median_time", "ex2-accumulated_gradients", "ex3-allreduce_mean"],
)


def _with_time_it(fn: Any, synchronize: Any, repeat: int) -> float:
    """The course's time_it with the fake's synchronize patched in: the right answer."""
    from cnncourse import device as course_device

    original = course_device.synchronize
    course_device.synchronize = lambda _device=None: synchronize()
    try:
        return time_it(fn, device="cpu", warmup=1, repeat=repeat).median
    finally:
        course_device.synchronize = original


def _with_stopwatch(fn: Any, synchronize: Any, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        synchronize()
        with Stopwatch("cpu") as watch:
            fn()
            synchronize()
        times.append(watch.seconds)
    return statistics.median(times)


def _whole_batch(m: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> list[torch.Tensor]:
    return list(torch.autograd.grad(F.cross_entropy(m(x), y), list(m.parameters())))


def _tries_all_reduce(g: list[list[torch.Tensor]], c: list[int]) -> list[list[torch.Tensor]]:
    try:
        dist.all_reduce(g[0][0])  # no process group: raises, and the fallback answers
    except (RuntimeError, ValueError):
        pass
    return allreduce_mean(g, c)


test_forbidden_route_is_caught = forbidden_route_test(
    [
        Forbidden(ch08.MEDIAN_TIME, _with_time_it, "cnncourse.device.time_it"),
        Forbidden(ch08.MEDIAN_TIME, _with_stopwatch, "cnncourse.device.Stopwatch.__enter__"),
        Forbidden(ch08.ACCUMULATED_GRADIENTS, _whole_batch, "MicroBatchNet.whole_batch"),
        Forbidden(
            ch08.ALLREDUCE_MEAN,
            _tries_all_reduce,
            "torch.distributed.distributed_c10d.all_reduce",
        ),
    ]
)


def test_the_fake_device_is_asynchronous() -> None:
    device = FakeAsyncDevice(0.05, first_extra=0.0, queued=0.0)
    start = time.perf_counter()
    device()
    launched = time.perf_counter() - start
    device.synchronize()
    finished = time.perf_counter() - start
    assert launched < 0.01 and finished >= 0.05
