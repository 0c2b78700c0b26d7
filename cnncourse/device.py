"""Devices, timing, seeds, DataLoader workers and an environment report.

``pick_device`` chooses CUDA, then Apple's MPS, then the CPU, and says once, loudly, when a run
is on the CPU and what that costs. ``synchronize``, ``time_it`` and ``Stopwatch`` time work on
any device correctly: GPU kernels run asynchronously, so a clock read without waiting for them
measures only how long it took to queue them. ``seed_everything`` seeds Python, NumPy and
PyTorch. ``doctor`` prints what a learner needs to know before running a chapter.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import torch

from cnncourse.profiles import get_profile

__all__ = [
    "Stopwatch",
    "Timing",
    "cpu_notice",
    "cuda_summary",
    "describe_device",
    "doctor",
    "environment_report",
    "num_workers",
    "pick_device",
    "seed_everything",
    "synchronize",
    "time_it",
]

_CPU_NOTICE_SHOWN = False
_KNOWN_DEVICES = ("cuda", "mps", "cpu")


def cpu_notice() -> str:
    """The sentence shown once when a notebook trains on the CPU."""
    threads = torch.get_num_threads()
    return (
        f"Running on the CPU ({threads} thread{'' if threads == 1 else 's'}): no GPU was found. "
        "Every chapter still runs; each introduction states how long its full profile took on a "
        "2-core CPU. For a GPU in Colab choose Runtime > Change runtime type > GPU; set "
        "CNNCOURSE_PROFILE=smoke for a quick pass."
    )


def pick_device(prefer: str | None = None, *, quiet: bool = False) -> torch.device:
    """Return the best available device: CUDA, then MPS, then CPU.

    Args:
        prefer: force ``"cuda"``, ``"mps"`` or ``"cpu"``; ``None`` picks automatically.
        quiet: suppress the one-time CPU notice.

    Raises:
        ValueError: if ``prefer`` names an unknown device or one that is not available here.
    """
    global _CPU_NOTICE_SHOWN
    if prefer is not None:
        if prefer not in _KNOWN_DEVICES:
            raise ValueError(
                f"prefer is {prefer!r}, but it must be one of {', '.join(_KNOWN_DEVICES)} or None."
            )
        if prefer == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer is 'cuda', but no CUDA GPU is available; pass None or 'cpu'.")
        if prefer == "mps" and not torch.backends.mps.is_available():
            raise ValueError(
                "prefer is 'mps', but Apple's MPS is not available; pass None or 'cpu'."
            )
        device = torch.device(prefer)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if device.type == "cpu" and not quiet and not _CPU_NOTICE_SHOWN:
        _CPU_NOTICE_SHOWN = True
        print(f"NOTE: {cpu_notice()}", file=sys.stderr)
    return device


def _as_device(device: torch.device | str | None) -> torch.device:
    if device is None:
        return pick_device(quiet=True)
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"device is {device!r}, but it must name a torch device such as 'cpu' or 'cuda'."
            ) from err
    if isinstance(device, torch.device):
        return device
    raise TypeError(
        f"device is a {type(device).__name__}, but it must be a torch.device, a string such as "
        "'cuda', or None."
    )


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait until every kernel queued on ``device`` has finished (CUDA, MPS; nothing on the CPU).

    ``None`` means the device :func:`pick_device` would choose.
    """
    dev = _as_device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def describe_device(device: torch.device | str | None = None) -> str:
    """The device in a reader's terms, e.g. ``"2 CPU threads"`` or ``"one NVIDIA T4 GPU"``."""
    dev = _as_device(device)
    if dev.type == "cuda":
        return f"one {torch.cuda.get_device_name(dev)} GPU"
    if dev.type == "mps":
        return "an Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"{threads} CPU thread{'s' if threads != 1 else ''}"


@dataclass(frozen=True)
class Timing:
    """Wall-clock times of repeated runs of one piece of work, each ended by a device sync."""

    seconds: tuple[float, ...]
    """One entry per timed run, after the warm-up runs."""
    device: str
    """Where it ran, in a reader's terms (:func:`describe_device`)."""
    threads: int
    """``torch.get_num_threads()`` while it ran."""
    warmup: int
    """How many untimed runs came first."""

    @property
    def median(self) -> float:
        """The median time in seconds: the figure to report."""
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """The shortest time in seconds."""
        return min(self.seconds)

    @property
    def worst(self) -> float:
        """The longest time in seconds."""
        return max(self.seconds)

    def __str__(self) -> str:
        scale, unit = (1e3, "ms") if self.median < 1 else (1.0, "s")
        return (
            f"{self.median * scale:.3g} {unit} median (range {self.best * scale:.3g}-"
            f"{self.worst * scale:.3g} {unit}) over {len(self.seconds)} runs after "
            f"{self.warmup} warm-up, on {self.device}"
        )


