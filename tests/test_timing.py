"""The synchronising timing helper: time_it and Stopwatch wait for queued device work.

GPU kernels run asynchronously, and no GPU is needed to test that the helper waits for them: a
fake device queues its "kernel" on a background thread and returns at once, and the fake
``synchronize`` joins it. A timer that forgets to synchronise measures ~0 s for 0.2 s of work.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from cnncourse import device as course_device
from cnncourse.device import Stopwatch, Timing, describe_device, time_it

KERNEL_SECONDS = 0.2


class FakeAsyncDevice:
    """Launching work returns at once; the work finishes later, like a CUDA kernel."""

    def __init__(self) -> None:
        self.pending: list[threading.Thread] = []
        self.syncs = 0

    def launch(self) -> None:
        kernel = threading.Thread(target=time.sleep, args=(KERNEL_SECONDS,))
        kernel.start()
        self.pending.append(kernel)

    def synchronize(self, device: object = None) -> None:
        self.syncs += 1
        while self.pending:
            self.pending.pop().join()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAsyncDevice:
    queue = FakeAsyncDevice()
    monkeypatch.setattr(course_device, "synchronize", queue.synchronize)
    return queue


def test_time_it_waits_for_queued_work(fake: FakeAsyncDevice) -> None:
    timing = time_it(fake.launch, device="cpu", warmup=1, repeat=3)
    assert len(timing.seconds) == 3
    assert timing.best >= KERNEL_SECONDS  # each run includes its kernel
    assert not fake.pending


def test_a_timer_without_sync_misses_the_work(fake: FakeAsyncDevice) -> None:
    """The case the helper exists for: the naive clock read says the work took ~nothing."""
    start = time.perf_counter()
    fake.launch()
    naive = time.perf_counter() - start
    fake.synchronize()
    assert naive < KERNEL_SECONDS / 2


def test_stopwatch_syncs_at_entry_and_exit(fake: FakeAsyncDevice) -> None:
    fake.launch()  # work queued before the block must not be counted in it ...
    with Stopwatch("cpu") as watch:
        pass
    assert watch.seconds < KERNEL_SECONDS / 2
    with Stopwatch("cpu") as watch:  # ... and work queued inside it must be
        fake.launch()
    assert watch.seconds >= KERNEL_SECONDS
    assert fake.syncs >= 4


def test_warmup_runs_are_not_timed() -> None:
    calls: list[int] = []
    timing = time_it(lambda: calls.append(1), device="cpu", warmup=2, repeat=4)
    assert len(calls) == 6 and len(timing.seconds) == 4 and timing.warmup == 2


def test_timing_reports_device_threads_and_median() -> None:
    timing = Timing((0.003, 0.001, 0.002), describe_device("cpu"), torch.get_num_threads(), 1)
    assert timing.median == 0.002 and timing.best == 0.001 and timing.worst == 0.003
    threads = torch.get_num_threads()
    assert timing.device == f"{threads} CPU thread{'s' if threads != 1 else ''}"
    assert (
        str(timing) == f"2 ms median (range 1-3 ms) over 3 runs after 1 warm-up, on {timing.device}"
    )


def test_stopwatch_before_its_block_ends_reads_nan() -> None:
    assert Stopwatch("cpu").seconds != Stopwatch("cpu").seconds  # NaN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fn": 3}, "fn is a int, but it must be callable"),
        ({"warmup": -1}, "warmup is -1, but it must be a non-negative integer"),
        ({"repeat": 0}, "repeat is 0, but it must be a positive integer"),
        ({"device": "gpu0"}, "device is 'gpu0', but it must name a torch device"),
        ({"device": 7}, "device is a int, but it must be a torch.device"),
    ],
)
def test_bad_arguments_get_one_sentence(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"fn": lambda: None, "device": "cpu", **kwargs}
    fn = args.pop("fn")
    with pytest.raises((TypeError, ValueError), match=message):
        time_it(fn, **args)  # type: ignore[arg-type]
