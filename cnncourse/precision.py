"""Numerical precision and memory settings that make training fast: autocast, and the allocator.

- :func:`choose_precision` picks the autocast type for a device: bf16 on CUDA GPUs that have it,
  else fp16 (with a gradient scaler, because fp16 gradients underflow); bf16 on CPUs whose
  instruction set computes it natively (AVX-512 BF16 or AMX), else float32 with a one-line note.
- :func:`keep_freed_memory` stops glibc's allocator from handing every large freed tensor back to
  the operating system. Without it, each training step on the CPU maps and unmaps its activations
  afresh, and throughput swings by a factor of 2-4 from one epoch to the next.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["Precision", "choose_precision", "cpu_has_native_bf16", "keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_ALLOCATOR_TUNED = False


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX), as far as can be told.

    On Linux the CPU's flags are read from ``/proc/cpuinfo``; elsewhere oneDNN's own test is used.
    Without native support, PyTorch emulates bf16 on the CPU, which is slower than float32.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = cpuinfo.read_text(errors="replace")
        return "avx512_bf16" in flags or "amx_bf16" in flags
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class Precision:
    """How to run a model's forward pass: under autocast to ``dtype``, or in float32 (None)."""

    device_type: str
    dtype: torch.dtype | None
    note: str
    """One line saying what was chosen and why."""

    @property
    def needs_scaler(self) -> bool:
        """fp16 training needs a gradient scaler; bf16 and float32 do not."""
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """A context manager that runs the enclosed forward pass in this precision."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def __str__(self) -> str:
        return "float32" if self.dtype is None else f"autocast to {str(self.dtype)[6:]}"


def choose_precision(device: torch.device | str, prefer: str = "auto") -> Precision:
    """The fastest safe autocast setting for ``device``.

    Args:
        device: the training device.
        prefer: ``"auto"``; or ``"bf16"``, ``"fp16"``, ``"fp32"`` to force one (``"fp16"`` only
            on CUDA).
    """
    dev = torch.device(device)
    if prefer not in ("auto", "bf16", "fp16", "fp32"):
        raise ValueError(f"prefer is {prefer!r}, but it must be 'auto', 'bf16', 'fp16' or 'fp32'.")
    if prefer == "fp32":
        return Precision(dev.type, None, "float32, as asked")
    if prefer == "fp16" and dev.type != "cuda":
        raise ValueError(
            f"prefer is 'fp16', but fp16 training is offered on CUDA only, not {dev.type}."
        )
    if dev.type == "cuda":
        if prefer == "fp16" or (prefer == "auto" and not torch.cuda.is_bf16_supported()):
            return Precision("cuda", torch.float16, "autocast to fp16 with a gradient scaler")
        return Precision("cuda", torch.bfloat16, "autocast to bf16 (this GPU supports it)")
    if dev.type == "cpu":
        if prefer == "bf16" or cpu_has_native_bf16():
            return Precision(
                "cpu", torch.bfloat16, "autocast to bf16 (the CPU computes it natively)"
            )
        return Precision(
            "cpu",
            None,
            "float32: this CPU has no native bf16 (AVX-512 BF16 or AMX), so autocast "
            "would be slower",
        )
    return Precision(dev.type, None, f"float32 on {dev.type}")


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the system.

    Sets ``M_MMAP_MAX`` to 0 (large blocks come from the heap, not from fresh mappings) and
    ``M_TRIM_THRESHOLD`` to 1 GiB (the heap is trimmed only past that), the same effect as the
    environment variables ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824``. Returns True
    where it was applied (Linux with glibc), False elsewhere, where it is not needed. Safe to call
    more than once; the memory stays available to the process and is reused by the next step.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    _ALLOCATOR_TUNED = ok
    return ok
