"""Benchmark: one convolution layer three ways, a Python loop, unfold + matmul (im2col), F.conv2d.

The baseline is ``torch.nn.functional.conv2d``. The loop visits every output position and does one
small matrix product there; the im2col version unfolds every patch into a column and does one large
matrix product, as chapter 2 explains. All three are checked against the baseline before timing;
the script prints each method's best time and its ratio to the baseline.

    python3 -m uv run --frozen python benchmarks/conv_methods.py [--batch 8] [--channels 16]
        [--size 32] [--filters 32] [--kernel 3] [--repeats 5] [--threads 1]

One CPU thread by default, so that the ratios compare the algorithms rather than how several
threads share a busy machine; ``--threads 0`` keeps PyTorch's default.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F


def conv_position_loop(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """Loop over output positions; each step is one (N, C*k*k) @ (C*k*k, C_out) product."""
    n, _, h, w = x.shape
    c_out, _, k, _ = weight.shape
    padded = F.pad(x, (padding,) * 4)
    out = torch.empty(n, c_out, h + 2 * padding - k + 1, w + 2 * padding - k + 1, dtype=x.dtype)
    flat = weight.reshape(c_out, -1).T
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = padded[:, :, i : i + k, j : j + k].reshape(n, -1) @ flat
    return out


def conv_unfold_matmul(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """im2col: every patch a column, then one matrix product."""
    n, _, h, w = x.shape
    c_out, _, k, _ = weight.shape
    out = weight.reshape(c_out, -1) @ F.unfold(x, k, padding=padding)
    return out.reshape(n, c_out, h + 2 * padding - k + 1, w + 2 * padding - k + 1)


def best_time(fn: Callable[[], torch.Tensor], repeats: int) -> float:
    """The fastest of ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--kernel", type=int, default=3, help="odd kernel side ('same' padding)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per method (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: PyTorch's default)")
    args = parser.parse_args()
    for name in ("batch", "channels", "size", "filters", "kernel", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} is {getattr(args, name)}, but it must be a positive integer.")
    if args.kernel % 2 == 0:
        parser.error(
            f"--kernel is {args.kernel}, but it must be odd so that padding keeps the size."
        )
    if args.threads < 0:
        parser.error(f"--threads is {args.threads}, but it must be 0 (the default count) or more.")
    if args.threads:
        torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, generator=generator)
    weight = torch.randn(args.filters, args.channels, args.kernel, args.kernel, generator=generator)
    padding = args.kernel // 2
    methods: dict[str, Callable[[], torch.Tensor]] = {
        "F.conv2d (baseline)": lambda: F.conv2d(x, weight, padding=padding),
        "unfold + matmul": lambda: conv_unfold_matmul(x, weight, padding),
        "Python loop over positions": lambda: conv_position_loop(x, weight, padding),
    }
    with torch.no_grad():
        baseline = methods["F.conv2d (baseline)"]()
        for name, fn in methods.items():
            if not torch.allclose(fn(), baseline, atol=1e-3, rtol=1e-4):
                raise SystemExit(f"{name} disagrees with F.conv2d; the benchmark is void.")
        timings = {name: best_time(fn, args.repeats) for name, fn in methods.items()}
    base = timings["F.conv2d (baseline)"]
    print(
        f"input {tuple(x.shape)}, weight {tuple(weight.shape)}, padding {padding}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print(f"{'method':<28}{'ms':>10}{'x baseline':>12}")
    for name, seconds in timings.items():
        print(f"{name:<28}{seconds * 1e3:>10.2f}{seconds / base:>12.1f}")


if __name__ == "__main__":
    main()
