"""Chapter 8's measurements on a GPU, in one run: writes benchmarks/results/gpu_ch08.json.

The chapter's committed outputs come from a CPU. This script makes, on a CUDA GPU, the
measurements a reader of chapter 8 expects from one, and writes them (with the GPU's name, the
torch version and the date) to a results file that the notebook displays. Every section is
written as soon as it is measured, so a run cut short keeps what it finished. Sizes are chosen to
finish in about 5-8 minutes on one recent GPU (most of it compiling and the CIFAR-10 run).

    python benchmarks/gpu_ch08.py                      # on a GPU: the full measurements
    python benchmarks/gpu_ch08.py --tiny --out /tmp/x.json   # anywhere: a quick test of the script

On a machine without CUDA it refuses to write the default results file (a CPU's numbers are not a
GPU's); ``--out`` elsewhere lets it run there for testing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnncourse.device import Stopwatch, describe_device, time_it
from cnncourse.fast_cifar import CIFAR_90, CIFAR_94, FastCifarNet, train_fast_cifar, tta_accuracy
from cnncourse.precision import choose_precision, keep_freed_memory
from cnncourse.tensor_data import TensorLoader, load_tensors, split_off

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_ch08.json"


class Results:
    """The results file, rewritten after every section."""

    def __init__(self, path: Path, device: torch.device) -> None:
        self.path = path
        gpu = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else describe_device(device)
        )
        self.data: dict[str, object] = {
            "gpu": gpu,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "date": datetime.date.today().isoformat(),
            "command": " ".join(sys.argv),
            "sections": {},
            "raw": {},
        }

    def add(self, section: str, lines: list[str], raw: object) -> None:
        self.data["sections"][section] = lines  # type: ignore[index]
        self.data["raw"][section] = raw  # type: ignore[index]
        for line in lines:
            print(f"[{section}] {line}", flush=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1))


def make_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision, scaler=None
) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    return step


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a test of the script")
    parser.add_argument("--data-root", default=None, help="where CIFAR-10 is (cnncourse.data)")
    parser.add_argument("--no-max-autotune", action="store_true", help="skip the longest compile")
    parser.add_argument("--no-cifar", action="store_true", help="skip the CIFAR-10 run")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and args.out.resolve() == DEFAULT_OUT.resolve():
        raise SystemExit("No CUDA GPU: the default results file is for GPU numbers; pass --out.")
    on_gpu = device.type == "cuda"
    keep_freed_memory()
    results = Results(args.out, device)
    batch = 64 if args.tiny else 512
    repeat = 3 if args.tiny else 20
    widths = (8, 16, 16) if args.tiny else (64, 256, 256)
    small = (8, 8, 8) if args.tiny else (16, 32, 32)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    fp32 = choose_precision(device, "fp32")
    bf16 = (
        choose_precision(device, "bf16") if not on_gpu or torch.cuda.is_bf16_supported() else fp32
    )
    where = describe_device(device)

    # 1.1 copies: pageable against pinned
    host = torch.randn(batch, 3, 32, 32)
    raw: dict[str, float] = {
        "pageable": time_it(lambda: host.to(device), device=device, repeat=repeat).median
    }
    lines = [f"float32 batch of {batch} ({host.nbytes / 2**20:.1f} MiB), host to {where}:"]
    if on_gpu:
        pinned = host.pin_memory()
        raw["pinned_non_blocking"] = time_it(
            lambda: pinned.to(device, non_blocking=True), device=device, repeat=repeat
        ).median
        for name, seconds in raw.items():
            lines.append(f"  {name}: {ms(seconds)} ({host.nbytes / seconds / 1e9:.1f} GB/s)")
        lines.append(
            f"  pinned + non_blocking is {raw['pageable'] / raw['pinned_non_blocking']:.2f}x faster"
        )
    results.add("copies", lines, raw)

    # 1.2 asynchrony: the same step timed without and with synchronisation
    torch.manual_seed(0)
    step = make_step(FastCifarNet(widths).to(device), x, y, fp32)
    step()
    naive = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        naive.append(time.perf_counter() - start)
    torch.cuda.synchronize() if on_gpu else None
    right = time_it(step, device=device, warmup=1, repeat=repeat)
    results.add(
        "asynchrony",
        [
            (
                f"one float32 step of widths {widths}, batch {batch}: unsynchronised clock "
                f"{ms(statistics.median(naive))}, time_it {ms(right.median)}"
            )
        ],
        {"unsynchronised": statistics.median(naive), "synchronised": right.median},
    )

    # 1.3 cudnn.benchmark
    if on_gpu:
        cudnn = {}
        for flag in (False, True):
            torch.backends.cudnn.benchmark = flag
            torch.manual_seed(0)
            model = FastCifarNet(widths).to(device, memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            cudnn[str(flag)] = time_it(
                make_step(model, xc, y, bf16), device=device, warmup=3, repeat=repeat
            ).median
        results.add(
            "cudnn",
            [
                (
                    f"cudnn.benchmark False {ms(cudnn['False'])}, True {ms(cudnn['True'])}: "
                    f"{cudnn['False'] / cudnn['True']:.2f}x"
                )
            ],
            cudnn,
        )

    # 2 fp16 without and with a scaler: zero weight gradients
    if on_gpu:
        zeros = {}
        for use_scaler in (False, True):
            torch.manual_seed(0)
            model = FastCifarNet(widths).to(device)
            scale = 2.0**16 if use_scaler else 1.0
            with torch.autocast("cuda", dtype=torch.float16):
                loss = F.cross_entropy(model(x).float(), y)
            (loss * scale).backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
            zeros[str(use_scaler)] = float((grads == 0).float().mean())
        results.add(
            "fp16",
            [
                (
                    f"fp16 autocast, weight gradients exactly 0: without a scaler "
                    f"{zeros['False']:.2%}, with 2^16 {zeros['True']:.2%}"
                )
            ],
            zeros,
        )

    # 2.3 precision x layout
    precisions = {"float32": fp32, "bf16": bf16}
    if on_gpu:
        precisions["fp16"] = choose_precision(device, "fp16")
    table, lines = {}, [f"one training step, widths {widths}, batch {batch}:"]
    for name, precision in precisions.items():
        for layout in ("NCHW", "channels_last"):
            torch.manual_seed(0)
            model, xl = FastCifarNet(widths).to(device), x
            if layout == "channels_last":
                model, xl = (
                    model.to(memory_format=torch.channels_last),
                    x.contiguous(memory_format=torch.channels_last),
                )
            scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None
            table[f"{name} {layout}"] = time_it(
                make_step(model, xl, y, precision, scaler), device=device, warmup=3, repeat=repeat
            ).median
    base = table["float32 NCHW"]
    lines += [
        f"  {key}: {ms(value)} ({base / value:.2f}x float32 NCHW)" for key, value in table.items()
    ]
    results.add("precision_layout", lines, table)

    # 3 torch.compile: modes and compile cost, on the small network
    xs = x.contiguous(memory_format=torch.channels_last)
    compiled, lines = {}, [f"widths {small}, batch {batch}, {bf16}, channels_last:"]
    modes = ["eager", "default", "reduce-overhead"] + (
        [] if args.no_max_autotune else ["max-autotune"]
    )
    for mode in modes:
        torch.manual_seed(0)
        model = FastCifarNet(small).to(device, memory_format=torch.channels_last)
        if mode != "eager":
            if mode == "reduce-overhead" and not on_gpu:
                continue
            model = torch.compile(model, mode=mode)
        step = make_step(model, xs, y, bf16)
        with Stopwatch(device) as first:
            step()
        steady = time_it(step, device=device, warmup=2, repeat=repeat).median
        compiled[mode] = {"first_call": first.seconds, "step": steady}
        lines.append(
            f"  {mode}: first call {first.seconds:.1f} s, then {ms(steady)} per step "
            f"({compiled['eager']['step'] / steady:.2f}x eager)"
        )
        results.add("compile", lines, compiled)
    if "reduce-overhead" in compiled:
        results.add(
            "cuda_graphs",
            [line for line in lines if "reduce-overhead" in line or "eager" in line],
            {k: compiled[k] for k in ("eager", "reduce-overhead")},
        )

    # 5 memory: the largest batch, and max_memory_allocated
    if on_gpu:
        torch.manual_seed(0)
        model = FastCifarNet(widths).to(device, memory_format=torch.channels_last)
        peaks = {}
        for n in (256, 512, 1024):
            torch.cuda.reset_peak_memory_stats()
            xm = torch.randn(n, 3, 32, 32, device=device).contiguous(
                memory_format=torch.channels_last
            )
            make_step(model, xm, torch.randint(0, 10, (n,), device=device), bf16)()
            torch.cuda.synchronize()
            peaks[n] = torch.cuda.max_memory_allocated()
        results.add(
            "memory",
            [f"peak allocated, batch {n}: {p / 2**20:.0f} MiB" for n, p in peaks.items()],
            {str(n): p for n, p in peaks.items()},
        )

    # 6 the fast CIFAR-10 run
    if not args.no_cifar:
        train_all = load_tensors("cifar10", train=True, root=args.data_root)
        held_out = load_tensors("cifar10", train=False, root=args.data_root)
        train_part, validation = split_off(train_all, 2_000, seed=0)
        preset = CIFAR_94 if on_gpu else CIFAR_90
        if args.tiny:
            train_part = split_off(train_part, 2_000, seed=3)[1]
        epochs = 1 if args.tiny else preset.epochs
        for warm in [True] if on_gpu and not args.tiny else []:  # a first, untimed run warms cuDNN
            train_fast_cifar(
                preset, train_part, validation, device=device, epochs=1, progress=False
            )
        run = train_fast_cifar(
            preset,
            train_part,
            validation,
            device=device,
            epochs=epochs,
            evals_per_epoch=2,
            progress=False,
        )
        evaluation = TensorLoader(
            held_out,
            2000,
            shuffle=False,
            device=device,
            mean=run.mean,
            std=run.std,
            channels_last=True,
        )
        final = tta_accuracy(run.model, evaluation, preset.tta, run.precision)
        target = 0.94 if preset is CIFAR_94 else 0.90
        reached = run.time_to(target)
        results.add(
            "fast_cifar",
            [
                f"preset {preset.name}, {epochs} epochs on {len(train_part):,} images, {run.precision}: "
                f"training {run.train_seconds:.1f} s; time to {target:.0%} on validation "
                + (f"{reached:.1f} s" if reached is not None else "not reached")
                + f"; {held_out.split}: {final:.4f} ({preset.tta} TTA)"
            ],
            {
                "train_seconds": run.train_seconds,
                "time_to_target": reached,
                "final": final,
                "split": held_out.split,
                "preset": preset.name,
            },
        )
    summary = [
        line.strip()
        for section in ("copies", "cudnn", "precision_layout", "compile")
        for line in results.data["sections"].get(section, [])
        if "x" in line and ":" in line
    ]  # type: ignore[attr-defined]
    results.add("summary", summary, None)


if __name__ == "__main__":
    main()