def time_it(
    fn: Callable[[], object],
    *,
    device: torch.device | str | None = None,
    warmup: int = 1,
    repeat: int = 5,
) -> Timing:
    """Time ``fn()`` correctly on any device: warm up, then synchronise around every timed run.

    Args:
        fn: the work, called with no arguments (wrap arguments in a lambda).
        device: the device the work runs on; ``None`` means the one :func:`pick_device` chooses.
        warmup: untimed runs first (the first call pays for memory allocation, kernel selection
            and caches).
        repeat: timed runs; report the median.

    Raises:
        TypeError: if ``fn`` is not callable.
        ValueError: if ``warmup`` is negative or ``repeat`` is below 1.
    """
    if not callable(fn):
        raise TypeError(f"fn is a {type(fn).__name__}, but it must be callable with no arguments.")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup is {warmup!r}, but it must be a non-negative integer.")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat is {repeat!r}, but it must be a positive integer.")
    dev = _as_device(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        with Stopwatch(dev) as watch:
            fn()
        times.append(watch.seconds)
    return Timing(tuple(times), describe_device(dev), torch.get_num_threads(), warmup)


class Stopwatch:
    """A context manager that times its block on a device, synchronising at entry and exit.

    Example::

        with Stopwatch("cuda") as watch:
            loss = model(x).sum(); loss.backward()
        print(f"{watch.seconds:.3f} s")
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = _as_device(device)
        self.seconds = float("nan")
        """The block's wall time in seconds, set when the block ends (NaN before)."""
        self._start = 0.0

    def __enter__(self) -> Self:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def num_workers(device: torch.device | str | None = None) -> int:
    """A DataLoader worker count that suits Colab, laptops and CI.

    On the CPU the training itself uses every core, and the course's data sets are decoded into
    memory, so extra worker processes only compete with it: 0. On a GPU, workers prepare the next
    batches while the GPU computes: up to 4, leaving one core for the main process.
    """
    dev = torch.device(device) if device is not None else pick_device(quiet=True)
    if dev.type == "cpu":
        return 0
    cores = os.cpu_count() or 1
    return max(0, min(4, cores - 1))


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (all devices).

    Args:
        seed: a non-negative integer.
        deterministic: also ask PyTorch for deterministic kernels (slower on GPU; some operations
            then raise if they have no deterministic implementation).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed is {seed!r}, but it must be a non-negative integer.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.use_deterministic_algorithms(False)


# Where the course's downloads come from (torchvision's MNIST mirror); reaching it means the
# data sets that are not on disk can be downloaded.
_NETWORK_PROBE = ("ossci-datasets.s3.amazonaws.com", 443)


def _network_reachable(timeout: float = 3.0) -> bool:
    """Whether a connection to the download server opens within ``timeout`` seconds."""
    import socket

    try:
        socket.create_connection(_NETWORK_PROBE, timeout=timeout).close()
    except OSError:
        return False
    return True


def _nvidia_smi() -> str | None:
    """``<GPU name>, <driver version>`` of the first NVIDIA GPU per nvidia-smi, or None."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    query = [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    first = done.stdout.strip().splitlines()
    return first[0].strip() if done.returncode == 0 and first else None


def cuda_summary(smi: str | None = None) -> str:
    """The torch build's CUDA version and the NVIDIA driver, and why a GPU is unusable if it is.

    Args:
        smi: nvidia-smi's ``<name>, <driver>`` line; None asks nvidia-smi (where it exists).
    """
    build = torch.version.cuda
    if build is None:
        return "CPU-only torch build (no CUDA)"
    smi = smi if smi is not None else _nvidia_smi()
    name, _, driver = (smi or "").partition(", ")
    if torch.cuda.is_available():
        return f"torch built for CUDA {build}; driver {driver or 'unknown (no nvidia-smi)'}"
    if smi is None:
        return f"torch built for CUDA {build}; no NVIDIA driver found"
    return (
        f"torch built for CUDA {build} cannot use the {name} (driver {driver}): update the "
        "NVIDIA driver, or install a torch built for an older CUDA"
    )


def _writability(root: Path) -> str:
    """Whether the data root can be written to (or created), in words."""
    existing = root if root.exists() else next((p for p in root.parents if p.exists()), Path("."))
    if os.access(existing, os.W_OK):
        return "writable" if existing == root else "will be created"
    return "NOT writable: set CNNCOURSE_DATA to a folder you can write to"


def environment_report(data_root: str | Path | None = None, profile: str | None = None) -> str:
    """Versions, device, CUDA, profile, data root, network and data sets (with fixes), as text."""
    import torchvision

    from cnncourse import __version__
    from cnncourse.data import data_status, resolve_root, root_source, show_path

    device = pick_device(quiet=True)
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none"
    try:
        profile_name = get_profile(profile).name
    except ValueError as err:
        profile_name = f"invalid ({err})"
    root = resolve_root(data_root)
    network = (
        "yes (data sets not on disk are downloaded on first use)"
        if _network_reachable()
        else "none (data sets not on disk cannot be downloaded)"
    )
    lines = [
        f"python       {platform.python_version()} ({sys.platform})",
        f"torch        {torch.__version__}",
        f"torchvision  {torchvision.__version__}",
        f"cnncourse    {__version__}",
        f"device       {device.type} (GPU: {gpu}; CPU threads: {torch.get_num_threads()})",
        f"cuda         {cuda_summary()}",
        f"profile      {profile_name}",
        f"data root    {show_path(root)} ({_writability(root)}; set by {root_source(data_root)})",
        f"network      {network}",
    ]
    lines += [f"  {line}" for line in data_status(data_root)]
    if device.type == "cpu" and not _CPU_NOTICE_SHOWN:
        lines.append(f"note         {cpu_notice()}")
    return "\n".join(lines)


def doctor(data_root: str | Path | None = None, profile: str | None = None) -> None:
    """Print :func:`environment_report`: run it in a chapter's first cell, or when stuck."""
    print(environment_report(data_root, profile))
